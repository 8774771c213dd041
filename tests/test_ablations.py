"""Ablation variants, failure analysis and calibration, by hand."""
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from lib import config
from lib.experiments import ablations, calibration, failures
from lib.training.runs import OutOfFold, Run


def test_ablation_configs_change_one_thing_under_the_budget():
    cfg = config.load_config("quick")
    base = ablations.ablation_config(cfg, ablations.BASELINE)
    assert base["train"]["max_train_tiles"] == cfg["ablations"]["max_train_tiles"]
    assert base["train"]["epochs"] == cfg["ablations"]["epochs"]
    drop = ablations.ablation_config(cfg, "drop")
    changed = {(s, k) for s in drop if isinstance(drop[s], dict) for k in drop[s] if drop[s][k] != base[s][k]}
    assert changed == {("model", "input_variant")} and cfg["model"]["input_variant"] == "projection"
    for name in ablations.ABLATIONS:  # every variant is a valid config and changes exactly what it says
        variant = ablations.ablation_config(cfg, name)
        config.validate(variant)
        assert {(s, k) for s in variant if isinstance(variant[s], dict) for k in variant[s]
                if variant[s][k] != base[s][k]} == {(s, k) for s, c in ablations.ABLATIONS[name][1].items() for k in c}


def test_small_object_table_counts_the_objects_the_claim_rests_on():
    target = np.zeros((2, 32, 32), bool)
    target[0, 2:4, 2:4] = True               # small (4 px), found by the baseline only
    target[1, 10:12, 10:12] = True           # small, found by neither
    target[1, 20:30, 20:30] = True           # large: not counted
    regions = np.ones_like(target)
    tile_set = SimpleNamespace(masks=target, regions=regions)
    found = target.copy()
    found[1] = False
    per_tile = pd.DataFrame({"tile_id": ["a0", "b0"], "source": ["a", "b"]})

    def run(pred):
        return SimpleNamespace(per_tile=per_tile, test_index=lambda _: np.arange(2), test_predictions=lambda tta: pred)
    runs = {ablations.BASELINE: [run(found)], "uniform_sampling": [run(np.zeros_like(target)), run(found)]}
    table = ablations.small_object_table(runs, tile_set, {"train": {"small_object_source_px": 8},
                                                            "data": {"tile_size": 32, "input_size": 32}})
    assert table.loc[ablations.BASELINE].tolist() == [2, 1]
    assert table.loc["uniform_sampling"].tolist() == [2, 0.5]  # the mean over its two seeds


def test_every_claim_and_protocol_row_names_existing_arms():
    arms = set(ablations.ABLATIONS) | {ablations.TTA, ablations.NO_TTA}
    assert all({ours, reference} <= arms for _, _, ours, reference, _ in ablations.CLAIMS)
    assert all({ours, reference} <= arms for _, ours, reference in ablations.PROTOCOL)
    # the Gabor channel's effect and the projection's are measured apart (projection_blank between them)
    assert ("baseline", "projection_blank", "boundary F1") in {(o, r, m) for _, _, o, r, m in ablations.CLAIMS}
    assert ("projection_blank", "drop", "Dice") in {(o, r, m) for _, _, o, r, m in ablations.CLAIMS}


def test_small_object_detection_rule():
    target = np.zeros((10, 10), bool)
    target[0:2, 0:2] = True      # 4 px, half covered: detected
    target[5:7, 5:8] = True      # 6 px, one pixel covered: missed
    target[9, 9] = True
    pred = np.zeros_like(target)
    pred[0, 0:2] = True
    pred[5, 5] = True
    assert ablations.small_object_hits(pred, target, small_px=50) == (1, 3)
    assert ablations.small_object_hits(pred, target, small_px=5) == (1, 2)  # the 6-px object is not small


def test_calibration_error_by_hand():
    probabilities = np.array([0.1, 0.1, 0.9, 0.9])
    masks = np.array([0, 1, 1, 1], bool)  # bin 0.1: observed 0.5; bin 0.9: observed 1.0
    ece, table = calibration.calibration(probabilities, masks, bins=10)
    assert ece == pytest.approx(0.5 * 0.4 + 0.5 * 0.1)
    assert table.pixels.tolist() == [2, 2]


def test_error_breakdown_attributes_errors():
    mask = np.zeros((1, 32, 32), bool)
    mask[0, 8:24, 8:24] = True
    probability = np.zeros((1, 32, 32), np.float32)
    probability[0, 9:24, 8:24] = 1.0    # misses one boundary row: errors on the boundary
    probability[0, 30, 30] = 1.0        # one isolated false pixel: a small object
    images = np.full((1, 32, 32, 3), 128, np.uint8)
    tile_set = SimpleNamespace(images=images, masks=mask)
    settings = {"low_contrast_percentile": 25, "artifact_distance_px": 5, "glass_gray": 0.95}
    table = failures.error_breakdown(probability >= 0.5, np.array([0]), tile_set, settings, small_px=50)
    shares = table["share of error pixels (%)"]
    assert shares["boundary"] == pytest.approx(100 * 16 / 17) and shares["small objects"] == pytest.approx(100 / 17)
    assert table.loc["boundary", "paper (%)"] == 40
    assert table.loc["(glass: share of all test pixels)", "share of error pixels (%)"] == 0  # gray 0.5 is tissue


