"""Overlap metrics (paper eq. 7-8): counts first, then Dice, IoU, precision and recall with an explicit
reduction, the way every table computes them.

- Counts: true positive, false positive and false negative pixels per tile, optionally only inside an area
  (the annotated region); a tile without a pixel of the area is not evaluated there.
- Reductions: `pooled` (counts summed over all tiles, then the scores), `per_tile`, and `per_group` (counts
  summed per source image, then the scores).
- Undefined is undefined: a score whose denominator is zero is NaN, never 1 or 0. Dice and IoU of a tile with
  neither cells nor predictions, precision without predictions, recall without cells. Means over tiles are
  therefore taken over the tiles with cells (in the area), where Dice, IoU and recall are defined; precision
  there also needs a prediction, and its mean is over the tiles that have one.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from .statistics import ratio_interval

METRICS = ("dice", "iou", "precision", "recall")
COUNTS = ("tp", "fp", "fn")
AREAS = ("whole_tile", "annotated_region")


def ratio(numerator: float | np.ndarray, denominator: float | np.ndarray) -> np.ndarray:
    """numerator / denominator, NaN where the denominator is zero (undefined, never 0 or 1)."""
    numerator, denominator = np.asarray(numerator, float), np.asarray(denominator, float)
    return np.where(denominator > 0, numerator / np.where(denominator > 0, denominator, 1.0), np.nan)


def scores(tp: float | np.ndarray, fp: float | np.ndarray, fn: float | np.ndarray) -> dict[str, float | np.ndarray]:
    """Dice, IoU, precision, recall from counts (scalars or arrays); NaN where a denominator is zero."""
    values = {"dice": ratio(2 * np.asarray(tp), 2 * np.asarray(tp) + fp + fn), "iou": ratio(tp, np.asarray(tp) + fp + fn),
              "precision": ratio(tp, np.asarray(tp) + fp), "recall": ratio(tp, np.asarray(tp) + fn)}
    return {name: (float(value) if np.ndim(value) == 0 else value) for name, value in values.items()}


def count_table(preds: np.ndarray, targets: np.ndarray, within: np.ndarray | None = None) -> pd.DataFrame:
    """Per tile: tp, fp, fn (inside `within` when given) and `evaluated` (the tile has a pixel of the area)."""
    preds, targets = np.asarray(preds, bool), np.asarray(targets, bool)
    evaluated = np.ones(len(preds), bool)
    if within is not None:
        within = np.asarray(within, bool)
        preds, targets = preds & within, targets & within
        evaluated = within.reshape(len(within), -1).any(1)
    axes = tuple(range(1, preds.ndim))
    return pd.DataFrame({"tp": (preds & targets).sum(axes), "fp": (preds & ~targets).sum(axes),
                         "fn": (~preds & targets).sum(axes), "evaluated": evaluated})


def pooled(counts: pd.DataFrame) -> dict[str, float]:
    """The `pooled` reduction: counts summed over every row, then the scores."""
    return scores(*(float(counts[name].sum()) for name in COUNTS))


def per_row(counts: pd.DataFrame) -> pd.DataFrame:
    """The `per_tile` reduction: each row's scores (NaN for rows that were not evaluated)."""
    table = pd.DataFrame(scores(*(counts[name].to_numpy(float) for name in COUNTS)), index=counts.index)
    if "evaluated" in counts:
        table[~counts["evaluated"].to_numpy(bool)] = np.nan
    return table


def per_group(counts: pd.DataFrame, groups: pd.Series | np.ndarray) -> pd.DataFrame:
    """The `per_group` reduction (source images): counts summed per group, then the scores; with the sums."""
    sums = counts[list(COUNTS)].groupby(np.asarray(groups)).sum()
    return sums.join(per_row(sums))


def dice_interval(counts: pd.DataFrame) -> tuple[float, float]:
    """Fieller's 95% interval of the Dice pooled over the rows of `counts` (the units: source images), within [0, 1]."""
    low, high = ratio_interval(2 * counts["tp"], 2 * counts["tp"] + counts["fp"] + counts["fn"])
    return max(low, 0.0), min(high, 1.0)


def mean_over_tiles_with_cells(counts: pd.DataFrame) -> dict[str, float]:
    """Per-tile scores averaged over the evaluated tiles that hold cells (precision: those with a prediction
    too), with the number of such tiles."""
    with_cells = counts[(counts["tp"] + counts["fn"] > 0) & counts.get("evaluated", True)]
    means = per_row(with_cells).mean() if len(with_cells) else pd.Series(np.nan, index=list(METRICS))
    return {**{name: float(means[name]) for name in METRICS}, "tiles": len(with_cells)}


def roc_auc(values: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with tied ranks averaged); labels are booleans."""
    values, labels = np.ravel(values), np.ravel(labels).astype(bool)
    n_pos, n_neg = labels.sum(), (~labels).sum()
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(values)
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
