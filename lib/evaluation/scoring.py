"""Scoring a split: predictions against the ground truth on whole tiles and inside the annotated region, and
what is chosen on validation tiles: the probability threshold, and the watershed's settings that split nuclei."""
from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from ..data.tiles import TileSet
from ..inference.instances import WatershedRelief, nuclei_relief, split_relief
from ..progress import progress
from .instances import instance_counts, pooled_instance_scores
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


def pooled_relief_scores(reliefs: Iterable[WatershedRelief], truth: np.ndarray, within: np.ndarray | None,
                         splits: list[tuple[float, float]], desc: str | None = None) -> list[dict[str, float]]:
    """Per watershed split of `splits` (minimum marker distance, minimum area; px of these maps), the pooled instance
    scores of the nuclei each tile's relief splits into, against `truth`, inside `within` when given; each relief is
    made once for all the splits. `desc`: a progress bar over the tiles."""
    counts, tiles = [[] for _ in splits], zip(reliefs, truth, [None] * len(truth) if within is None else within,
                                               strict=True)
    for flooded, t, w in tiles if desc is None else progress(tiles, desc=desc, total=len(truth), unit="tile"):
        for split_counts, (distance, area) in zip(counts, splits, strict=True):
            split_counts.append(instance_counts(t, split_relief(flooded, distance, area), w))
    return [pooled_instance_scores(pd.DataFrame(split_counts)) for split_counts in counts]


def pooled_nuclei_scores(probabilities: np.ndarray, threshold: float, truth: np.ndarray, within: np.ndarray | None,
                         splits: list[tuple[float, float]], core_share: float, centres: np.ndarray | None = None,
                         desc: str | None = None) -> list[dict[str, float]]:
    """`pooled_relief_scores` of the nuclei of `probabilities` cut at `threshold` (markers from the cores at
    `core_share`, or from the predicted `centres` when given)."""
    reliefs = (nuclei_relief(p, threshold, core_share, c)
               for p, c in zip(probabilities, [None] * len(probabilities) if centres is None else centres, strict=True))
    return pooled_relief_scores(reliefs, truth, within, splits, desc)


def choose_split_settings(probabilities: np.ndarray, threshold: float, truth: np.ndarray, within: np.ndarray | None,
                          distances_px: tuple[float, ...], areas_px: tuple[float, ...],
                          core_shares: tuple[float, ...] = (1.0,), centres: np.ndarray | None = None,
                          ) -> tuple[dict[str, float], pd.DataFrame]:
    """The watershed's minimum marker distance, minimum area (px of these maps) and core share with the best
    pooled AJI of the nuclei of `probabilities` cut at `threshold` (markers from the predicted `centres` when
    given) against the true nuclei of these (validation) tiles, inside `within` when given, and the whole grid.
    Like the threshold, chosen on validation tiles, never on the test split; ties go to the first setting of the grid."""
    splits = list(itertools.product(distances_px, areas_px))
    scores = {share: dict(zip(splits, pooled_nuclei_scores(
        probabilities, threshold, truth, within, splits, share, centres,
        f"{len(splits)} watershed settings on validation, core share {share}"), strict=True)) for share in core_shares}
    grid = pd.DataFrame([{"min_distance_px": distance, "min_area_px": area, "core_share": share,
                          **scores[share][distance, area]}
                         for distance, area, share in itertools.product(distances_px, areas_px, core_shares)])
    if grid.aji.isna().all():
        raise ValueError("the validation tiles hold no true nucleus: no watershed setting can be chosen on them")
    best = grid.loc[grid.aji.idxmax()]
    return {key: float(best[key]) for key in ("min_distance_px", "min_area_px", "core_share")}, grid


def choose_nuclei_cut(probabilities: np.ndarray, thresholds: tuple[float, ...], distances_px: tuple[float, ...],
                      truth: np.ndarray, within: np.ndarray | None, settings: dict[str, float],
                      centres: np.ndarray | None = None) -> tuple[float, float, pd.DataFrame]:
    """The threshold and the watershed's minimum marker distance (px of these maps), among `thresholds` x
    `distances_px`, whose nuclei (the watershed at `settings` otherwise; markers from the predicted `centres` when
    given) have the best pooled AJI against the true nuclei of these (validation) tiles, inside `within` when given,
    and the whole grid.
    A run's own threshold is chosen for pixel Dice at the network input; nuclei labelled at another scale (predict
    labels at the image's pixels) may want another cut, and the contact between two nuclei, blurred there, another
    marker distance. Ties go to the first pair of the grid (thresholds outer)."""
    grid = pd.DataFrame([{"threshold": threshold, "min_distance_px": distance, **scores}
                         for threshold in thresholds
                         for distance, scores in zip(distances_px, pooled_nuclei_scores(
                             probabilities, threshold, truth, within,
                             [(distance, settings["min_area_px"]) for distance in distances_px], settings["core_share"],
                             centres), strict=True)])
    if grid.aji.isna().all():
        raise ValueError("the validation tiles hold no true nucleus: no threshold can be chosen on them")
    best = grid.loc[grid.aji.idxmax()]
    return float(best.threshold), float(best.min_distance_px), grid