def test_low_contrast_is_measured_within_tissue_not_on_glass():
    images = np.full((1, 32, 32, 3), 250, np.uint8)             # glass on the right
    rng = np.random.default_rng(0)
    images[0, :, :16] = rng.integers(60, 200, (32, 16, 3))       # textured tissue on the left
    images[0, 8:16, 4:12] = 120                                   # a flat, low-contrast patch in the tissue
    mask = np.zeros((1, 32, 32), bool)
    probability = np.zeros((1, 32, 32), np.float32)
    probability[0, 9:15, 5:11] = 1.0                             # a false positive in the flat patch
    probability[0, 9:15, 22:28] = 1.0                            # and one on the glass
    settings = {"low_contrast_percentile": 25, "artifact_distance_px": 0, "glass_gray": 0.95}
    table = failures.error_breakdown(probability >= 0.5, np.array([0]), SimpleNamespace(images=images, masks=mask),
                                     settings, small_px=5)
    assert 40 < table.loc["low contrast", "share of error pixels (%)"] <= 50  # the patch (most of it), not the glass
    assert 40 < table.loc["(glass: share of all test pixels)", "share of error pixels (%)"] <= 50  # the right half


def test_overview_reports_the_budget_summed_over_folds_and_averaged_over_seeds():
    def fold_run(steps, seconds, tp):
        per_tile = pd.DataFrame({f"{area}_{k}": [v] for area in ("whole_tile", "annotated_region")
                                 for k, v in (("tp", tp), ("fp", 0), ("fn", 0))})
        return Run(Path("runs/baseline/seed0/fold0"), {}, {}, pd.DataFrame(),
                   {"optimizer_steps": steps, "train_seconds": seconds}, per_tile, pd.DataFrame())
    seeds = [OutOfFold.of([fold_run(10, 100.0, 5), fold_run(12, 110.0, 5)]),
             OutOfFold.of([fold_run(10, 120.0, 5), fold_run(12, 130.0, 5)])]
    row = ablations.overview({ablations.BASELINE: seeds}).loc[ablations.BASELINE]
    assert row["optimizer steps"] == 22 and row["test tiles"] == 2
    assert row["training seconds (seed mean)"] == pytest.approx((210 + 250) / 2)


def test_a_variant_whose_pool_cannot_meet_the_budget_is_not_measured(monkeypatch):
    def short_pool(variant, data_dir):
        if variant["train"]["training_pool"] == "without_test_slides":
            raise ablations.PoolTooSmallError("only 132 training tiles in fold 1 lie on slides without a test image")
    trained = []
    monkeypatch.setattr(ablations, "check_pool", short_pool)
    monkeypatch.setattr(ablations, "train", lambda variant, data_dir, model, seed, force, experiment, fold:
                        trained.append((experiment, seed, fold)))
    monkeypatch.setattr(ablations, "open_run", lambda variant, data_dir, model, seed, experiment: experiment)
    cfg = config.apply_changes(config.load_config("quick"), {"data.folds": 3})
    runs, not_measured = ablations.train_ablations(cfg, None)
    assert set(runs) == set(ablations.ABLATIONS) - {"no_test_slides"}
    assert not_measured == {"no_test_slides": "only 132 training tiles in fold 1 lie on slides without a test image"}
    assert runs[ablations.BASELINE] == ["ablation-baseline"] * cfg["ablations"]["seeds"]
    assert not [run for run in trained if run[0] == "ablation-no_test_slides"]  # not even the folds that would fit
    assert len(trained) == (len(ablations.ABLATIONS) - 1) * cfg["ablations"]["seeds"] * 3


def test_a_protocol_row_without_its_variant_has_no_data_and_says_why(monkeypatch):
    tested = {"leaky_tiles": 0.2, ablations.BASELINE: 0.0}  # per-image Dice of each arm on 20 images
    monkeypatch.setattr(ablations, "measures_over_seeds", lambda found, tile_set, small_px, tiles: pd.DataFrame(
        {"Dice": tested[found[0].name] + np.linspace(0, 0.01, 20)}))
    arm = {name: [SimpleNamespace(name=name, per_tile=pd.DataFrame({"tile_id": range(30)}))] for name in tested}
    cfg = {"train": {"small_object_source_px": 8}, "data": {"tile_size": 32, "input_size": 32}}
    table = ablations.protocol_table(arm, None, cfg, {"no_test_slides": "only 132 tiles"}).reset_index()
    measured, missing = table.iloc[0], table.iloc[1]
    assert measured.ours == "leaky_tiles" and measured.effect == pytest.approx(0.2) and measured.verdict == "supported"
    assert measured["Holm p"] == measured.p          # one measured row: nothing to correct for
    assert missing.verdict == "no data" and np.isnan(missing.effect) and missing.images == 0
    assert missing["not measured"] == "no_test_slides: only 132 tiles"
