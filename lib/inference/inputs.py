"""A model's input, built in one place for training, evaluation, prediction and timing.

RGB is scaled to [0, 1] and normalised with `model.input_mean` / `model.input_std`. A model that takes the edge
channel (`lib.models.input_channels`: the Enhanced family unless its input variant has no edge channel) gets
the Gabor edge map as a fourth channel: normalised as `gabor.normalisation` says (to [0, 1]; per dataset with
the training tiles' bounds), then centred to [-1, 1] like RGB. Prepared tiles read their cached maps; a new
image's map is computed here with the bounds the run was trained with.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..data.tiles import TileSet
from ..edges import gabor
from ..models import input_channels


def takes_edge_channel(model_name: str, cfg: dict[str, Any]) -> bool:
    """Whether this model, as configured, reads the Gabor edge map."""
    return input_channels(model_name, cfg) == 4


def network_input(rgb: np.ndarray, edge: np.ndarray | None, model_cfg: dict[str, Any]) -> np.ndarray:
    """(C, H, W) float32 from RGB in [0, 1] (H, W, 3) and, for a 4-channel model, the edge map in [0, 1]."""
    channels = [(np.asarray(rgb, np.float32) - np.asarray(model_cfg["input_mean"], np.float32))
                / np.asarray(model_cfg["input_std"], np.float32)]
    if edge is not None:
        channels.append(((np.asarray(edge, np.float32) - 0.5) / 0.5)[..., None])
    return np.ascontiguousarray(np.concatenate(channels, axis=-1).transpose(2, 0, 1), np.float32)


def tile_edges(tile_set: TileSet, model_name: str, cfg: dict[str, Any]) -> tuple[np.ndarray | None, dict[str, float]]:
    """The cached edge maps of a prepared set and their bounds, or (None, {}) for a model without the channel."""
    if not takes_edge_channel(model_name, cfg):
        return None, {}
    return gabor.cached_edge_maps(tile_set, cfg["gabor"])


def image_input(tile: np.ndarray, model_name: str, cfg: dict[str, Any], bounds: dict[str, float]) -> torch.Tensor:
    """The (1, C, H, W) input of one uint8 RGB tile of a new image (its edge map computed here)."""
    edge = None
    if takes_edge_channel(model_name, cfg):
        edge = gabor.normalised_edge_map(gabor.raw_edge_map(tile, cfg["gabor"]), cfg["gabor"], bounds)
    return torch.from_numpy(network_input(tile.astype(np.float32) / 255, edge, cfg["model"]))[None]
