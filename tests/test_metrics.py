"""Overlap metrics: counts, scores with explicit reductions, undefined cases, the threshold choice."""
import numpy as np
import pandas as pd
import pytest

from lib.evaluation.metrics import count_table, mean_over_tiles_with_cells, per_group, per_row, pooled, roc_auc, scores
from lib.evaluation.scoring import choose_threshold


def test_scores_by_hand():
    counts = count_table(np.array([[[1, 1, 0, 0]]], bool), np.array([[[1, 0, 1, 0]]], bool))
    assert counts[["tp", "fp", "fn"]].iloc[0].tolist() == [1, 1, 1]
    assert pooled(counts) == pytest.approx({"dice": 0.5, "iou": 1 / 3, "precision": 0.5, "recall": 0.5})


def test_undefined_is_nan_never_one():
    empty = scores(0, 0, 0)
    assert all(np.isnan(value) for value in empty.values())       # no cell, no prediction: nothing to score
    false_alarm = scores(0, 5, 0)
    assert false_alarm["dice"] == 0.0 and false_alarm["precision"] == 0.0 and np.isnan(false_alarm["recall"])
    missed = scores(0, 0, 5)
    assert missed["dice"] == 0.0 and missed["recall"] == 0.0 and np.isnan(missed["precision"])


def test_reductions_pooled_per_tile_per_image_and_mean_over_tiles_with_cells():
    preds = np.zeros((3, 4, 4), bool)
    targets = np.zeros((3, 4, 4), bool)
    preds[0, :2] = targets[0, :2] = True   # tile 0 perfect (8 px)
    preds[1, 0, 0] = True                  # tile 1: no cell, one false positive
    targets[2, 0, :2] = True               # tile 2: two cell pixels missed
    counts = count_table(preds, targets)
    assert pooled(counts)["dice"] == pytest.approx(16 / 19)
    tiles = per_row(counts)
    assert tiles.dice.tolist() == [1.0, 0.0, 0.0] and np.isnan(tiles.recall[1]) and np.isnan(tiles.precision[2])
    images = per_group(counts, ["a", "a", "b"])
    assert images.loc["a", "dice"] == pytest.approx(16 / 17) and images.loc["b", "dice"] == 0.0
    means = mean_over_tiles_with_cells(counts)
    assert means["tiles"] == 2 and means["dice"] == 0.5 and means["precision"] == 1.0  # tile 2 predicts nothing


def test_an_area_leaves_tiles_outside_it_unevaluated():
    preds = np.zeros((2, 4, 4), bool)
    targets = np.zeros((2, 4, 4), bool)
    preds[0, :2] = targets[0, :2] = True
    preds[1, 0, 0] = True
    region = np.zeros_like(preds)
    region[0] = True
    counts = count_table(preds, targets, region)
    assert counts.evaluated.tolist() == [True, False] and pooled(counts)["dice"] == 1.0
    assert np.isnan(per_row(counts).dice[1])


def test_roc_auc_by_hand():
    assert roc_auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])) == pytest.approx(0.75)
    assert roc_auc(np.array([1, 1, 1]), np.array([0, 1, 1])) == pytest.approx(0.5)  # ties
    assert np.isnan(roc_auc(np.array([1, 2]), np.array([1, 1])))


def test_threshold_is_chosen_where_validation_dice_peaks():
    masks = np.zeros((2, 4, 4), bool)
    masks[:, :2] = True
    probabilities = np.where(masks, 0.95, 0.7)  # over-confident background: 0.5 marks everything
    threshold, curve = choose_threshold(probabilities, masks)
    assert 0.7 < threshold <= 0.95
    assert curve.val_dice.max() == 1.0 and curve.set_index("threshold").val_dice[0.5] < 1.0
    with pytest.raises(ValueError, match="hold no cell pixel"):
        choose_threshold(np.zeros((1, 4, 4)), np.zeros((1, 4, 4), bool))
    assert isinstance(curve, pd.DataFrame)
