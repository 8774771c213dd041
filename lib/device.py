"""The device a model runs on: one rule for training, evaluation, prediction and timing (`train.device`)."""
from __future__ import annotations

import torch

DEVICES = ("auto", "cpu", "cuda")


def select_device(setting: str) -> torch.device:
    """`auto`: CUDA when there is a GPU, else the CPU; `cpu` or `cuda` as named."""
    if setting not in DEVICES:
        raise ValueError(f"unknown device {setting!r} (choose {', '.join(DEVICES)})")
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if setting == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for, but torch sees no GPU here")
    return torch.device(setting)
