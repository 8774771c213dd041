"""Boundary metrics per tile: the 95th-percentile Hausdorff distance (HD95) and the boundary F1 score.

Boundaries are those of `lib.data.geometry` (mask pixels with a 4-neighbour outside the mask; the tile edge is
not a boundary), taken on the whole masks; inside an area (the annotated region) only the boundary pixels that
lie in it count. Distances are in pixels at the network input size.

Population and undefined cases (a boundary metric needs a true boundary):
- a tile is measured only where its true boundary has a pixel (in the area): tiles without cells, and on UCSB
  the tiles outside the annotated region, are not part of the population;
- boundary F1 = 2PR / (P + R), P the share of predicted boundary pixels within `tolerance` px of the true
  boundary and R the share of true boundary pixels within `tolerance` of the predicted one; a tile with cells
  and no predicted boundary has R = 0 and F1 = 0;
- HD95 (the 95th percentile of both directions' distances pooled) is undefined (NaN) without a predicted
  boundary. A comparison of models averages HD95 over the tiles where every model has one
  (`lib.experiments.ladder`); tables say how many tiles each mean covers.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import ndimage

from ..data.geometry import mask_boundary


def _distances_to(target_boundary: np.ndarray, from_boundary: np.ndarray) -> np.ndarray:
    """Distance from every pixel of `from_boundary` to the nearest pixel of `target_boundary`."""
    return ndimage.distance_transform_edt(~target_boundary)[from_boundary]


def _edges(pred: np.ndarray, target: np.ndarray, within: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    p, t = mask_boundary(pred), mask_boundary(target)
    if within is not None:
        p, t = p & within, t & within
    return p, t


def symmetric_distances(pred: np.ndarray, target: np.ndarray, within: np.ndarray | None = None) -> np.ndarray | None:
    """Distances from each boundary to the other, both directions pooled; None when either has no pixel."""
    p, t = _edges(pred, target, within)
    if not p.any() or not t.any():
        return None
    return np.concatenate([_distances_to(t, p), _distances_to(p, t)])


def hd95(pred: np.ndarray, target: np.ndarray, within: np.ndarray | None = None) -> float:
    """95th percentile of the symmetric boundary distances; NaN without a true or a predicted boundary."""
    distances = symmetric_distances(pred, target, within)
    return float("nan") if distances is None else float(np.percentile(distances, 95))


def boundary_f1(pred: np.ndarray, target: np.ndarray, tolerance: float = 2.0, within: np.ndarray | None = None) -> float:
    """F1 of boundary pixels matched within `tolerance` px; NaN without a true boundary, 0 without a predicted one."""
    p, t = _edges(pred, target, within)
    if not t.any():
        return float("nan")
    if not p.any():
        return 0.0
    precision = float((_distances_to(t, p) <= tolerance).mean())
    recall = float((_distances_to(p, t) <= tolerance).mean())
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def boundary_table(preds: np.ndarray, targets: np.ndarray, within: np.ndarray | None = None,
                   tolerance: float = 2.0) -> pd.DataFrame:
    """Per tile: `measured` (the tile has a true boundary in the area), HD95 and boundary F1 (NaN elsewhere)."""
    rows = []
    for i, (pred, target) in enumerate(zip(preds, targets, strict=True)):
        area = None if within is None else np.asarray(within[i], bool)
        pred, target = np.asarray(pred, bool), np.asarray(target, bool)
        f1 = boundary_f1(pred, target, tolerance, area)
        rows.append({"measured": not np.isnan(f1), "hd95": hd95(pred, target, area), "boundary_f1": f1})
    return pd.DataFrame(rows, columns=["measured", "hd95", "boundary_f1"])
