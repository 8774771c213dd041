"""Training augmentation (paper §III-H), with the edge channel (test-time augmentation: lib.inference.tta).

The Gabor edge map is cached per tile, not recomputed. Geometric transforms (flips, 90-degree rotations,
elastic deformation, the zoom of `train.scale_augmentation`) move the RGB channels, the edge channel and the mask
together: the bank holds every orientation t with 180 - t and t + 90, so the map of a flipped or rotated tile is
the flipped or rotated map (tests/test_gabor.py checks this); a deformed or zoomed map is that of the deformed or
zoomed tile only approximately (the bank's wavelengths are fixed in input px). Brightness/contrast changes touch
only RGB: the edge map is normalised per tile, which makes it nearly blind to them.
"""
from __future__ import annotations

from typing import Any

import albumentations as A
import cv2
import numpy as np


def geometric_transform(train_cfg: dict[str, Any], seed: int, patch_scale: list[float] | None = None,
                        size: int = 0) -> A.Compose:
    """Flips (p 0.5), 90-degree rotations (p 0.5) and elastic deformation, applied to all channels and the mask;
    with `patch_scale`, first a random square patch covering that share of the tile, resized back to `size` px
    (the multi-scale model's patch sampling: cells appear at several scales); with `train.scale_augmentation` > 0,
    first a zoom with that probability by a factor between 1 / `train.zoom_limit` and it (in and out equally likely),
    the tile's size kept and its borders mirrored: nuclei of new images come at other pixel sizes than the
    training set's, and `predict --mpp auto` matches them only up to its estimate's error."""
    patches = [] if patch_scale is None else [A.RandomResizedCrop(size=(size, size), scale=tuple(patch_scale),
                                                                    ratio=(1.0, 1.0), p=1.0)]
    zoom, limit = train_cfg["scale_augmentation"], train_cfg["zoom_limit"]
    if zoom > 0:
        patches.append(A.Affine(scale=(1 / limit, limit), balanced_scale=True, keep_ratio=True,
                                border_mode=cv2.BORDER_REFLECT_101, p=zoom))
    return A.Compose(patches + [
        A.HorizontalFlip(p=0.5),
        A.VerticalFlip(p=0.5),
        A.RandomRotate90(p=0.5),
        A.ElasticTransform(alpha=train_cfg["elastic_alpha"], sigma=train_cfg["elastic_sigma"],
                           border_mode=cv2.BORDER_REFLECT_101, p=train_cfg["elastic_p"]),
    ], seed=seed)


def photometric_transform(train_cfg: dict[str, Any], seed: int) -> A.Compose:
    """Brightness and contrast (+-0.2, p 0.5) on the RGB channels only; with `train.stain_augmentation` > 0, first
    an H&E stain change with that probability (albumentations' HEStain: a random preset of stain vectors, the
    stains' intensities scaled and shifted), the variation between labs and scanners. The edge channel stays the
    one cached from the unchanged tile: normalised per tile, it is nearly blind to colour."""
    limit, stain = train_cfg["brightness_contrast"], train_cfg["stain_augmentation"]
    stains = [A.HEStain(method="random_preset", p=stain)] if stain > 0 else []
    return A.Compose([*stains, A.RandomBrightnessContrast(brightness_limit=limit, contrast_limit=limit, p=0.5)],
                     seed=seed)


class Augmenter:
    """Both stages, reseeded at every epoch so that a resumed run draws the same augmentations."""

    def __init__(self, train_cfg: dict[str, Any], seed: int, patch_scale: list[float] | None = None, size: int = 0):
        self.geometric = geometric_transform(train_cfg, seed, patch_scale, size)
        self.photometric = photometric_transform(train_cfg, seed)

    def reseed(self, seed: int) -> None:
        self.geometric.set_random_seed(seed)
        self.photometric.set_random_seed(seed + 1)

    def __call__(self, rgb: np.ndarray, edge: np.ndarray | None, mask: np.ndarray, maps: list[np.ndarray] = (),
                 ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, list[np.ndarray]]:
        """uint8 RGB (H, W, 3), float edge (H, W) or None, mask (H, W), maps (H, W) that move with the mask (the
        annotated region, the centre map) -> the same, transformed."""
        stacked = rgb.astype(np.float32) / 255
        if edge is not None:
            stacked = np.concatenate([stacked, edge[..., None].astype(np.float32)], axis=-1)
        moved = self.geometric(image=stacked, mask=mask, **({"masks": list(maps)} if maps else {}))
        stacked, mask = moved["image"], moved["mask"]
        rgb = self.photometric(image=np.ascontiguousarray(stacked[..., :3]))["image"]
        return (np.clip(rgb, 0, 1), (stacked[..., 3] if edge is not None else None), mask,
                [np.asarray(moved_map) for moved_map in moved["masks"]] if maps else [])
