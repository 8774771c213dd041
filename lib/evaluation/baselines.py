"""A threshold baseline: how far plain intensity gets without learning (notebook 01, Table II's reference row)."""
from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import pandas as pd
from skimage.filters import threshold_otsu

from ..data.tiles import TileSet
from .scoring import metrics_frame, score_masks

OTSU_LABEL = "Otsu threshold (baseline)"


def otsu_predictions(images: np.ndarray) -> np.ndarray:
    """Per-tile Otsu threshold on grayscale; nuclei are darker than stroma, so below the threshold is cell."""
    preds = np.zeros(images.shape[:3], dtype=bool)
    for i, image in enumerate(images):
        gray = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)
        preds[i] = gray < threshold_otsu(gray)
    return preds


def otsu_scores(tiles: TileSet, split: str = "test") -> tuple[dict[str, Any], pd.DataFrame]:
    """The Otsu baseline on one split, scored like a trained model (`score_masks`)."""
    index = tiles.indices(split)
    return score_masks(otsu_predictions(np.asarray(tiles.images[index])), tiles, index)


def otsu_table(tiles: TileSet, split: str = "test") -> pd.DataFrame:
    """Its Dice, IoU, precision and recall per area: pooled, and mean over the tiles with cells."""
    return metrics_frame(otsu_scores(tiles, split)[0])
