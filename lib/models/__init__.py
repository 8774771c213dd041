"""Segmentation models by name. Every model maps (B, C, H, W) inputs to (B, 1, H, W) logits."""
from __future__ import annotations

from typing import Any

import torch.nn as nn

from .enhanced import build_enhanced

BUILDERS = {"enhanced": build_enhanced}
MODEL_NAMES = tuple(BUILDERS)


def build_model(name: str, model_cfg: dict[str, Any]) -> tuple[nn.Module, str]:
    """The model and a sentence saying which encoder weights it starts from (recorded with every run)."""
    if name not in BUILDERS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODEL_NAMES)}")
    return BUILDERS[name](model_cfg)


def input_channels(model_cfg: dict[str, Any]) -> int:
    """4 (RGB + Gabor edge map) unless the input variant drops the edge channel."""
    return 3 if model_cfg["input_variant"] == "drop" else 4
