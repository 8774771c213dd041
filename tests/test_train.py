"""Training runs: results layout, resume gives the same numbers, finished runs are kept, the one rule for
reusing a run, the training pools of the leakage measurements."""
import copy
import functools
import json
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml

from lib import config
from lib.data import tiles
from lib.device import select_precision
from lib.experiments import ladder, stability
from lib.inference import __main__ as predict_cli
from lib.training import loop, recipe, runs, train


@pytest.fixture
def tiny_run_config(tiny_config, tmp_path, monkeypatch):
    """Smoke settings on the tiny dataset (64-px tiles at 32 px), prepared tiles kept in tmp_path."""
    monkeypatch.setattr(tiles, "prepare", functools.partial(tiles.prepare, root=tmp_path / "prepared"))
    tiny_config["train"].update(epochs=3, max_train_tiles=None, max_eval_tiles=None)
    return tiny_config


def test_ema_and_outlier_rules():
    assert loop.ema_update(None, 0.5, 0.9) == 0.5
    assert loop.ema_update(0.5, 1.0, 0.9) == pytest.approx(0.55)
    assert not loop.is_outlier([0.5, 0.52], 0.9, 5, 3.5)            # fewer than 3 epochs: never
    assert loop.is_outlier([0.50, 0.51, 0.52, 0.51], 0.90, 5, 3.5)  # a jump far outside the recent spread
    assert not loop.is_outlier([0.50, 0.55, 0.45, 0.52], 0.56, 5, 3.5)


def test_steps_per_epoch_and_the_dropped_batch_of_one():
    train_cfg = {"batch_size": 4, "accumulation_steps": 2}
    assert recipe.steps_per_epoch(504, train_cfg) == 63 and recipe.steps_per_epoch(9, train_cfg) == 1
    assert recipe.drops_last_batch(9, 4) and not recipe.drops_last_batch(10, 4)


@pytest.mark.slow
def test_run_layout_resume_and_no_overwrite(tiny_dataset, tiny_run_config, tmp_path):
    root = tmp_path / "results"
    whole = train.train(tiny_run_config, tiny_dataset, seed=0, root=root / "a", progress=False)
    files = {p.name for p in whole.iterdir()}
    assert {"config.yaml", "versions.json", "history.csv", "sampling_weights.csv", "best.pt", "metrics.json",
            "per_tile.csv", "test_probabilities-tta.npy", "test_probabilities-no_tta.npy"} <= files
    assert "last.pt" not in files
    history = pd.read_csv(whole / "history.csv")
    assert history.columns[:8].tolist() == ["epoch", "train_loss", "val_loss", "val_dice", "val_iou",
                                            "val_precision", "val_recall", "ema_dice"]
    metrics = json.loads((whole / "metrics.json").read_text())
    assert set(metrics["test"]) == {"whole_tile", "annotated_region"} and set(metrics["arms"]) == {"tta", "no_tta"}
    assert metrics["optimizer_steps"] == history.optimizer_steps.sum() > 0
    assert json.loads((whole / "versions.json").read_text())["encoder_weights"].startswith("ImageNet")
    for arm in ("tta", "no_tta"):  # where predict cuts nuclei: chosen on validation tiles predicted as new images
        assert metrics["arms"][arm]["nuclei_threshold_source"] == "validation"
        curve = pd.read_csv(whole / f"nuclei_threshold_curve-{arm}.csv")
        distances = tiny_run_config["instances"]["min_distance_choices_source_px"]
        assert curve.threshold.unique().tolist() == list(train.NUCLEI_THRESHOLDS)
        assert curve.min_distance_px.unique().tolist() == distances
        assert len(curve) == len(train.NUCLEI_THRESHOLDS) * len(distances)
        best = curve.loc[curve.aji.idxmax()]
        assert metrics["arms"][arm]["nuclei_threshold"] == best.threshold
        assert metrics["arms"][arm]["nuclei_min_distance_source_px"] == best.min_distance_px
    tta = metrics["arms"]["tta"]
    card = (whole / "MODEL_CARD.md").read_text()
    assert f"with TTA {tta['nuclei_threshold']:.2f}, markers {tta['nuclei_min_distance_source_px']:g} px apart" in card
    assert metrics["nuclei_cut_seconds"] > 0 and f"choosing took {metrics['nuclei_cut_seconds'] / 60:.1f} min" in card

    interrupted = train.train(tiny_run_config, tiny_dataset, seed=0, root=root / "b", stop_after_epochs=2,
                              progress=False)
    assert (interrupted / "last.pt").is_file() and not (interrupted / "metrics.json").exists()
    assert len(pd.read_csv(interrupted / "history.csv")) == 2
    resumed = train.train(tiny_run_config, tiny_dataset, seed=0, root=root / "b", progress=False)
    resumed_history = pd.read_csv(resumed / "history.csv")
    pd.testing.assert_frame_equal(resumed_history.drop(columns="seconds"), history.drop(columns="seconds"))
    assert json.loads((resumed / "metrics.json").read_text())["arms"] == metrics["arms"]
    for arm in ("tta", "no_tta"):
        assert np.array_equal(np.load(resumed / f"test_probabilities-{arm}.npy"),
                              np.load(whole / f"test_probabilities-{arm}.npy"))

    stamp = (whole / "metrics.json").stat().st_mtime_ns
    assert train.train(tiny_run_config, tiny_dataset, seed=0, root=root / "a", progress=False) == whole
    assert (whole / "metrics.json").stat().st_mtime_ns == stamp  # finished: loaded, not retrained

    other_seed = train.train(tiny_run_config, tiny_dataset, seed=1, root=root / "a", progress=False)
    assert not pd.read_csv(other_seed / "history.csv").train_loss.equals(history.train_loss)

    out = tmp_path / "predicted"
    predict_cli.main(["--run", str(whole), "--input", str(tiny_dataset / "images"), "--output", str(out), "--tta"])
    assert len(list(out.glob("*_probability.png"))) == 10 and len(list(out.glob("*_overlay.png"))) == 10
    cells = pd.read_csv(out / "cells.csv")  # the run's own scale (zoom 1): its chosen distance in the images' px
    assert (cells.threshold == tta["nuclei_threshold"]).all() and (cells.zoom == 1).all()
    assert (cells["min marker distance (px)"] == tta["nuclei_min_distance_source_px"]).all()


