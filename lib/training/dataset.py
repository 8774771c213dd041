"""Tiles as network inputs (`lib.inference.inputs`) and targets: the mask, with its signed distance map for the
distance-based losses (computed after augmentation, so that it is exact for the warped mask)."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ..data.tiles import TileSet
from ..inference.inputs import network_input
from .augment import Augmenter
from .losses import signed_distance


class TileDataset(Dataset):
    """(x, y) pairs of some tiles of a prepared set; x is (3 or 4, H, W) float, y the (1, H, W) mask, or
    (2, H, W) mask and signed distance map with `with_distance`."""

    def __init__(self, tile_set: TileSet, index: np.ndarray, edges: np.ndarray | None, model_cfg: dict[str, Any],
                 augmenter: Augmenter | None = None, with_distance: bool = False):
        self.tile_set, self.index, self.edges, self.augmenter = tile_set, np.asarray(index), edges, augmenter
        self.model_cfg, self.with_distance = model_cfg, with_distance

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, item: int) -> tuple[torch.Tensor, torch.Tensor]:
        i = self.index[item]
        rgb, mask = np.asarray(self.tile_set.images[i]), np.asarray(self.tile_set.masks[i])
        edge = None if self.edges is None else np.asarray(self.edges[i], np.float32)
        if self.augmenter is not None:
            rgb, edge, mask = self.augmenter(rgb, edge, mask)
        else:
            rgb = rgb.astype(np.float32) / 255
        y = [mask.astype(np.float32)] + ([signed_distance(mask)] if self.with_distance else [])
        return torch.from_numpy(network_input(rgb, edge, self.model_cfg)), torch.from_numpy(np.stack(y))
