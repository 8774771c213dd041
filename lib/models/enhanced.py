"""The Enhanced model (paper §III-C, Fig. 1): a learnable 4->3 input projection (eq. 2) in front of an
ImageNet-pretrained EfficientNet encoder and a UNet++ decoder with SCSE attention at every level (eq. 3).

Input variants, for the ablations:
- `projection`: RGB + edge map -> Conv1x1(ReLU(BN(Conv3x3(x)))) -> 3 channels -> pretrained encoder (the paper);
- `projection_blank`: the same projection fed RGB and a constant fourth channel (0, the centred mid-grey edge
  value): the projection's layers without the edge information, so that the Gabor channel's effect and the
  projection's effect are measured apart;
- `drop`: RGB only, the edge channel is not used ("naive channel dropping");
- `smp4`: 4 channels straight into the encoder, whose first convolution smp widens by cycling the RGB filters.

With `model.full_resolution_skip` (not in the paper) the model's input, before the projection, joins the decoder's
last block: smp's UNet++ drops the encoder's full-resolution skip, so its output is a learned 2x upsampling of
stride-2 features, which cannot draw a one-pixel gap between touching nuclei that the image itself shows. One 3x3
convolution of the input, concatenated with the decoder's output and fused by another, restores what the U-Net's
first level sees.

With `model.encoder_scale` below 1 (not in the paper) the encoder and decoder see the projected input shrunk by that
factor (area interpolation, as the tiles are resized), and their output is enlarged back (bilinear) before the
full-resolution skip and the head: the encoder's cost stays that of the smaller input, while the output keeps the
input's resolution, where a gap of a pixel or two between touching nuclei still exists in image and target alike.
With `model.encoder_shrink: unshuffle` the input is shrunk by folding each r x r block of pixels into channels
(pixel unshuffle, r = 1 / encoder_scale) instead of averaging it: the encoder keeps the texture that averaging
loses (rim, speckle, nucleolus: what tells a faint nucleus from a pale distractor) at the smaller input's cost. Its
first convolution is widened to the folded channels with each pretrained filter shared out over its r x r block, so
that before training it computes exactly what it computes on the area-shrunk input.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from segmentation_models_pytorch.encoders._utils import patch_first_conv

from .pretrained import build_unetplusplus

VARIANTS = ("projection", "projection_blank", "drop", "smp4")
SHRINKS = ("area", "unshuffle")  # model.encoder_shrink
EDGE_VARIANTS = ("projection", "smp4")  # the variants that read the edge map


def conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """3x3 convolution, batch norm, ReLU."""
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False), nn.BatchNorm2d(out_channels),
                         nn.ReLU(inplace=True))


class InputProjection(nn.Module):
    """Eq. 2: X3 = Conv1x1(ReLU(BN(Conv3x3(X4)))), so that the pretrained encoder still sees 3 channels."""

    def __init__(self, in_channels: int = 4, hidden: int = 16, out_channels: int = 3):
        super().__init__()
        self.layers = nn.Sequential(*conv_block(in_channels, hidden), nn.Conv2d(hidden, out_channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class FullResolutionSkip(nn.Module):
    """The input at full resolution, seen by one conv block and fused with the decoder's output (module docstring)."""

    def __init__(self, in_channels: int, decoder_channels: int):
        super().__init__()
        self.input = conv_block(in_channels, decoder_channels)
        self.fuse = conv_block(2 * decoder_channels, decoder_channels)

    def forward(self, decoded: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.fuse(torch.cat([decoded, self.input(x)], dim=1))


def unshuffle_first_conv(encoder: nn.Module, channels: int, factor: int) -> None:
    """Widen the encoder's first convolution from `channels` to channels x factor^2 inputs for a pixel-unshuffled
    input, each filter tap shared out equally over its factor x factor block: on an unshuffled image the widened
    convolution computes what the original computes on that image averaged over the blocks."""
    conv = next(m for m in encoder.modules() if isinstance(m, nn.Conv2d) and m.in_channels == channels)
    conv.weight = nn.Parameter(conv.weight.detach().repeat_interleave(factor ** 2, dim=1) / factor ** 2)
    conv.in_channels = channels * factor ** 2


class EnhancedModel(nn.Module):
    """Optional input projection followed by smp's UNet++; `blank_edge` appends a constant fourth channel to an
    RGB input before the projection; `skip` (a FullResolutionSkip) feeds that input to the decoder's last block;
    `encoder_scale` < 1 runs encoder and decoder on the input shrunk by that factor, averaged (`area`) or folded into
    channels (`unshuffle`; the encoder's first convolution widened to match: unshuffle_first_conv) (module docstring)."""

    def __init__(self, network: nn.Module, projection: nn.Module | None, blank_edge: bool = False,
                 skip: FullResolutionSkip | None = None, encoder_scale: float = 1.0, shrink: str = "area"):
        super().__init__()
        self.projection = projection
        self.network = network
        self.blank_edge = blank_edge
        self.skip = skip
        self.encoder_scale = encoder_scale
        self.shrink = shrink

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.blank_edge:
            x = torch.cat([x, torch.zeros_like(x[:, :1])], dim=1)
        projected = self.projection(x) if self.projection is not None else x
        if self.skip is None and self.encoder_scale == 1:
            return self.network(projected)
        if self.encoder_scale != 1 and self.shrink == "unshuffle":
            projected = F.pixel_unshuffle(projected, round(1 / self.encoder_scale))
        elif self.encoder_scale != 1:
            projected = F.interpolate(projected, scale_factor=self.encoder_scale, mode="area")
        decoded = self.network.decoder(self.network.encoder(projected))
        if self.encoder_scale != 1:
            decoded = F.interpolate(decoded, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return self.network.segmentation_head(decoded if self.skip is None else self.skip(decoded, x))


def build_enhanced(model_cfg: dict[str, Any]) -> tuple[nn.Module, str]:
    """The Enhanced model for the configured input variant, and a note on its encoder weights."""
    variant = model_cfg["input_variant"]
    if variant not in VARIANTS:
        raise ValueError(f"unknown model.input_variant {variant!r} ({', '.join(VARIANTS)})")
    network, weights = build_unetplusplus(model_cfg, in_channels=3)
    scale, shrink = model_cfg["encoder_scale"], model_cfg["encoder_shrink"]  # scale checked by lib.config.validate
    if shrink not in SHRINKS:
        raise ValueError(f"unknown model.encoder_shrink {shrink!r} ({', '.join(SHRINKS)})")
    in_channels = 3 if variant == "drop" else 4
    skip = (FullResolutionSkip(in_channels, model_cfg["decoder_channels"][-1]) if model_cfg["full_resolution_skip"]
            else None)
    if variant == "smp4":
        patch_first_conv(network.encoder, new_in_channels=4, pretrained=not weights.startswith("random"))
    if scale != 1 and shrink == "unshuffle":
        unshuffle_first_conv(network.encoder, 4 if variant == "smp4" else 3, round(1 / scale))
    projection = (InputProjection(4, model_cfg["projection_channels"], 3)
                  if variant in ("projection", "projection_blank") else None)
    return (EnhancedModel(network, projection, blank_edge=variant == "projection_blank", skip=skip, encoder_scale=scale,
                          shrink=shrink), weights)