def test_predict_cuts_nuclei_at_the_recorded_nuclei_threshold_else_at_the_pixel_one():
    chosen = {"arms": {"tta": {"threshold": 0.3, "nuclei_threshold": 0.7}, "no_tta": {"threshold": 0.4}}}
    older = {"arms": {"tta": {"threshold": 0.5}, "no_tta": {"threshold": 0.6}}}
    assert runs.prediction_threshold([chosen], True) == 0.3
    assert runs.prediction_threshold([chosen], True, nuclei=True) == 0.7
    assert runs.prediction_threshold([chosen], False, nuclei=True) == 0.4       # none recorded for that arm
    assert runs.prediction_threshold([chosen, older], True, nuclei=True) == pytest.approx(0.6)  # averaged runs: the mean


def test_predict_splits_nuclei_with_the_recorded_marker_distance_else_the_profiles():
    chosen = {"arms": {"tta": {"threshold": 0.3, "nuclei_threshold": 0.7, "nuclei_min_distance_source_px": 2.0},
                       "no_tta": {"threshold": 0.4}}}
    other = {"arms": {"tta": {"threshold": 0.3, "nuclei_threshold": 0.6, "nuclei_min_distance_source_px": 4.0}}}
    assert runs.prediction_min_distance([chosen], True) == 2.0
    assert runs.prediction_min_distance([chosen, other], True) == 3.0  # averaged runs: the mean
    assert runs.prediction_min_distance([chosen], False) is None  # none recorded: predict takes the profile's
    profile = {"min_distance_source_px": 6, "min_area_source_px": 20}
    assert runs.prediction_instances([chosen], True, profile) == {"min_distance_source_px": 2.0, "min_area_source_px": 20}
    assert runs.prediction_instances([chosen], False, profile) == profile


@pytest.mark.slow
def test_a_three_channel_model_predicts_with_and_without_tta(tiny_dataset, tiny_run_config, tmp_path):
    folder = train.train(tiny_run_config, tiny_dataset, "unet", seed=0, root=tmp_path / "results", progress=False)
    run = runs.read_run(folder)
    assert run.test_probabilities(True).shape == run.test_probabilities(False).shape == (len(run.per_tile), 32, 32)
    assert not np.array_equal(run.test_probabilities(True), run.test_probabilities(False))
    for flags in (["--tta"], []):
        out = tmp_path / f"predicted{len(flags)}"
        predict_cli.main(["--run", str(folder), "--input", str(tiny_dataset / "images"), "--output", str(out), *flags])
        assert len(list(out.glob("*_mask.png"))) == 10


