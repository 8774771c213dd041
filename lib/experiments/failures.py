"""Failure analysis: where the errors of a run lie (notebook 07), next to the paper's breakdown.

The run's test errors (false positives and false negatives of its predictions), whole tile, are put in groups; a
pixel can be in several, so the shares need not add to 100%:
- small objects: inside a true or predicted object under `train.small_object_source_px` source pixels;
- boundary: within 3 px of a true cell boundary (`lib.data.geometry`);
- low contrast: tissue whose local grayscale standard deviation (7x7) lies below the
  `ablations.low_contrast_percentile` of the test tissue pixels. Tissue is where the 7x7 mean gray is at most
  `ablations.glass_gray`: blank glass around the tissue has the lowest contrast of all and holds no cell, so a
  percentile over every pixel would select it;
- artifacts: within `artifact_distance_px` of a tissue pixel whose grayscale lies outside the 1st-99th
  percentile of the test tissue pixels (dark debris and folds, bright holes), isolated pixels removed.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import ndimage

from ..data.geometry import boundary_band, small_object_mask
from ..data.tiles import TileSet
from ..report.paper import ERROR_SHARES

BOUNDARY_BAND_PX = 3
WINDOW_PX = 7
GROUPS = ("small objects", "boundary", "low contrast", "artifacts")


def _local_mean_and_std(gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = ndimage.uniform_filter(gray, WINDOW_PX)
    return mean, np.sqrt(np.maximum(ndimage.uniform_filter(gray ** 2, WINDOW_PX) - mean ** 2, 0))


def error_breakdown(preds: np.ndarray, index: np.ndarray, tile_set: TileSet, settings: dict[str, Any],
                    small_px: float) -> pd.DataFrame:
    """Share of error pixels in each group (module docstring), the paper's shares beside them, and the share of
    test pixels that are glass (outside every group's tissue)."""
    gray = np.asarray(tile_set.images[index], np.float32).mean(-1) / 255
    local = [_local_mean_and_std(g) for g in gray]
    tissue = np.stack([mean <= settings["glass_gray"] for mean, _ in local])
    contrast = np.stack([std for _, std in local])
    low_contrast = tissue & (contrast < np.percentile(contrast[tissue], settings["low_contrast_percentile"]))
    dark, bright = np.percentile(gray[tissue], [1, 99])
    counts = dict.fromkeys([*GROUPS, "none of these"], 0)
    total = 0
    for i, pred in enumerate(np.asarray(preds, bool)):
        mask = np.asarray(tile_set.masks[index[i]], bool)
        errors = pred ^ mask
        total += errors.sum()
        artifact = ndimage.binary_opening(tissue[i] & ((gray[i] < dark) | (gray[i] > bright)))
        groups = {"small objects": small_object_mask(mask, small_px) | small_object_mask(pred, small_px),
                  "boundary": boundary_band(mask, BOUNDARY_BAND_PX), "low contrast": low_contrast[i],
                  "artifacts": (ndimage.distance_transform_edt(~artifact) <= settings["artifact_distance_px"]
                                if artifact.any() else np.zeros_like(mask))}
        for name, where in groups.items():
            counts[name] += (errors & where).sum()
        counts["none of these"] += (errors & ~np.any(list(groups.values()), axis=0)).sum()
    table = pd.DataFrame({"share of error pixels (%)": {k: 100 * v / max(total, 1) for k, v in counts.items()},
                          "paper (%)": {**ERROR_SHARES, "none of these": np.nan}})
    table.loc["(glass: share of all test pixels)"] = [100 * (1 - tissue.mean()), np.nan]
    return table
