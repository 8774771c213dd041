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
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import yaml
from torch.utils.data import DataLoader, Dataset

from ..data.tiling import tile_grid
from ..device import Precision, select_precision
from ..models import build_untrained, model_spec
from ..progress import progress
from ..training.runs import INTRODUCED
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
    """Probabilities (B, 1, H, W) float32 of one batch of inputs, in the precision given (default fp32), refined
    when the model has a refiner."""
    if precision is None:
        probabilities = predict_probabilities(model, x, tta)
    else:
        with precision.autocast():
            probabilities = predict_probabilities(model, precision.prepare(x), tta)
    return probabilities if refine is None else refine(probabilities, x)


def predict_tiles(model: torch.nn.Module, dataset: Dataset, device: torch.device, tta: bool,
                  refine: Refiner | None = None, batch_size: int = 16, desc: str | None = None,
                  precision: Precision | None = None) -> np.ndarray:
    """Probabilities (N, H, W) float32 for every item of a dataset (no augmentation), in order; with `desc`, a
    progress bar over the batches."""
    model.eval()
    out = []
    batches = DataLoader(dataset, batch_size=batch_size, shuffle=False)
    for x, _ in progress(batches, desc=desc, unit="batch", leave=False, disable=desc is None):
        out.append(predict_batch(model, x.to(device), tta, refine, precision)[:, 0].cpu().numpy())
    return np.concatenate(out)


def load_run_model(run: Path, device: torch.device) -> tuple[torch.nn.Module, str, dict[str, Any], dict[str, Any]]:
    """A finished run's selected checkpoint: (model, model name, the run's config, its metrics). The model
    computes in the precision the run was trained with (`train.precision`, fp32 for runs recorded before it)."""
    run = Path(run)
    for name in ("config.yaml", "best.pt", "metrics.json"):
        if not (run / name).is_file():
            raise FileNotFoundError(f"{run} is not a finished run ({name} is missing); train it first")
    record = yaml.safe_load((run / "config.yaml").read_text())
    cfg = record["config"]
    model = build_untrained(record["model"], cfg)  # the checkpoint holds every weight
    model.load_state_dict(torch.load(run / "best.pt", map_location=device, weights_only=True)["model"])
    return model.to(device).eval(), record["model"], cfg, json.loads((run / "metrics.json").read_text())


def run_precision(cfg: dict[str, Any], device: torch.device) -> Precision:
    """The precision a run's config trains and predicts in on `device`."""
    return select_precision(cfg["train"].get("precision", INTRODUCED["train.precision"]), device)


def gaussian_weight(size: int) -> np.ndarray:
    """(size, size) blending weight: a Gaussian of sigma size / 8 centred on the window, 1 at its peak, and
    nowhere zero (its smallest value replaces underflow), so every pixel is covered."""
    axis = np.exp(-0.5 * ((np.arange(size) - (size - 1) / 2) / (size / 8)) ** 2)
    weight = np.outer(axis, axis)
    return np.maximum(weight / weight.max(), weight[weight > 0].min()).astype(np.float32)


def predict_image(model: torch.nn.Module, model_name: str, image: np.ndarray, cfg: dict[str, Any],
                  device: torch.device, tta: bool, bounds: dict[str, float], batch_size: int = 8,
                  precision: Precision | None = None) -> np.ndarray:
    """Full-resolution probability map (H, W) of one RGB image (module docstring)."""
    data_cfg = cfg["data"]
    tile, size = data_cfg["tile_size"], data_cfg["input_size"]
    height, width = image.shape[:2]
    pad_y, pad_x = max(0, tile - height), max(0, tile - width)
    padded = cv2.copyMakeBorder(image, 0, pad_y, 0, pad_x, cv2.BORDER_REFLECT_101) if pad_y or pad_x else image
    total = np.zeros(padded.shape[:2], np.float32)
    weights = np.zeros(padded.shape[:2], np.float32)
    weight, refine = gaussian_weight(tile), refiner(model_name, cfg)
    windows = tile_grid(*padded.shape[:2], tile, data_cfg["stride"])
    for start in range(0, len(windows), batch_size):
        batch = windows[start:start + batch_size]
        x = torch.cat([image_input(cv2.resize(padded[y:y + tile, x:x + tile], (size, size), interpolation=cv2.INTER_AREA),
                                   model_name, cfg, bounds) for y, x in batch])
        probabilities = predict_batch(model, x.to(device), tta, refine, precision)[:, 0].cpu().numpy()
        for (y, x), probability in zip(batch, probabilities, strict=True):
            total[y:y + tile, x:x + tile] += weight * cv2.resize(probability, (tile, tile), interpolation=cv2.INTER_LINEAR)
            weights[y:y + tile, x:x + tile] += weight
    return (total / weights)[:height, :width]
