"""Boundary metrics per tile: the 95th-percentile Hausdorff distance (HD95) and the boundary F1 score.

Boundaries are the mask pixels with a 4-neighbour outside the mask. Distances are in pixels at the network
input size. Empty-mask rules (a tile without cells is common here):
- neither mask has a pixel: HD95 0 and boundary F1 1 (nothing to find, nothing found);
- exactly one is empty: HD95 is undefined (NaN; tables count such tiles separately) and boundary F1 is 0.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import ndimage


def boundary(mask: np.ndarray) -> np.ndarray:
    mask = np.asarray(mask, bool)
    return mask & ~ndimage.binary_erosion(mask, border_value=1)


def _distances_to(target_boundary: np.ndarray, from_boundary: np.ndarray) -> np.ndarray:
    """Distance from every pixel of `from_boundary` to the nearest pixel of `target_boundary`."""
    return ndimage.distance_transform_edt(~target_boundary)[from_boundary]


def symmetric_distances(pred: np.ndarray, target: np.ndarray) -> np.ndarray | None:
    """Distances from each boundary to the other, both directions pooled; None when either mask is empty."""
    p, t = boundary(pred), boundary(target)
    if not p.any() or not t.any():
        return None
    return np.concatenate([_distances_to(t, p), _distances_to(p, t)])


def hd95(pred: np.ndarray, target: np.ndarray) -> float:
    """95th percentile of the symmetric boundary distances (both directions pooled)."""
    if not np.any(pred) and not np.any(target):
        return 0.0
    distances = symmetric_distances(pred, target)
    return float("nan") if distances is None else float(np.percentile(distances, 95))


def boundary_f1(pred: np.ndarray, target: np.ndarray, tolerance: float = 2.0) -> float:
    """F1 of boundary pixels matched within `tolerance` px (precision: predicted boundary near the true one)."""
    p, t = boundary(pred), boundary(target)
    if not p.any() and not t.any():
        return 1.0
    if not p.any() or not t.any():
        return 0.0
    precision = float((_distances_to(t, p) <= tolerance).mean())
    recall = float((_distances_to(p, t) <= tolerance).mean())
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def boundary_table(preds: np.ndarray, targets: np.ndarray, within: np.ndarray | None = None,
                   tolerance: float = 2.0) -> pd.DataFrame:
    """Per tile: HD95 and boundary F1 (optionally only inside `within`, e.g. the annotated region)."""
    rows = []
    for i, (pred, target) in enumerate(zip(preds, targets)):
        pred, target = np.asarray(pred, bool), np.asarray(target, bool)
        if within is not None:
            pred, target = pred & within[i], target & within[i]
        rows.append({"hd95": hd95(pred, target), "boundary_f1": boundary_f1(pred, target, tolerance)})
    return pd.DataFrame(rows)
