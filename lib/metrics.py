"""Overlap metrics (paper eq. 7-8): Dice, IoU, precision, recall, per tile and pooled over a split."""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import rankdata


def confusion(pred: np.ndarray, target: np.ndarray, within: np.ndarray | None = None) -> dict[str, int]:
    """True/false positive and false negative pixel counts, optionally only where `within` is true."""
    pred, target = pred.astype(bool), target.astype(bool)
    if within is not None:
        pred, target = pred & within.astype(bool), target & within.astype(bool)
    return {"tp": int((pred & target).sum()), "fp": int((pred & ~target).sum()), "fn": int((~pred & target).sum())}


def scores(tp: float, fp: float, fn: float) -> dict[str, float]:
    """Dice, IoU, precision and recall from counts. A tile with no target and no prediction scores 1."""
    def ratio(num: float, den: float) -> float:
        return 1.0 if den == 0 else num / den
    return {"dice": ratio(2 * tp, 2 * tp + fp + fn), "iou": ratio(tp, tp + fp + fn),
            "precision": ratio(tp, tp + fp), "recall": ratio(tp, tp + fn)}


def evaluate(preds: np.ndarray, targets: np.ndarray, within: np.ndarray | None = None) -> tuple[dict, pd.DataFrame]:
    """Pooled scores over all tiles (counts summed first) and a per-tile table.

    With `within`, tiles that have no pixel inside it get NaN scores (they are not evaluated)."""
    rows = [confusion(p, t, None if within is None else within[i]) for i, (p, t) in enumerate(zip(preds, targets))]
    per_tile = pd.DataFrame([{**row, **scores(**row)} for row in rows])
    if within is not None:
        outside = ~within.reshape(len(within), -1).any(1)
        per_tile.loc[outside, ["dice", "iou", "precision", "recall"]] = np.nan
    pooled = scores(*(per_tile[k].sum() for k in ("tp", "fp", "fn")))
    return pooled, per_tile


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with tied ranks averaged); labels are booleans."""
    scores, labels = np.ravel(scores), np.ravel(labels).astype(bool)
    n_pos, n_neg = labels.sum(), (~labels).sum()
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
