"""What the edge channel carries: its values on cell boundaries, cell interiors and background (Gabor notebook)."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd

from ..data.geometry import PIXEL_CLASSES, pixel_classes
from ..data.tiles import TileSet
from ..evaluation.metrics import roc_auc
from . import gabor

BOUNDARY_BAND_PX = 2  # a pixel this close to a cell boundary is a boundary pixel here


def boundary_labels(tile_set: TileSet, index: np.ndarray) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """For each tile: its index, its annotated region, and which pixels of that region are boundary pixels."""
    for i in index:
        keep = np.asarray(tile_set.regions[i], bool)
        yield i, keep, pixel_classes(tile_set.masks[i], BOUNDARY_BAND_PX)[keep] == 0


def wavelength_maps(image: np.ndarray, cfg: dict[str, Any], bank: np.ndarray) -> dict[str, np.ndarray]:
    """Per-image normalised maps: the maximum over the orientations of each wavelength, and over the whole bank."""
    responses = gabor.responses_fft(gabor.to_gray(image, cfg["grayscale"]), bank)
    grouped = responses.reshape(len(cfg["wavelengths"]), cfg["orientations"], *responses.shape[1:])
    per_wavelength = gabor.combine(grouped, cfg["response"], axis=1)
    maps = {f"wavelength {w:g} px": gabor.normalise(m) for w, m in zip(cfg["wavelengths"], per_wavelength)}
    maps["full bank"] = gabor.normalise(gabor.combine(responses, cfg["response"]))
    return maps


def boundary_auc(tile_set: TileSet, index: np.ndarray, cfg: dict[str, Any]) -> pd.DataFrame:
    """ROC AUC of each map for telling boundary pixels from all others, inside the annotated region."""
    bank = gabor.gabor_bank(cfg)
    scores: dict[str, list[np.ndarray]] = {}
    labels = []
    for i, keep, is_boundary in boundary_labels(tile_set, index):
        labels.append(is_boundary)
        for name, values in wavelength_maps(np.asarray(tile_set.images[i]), cfg, bank).items():
            scores.setdefault(name, []).append(values[keep])
    labels = np.concatenate(labels)
    return pd.DataFrame({"ROC AUC (boundary vs rest)": {name: roc_auc(np.concatenate(v), labels)
                                                        for name, v in scores.items()}})


def values_by_class(edges: np.ndarray, masks: np.ndarray, regions: np.ndarray, per_class: int = 20000,
                    seed: int = 0) -> pd.DataFrame:
    """A sample of edge-map values per pixel class (inside the annotated region), for distribution plots."""
    rng = np.random.default_rng(seed)
    values = {name: [] for name in PIXEL_CLASSES}
    for edge, mask, region in zip(edges, masks, regions):
        classes = pixel_classes(mask, BOUNDARY_BAND_PX)
        keep = np.asarray(region, bool)
        for code, name in enumerate(PIXEL_CLASSES):
            values[name].append(np.asarray(edge, np.float32)[keep & (classes == code)])
    frames = []
    for name, parts in values.items():
        pool = np.concatenate(parts)
        sample = rng.choice(pool, min(per_class, len(pool)), replace=False) if len(pool) else pool
        frames.append(pd.DataFrame({"pixel class": name, "edge value": sample}))
    return pd.concat(frames, ignore_index=True)


def map_auc(edges: np.ndarray, tile_set: TileSet, index: np.ndarray) -> float:
    """ROC AUC of precomputed edge maps for boundary pixels, inside the annotated region of the given tiles."""
    labels, scores = [], []
    for i, keep, is_boundary in boundary_labels(tile_set, index):
        labels.append(is_boundary)
        scores.append(np.asarray(edges[i], np.float32)[keep])
    return roc_auc(np.concatenate(scores), np.concatenate(labels))


def describe_auc(auc: pd.Series) -> str:
    """A sentence on what a set of AUCs says, written from the numbers (for the notebook's text)."""
    best, worst = auc.idxmax(), auc.idxmin()
    strongest = max(auc.index, key=lambda name: abs(auc[name] - 0.5))
    direction = ("higher on boundaries than elsewhere" if auc[strongest] > 0.5
                 else "lower on boundaries than elsewhere (it follows brightness: nuclei are dark)")
    return (f"AUC ranges from {auc[worst]:.3f} (*{worst}*) to {auc[best]:.3f} (*{best}*). The map furthest from "
            f"chance is *{strongest}* ({auc[strongest]:.3f}): its values are {direction}. An AUC far from 0.5 in "
            "either direction means the channel carries boundary information a network can use; whether it helps "
            "segmentation is measured in the ablations.")
