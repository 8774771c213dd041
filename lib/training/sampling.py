"""Complexity-based weighted sampling (paper §IV-C-1): hard tiles are drawn more often.

The paper gives no formula; this one is built from mask statistics at the network input size:
    weight = (1 + mean of three percentile ranks among the training tiles with cells:
                  object count, boundary length, 1 / mean object area)
             x 1.5 if the tile holds an object smaller than the small-object size
A tile without cells weighs 1; a tile with cells between 1 and 2, or up to 3 with small objects. The
small-object size is `train.small_object_source_px` source-image pixels (the paper's 50 px at its 512-px input),
converted to the network input (`lib.data.geometry.source_area_to_input`). Objects and boundaries are those of
`lib.data.geometry`.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from ..data.geometry import mask_boundary, object_areas


def mask_statistics(masks: np.ndarray) -> pd.DataFrame:
    """Per mask: object count, boundary length (px), mean and smallest object area (px)."""
    rows = []
    for mask in masks:
        mask = np.asarray(mask, bool)
        areas = object_areas(mask)
        rows.append({"objects": len(areas), "boundary_px": int(mask_boundary(mask).sum()),
                     "mean_area_px": float(areas.mean()) if len(areas) else 0.0,
                     "smallest_area_px": int(areas.min()) if len(areas) else 0})
    return pd.DataFrame(rows)


def complexity_weights(masks: np.ndarray, small_object_px: float, small_object_weight: float) -> pd.DataFrame:
    """The statistics, each complexity component and the sampling weight of every tile."""
    table = mask_statistics(masks)
    positive = table["objects"] > 0
    components = pd.DataFrame(0.0, index=table.index, columns=["rank_objects", "rank_boundary", "rank_smallness"])
    if positive.any():
        part = table[positive]
        for column, values in (("rank_objects", part["objects"]), ("rank_boundary", part["boundary_px"]),
                               ("rank_smallness", -part["mean_area_px"])):
            components.loc[positive, column] = rankdata(values) / len(part)
    table = pd.concat([table, components], axis=1)
    table["has_small_object"] = positive & (table["smallest_area_px"] < small_object_px)
    table["weight"] = np.where(positive, 1 + components.mean(axis=1), 1.0)
    table.loc[table["has_small_object"], "weight"] *= small_object_weight
    return table
