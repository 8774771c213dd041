"""Tiles, annotated regions and train/val/test splits by group (SPEC §1).

The unit that stays in one split is a *group*: the source image (`data.group_by: image`, the default), or the
tissue-microarray slide (`slide`: the first group of `data.slide_pattern` matched against the image's stem;
UCSB's `ytma49_042403_benign1` is on slide `ytma49_042403`; a stem the pattern does not match is its own slide).

Cross-validation (`data.folds` K > 1): the groups are dealt into K folds, stratified by class; for fold k the test
set is fold k, and validation is drawn by group from the other folds in the proportions of `split_proportions`,
so that every source image is tested exactly once, by a model that never saw it.
"""
from __future__ import annotations

import re

import cv2
import numpy as np
import pandas as pd
from skimage.morphology import convex_hull_image

SPLITS = ("train", "val", "test")
GROUPINGS = ("image", "slide")


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


def slide_of(stem: str, pattern: str) -> str:
    """The slide a source image is on: the first group of `pattern` matched at the start of its stem."""
    found = re.match(pattern, stem)
    return found.group(1) if found else stem


def group_of(stems: pd.Series, data_cfg: dict) -> pd.Series:
    """The split group of each source image (`data.group_by`)."""
    if data_cfg["group_by"] == "image":
        return stems
    if data_cfg["group_by"] == "slide":
        return stems.map(lambda stem: slide_of(stem, data_cfg["slide_pattern"]))
    raise ValueError(f"unknown data.group_by {data_cfg['group_by']!r} ({' or '.join(GROUPINGS)})")


def group_labels(groups: pd.Series, labels: pd.Series) -> pd.DataFrame:
    """One row per group with its class label (`mixed` when its images disagree), for stratification."""
    frame = pd.DataFrame({"group": groups.to_numpy(), "label": labels.to_numpy()}).drop_duplicates()
    merged = frame.groupby("group", sort=True).label.agg(lambda found: found.iloc[0] if found.nunique() == 1 else "mixed")
    return merged.reset_index()


def _stratified_order(groups: pd.DataFrame, seed: int) -> pd.Series:
    """The groups in an order whose every consecutive chunk holds the classes in proportion: by rank within their
    class divided by the class size (random order inside a class)."""
    rng = np.random.default_rng(seed)
    frames = []
    for _, members in groups.groupby("label", sort=True):
        order = rng.permutation(len(members))
        frames.append(members.iloc[order].assign(_key=(np.arange(len(members)) + rng.random()) / len(members)))
    return pd.concat(frames).sort_values(["_key", "label"], kind="stable")["group"]


def group_split(groups: pd.DataFrame, proportions: list[float], seed: int,
                names: tuple[str, ...] = SPLITS) -> dict[str, str]:
    """Assign whole groups (source images or slides) to the named splits in these proportions, stratified by
    `label` (`_stratified_order`)."""
    ordered = _stratified_order(groups, seed)
    return dict(zip(ordered, np.repeat(names, split_counts(len(ordered), proportions[: len(names)]))))


def group_folds(groups: pd.DataFrame, folds: int, seed: int) -> dict[str, int]:
    """Deal whole groups into `folds` folds of near-equal size, stratified by `label`."""
    if folds > len(groups):
        raise ValueError(f"{len(groups)} groups cannot fill {folds} folds")
    ordered = _stratified_order(groups, seed)
    return dict(zip(ordered, np.repeat(np.arange(folds), split_counts(len(ordered), [1] * folds))))


def fold_split(groups: pd.DataFrame, fold_of: dict[str, int], fold: int, proportions: list[float],
               seed: int) -> dict[str, str]:
    """The splits of one fold: its groups are the test set; the others are split into train and validation in
    the proportions of `proportions`' first two entries, stratified by `label`."""
    rest = groups[groups.group.map(fold_of) != fold]
    split = group_split(rest, proportions, seed + fold, names=("train", "val"))
    return {group: ("test" if fold_of[group] == fold else split[group]) for group in groups.group}
