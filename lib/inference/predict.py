"""Inference: probabilities of prepared tiles (evaluation) and of whole new images (prediction), with the
multi-scale model's CRF where it applies.

A new image is cut into tiles exactly as in training (tile size, stride, resizing to the input size, the edge
channel of the resized tile normalised with the run's bounds), predicted, and stitched back at full resolution
(overlaps averaged).
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
from ..models import build_untrained, model_spec
from .crf import dense_crf
from .inputs import image_input
from .tta import predict_probabilities

Refiner = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def refiner(model_name: str, cfg: dict[str, Any]) -> Refiner | None:
    """The dense CRF (on the probabilities and the input's RGB) for the models that use one, else None."""
    if not model_spec(model_name).crf:
        return None
    return lambda probabilities, x: dense_crf(probabilities, x[:, :3], **cfg["ladder"]["crf"])


def predict_batch(model: torch.nn.Module, x: torch.Tensor, tta: bool, refine: Refiner | None = None) -> torch.Tensor:
    """Probabilities (B, 1, H, W) of one batch of inputs, refined when the model has a refiner."""
    probabilities = predict_probabilities(model, x, tta)
    return probabilities if refine is None else refine(probabilities, x)


def predict_tiles(model: torch.nn.Module, dataset: Dataset, device: torch.device, tta: bool,
                  refine: Refiner | None = None, batch_size: int = 16) -> np.ndarray:
    """Probabilities (N, H, W) float32 for every item of a dataset (no augmentation), in order."""
    model.eval()
    out = []
    for x, _ in DataLoader(dataset, batch_size=batch_size, shuffle=False):
        out.append(predict_batch(model, x.to(device), tta, refine)[:, 0].cpu().numpy())
    return np.concatenate(out)


def load_run_model(run: Path, device: torch.device) -> tuple[torch.nn.Module, str, dict[str, Any], dict[str, Any]]:
    """A finished run's selected checkpoint: (model, model name, the run's config, its metrics)."""
    run = Path(run)
    for name in ("config.yaml", "best.pt", "metrics.json"):
        if not (run / name).is_file():
            raise FileNotFoundError(f"{run} is not a finished run ({name} is missing); train it first")
    record = yaml.safe_load((run / "config.yaml").read_text())
    cfg = record["config"]
    model = build_untrained(record["model"], cfg)  # the checkpoint holds every weight
    model.load_state_dict(torch.load(run / "best.pt", map_location=device, weights_only=True)["model"])
    return model.to(device).eval(), record["model"], cfg, json.loads((run / "metrics.json").read_text())


def predict_image(model: torch.nn.Module, model_name: str, image: np.ndarray, cfg: dict[str, Any],
                  device: torch.device, tta: bool, bounds: dict[str, float]) -> np.ndarray:
    """Full-resolution probability map (H, W) of one RGB image."""
    data_cfg = cfg["data"]
    tile, size = data_cfg["tile_size"], data_cfg["input_size"]
    height, width = image.shape[:2]
    pad_y, pad_x = max(0, tile - height), max(0, tile - width)
    padded = cv2.copyMakeBorder(image, 0, pad_y, 0, pad_x, cv2.BORDER_REFLECT_101) if pad_y or pad_x else image
    total = np.zeros(padded.shape[:2], np.float32)
    count = np.zeros(padded.shape[:2], np.float32)
    refine = refiner(model_name, cfg)
    for y, x in tile_grid(*padded.shape[:2], tile, data_cfg["stride"]):
        crop = cv2.resize(padded[y:y + tile, x:x + tile], (size, size), interpolation=cv2.INTER_AREA)
        probability = predict_batch(model, image_input(crop, model_name, cfg, bounds).to(device), tta, refine)
        total[y:y + tile, x:x + tile] += cv2.resize(probability[0, 0].cpu().numpy(), (tile, tile),
                                                    interpolation=cv2.INTER_LINEAR)
        count[y:y + tile, x:x + tile] += 1
    return (total / count)[:height, :width]
