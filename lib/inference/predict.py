"""Inference: probabilities of prepared tiles (evaluation) and of whole new images (prediction), with the
multi-scale model's CRF where it applies.

A new image of any size is cut into windows exactly as in training (tile size, stride, the last row and column
snapped to the image edge, resizing to the input size, the edge channel of the resized window normalised with the
run's bounds), predicted in batches, and stitched back at full resolution. Where windows overlap, their
probabilities are blended with a Gaussian weight (sigma = 1/8 of the window, as nnU-Net does), so that a pixel
counts most from the window that sees it centred, with the most context. An image smaller than a window is padded
by reflection.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import yaml
from torch.utils.data import DataLoader, Dataset

from ..data.tiling import tile_grid
from ..device import Precision, select_precision
from ..models import build_untrained, has_centre_head, model_spec
from ..progress import progress
from ..training.runs import with_introduced
from .crf import dense_crf
from .inputs import image_input
from .tta import predict_probabilities

Refiner = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def refiner(model_name: str, cfg: dict[str, Any]) -> Refiner | None:
    """The dense CRF (on the probabilities and the input's RGB) for the models that use one, else None."""
    if not model_spec(model_name).crf:
        return None
    return lambda probabilities, x: dense_crf(probabilities, x[:, :3], **cfg["ladder"]["crf"])


def predict_batch(model: torch.nn.Module, x: torch.Tensor, tta: bool, refine: Refiner | None = None,
                  precision: Precision | None = None) -> torch.Tensor:
    """Probabilities (B, C, H, W) float32 of one batch of inputs (`predict_probabilities`), in the precision given
    (default fp32), refined when the model has a refiner."""
    if precision is None:
        probabilities = predict_probabilities(model, x, tta)
    else:
        with precision.autocast():
            probabilities = predict_probabilities(model, precision.prepare(x), tta)
    return probabilities if refine is None else refine(probabilities, x)


def predict_tiles(model: torch.nn.Module, dataset: Dataset, device: torch.device, tta: bool,
                  refine: Refiner | None = None, batch_size: int = 16, desc: str | None = None,
                  precision: Precision | None = None, every_channel: bool = False) -> np.ndarray:
    """Probabilities (N, H, W) float32 for every item of a dataset (no augmentation), in order, or with
    `every_channel` (N, C, H, W), the centre map too where the model has one; with `desc`, a progress bar over
    the batches."""
    model.eval()
    out = []
    batches = DataLoader(dataset, batch_size=batch_size, shuffle=False)
    for x, _ in progress(batches, desc=desc, unit="batch", leave=False, disable=desc is None):
        probabilities = predict_batch(model, x.to(device), tta, refine, precision)
        out.append((probabilities if every_channel else probabilities[:, 0]).cpu().numpy())
    return np.concatenate(out)


def load_run_model(run: Path, device: torch.device) -> tuple[torch.nn.Module, str, dict[str, Any], dict[str, Any]]:
    """A finished run's selected checkpoint: (model, model name, the run's config, its metrics). The model
    computes in the precision the run was trained with (`train.precision`, fp32 for runs recorded before it); the
    config holds the settings introduced since at the values the run trained with."""
    run = Path(run)
    for name in ("config.yaml", "best.pt", "metrics.json"):
        if not (run / name).is_file():
            raise FileNotFoundError(f"{run} is not a finished run ({name} is missing); train it first")
    record = yaml.safe_load((run / "config.yaml").read_text())
    cfg = with_introduced(record["config"])
    model = build_untrained(record["model"], cfg)  # the checkpoint holds every weight
    model.load_state_dict(torch.load(run / "best.pt", map_location=device, weights_only=True)["model"])
    return model.to(device).eval(), record["model"], cfg, json.loads((run / "metrics.json").read_text())


def run_precision(cfg: dict[str, Any], device: torch.device) -> Precision:
    """The precision a run's config trains and predicts in on `device`."""
    return select_precision(cfg["train"]["precision"], device)


def gaussian_weight(size: int) -> np.ndarray:
    """(size, size) blending weight: a Gaussian of sigma size / 8 centred on the window, 1 at its peak, and
    nowhere zero (its smallest value replaces underflow), so every pixel is covered."""
    axis = np.exp(-0.5 * ((np.arange(size) - (size - 1) / 2) / (size / 8)) ** 2)
    weight = np.outer(axis, axis)
    return np.maximum(weight / weight.max(), weight[weight > 0].min()).astype(np.float32)


def tissue_share(window: np.ndarray, glass_gray: float) -> float:
    """The share of a uint8 RGB window's pixels darker than blank glass (mean of R, G, B below glass_gray x 255)."""
    return float((window.mean(-1) < glass_gray * 255).mean())


@dataclass
class WindowPredictor:
    """A trained model applied to windows of a new image: each window is cut `window` x `window` input pixels
    (the run's tile size divided by `zoom`, the size of an input pixel in training pixels; lib/data/scale.py),
    resized to the network's input, predicted, and its probability resized back. A window with less than
    `min_tissue_share` of tissue (pixels darker than `glass_gray`) is blank glass: it is given probability 0
    without running the model."""

    model: torch.nn.Module
    model_name: str
    cfg: dict[str, Any]
    device: torch.device
    tta: bool
    bounds: dict[str, float]
    batch_size: int = 8
    precision: Precision | None = None
    zoom: float = 1.0
    min_tissue_share: float = 0.0
    glass_gray: float = 1.0

    @property
    def window(self) -> int:
        return max(8, round(self.cfg["data"]["tile_size"] / self.zoom))

    @property
    def stride(self) -> int:
        return max(1, round(self.cfg["data"]["stride"] / self.zoom))

    @property
    def channels(self) -> int:
        """The maps predicted: the mask's probability, and the centre map of a model with a centre head."""
        return 2 if has_centre_head(self.model_name, self.cfg) else 1

    def __call__(self, crops: list[np.ndarray]) -> list[np.ndarray]:
        """Maps (window, window, channels) float32 of windows of uint8 RGB pixels, in order."""
        size, window = self.cfg["data"]["input_size"], self.window
        out = [np.zeros((window, window, self.channels), np.float32) for _ in crops]
        tissue = [i for i, crop in enumerate(crops) if tissue_share(crop, self.glass_gray) >= self.min_tissue_share]
        refine = refiner(self.model_name, self.cfg)
        for start in range(0, len(tissue), self.batch_size):
            batch = tissue[start:start + self.batch_size]
            x = torch.cat([image_input(cv2.resize(crops[i], (size, size), interpolation=cv2.INTER_AREA),
                                       self.model_name, self.cfg, self.bounds) for i in batch])
            probabilities = predict_batch(self.model, x.to(self.device), self.tta, refine, self.precision)
            for i, maps in zip(batch, probabilities.float().cpu().numpy().transpose(0, 2, 3, 1), strict=True):
                out[i] = cv2.resize(maps, (window, window), interpolation=cv2.INTER_LINEAR).reshape(out[i].shape)
        return out


def predict_windows(predictor: WindowPredictor, windows: np.ndarray, desc: str | None = None) -> np.ndarray:
    """Maps (N, window, window, channels) of a stack of whole windows (tiles at the run's source resolution, each
    predicted as a new image's window is), a batch at a time, with a progress bar when `desc` is given."""
    starts = range(0, len(windows), predictor.batch_size)
    return np.stack([maps for start in (progress(starts, desc=desc, unit="batch") if desc else starts)
                     for maps in predictor(list(windows[start:start + predictor.batch_size]))])


@dataclass
class EnsemblePredictor:
    """Several runs applied to the same windows, their maps averaged, as nnU-Net averages its folds' models: runs of
    one recipe trained from other seeds err apart, so their mean tends to err less. The members cut the same windows
    (tile size, stride, input size) and predict the same maps; `zoom` is applied to each."""

    members: tuple[WindowPredictor, ...]
    zoom: float = 1.0

    def __post_init__(self) -> None:
        first = self.members[0]
        for member in self.members[1:]:
            for key in ("tile_size", "stride", "input_size"):
                if member.cfg["data"][key] != first.cfg["data"][key]:
                    raise ValueError(f"runs averaged together must share data.{key} (they cut the same windows): "
                                     f"{first.cfg['data'][key]} and {member.cfg['data'][key]}")
            if member.channels != first.channels:
                raise ValueError("runs averaged together must predict the same maps: one has a centre head, one not")

    @property
    def scaled(self) -> list[WindowPredictor]:
        return [replace(member, zoom=self.zoom) for member in self.members]

    @property
    def window(self) -> int:
        return self.scaled[0].window

    @property
    def stride(self) -> int:
        return self.scaled[0].stride

    @property
    def channels(self) -> int:
        return self.members[0].channels

    @property
    def batch_size(self) -> int:
        return self.members[0].batch_size

    def __call__(self, crops: list[np.ndarray]) -> list[np.ndarray]:
        """The members' maps of each window, averaged."""
        return [np.mean(maps, axis=0) for maps in zip(*(member(crops) for member in self.scaled), strict=True)]


Predictor = WindowPredictor | EnsemblePredictor


def predict_maps(predictor: Predictor, image: np.ndarray) -> np.ndarray:
    """Full-resolution maps (H, W, channels) of one RGB image held in memory (module docstring): the probability,
    and the centre map of a model with a centre head."""
    window = predictor.window
    height, width = image.shape[:2]
    pad_y, pad_x = max(0, window - height), max(0, window - width)
    padded = cv2.copyMakeBorder(image, 0, pad_y, 0, pad_x, cv2.BORDER_REFLECT_101) if pad_y or pad_x else image
    total = np.zeros((*padded.shape[:2], predictor.channels), np.float32)
    weights = np.zeros(padded.shape[:2], np.float32)
    weight = gaussian_weight(window)
    windows = tile_grid(*padded.shape[:2], window, predictor.stride)
    for start in range(0, len(windows), predictor.batch_size):
        batch = windows[start:start + predictor.batch_size]
        for (y, x), maps in zip(batch, predictor([padded[y:y + window, x:x + window] for y, x in batch]), strict=True):
            total[y:y + window, x:x + window] += weight[..., None] * maps
            weights[y:y + window, x:x + window] += weight
    return (total / weights[..., None])[:height, :width]


def predict_image(predictor: Predictor, image: np.ndarray) -> np.ndarray:
    """Full-resolution probability map (H, W) of one RGB image held in memory (`predict_maps`' first)."""
    return predict_maps(predictor, image)[..., 0]
