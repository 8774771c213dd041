"""Ablation statistics, failure analysis and calibration, by hand."""
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from lib import ablations, config


def test_ablation_configs_change_one_thing_under_the_budget():
    cfg = config.load_config("quick")
    base = ablations.ablation_config(cfg, ablations.BASELINE)
    assert base["train"]["max_train_tiles"] == cfg["ablations"]["max_train_tiles"]
    assert base["train"]["epochs"] == cfg["ablations"]["epochs"]
    drop = ablations.ablation_config(cfg, "drop")
    changed = {(s, k) for s in drop if isinstance(drop[s], dict) for k in drop[s] if drop[s][k] != base[s][k]}
    assert changed == {("model", "input_variant")} and cfg["model"]["input_variant"] == "projection"


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


def test_paired_effect_and_verdicts():
    ours, reference = pd.Series([0.8, 0.7, 0.9, 0.6]), pd.Series([0.6, 0.5, 0.8, 0.5])
    effect = ablations.paired_effect(ours, reference, draws=500)
    assert effect["effect"] == pytest.approx(0.15) and effect["CI low"] > 0 and effect["images"] == 4
    assert ablations.verdict(effect["CI low"], effect["CI high"]) == "supported"
    assert ablations.verdict(-0.2, -0.1) == "not supported" and ablations.verdict(-0.1, 0.1) == "inconclusive"


def test_calibration_error_by_hand():
    probabilities = np.array([0.1, 0.1, 0.9, 0.9])
    masks = np.array([0, 1, 1, 1], bool)  # bin 0.1: observed 0.5; bin 0.9: observed 1.0
    ece, table = ablations.calibration(probabilities, masks, bins=10)
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
    settings = {"low_contrast_percentile": 25, "artifact_distance_px": 5}
    table = ablations.error_breakdown(probability, np.array([0]), tile_set, 0.5, settings, small_px=50)
    shares = table["share of error pixels (%)"]
    assert shares["boundary"] == pytest.approx(100 * 16 / 17) and shares["small objects"] == pytest.approx(100 / 17)
    assert table.loc["boundary", "paper (%)"] == 40