def test_a_centre_head_run_keeps_its_test_centre_maps_and_predicts_with_them(tiny_dataset, tiny_run_config, tmp_path):
    tiny_run_config["model"]["centre_head"] = True
    tiny_run_config["train"]["epochs"] = 1
    folder = train.train(tiny_run_config, tiny_dataset, seed=0, root=tmp_path / "results", progress=False)
    run = runs.read_run(folder)
    centres = run.test_centres()
    assert centres.shape == run.test_probabilities().shape and 0 <= centres.min() and centres.max() <= 1
    assert not np.array_equal(centres, run.test_probabilities())            # a map of its own
    out = tmp_path / "predicted"
    predict_cli.main(["--run", str(folder), "--input", str(tiny_dataset / "images"), "--output", str(out)])
    assert len(list(out.glob("*_labels.tif"))) == 10
    unet = train.train(tiny_run_config, tiny_dataset, "unet", seed=0, root=tmp_path / "results", progress=False)
    assert runs.read_run(unet).test_centres() is None                       # the setting is the Enhanced family's


@pytest.mark.slow
def test_full_resolution_trains_and_predicts_end_to_end(tiny_dataset, tiny_run_config, tmp_path):
    tiny_run_config["data"]["input_size"] = tiny_run_config["data"]["tile_size"]  # the budget sweep's other scale
    tiny_run_config["train"]["epochs"] = 1
    folder = train.train(tiny_run_config, tiny_dataset, "unet", seed=0, root=tmp_path / "results", progress=False)
    run = runs.read_run(folder)
    assert run.test_probabilities(True).shape == (len(run.per_tile), 64, 64)
    out = tmp_path / "predicted"
    predict_cli.main(["--run", str(folder), "--input", str(tiny_dataset / "images"), "--output", str(out)])
    assert len(list(out.glob("*_labels.tif"))) == 10


def test_a_run_of_another_config_is_neither_mixed_nor_silently_reused(tiny_dataset, tiny_run_config, tmp_path):
    run = train.train(tiny_run_config, tiny_dataset, seed=0, root=tmp_path, stop_after_epochs=1, progress=False)
    tiny_run_config["train"]["lr_max"] = 1e-3
    with pytest.raises(runs.StaleRunError, match=r"unfinished run of another config \(changed: train.lr_max\); pass --force"):
        train.train(tiny_run_config, tiny_dataset, seed=0, root=tmp_path, progress=False)
    forced = train.train(tiny_run_config, tiny_dataset, seed=0, root=tmp_path, force=True, stop_after_epochs=1,
                         progress=False)
    assert forced == run and len(pd.read_csv(run / "history.csv")) == 1
    assert train.train(tiny_run_config, tiny_dataset, seed=0, root=tmp_path, progress=False) == run  # finished
    tiny_run_config["train"]["epochs"] += 1
    with pytest.raises(runs.StaleRunError, match=r"a finished run of another config \(changed: train.epochs\)"):
        train.train(tiny_run_config, tiny_dataset, seed=0, root=tmp_path, progress=False)
    tiny_run_config["train"]["epochs"] -= 1
    tiny_run_config["stability"]["seeds"] += 1                 # notebook 05's settings do not touch this run
    assert train.train(tiny_run_config, tiny_dataset, seed=0, root=tmp_path, progress=False) == run


