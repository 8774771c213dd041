"""Tiles as network inputs (`lib.inference.inputs`) and training targets.

A target is a dict of (1, H, W) float tensors: `mask` (the cells), `valid` (the weight of each pixel in the loss, 0
where it carries no supervision: the annotated region, when training inside it, `train.loss_area: annotated_region`;
with `train.contact_weight` > 0, the contact lines of touching nuclei, lib/data/geometry.py, leave the mask and
weigh 1 + contact_weight, so that the network learns to leave a gap the watershed splits at; with
`train.gap_sigma_px` > 0 too, every pixel outside the target weighs 1 + contact_weight x its gap map, the U-Net paper's
weighting of the gaps between close cells, which also reaches nuclei apart by a pixel or two, where no contact
line is), `distance` (the mask's
signed distance map, for the distance-based losses; computed after augmentation, so that it is exact for the
warped mask) and `centre` (the true nuclei's centre map, lib/data/geometry.py, for a model with `model.centre_head`).
Augmentation moves the region and the centre map with the image.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ..data.geometry import centre_map, contact_lines, gap_map
from ..data.tiles import TileSet
from ..inference.inputs import network_input
from .augment import Augmenter
from .losses import signed_distance


class TileDataset(Dataset):
    """(x, target) pairs of some tiles of a prepared set; x is (3 or 4, H, W) float, target a dict (module
    docstring) with `valid` when `with_region` or `contact_weight`, `distance` when `with_distance` and `centre`
    when `with_centre`; `gap_sigma_px` in px of the prepared tiles."""

    def __init__(self, tile_set: TileSet, index: np.ndarray, edges: np.ndarray | None, model_cfg: dict[str, Any],
                 augmenter: Augmenter | None = None, with_distance: bool = False, with_region: bool = False,
                 contact_weight: float = 0.0, gap_sigma_px: float = 0.0, with_centre: bool = False):
        self.tile_set, self.index, self.edges, self.augmenter = tile_set, np.asarray(index), edges, augmenter
        self.model_cfg, self.with_distance, self.with_region = model_cfg, with_distance, with_region
        self.contact_weight, self.gap_sigma_px, self.with_centre = contact_weight, gap_sigma_px, with_centre

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, item: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        i = self.index[item]
        rgb, mask = np.asarray(self.tile_set.images[i]), np.asarray(self.tile_set.masks[i])
        region = np.asarray(self.tile_set.regions[i]) if self.with_region else None
        if self.contact_weight:
            instances = np.asarray(self.tile_set.instances[i])
            lines = contact_lines(instances)
            mask = mask & ~lines
            gaps = (gap_map(np.where(lines, 0, instances), self.gap_sigma_px) if self.gap_sigma_px
                    else lines.astype(np.float32))
            weight = 1 + self.contact_weight * gaps
            region = weight if region is None else region * weight  # moves with the mask as the region does
        edge = None if self.edges is None else np.asarray(self.edges[i], np.float32)
        maps = {"valid": region, "centre": centre_map(self.tile_set.instances[i]) if self.with_centre else None}
        maps = {name: value for name, value in maps.items() if value is not None}
        if self.augmenter is not None:
            rgb, edge, mask, moved = self.augmenter(rgb, edge, mask, list(maps.values()))
            maps = dict(zip(maps, moved, strict=True))
        else:
            rgb = rgb.astype(np.float32) / 255
        target = {"mask": torch.from_numpy(mask.astype(np.float32)[None])}
        target.update({name: torch.from_numpy(np.asarray(value, np.float32)[None]) for name, value in maps.items()})
        if self.with_distance:
            target["distance"] = torch.from_numpy(signed_distance(mask)[None])
        return torch.from_numpy(network_input(rgb, edge, self.model_cfg)), target
