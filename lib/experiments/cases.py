"""The four qualitative cases of Fig. 3, chosen by rules computed from the data, never by hand.

Per test tile (network input resolution), inside its annotated region (on UCSB nuclei outside it are unlabeled,
so a prediction there is no error; on the synthetic data the region is the whole tile): the share of the tile
the region covers, cells (objects of the ground truth, `lib.data.geometry`), predicted nuclei (the prediction split
by the watershed that `predict` uses, `lib.inference.instances`), density (cells per 1000 px of the
convex hull of their centroids), Dice, IoU, false-positive and false-negative pixels, mean boundary distance
(symmetric mean of the distances between predicted and true boundaries), and a ring score:
1 - std(d) / mean(d), d the distances of the cell centroids to their mean; 1 = all cells on a circle.

Rules, among the tiles whose annotated region covers at least `cases.min_region_share` of the tile and that
hold at least `cases.min_cells` cells, each case a different tile:
  best   highest Dice          worst  lowest Dice
  dense  highest density       ring   highest ring score (the paper's "sparse ring")
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.spatial import ConvexHull, QhullError

from ..data.geometry import centroids
from ..evaluation.boundary import symmetric_distances
from ..evaluation.metrics import count_table, per_row

RULES = {"best": ("Dice", False), "worst": ("Dice", True), "dense": ("density", False), "ring": ("ring score", False)}
RULE_TEXT = {"best": "the highest Dice", "worst": "the lowest Dice", "dense": "the densest cell cluster",
             "ring": "the most ring-like arrangement"}


def ring_score(points: np.ndarray) -> float:
    """1 - std / mean of the points' distances to their centroid (NaN for fewer than 3 points)."""
    if len(points) < 3:
        return float("nan")
    distances = np.linalg.norm(points - points.mean(0), axis=1)
    return float(1 - distances.std() / distances.mean()) if distances.mean() > 0 else float("nan")


def density(points: np.ndarray) -> float:
    """Cells per 1000 px of the convex hull of their centroids (NaN when the hull is degenerate)."""
    try:
        return float(len(points) / ConvexHull(points).volume * 1000) if len(points) >= 3 else float("nan")
    except QhullError:
        return float("nan")


def mean_boundary_distance(pred: np.ndarray, target: np.ndarray, within: np.ndarray) -> float:
    """Mean of the symmetric boundary distances inside the area (NaN when a boundary is missing)."""
    distances = symmetric_distances(pred, target, within)
    return float("nan") if distances is None else float(distances.mean())


def case_table(preds: np.ndarray, masks: np.ndarray, regions: np.ndarray, tile_ids: list[str],
               nuclei: list[np.ndarray]) -> pd.DataFrame:
    """One row per test tile with every number the rules and the captions use (inside the annotated region),
    from the binary predictions; `nuclei`: each tile's predicted nuclei inside its region, labelled as prediction
    labels them (`lib.inference.instances.label_tiles` with `within` the regions), which the captions count."""
    masks, regions, preds = np.asarray(masks, bool), np.asarray(regions, bool), np.asarray(preds, bool)
    counts = count_table(preds, masks, regions)
    scores = per_row(counts)
    rows = []
    for i, tile_id in enumerate(tile_ids):
        points = centroids(masks[i] & regions[i])
        predicted = int(nuclei[i].max())
        rows.append({"tile_id": tile_id, "region share": float(regions[i].mean()), "cells": len(points),
                     "predicted nuclei": predicted,
                     "density": density(points), "ring score": ring_score(points), "Dice": scores.dice[i],
                     "IoU": scores.iou[i], "false positive px": int(counts.fp[i]), "false negative px": int(counts.fn[i]),
                     "mean boundary distance (px)": mean_boundary_distance(preds[i], masks[i], regions[i])})
    return pd.DataFrame(rows)


def choose_cases(table: pd.DataFrame, min_cells: int, min_region_share: float) -> pd.DataFrame:
    """The four cases (rows of `table`, with a `case` and a `why` column), each a distinct tile."""
    eligible = table[(table.cells >= min_cells) & (table["region share"] >= min_region_share)]
    if eligible.empty:
        raise ValueError(f"no test tile has {min_cells} or more cells and an annotated region covering "
                         f"{min_region_share:.0%} of it; lower cases.min_cells or cases.min_region_share")
    population = (f"the {len(eligible)} test tiles with at least {min_cells} cells whose annotated region covers "
                  f"at least {min_region_share:.0%} of the tile")
    chosen, taken = [], set()
    for case, (column, ascending) in RULES.items():
        ranked = eligible.dropna(subset=[column]).sort_values(column, ascending=ascending, kind="stable")
        ranked = ranked[~ranked.tile_id.isin(taken)]
        if ranked.empty:
            continue
        row = ranked.iloc[0]
        taken.add(row.tile_id)
        chosen.append(row.to_dict() | {"case": case, "why": f"{RULE_TEXT[case]} among {population} "
                                                             f"({column} {row[column]:.3f})"})
    return pd.DataFrame(chosen).set_index("case")


def describe(case: str, row: pd.Series, threshold: float) -> str:
    """A caption written from the case's numbers."""
    return (f"**({case})** {row.why}: {int(row.cells)} cells ({int(row['predicted nuclei'])} predicted), density "
            f"{row.density:.2f} per 1000 px, inside the "
            f"annotated region ({row['region share']:.0%} of the tile) at the threshold {threshold:.2f}: Dice "
            f"{row.Dice:.3f}, IoU {row.IoU:.3f}, {int(row['false positive px'])} false-positive and "
            f"{int(row['false negative px'])} false-negative pixels, mean boundary distance "
            f"{row['mean boundary distance (px)']:.2f} px.")