def test_a_run_from_another_data_folder_is_refused_by_every_consumer(tiny_dataset, tiny_run_config, tmp_path):
    train.train(tiny_run_config, tiny_dataset, seed=0, root=tmp_path, progress=False)
    assert runs.open_run(tiny_run_config, tiny_dataset, "enhanced", 0, root=tmp_path).seed == 0
    moved = tmp_path / "moved" / tiny_dataset.name                 # the same dataset name in another folder
    shutil.copytree(tiny_dataset, moved)
    stale = r"a finished run of another config \(changed: data_dir\)"
    with pytest.raises(runs.StaleRunError, match=stale):
        train.train(tiny_run_config, moved, seed=0, root=tmp_path, progress=False)       # training (notebook 03)
    with pytest.raises(runs.StaleRunError, match=stale):
        runs.open_run(tiny_run_config, moved, "enhanced", 0, root=tmp_path)             # notebooks 05, 06
    with pytest.raises(runs.StaleRunError, match=stale):
        runs.open_runs(tiny_run_config, moved, ["enhanced"], 1, root=tmp_path)          # notebook 04
    with pytest.raises(runs.MissingRunError, match="no finished run for unet seed 0"):
        runs.open_runs(tiny_run_config, tiny_dataset, ["enhanced", "unet"], 1, root=tmp_path)


def test_the_stability_notebook_refuses_a_stale_ladder_run(tiny_dataset, tiny_run_config, tmp_path):
    train.train(tiny_run_config, tiny_dataset, seed=0, root=tmp_path, progress=False)
    found = stability.ladder_histories(tiny_run_config, tiny_dataset, ["enhanced", "unet"], root=tmp_path)
    assert list(found) == ["Enhanced (paper)"]                                  # unet is not trained: skipped
    tiny_run_config["train"]["lr_max"] = 1e-3
    with pytest.raises(runs.StaleRunError, match="changed: train.lr_max"):
        stability.ladder_histories(tiny_run_config, tiny_dataset, ["enhanced"], root=tmp_path)


def test_leakage_pools_keep_the_budget_and_the_test_tiles(tiny_dataset, tiny_run_config):
    tiny_run_config["train"]["max_train_tiles"] = 20
    tile_set = tiles.prepare(tiny_run_config, tiny_dataset)
    standard = train.split_indices(tile_set, tiny_run_config)
    leaky = train.split_indices(tile_set, dict(tiny_run_config, train=dict(tiny_run_config["train"],
                                                                           training_pool="with_test_image_tiles")))
    assert len(leaky["train"]) == len(standard["train"]) == 20                  # the same budget
    leaked = np.setdiff1d(leaky["train"], standard["train"])
    assert set(tile_set.table.split.iloc[leaked]) == {"test"} and len(leaked) == 6  # half of 2 images x 6 tiles
    assert np.array_equal(leaky["test"], np.setdiff1d(standard["test"], leaked))
    assert not set(leaky["test"]) & set(leaky["train"])
    table = tile_set.table.assign(slide=[s.split("_")[0][-1] for s in tile_set.table.source])  # 10 slides
    tile_set.table = table.assign(slide=np.where(table.split == "test", "shared", table.slide))
    tile_set.table.loc[tile_set.indices("train")[:6], "slide"] = "shared"       # one training image on a test slide
    apart = train.split_indices(tile_set, dict(tiny_run_config, train=dict(tiny_run_config["train"],
                                                                            training_pool="without_test_slides")))
    assert len(apart["train"]) == 20 and "shared" not in set(tile_set.table.slide.iloc[apart["train"]])
    assert np.array_equal(apart["test"], standard["test"])
    tile_set.table.loc[tile_set.indices("train")[6:], "slide"] = "shared"       # now no training tile is apart
    with pytest.raises(train.PoolTooSmallError, match="only 0 training tiles lie on slides without a test image"):
        train.split_indices(tile_set, dict(tiny_run_config, train=dict(tiny_run_config["train"],
                                                                       training_pool="without_test_slides")))


def test_non_finite_batches_are_skipped_and_counted():
    import torch
    cfg = config.load_config("smoke")
    model = torch.nn.Conv2d(4, 1, 1)
    x = torch.randn(4, 2, 4, 8, 8)
    x[1, 0, 0, 0, 0] = float("nan")  # the second batch poisons its loss
    loader = [(x[i], {"mask": torch.zeros(2, 1, 8, 8), "valid": torch.ones(2, 1, 8, 8)}) for i in range(4)]
    loader[3][1]["valid"].zero_()     # the fourth batch holds no pixel that carries supervision
    fp32 = select_precision("fp32", torch.device("cpu"))
    plan = recipe.build_recipe(model, cfg, stabilized=True, total_steps=4, precision=fp32)
    loss_fn = loop.loss_function("stabilized")
    losses, skipped, steps = loop.train_one_epoch(model, loader, plan, 1, torch.device("cpu"), loss_fn, fp32)
    assert skipped == 1 and len(losses) == 2 and steps == 2
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_a_setting_introduced_later_keeps_old_runs_current_at_its_old_value():
    cfg = config.load_config("smoke")
    recorded = copy.deepcopy(runs.run_config(cfg))
    for dotted in runs.INTRODUCED:                       # a run recorded before these settings existed
        section, key = dotted.split(".")
        del recorded[section][key]
    assert runs.changed_settings(recorded, cfg, "enhanced") == []
    region = {**cfg, "train": {**cfg["train"], "loss_area": "annotated_region"}}
    assert runs.changed_settings(recorded, region, "enhanced") == ["train.loss_area"]
    assert runs.changed_settings(runs.run_config(cfg), cfg, "enhanced_region") == []   # its own loss area
    assert runs.model_run_config(cfg, "enhanced_region")["train"]["loss_area"] == "annotated_region"


