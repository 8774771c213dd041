"""Tiles, annotated regions and train/val/test splits (SPEC §1)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import cv2
from scipy import ndimage
from skimage.morphology import convex_hull_image

SPLITS = ("train", "val", "test")


def tile_origins(length: int, tile: int, stride: int) -> list[int]:
    """Start offsets along one axis; the last tile is snapped to the edge so the whole image is covered."""
    if tile > length:
        raise ValueError(f"tile size {tile} is larger than the image side {length}")
    starts = list(range(0, length - tile + 1, stride))
    if starts[-1] != length - tile:
        starts.append(length - tile)
    return starts


def tile_grid(height: int, width: int, tile: int, stride: int) -> list[tuple[int, int]]:
    """(y, x) origins of every tile of an image, row by row."""
    return [(y, x) for y in tile_origins(height, tile, stride) for x in tile_origins(width, tile, stride)]


def annotated_region(mask: np.ndarray, dilation: int) -> np.ndarray:
    """Where the annotator looked: the convex hull of all annotated pixels, dilated by `dilation` px.

    UCSB masks outline the nuclei of one region per image only; outside it nuclei are unlabeled.
    """
    if not mask.any():
        return np.zeros_like(mask, dtype=bool)
    hull = convex_hull_image(mask).astype(np.uint8)
    if dilation > 0:  # cv2's dilation is ~100x faster than scipy's for a disk this large
        hull = cv2.dilate(hull, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * dilation + 1,) * 2))
    return hull.astype(bool)


def split_counts(n: int, proportions: list[float]) -> list[int]:
    """Integer counts that sum to `n` (largest remainder), with no split left empty when n >= 3."""
    weights = np.asarray(proportions, dtype=float) / np.sum(proportions)
    raw = weights * n
    counts = np.floor(raw).astype(int)
    for i in np.argsort(-(raw - counts), kind="stable")[: n - counts.sum()]:
        counts[i] += 1
    for i in range(len(counts)):
        if counts[i] == 0 and counts.max() > 1:
            counts[i] += 1
            counts[np.argmax(counts)] -= 1
    return counts.tolist()


def group_split(groups: pd.DataFrame, proportions: list[float], seed: int) -> dict[str, str]:
    """Assign whole groups (source images) to splits, stratified by `label`.

    Groups are ordered by their rank within their class divided by the class size (random order
    inside a class), so every consecutive chunk of the order holds the classes in proportion.
    """
    rng = np.random.default_rng(seed)
    frames = []
    for _, members in groups.groupby("label", sort=True):
        order = rng.permutation(len(members))
        frames.append(members.iloc[order].assign(_key=(np.arange(len(members)) + rng.random()) / len(members)))
    ordered = pd.concat(frames).sort_values(["_key", "label"], kind="stable")
    counts = split_counts(len(ordered), proportions)
    names = np.repeat(SPLITS, counts)
    return dict(zip(ordered["group"], names))


def random_tile_split(n_tiles: int, proportions: list[float], seed: int) -> np.ndarray:
    """LEAKY comparison protocol: tiles shuffled regardless of their source image."""
    names = np.repeat(SPLITS, split_counts(n_tiles, proportions))
    return np.random.default_rng(seed).permutation(names)


def object_areas(mask: np.ndarray) -> np.ndarray:
    """Pixel areas of the connected components (8-connectivity) of a binary mask."""
    labels, count = ndimage.label(mask, structure=np.ones((3, 3)))
    return np.bincount(labels.ravel(), minlength=count + 1)[1:]
