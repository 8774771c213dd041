"""Model size and cost: parameters and floating-point operations of one forward pass (torch's FLOP counter)."""
from __future__ import annotations

from typing import Any

import pandas as pd
import torch
from torch.utils.flop_counter import FlopCounterMode

from .models import MODELS, build_model, input_channels


def forward_flops(model: torch.nn.Module, x: torch.Tensor) -> int:
    """FLOPs of model(x) (a multiply-add counts 2), for the whole batch."""
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    return int(counter.get_total_flops())


def model_costs(cfg: dict[str, Any], models: list[str], size: int | None = None) -> pd.DataFrame:
    """Parameters (millions) and GFLOPs per image at `size` px (default: the profile's input size)."""
    size = size or cfg["data"]["input_size"]
    no_download = dict(cfg, model=dict(cfg["model"], encoder_weights="none"))  # costs do not depend on weights
    rows = []
    for name in models:
        model, _ = build_model(name, no_download)
        x = torch.zeros(1, input_channels(name, cfg), size, size)
        rows.append({"model": MODELS[name].label, "parameters (M)": sum(p.numel() for p in model.parameters()) / 1e6,
                     f"GFLOPs per {size}px image": forward_flops(model, x) / 1e9})
    return pd.DataFrame(rows).set_index("model")
