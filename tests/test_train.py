"""Training runs: results layout, resume gives the same numbers, finished runs are kept, selection rules."""
import functools
import json
import shutil

import numpy as np
import pandas as pd
import pytest

from lib import fitting, predict, tiles, train


@pytest.fixture
def tiny_run_config(tiny_config, tmp_path, monkeypatch):
    """Smoke settings on the tiny dataset (64-px tiles at 32 px), prepared tiles kept in tmp_path."""
    monkeypatch.setattr(tiles, "prepare", functools.partial(tiles.prepare, root=tmp_path / "prepared"))
    tiny_config["train"].update(epochs=3, max_train_tiles=None, max_eval_tiles=None)
    return tiny_config


def test_ema_and_outlier_rules():
    assert fitting.ema_update(None, 0.5, 0.9) == 0.5
    assert fitting.ema_update(0.5, 1.0, 0.9) == pytest.approx(0.55)
    assert not fitting.is_outlier([0.5, 0.52], 0.9, 5, 3.5)            # fewer than 3 epochs: never
    assert fitting.is_outlier([0.50, 0.51, 0.52, 0.51], 0.90, 5, 3.5)  # a jump far outside the recent spread
    assert not fitting.is_outlier([0.50, 0.55, 0.45, 0.52], 0.56, 5, 3.5)


@pytest.mark.slow
def test_run_layout_resume_and_no_overwrite(tiny_dataset, tiny_run_config, tmp_path):
    root = tmp_path / "results"
    whole = train.train(tiny_run_config, tiny_dataset, seed=0, root=root / "a", progress=False)
    files = {p.name for p in whole.iterdir()}
    assert {"config.yaml", "versions.json", "history.csv", "sampling_weights.csv", "best.pt", "metrics.json",
            "per_image.csv", "test_probabilities.npy"} <= files and "last.pt" not in files
    history = pd.read_csv(whole / "history.csv")
    assert history.columns[:8].tolist() == ["epoch", "train_loss", "val_loss", "val_dice", "val_iou",
                                            "val_precision", "val_recall", "ema_dice"]
    metrics = json.loads((whole / "metrics.json").read_text())
    assert set(metrics["test"]) == {"whole_tile", "annotated_region"} and "test_without_tta" in metrics
    assert json.loads((whole / "versions.json").read_text())["encoder_weights"].startswith("ImageNet")

    interrupted = train.train(tiny_run_config, tiny_dataset, seed=0, root=root / "b", stop_after_epochs=2,
                              progress=False)
    assert (interrupted / "last.pt").is_file() and not (interrupted / "metrics.json").exists()
    assert len(pd.read_csv(interrupted / "history.csv")) == 2
    resumed = train.train(tiny_run_config, tiny_dataset, seed=0, root=root / "b", progress=False)
    resumed_history = pd.read_csv(resumed / "history.csv")
    pd.testing.assert_frame_equal(resumed_history.drop(columns="seconds"), history.drop(columns="seconds"))
    assert json.loads((resumed / "metrics.json").read_text())["test"] == metrics["test"]
    assert np.array_equal(np.load(resumed / "test_probabilities.npy"), np.load(whole / "test_probabilities.npy"))

    stamp = (whole / "metrics.json").stat().st_mtime_ns
    assert train.train(tiny_run_config, tiny_dataset, seed=0, root=root / "a", progress=False) == whole
    assert (whole / "metrics.json").stat().st_mtime_ns == stamp  # finished: loaded, not retrained

    other_seed = train.train(tiny_run_config, tiny_dataset, seed=1, root=root / "a", progress=False)
    assert not pd.read_csv(other_seed / "history.csv").train_loss.equals(history.train_loss)

    out = tmp_path / "predicted"
    predict.main(["--run", str(whole), "--input", str(tiny_dataset / "images"), "--output", str(out), "--tta"])
    assert len(list(out.glob("*_probability.png"))) == 10 and len(list(out.glob("*_overlay.png"))) == 10


def test_a_run_of_another_config_is_neither_mixed_nor_silently_reused(tiny_dataset, tiny_run_config, tmp_path):
    run = train.train(tiny_run_config, tiny_dataset, seed=0, root=tmp_path, stop_after_epochs=1, progress=False)
    tiny_run_config["train"]["lr_max"] = 1e-3
    with pytest.raises(RuntimeError, match=r"unfinished run of another config \(changed: train.lr_max\); pass --force"):
        train.train(tiny_run_config, tiny_dataset, seed=0, root=tmp_path, progress=False)
    forced = train.train(tiny_run_config, tiny_dataset, seed=0, root=tmp_path, force=True, stop_after_epochs=1,
                         progress=False)
    assert forced == run and len(pd.read_csv(run / "history.csv")) == 1
    assert train.train(tiny_run_config, tiny_dataset, seed=0, root=tmp_path, progress=False) == run  # finished
    tiny_run_config["train"]["epochs"] += 1
    with pytest.raises(RuntimeError, match=r"a finished run of another config \(changed: train.epochs\)"):
        train.train(tiny_run_config, tiny_dataset, seed=0, root=tmp_path, progress=False)
    tiny_run_config["train"]["epochs"] -= 1
    tiny_run_config["stability"]["seeds"] += 1                 # notebook 05's settings do not touch this run
    assert train.train(tiny_run_config, tiny_dataset, seed=0, root=tmp_path, progress=False) == run
    moved = tmp_path / "moved" / tiny_dataset.name                 # the same dataset name in another folder
    shutil.copytree(tiny_dataset, moved)
    with pytest.raises(RuntimeError, match=r"a finished run of another config \(changed: data_dir\)"):
        train.train(tiny_run_config, moved, seed=0, root=tmp_path, progress=False)


def test_non_finite_batches_are_skipped_and_counted():
    import torch
    from lib import config
    train_cfg = dict(config.load_config("smoke")["train"], accumulation_steps=1)
    model = torch.nn.Conv2d(4, 1, 1)
    x = torch.randn(3, 2, 4, 8, 8)
    x[1, 0, 0, 0, 0] = float("nan")  # the second batch poisons its loss
    loader = [(x[i], torch.zeros(2, 1, 8, 8)) for i in range(3)]
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    losses, skipped = fitting.train_one_epoch(model, loader, optimizer, scheduler, scaler, train_cfg,
                                            torch.device("cpu"))
    assert skipped == 1 and len(losses) == 2
    assert all(torch.isfinite(p).all() for p in model.parameters())
