"""The optimisation recipe (paper §III-G): how long a model trains, and with what optimiser and schedule.

- Budget: `train.epochs` (or the model's `ladder.epochs` exception); an epoch draws as many tiles as the
  training set holds (`samples_per_epoch`), in batches of `train.batch_size`, one optimiser step per
  `train.accumulation_steps` batches. A last batch of one tile is dropped (it breaks batch norm).
- Stabilized (every model of the ladder): AdamW (weight decay `train.weight_decay`) and OneCycleLR from
  lr_max / 25 up to `train.lr_max` over the first `warmup_fraction` of the steps, cosine down to
  `train.lr_final`; gradients clipped at `train.clip_norm`; a gradient scaler in fp16 mixed precision.
- Unstabilized (the stability experiment's other arm): the same optimiser at the constant learning rate
  `stability.learning_rate`, no gradient clipping.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ..device import Precision

ONE_CYCLE_DIV = 25  # OneCycleLR's start: lr_max / 25


def model_epochs(cfg: dict[str, Any], model_name: str) -> int:
    """train.epochs, unless ladder.epochs gives another number for this model (a costly one on CPU)."""
    return (cfg["ladder"]["epochs"] or {}).get(model_name) or cfg["train"]["epochs"]


def drops_last_batch(samples: int, batch_size: int) -> bool:
    """Whether the epoch's last batch is dropped (a batch of one tile breaks batch norm)."""
    return samples % batch_size == 1


def steps_per_epoch(samples: int, train_cfg: dict[str, Any]) -> int:
    """Optimiser steps of one epoch of `samples` tiles."""
    batches = -(-samples // train_cfg["batch_size"]) - drops_last_batch(samples, train_cfg["batch_size"])
    return -(-batches // train_cfg["accumulation_steps"])


@dataclass
class Recipe:
    """What one fit optimises with."""
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    clip_norm: float

    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed fit needs to continue exactly."""
        return {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "scaler": self.scaler.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from `state_dict()`."""
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])


def build_recipe(model: torch.nn.Module, cfg: dict[str, Any], stabilized: bool, total_steps: int,
                 precision: Precision) -> Recipe:
    """The stabilized recipe, or the unstabilized arm's (module docstring); a gradient scaler where the precision
    needs one (fp16)."""
    train_cfg = cfg["train"]
    optimizer = torch.optim.AdamW(model.parameters(), lr=train_cfg["lr_max"], weight_decay=train_cfg["weight_decay"])
    scaler = torch.amp.GradScaler("cuda", enabled=precision.scaler)
    if stabilized:
        total_steps = max(1, total_steps)
        scheduler = torch.optim.lr_scheduler.OneCycleLR(  # a warm-up of at least 2 steps: OneCycleLR needs one
            optimizer, max_lr=train_cfg["lr_max"], total_steps=total_steps,
            pct_start=min(0.5, max(train_cfg["warmup_fraction"], 2 / total_steps)), anneal_strategy="cos",
            div_factor=ONE_CYCLE_DIV,
            final_div_factor=train_cfg["lr_max"] / ONE_CYCLE_DIV / train_cfg["lr_final"])
        return Recipe(optimizer, scheduler, scaler, train_cfg["clip_norm"])
    for group in optimizer.param_groups:
        group["lr"] = cfg["stability"]["learning_rate"]
    scheduler = torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)
    return Recipe(optimizer, scheduler, scaler, float("inf"))
