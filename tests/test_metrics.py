"""Overlap metrics against hand-computed values."""
import numpy as np
import pytest

from lib.metrics import confusion, evaluate, scores


def test_scores_by_hand():
    pred = np.array([[1, 1, 0, 0]], bool)
    target = np.array([[1, 0, 1, 0]], bool)
    counts = confusion(pred, target)
    assert counts == {"tp": 1, "fp": 1, "fn": 1}
    assert scores(**counts) == pytest.approx({"dice": 0.5, "iou": 1 / 3, "precision": 0.5, "recall": 0.5})


def test_empty_tile_conventions():
    assert scores(0, 0, 0)["dice"] == 1.0
    assert scores(0, 5, 0)["dice"] == 0.0


def test_pooled_differs_from_mean_and_region_skips_tiles_outside():
    preds = np.zeros((2, 4, 4), bool)
    targets = np.zeros((2, 4, 4), bool)
    preds[0, :2] = targets[0, :2] = True   # tile 0 perfect (8 px)
    preds[1, 0, 0] = True                  # tile 1: one false positive
    pooled, per_tile = evaluate(preds, targets)
    assert pooled["dice"] == pytest.approx(16 / 17)
    assert per_tile.dice.tolist() == [1.0, 0.0]
    region = np.zeros_like(preds)
    region[0] = True
    pooled, per_tile = evaluate(preds, targets, region)
    assert pooled["dice"] == 1.0 and np.isnan(per_tile.dice[1])


def test_roc_auc_by_hand():
    from lib.metrics import roc_auc
    assert roc_auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])) == pytest.approx(0.75)
    assert roc_auc(np.array([1, 1, 1]), np.array([0, 1, 1])) == pytest.approx(0.5)  # ties
    assert np.isnan(roc_auc(np.array([1, 2]), np.array([1, 1])))


def test_threshold_is_chosen_where_validation_dice_peaks():
    from lib.evaluate import choose_threshold
    masks = np.zeros((2, 4, 4), bool)
    masks[:, :2] = True
    probabilities = np.where(masks, 0.95, 0.7)  # over-confident background: 0.5 marks everything
    threshold, curve = choose_threshold(probabilities, masks)
    assert 0.7 < threshold <= 0.95
    assert curve.val_dice.max() == 1.0 and curve.set_index("threshold").val_dice[0.5] < 1.0