def test_an_old_run_reads_with_the_settings_introduced_since_at_their_old_values(tmp_path):
    cfg = config.load_config("smoke")
    recorded = runs.run_record(cfg, None, "enhanced", 0)
    del recorded["config"]["train"]["contact_weight"]
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(recorded))
    for name in ("metrics.json", "versions.json"):
        (tmp_path / name).write_text("{}")
    for name in ("history.csv", "per_tile.csv"):
        (tmp_path / name).write_text("epoch\n1\n")
    assert runs.read_run(tmp_path).record["config"]["train"]["contact_weight"] == 0.0


def test_a_run_is_stale_only_for_changes_it_depends_on():
    cfg = config.load_config("smoke")
    same = runs.model_run_config(cfg, "unet")
    other_model_epochs = {**cfg, "ladder": {**cfg["ladder"], "epochs": {"fgfeu_net": 1}}}
    assert runs.model_run_config(other_model_epochs, "unet") == same
    assert runs.model_run_config(other_model_epochs, "fgfeu_net")["train"]["epochs"] == 1
    own_epochs = {**cfg, "ladder": {**cfg["ladder"], "epochs": {"unet": cfg["train"]["epochs"] + 1}}}
    assert runs.model_run_config(own_epochs, "unet") != same
    assert runs.model_run_config({**cfg, "runs": {"models": ["unet"], "seeds": 3}}, "unet") == same
    faster = {**cfg, "stability": {**cfg["stability"], "learning_rate": 0.1, "epochs": 40}}
    assert runs.changed_settings(cfg, faster, "unet") == []
    assert runs.changed_settings(cfg, faster, "enhanced_unstabilized") == ["stability.learning_rate"]
    assert runs.changed_settings(cfg, own_epochs, "unet") == ["train.epochs"]


def test_the_folds_of_a_cross_validation_read_as_one_run_testing_every_image_once(tiny_run_config, tiny_dataset,
                                                                                   tmp_path):
    tiny_run_config["data"]["folds"] = 2
    tiny_run_config["train"]["epochs"] = 1
    root = tmp_path / "results"
    with pytest.raises(ValueError, match="name the fold to train"):
        train.train(tiny_run_config, tiny_dataset, "unet", seed=0, root=root, progress=False)
    folds = [runs.read_run(train.train(tiny_run_config, tiny_dataset, "unet", seed=0, root=root, progress=False,
                                       fold=fold)) for fold in range(2)]
    joined = runs.open_run(tiny_run_config, tiny_dataset, "unet", 0, root=root)
    assert isinstance(joined, runs.OutOfFold)
    assert joined.per_tile.groupby("source").fold.nunique().max() == 1             # an image in one test fold
    assert sorted(joined.per_tile.source.unique()) == sorted(p.name.split(".")[0] for p in
                                                            (tiny_dataset / "images").iterdir())
    assert len(joined.test_probabilities()) == len(joined.per_tile) == sum(len(run.per_tile) for run in folds)
    for key in ("train_seconds", "optimizer_steps"):                          # the cross-validation's budget
        assert joined.metrics[key] == pytest.approx(sum(run.metrics[key] for run in folds))
    table = ladder.model_table(ladder.run_entries({"unet": [joined]}), "annotated_region")  # notebook 04 with folds
    assert table.loc["U-Net", "test images"] == 10 and table.loc["U-Net", "optimizer steps"] == joined.metrics[
        "optimizer_steps"]
