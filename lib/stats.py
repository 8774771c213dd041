"""Dataset statistics: the paper's Table I for any prepared tile set, and a threshold baseline."""
from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
from skimage.filters import threshold_otsu

from .metrics import evaluate
from .tiles import TileSet
from .tiling import SPLITS

# Table I as printed in the paper (SPEC §1); shown only in columns labelled "(paper)".
PAPER_TABLE1 = pd.DataFrame(
    {"train": [599, 240, 359, 4.4, 1.76], "val": [130, 52, 78, 4.3, 1.72], "test": [100, 40, 60, 4.5, 1.80]},
    index=["images", "with cells", "without cells", "avg cell size (% of a positive tile)",
           "cell pixels (% of all pixels)"])


def table1(tiles: TileSet) -> pd.DataFrame:
    """Table I rows for each split of the prepared tiles (statistics at tile resolution)."""
    columns = {}
    for split in SPLITS:
        part = tiles.table[tiles.table["split"] == split]
        positive = part[part["has_cells"]]
        share = positive["cell_pixels"] / positive["tile_pixels"]
        columns[split] = [len(part), len(positive), len(part) - len(positive),
                          100 * share.mean() if len(positive) else 0.0,
                          100 * part["cell_pixels"].sum() / part["tile_pixels"].sum()]
    return pd.DataFrame(columns, index=PAPER_TABLE1.index)


def table1_with_paper(tiles: TileSet) -> pd.DataFrame:
    """Measured Table I next to the paper's, with the relative difference in percent."""
    ours, paper = table1(tiles), PAPER_TABLE1
    frame = pd.DataFrame(index=ours.index)
    for split in SPLITS:
        frame[f"{split}"] = ours[split]
        frame[f"{split} (paper)"] = paper[split]
        frame[f"{split} diff %"] = 100 * (ours[split] - paper[split]) / paper[split]
    return frame


def otsu_predictions(images: np.ndarray) -> np.ndarray:
    """Per-tile Otsu threshold on grayscale; nuclei are darker than stroma, so below the threshold is cell."""
    preds = np.zeros(images.shape[:3], dtype=bool)
    for i, image in enumerate(images):
        gray = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)
        preds[i] = gray < threshold_otsu(gray)
    return preds


def otsu_baseline(tiles: TileSet, split: str = "test") -> pd.DataFrame:
    """Dice/IoU/precision/recall of the Otsu baseline on one split: pooled, and mean over tiles."""
    index = tiles.indices(split)
    preds, targets = otsu_predictions(tiles.images[index]), np.asarray(tiles.masks[index])
    rows = {}
    for area, within in (("whole tile", None), ("annotated region", np.asarray(tiles.regions[index]))):
        pooled, per_tile = evaluate(preds, targets, within)
        rows[f"{area}, pooled"] = pooled
        rows[f"{area}, mean over tiles"] = per_tile[["dice", "iou", "precision", "recall"]].mean().to_dict()
    return pd.DataFrame(rows).T


def object_size_summary(tiles: TileSet) -> pd.DataFrame:
    """Connected-component areas per split (px at tile resolution): count and quantiles."""
    return tiles.objects.groupby("split")["area_px"].describe(percentiles=[0.1, 0.5, 0.9]).reindex(SPLITS)
