"""Tiles as network inputs: normalised RGB plus the cached edge channel, and the mask (with its signed distance
map for the distance-based losses, computed after augmentation so that it is exact for the warped mask)."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from .augment import Augmenter
from .losses import signed_distance


class TileDataset(Dataset):
    """(x, y) pairs of some tiles of a prepared set; x is (3 or 4, H, W) float, y the (1, H, W) mask, or
    (2, H, W) mask and signed distance map with `with_distance`."""

    def __init__(self, tile_set, index: np.ndarray, edges: np.ndarray | None, model_cfg: dict[str, Any],
                 augmenter: Augmenter | None = None, with_distance: bool = False):
        self.tile_set, self.index, self.edges, self.augmenter = tile_set, np.asarray(index), edges, augmenter
        self.with_distance = with_distance
        self.mean = np.asarray(model_cfg["input_mean"], np.float32)
        self.std = np.asarray(model_cfg["input_std"], np.float32)

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
        channels = [(rgb - self.mean) / self.std]
        if edge is not None:
            channels.append(((edge - 0.5) / 0.5)[..., None])  # the edge map in [0, 1], centred like RGB
        x = np.concatenate(channels, axis=-1).transpose(2, 0, 1)
        y = [mask.astype(np.float32)] + ([signed_distance(mask)] if self.with_distance else [])
        return torch.from_numpy(np.ascontiguousarray(x, np.float32)), torch.from_numpy(np.stack(y))
