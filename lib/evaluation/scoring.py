"""Scoring a split: predictions against the ground truth on whole tiles and inside the annotated region, and
the choice of the probability threshold on validation tiles."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..data.tiles import TileSet
from .metrics import AREAS, COUNTS, METRICS, count_table, mean_over_tiles_with_cells, per_row, pooled

THRESHOLD_GRID = tuple(np.round(np.arange(0.05, 1.0, 0.05), 2))


def choose_threshold(probabilities: np.ndarray, masks: np.ndarray,
                     within: np.ndarray | None = None) -> tuple[float, pd.DataFrame]:
    """The probability threshold with the best pooled Dice on these (validation) tiles, inside `within` when
    given, and the whole curve.

    Losses with a large positive weight (Algorithm 1 clamps it at 50) shift probabilities up, so 0.5 is not
    the natural cut; choosing it on validation tiles never looks at the test split."""
    masks = np.asarray(masks, bool)
    within = None if within is None else np.asarray(within, bool)
    curve = pd.DataFrame({"threshold": THRESHOLD_GRID, "val_dice": [
        pooled(count_table(probabilities >= t, masks, within))["dice"] for t in THRESHOLD_GRID]})
    if curve.val_dice.isna().all():
        raise ValueError("the validation tiles hold no cell pixel: no threshold can be chosen on them")
    return float(curve.threshold[curve.val_dice.idxmax()]), curve


def score_masks(preds: np.ndarray, tile_set: TileSet, index: np.ndarray) -> tuple[dict[str, Any], pd.DataFrame]:
    """Binary predictions of some tiles scored per area: pooled scores, means over the tiles with cells, and a
    per-tile table (counts and scores per area; NaN where a score is undefined or the tile lies outside)."""
    masks, regions = np.asarray(tile_set.masks[index], bool), np.asarray(tile_set.regions[index], bool)
    per_tile = tile_set.table.iloc[index][["tile_id", "source", "split", "has_cells"]].reset_index(drop=True)
    summary = {}
    for area in AREAS:
        counts = count_table(preds, masks, regions if area == "annotated_region" else None)
        summary[area] = {"pooled": pooled(counts), "mean_over_tiles_with_cells": mean_over_tiles_with_cells(counts),
                         "tiles_evaluated": int(counts.evaluated.sum())}
        per_tile = per_tile.join(counts[list(COUNTS)].join(per_row(counts)[list(METRICS)]).add_prefix(f"{area}_"))
    return summary, per_tile


def score_split(probabilities: np.ndarray, tile_set: TileSet, index: np.ndarray,
                threshold: float) -> tuple[dict[str, Any], pd.DataFrame]:
    """`score_masks` of the probabilities cut at `threshold`."""
    return score_masks(probabilities >= threshold, tile_set, index)


def metrics_frame(test: dict[str, Any]) -> pd.DataFrame:
    """A run's test scores as a table: rows (area, reduction), columns Dice, IoU, precision, recall."""
    rows = {}
    for area, reductions in test.items():
        rows[(area.replace("_", " "), "pooled over all tiles")] = reductions["pooled"]
        tiles = reductions["mean_over_tiles_with_cells"]
        rows[(area.replace("_", " "), f"mean over the {tiles['tiles']} tiles with cells")] = tiles
    return pd.DataFrame(rows).T[list(METRICS)]
