"""The model ladder by name (paper Table II plus the two other papers' systems). Every model maps
(B, C, H, W) inputs to (B, 1, H, W) logits; a `ModelSpec` says how it is built, trained and applied.

Table II is a ladder: each rung keeps what the one before added, so the active-learning and multi-scale U-Nets
train with the hybrid loss of the rung before them (the paper does not say otherwise)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch.nn as nn

from .enhanced import build_enhanced
from .fgfeu import build_fgfeu
from .unets import UNet
from .unext import ProUNeXt


@dataclass(frozen=True)
class ModelSpec:
    label: str                          # the name in tables
    build: Callable[[dict[str, Any]], tuple[nn.Module, str]]  # full config -> (model, note on its weights)
    loss: str                           # a name in lib.losses.LOSSES; "config" takes train.loss
    finetune_loss: str | None = None    # the last ladder.finetune_epochs epochs train with this loss
    patch_sampling: bool = False        # random multi-scale crops during training (ladder.patch_scale)
    crf: bool = False                   # dense CRF on the probabilities at inference
    active_learning: bool = False       # MC-Dropout acquisition rounds (lib/active_learning.py)
    stabilized: bool = True             # False: constant learning rate (stability.learning_rate), no gradient
    #                                     clipping, the last epoch instead of EMA selection (notebook 05)


def _unet(attention: bool = False, aspp: bool = False, mc_dropout: bool = False):
    def build(cfg: dict[str, Any]) -> tuple[nn.Module, str]:
        ladder = cfg["ladder"]
        return (UNet(3, ladder["base_channels"], ladder["depth"], attention, aspp,
                     ladder["mc_dropout"] if mc_dropout else 0.0), "random initialisation (trained from scratch)")
    return build


def _unext(cfg: dict[str, Any]) -> tuple[nn.Module, str]:
    return ProUNeXt(3, cfg["ladder"]["first_block_channels"]), "random initialisation (trained from scratch)"


MODELS: dict[str, ModelSpec] = {
    "unet": ModelSpec("U-Net", _unet(), "dice"),
    "attention_unet": ModelSpec("Attention U-Net", _unet(attention=True), "dice"),
    "attention_unet_hybrid": ModelSpec("Att-UNet + hybrid loss", _unet(attention=True), "hybrid"),
    "attention_unet_al": ModelSpec("Att-UNet + active learning", _unet(attention=True, mc_dropout=True), "hybrid",
                                   active_learning=True),
    "multiscale_attention_unet": ModelSpec("Multi-scale Att-UNet", _unet(attention=True, aspp=True), "hybrid",
                                           patch_sampling=True, crf=True),
    "enhanced": ModelSpec("Enhanced (paper)", lambda cfg: build_enhanced(cfg["model"]), "config"),
    "fgfeu_net": ModelSpec("FgFEU-Net", lambda cfg: build_fgfeu(cfg["model"]), "combo"),
    "enhanced_unstabilized": ModelSpec("Enhanced, unstabilized", lambda cfg: build_enhanced(cfg["model"]),
                                       "unstabilized", stabilized=False),
    "pro_unext": ModelSpec("Pro_UNeXt", _unext, "focal_dice", finetune_loss="focal_dice_hausdorff"),
}
MODEL_NAMES = tuple(MODELS)


def model_spec(name: str) -> ModelSpec:
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODEL_NAMES)}")
    return MODELS[name]


def build_model(name: str, cfg: dict[str, Any]) -> tuple[nn.Module, str]:
    """The model and a sentence saying which weights it starts from (recorded with every run)."""
    return model_spec(name).build(cfg)


def input_channels(name: str, cfg: dict[str, Any]) -> int:
    """4 (RGB + Gabor edge map) for the Enhanced model unless its input variant drops the edge channel; the
    other models see RGB, as in their papers."""
    return 4 if name.startswith("enhanced") and cfg["model"]["input_variant"] != "drop" else 3


def training_loss(name: str, cfg: dict[str, Any]) -> str:
    spec = model_spec(name)
    return cfg["train"]["loss"] if spec.loss == "config" else spec.loss
