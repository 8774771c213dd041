"""The model ladder by name (paper Table II plus the two other papers' systems). Every model maps
(B, C, H, W) inputs to (B, 1, H, W) logits (the Enhanced family: (B, 2, H, W) with `model.centre_head`, the mask's
and the centre map's); a `ModelSpec` says how it is built, trained and applied.

Table II is a ladder: each rung keeps what the one before added, so the active-learning and multi-scale U-Nets
train with the hybrid loss of the rung before them (the paper does not say otherwise). `enhanced_region` and
`unet_region` are the Enhanced model and the U-Net trained with their loss inside the annotated region (UCSB's
partial labels; not in the paper); `fgfeu_net_region` is FgFEU-Net so trained, at the budget sweep's recommended point."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch.nn as nn

from .enhanced import EDGE_VARIANTS, build_enhanced
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
    edge_channel: bool = False          # takes the Gabor edge map when model.input_variant has one
    loss_area: str | None = None        # where its loss looks whatever train.loss_area says (None: train.loss_area)
    takes_centre_head: bool = False     # built on smp's UNet++, which gains the centre head with model.centre_head


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
    "unet_region": ModelSpec("U-Net, loss inside the annotated region", _unet(), "dice", loss_area="annotated_region"),
    "attention_unet": ModelSpec("Attention U-Net", _unet(attention=True), "dice"),
    "attention_unet_hybrid": ModelSpec("Att-UNet + hybrid loss", _unet(attention=True), "hybrid"),
    "attention_unet_al": ModelSpec("Att-UNet + active learning", _unet(attention=True, mc_dropout=True), "hybrid",
                                   active_learning=True),
    "multiscale_attention_unet": ModelSpec("Multi-scale Att-UNet", _unet(attention=True, aspp=True), "hybrid",
                                           patch_sampling=True, crf=True),
    "enhanced": ModelSpec("Enhanced (paper)", lambda cfg: build_enhanced(cfg["model"]), "config", edge_channel=True,
                          takes_centre_head=True),
    "fgfeu_net": ModelSpec("FgFEU-Net", lambda cfg: build_fgfeu(cfg["model"]), "combo"),
    "fgfeu_net_region": ModelSpec("FgFEU-Net, loss inside the annotated region", lambda cfg: build_fgfeu(cfg["model"]),
                                  "combo", loss_area="annotated_region"),
    "enhanced_region": ModelSpec("Enhanced, loss inside the annotated region",
                                 lambda cfg: build_enhanced(cfg["model"]), "config", edge_channel=True,
                                 loss_area="annotated_region", takes_centre_head=True),
    "enhanced_unstabilized": ModelSpec("Enhanced, unstabilized", lambda cfg: build_enhanced(cfg["model"]),
                                       "unstabilized", stabilized=False, edge_channel=True, takes_centre_head=True),
    "pro_unext": ModelSpec("Pro_UNeXt", _unext, "focal_dice", finetune_loss="focal_dice_hausdorff"),
}
MODEL_NAMES = tuple(MODELS)


def model_spec(name: str) -> ModelSpec:
    """The registry entry of a model, or a clear error naming the models there are."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODEL_NAMES)}")
    return MODELS[name]


def build_model(name: str, cfg: dict[str, Any]) -> tuple[nn.Module, str]:
    """The model and a sentence saying which weights it starts from (recorded with every run)."""
    return model_spec(name).build(cfg)


def build_untrained(name: str, cfg: dict[str, Any]) -> nn.Module:
    """The model without downloading or loading pretrained weights (a checkpoint or a cost measurement
    supplies or does not need them)."""
    return build_model(name, dict(cfg, model=dict(cfg["model"], encoder_weights="none")))[0]


def input_channels(name: str, cfg: dict[str, Any]) -> int:
    """The one rule for which models see the edge channel: 4 (RGB + Gabor edge map) for the Enhanced family when
    its input variant feeds the edge map, else 3; the other models see RGB, as in their papers."""
    return 4 if model_spec(name).edge_channel and cfg["model"]["input_variant"] in EDGE_VARIANTS else 3


def has_centre_head(name: str, cfg: dict[str, Any]) -> bool:
    """Whether a model predicts the centre map too: `model.centre_head` on a model built on smp's UNet++ (the
    Enhanced family); the other models ignore the setting."""
    return model_spec(name).takes_centre_head and cfg["model"]["centre_head"]


def loss_area(name: str, cfg: dict[str, Any]) -> str:
    """Where a model's loss looks: its own setting (the region-trained Enhanced model), else train.loss_area."""
    return model_spec(name).loss_area or cfg["train"]["loss_area"]


def training_loss(name: str, cfg: dict[str, Any]) -> str:
    """The loss a model trains with (`train.loss` for the Enhanced model, its paper's loss for the others)."""
    spec = model_spec(name)
    return cfg["train"]["loss"] if spec.loss == "config" else spec.loss
