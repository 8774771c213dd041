"""The four qualitative cases of Fig. 3, chosen by rules computed from the data, never by hand.

Per test tile (network input resolution): cells (connected components of the ground truth), density (cells per
1000 px of the convex hull of their centroids), Dice, IoU, false-positive and false-negative pixels, mean
boundary distance (symmetric mean of the distances between predicted and true boundaries), and a ring score:
1 - std(d) / mean(d), d the distances of the cell centroids to their mean; 1 = all cells on a circle.

Rules, among tiles with at least `min_cells` cells (notebook 06: 8), each case a different tile:
  best   highest Dice          worst  lowest Dice
  dense  highest density       ring   highest ring score (the paper's "sparse ring")
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import ndimage
from scipy.spatial import ConvexHull, QhullError

from .boundary import symmetric_distances
from .metrics import confusion, scores

RULES = {"best": ("Dice", False), "worst": ("Dice", True), "dense": ("density", False), "ring": ("ring score", False)}
RULE_TEXT = {"best": "the highest Dice", "worst": "the lowest Dice", "dense": "the densest cell cluster",
             "ring": "the most ring-like arrangement"}


def centroids(mask: np.ndarray) -> np.ndarray:
    labels, count = ndimage.label(mask)
    return np.array(ndimage.center_of_mass(mask, labels, range(1, count + 1))).reshape(-1, 2)


def ring_score(points: np.ndarray) -> float:
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


def mean_boundary_distance(pred: np.ndarray, target: np.ndarray) -> float:
    distances = symmetric_distances(pred, target)
    return float("nan") if distances is None else float(distances.mean())


def case_table(probabilities: np.ndarray, masks: np.ndarray, tile_ids, threshold: float) -> pd.DataFrame:
    """One row per test tile with every number the rules and the captions use."""
    rows = []
    for tile_id, probability, mask in zip(tile_ids, probabilities, masks):
        mask, pred = np.asarray(mask, bool), probability >= threshold
        points = centroids(mask)
        counts = confusion(pred, mask)
        result = scores(**counts)
        rows.append({"tile_id": tile_id, "cells": len(points), "density": density(points),
                     "ring score": ring_score(points), "Dice": result["dice"], "IoU": result["iou"],
                     "false positive px": counts["fp"], "false negative px": counts["fn"],
                     "mean boundary distance (px)": mean_boundary_distance(pred, mask)})
    return pd.DataFrame(rows)


def choose_cases(table: pd.DataFrame, min_cells: int) -> pd.DataFrame:
    """The four cases (rows of `table`, with a `case` and a `why` column), each a distinct tile."""
    eligible = table[table.cells >= min_cells]
    if eligible.empty:
        raise ValueError(f"no test tile has {min_cells} or more cells; lower min_cells")
    chosen, taken = [], set()
    for case, (column, ascending) in RULES.items():
        ranked = eligible.dropna(subset=[column]).sort_values(column, ascending=ascending, kind="stable")
        ranked = ranked[~ranked.tile_id.isin(taken)]
        if ranked.empty:
            continue
        row = ranked.iloc[0]
        taken.add(row.tile_id)
        chosen.append(row.to_dict() | {"case": case, "why": f"{RULE_TEXT[case]} among the {len(eligible)} test "
                                       f"tiles with at least {min_cells} cells ({column} {row[column]:.3f})"})
    return pd.DataFrame(chosen).set_index("case")


def describe(case: str, row: pd.Series) -> str:
    """A caption written from the case's numbers."""
    return (f"**({case})** {row.why}: {int(row.cells)} cells, density {row.density:.2f} per 1000 px, Dice "
            f"{row.Dice:.3f}, IoU {row.IoU:.3f}, {int(row['false positive px'])} false-positive and "
            f"{int(row['false negative px'])} false-negative pixels, mean boundary distance "
            f"{row['mean boundary distance (px)']:.2f} px.")
