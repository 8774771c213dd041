"""The Enhanced model (paper §III-C, Fig. 1): a learnable 4->3 input projection (eq. 2) in front of an
ImageNet-pretrained EfficientNet encoder and a UNet++ decoder with SCSE attention at every level (eq. 3).

Input variants, for the ablations:
- `projection`: RGB + edge map -> Conv1x1(ReLU(BN(Conv3x3(x)))) -> 3 channels -> pretrained encoder (the paper);
- `projection_blank`: the same projection fed RGB and a constant fourth channel (0, the centred mid-grey edge
  value): the projection's layers without the edge information, so that the Gabor channel's effect and the
  projection's effect are measured apart;
- `drop`: RGB only, the edge channel is not used ("naive channel dropping");
- `smp4`: 4 channels straight into the encoder, whose first convolution smp widens by cycling the RGB filters.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
from segmentation_models_pytorch.encoders._utils import patch_first_conv

from .pretrained import build_unetplusplus

VARIANTS = ("projection", "projection_blank", "drop", "smp4")
EDGE_VARIANTS = ("projection", "smp4")  # the variants that read the edge map


class InputProjection(nn.Module):
    """Eq. 2: X3 = Conv1x1(ReLU(BN(Conv3x3(X4)))), so that the pretrained encoder still sees 3 channels."""

    def __init__(self, in_channels: int = 4, hidden: int = 16, out_channels: int = 3):
        super().__init__()
        self.layers = nn.Sequential(nn.Conv2d(in_channels, hidden, 3, padding=1, bias=False), nn.BatchNorm2d(hidden),
                                    nn.ReLU(inplace=True), nn.Conv2d(hidden, out_channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class EnhancedModel(nn.Module):
    """Optional input projection followed by smp's UNet++; `blank_edge` appends a constant fourth channel to an
    RGB input before the projection."""

    def __init__(self, network: nn.Module, projection: nn.Module | None, blank_edge: bool = False):
        super().__init__()
        self.projection = projection
        self.network = network
        self.blank_edge = blank_edge

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.blank_edge:
            x = torch.cat([x, torch.zeros_like(x[:, :1])], dim=1)
        return self.network(self.projection(x) if self.projection is not None else x)


def build_enhanced(model_cfg: dict[str, Any]) -> tuple[nn.Module, str]:
    """The Enhanced model for the configured input variant, and a note on its encoder weights."""
    variant = model_cfg["input_variant"]
    network, weights = build_unetplusplus(model_cfg, in_channels=3)
    if variant in ("projection", "projection_blank"):
        projection = InputProjection(4, model_cfg["projection_channels"], 3)
        return EnhancedModel(network, projection, blank_edge=variant == "projection_blank"), weights
    if variant == "drop":
        return EnhancedModel(network, None), weights
    if variant == "smp4":
        pretrained = not weights.startswith("random")
        patch_first_conv(network.encoder, new_in_channels=4, pretrained=pretrained)
        return EnhancedModel(network, None), weights
    raise ValueError(f"unknown model.input_variant {variant!r} ({', '.join(VARIANTS)})")
