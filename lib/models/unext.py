"""Pro_UNeXt (Tong et al. 2024): UNeXt with a full-resolution first block, fused-MBConv blocks with SE and
tokenized-MLP blocks.

- the first block is two 3x3 convolutions at stride 1 (the paper: 64 channels) so tiny objects keep their pixels;
- two fused-MBConv stages (timm's `EdgeResidual` with `SEModule`) each halve the resolution;
- two tokenized-MLP stages (UNeXt, Valanarasu & Patel 2022) halve it again: a strided conv embeds patches as
  tokens, then shifted MLPs mix them (shift along width, MLP, depth-wise conv, GELU, shift along height, MLP);
- the decoder upsamples bilinearly, adds the skip and refines with one conv block per level.
The fine-tuning with a Hausdorff-distance loss is a training stage (lib/losses, lib/train).
"""
from __future__ import annotations

from functools import partial

import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.layers import SEModule
from timm.models._efficientnet_blocks import EdgeResidual


def conv_bn_relu(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


def fused_mbconv_stage(in_channels: int, out_channels: int) -> nn.Sequential:
    """A strided fused-MBConv (expansion 4, SE) followed by one at stride 1 (with its residual)."""
    def block(c_in: int, stride: int) -> nn.Module:
        return EdgeResidual(c_in, out_channels, exp_kernel_size=3, stride=stride, exp_ratio=4.0,
                            se_layer=partial(SEModule, rd_ratio=0.25))
    return nn.Sequential(block(in_channels, 2), block(out_channels, 1))


class ShiftedMLP(nn.Module):
    """UNeXt's tokenized MLP: tokens shifted along one axis before each MLP, a depth-wise conv between."""

    def __init__(self, channels: int, shift: int = 2, expansion: int = 2):
        super().__init__()
        hidden = channels * expansion
        self.shift = shift
        self.norm = nn.LayerNorm(channels)
        self.fc1 = nn.Linear(channels, hidden)
        self.depthwise = nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden)
        self.fc2 = nn.Linear(hidden, channels)

    def _shift(self, x: torch.Tensor, dim: int) -> torch.Tensor:
        """Channel groups rolled by -shift..shift pixels along `dim` (3: width, 2: height); x is (B, C, H, W)."""
        groups = torch.chunk(x, 2 * self.shift + 1, dim=1)
        return torch.cat([torch.roll(g, offset, dims=dim) for g, offset in zip(groups, range(-self.shift, self.shift + 1))], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        y = self.norm(x.flatten(2).transpose(1, 2)).transpose(1, 2).reshape(b, c, h, w)
        y = self.fc1(self._shift(y, 3).flatten(2).transpose(1, 2))                     # shift along width, MLP
        y = F.gelu(self.depthwise(y.transpose(1, 2).reshape(b, -1, h, w)))             # depth-wise conv
        y = self.fc2(self._shift(y, 2).flatten(2).transpose(1, 2))                     # shift along height, MLP
        return x + y.transpose(1, 2).reshape(b, c, h, w)


def tokenized_stage(in_channels: int, out_channels: int) -> nn.Sequential:
    """Patch embedding (3x3 conv, stride 2) followed by one shifted-MLP block."""
    return nn.Sequential(conv_bn_relu(in_channels, out_channels, stride=2), ShiftedMLP(out_channels))


class DecoderLevel(nn.Module):
    """Upsample to the skip's size, match its channels (1x1 conv), add it, refine (conv-BN-ReLU)."""

    def __init__(self, deep_channels: int, skip_channels: int):
        super().__init__()
        self.reduce = nn.Conv2d(deep_channels, skip_channels, 1)
        self.refine = conv_bn_relu(skip_channels, skip_channels)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.refine(self.reduce(x) + skip)


class ProUNeXt(nn.Module):
    def __init__(self, in_channels: int = 3, first_channels: int = 64):
        super().__init__()
        widths = (first_channels, 48, 64, 128, 160)
        self.encoder = nn.ModuleList([
            nn.Sequential(conv_bn_relu(in_channels, widths[0]), conv_bn_relu(widths[0], widths[0])),  # full res
            fused_mbconv_stage(widths[0], widths[1]),
            fused_mbconv_stage(widths[1], widths[2]),
            tokenized_stage(widths[2], widths[3]),
            tokenized_stage(widths[3], widths[4]),
        ])
        self.decoder = nn.ModuleList([DecoderLevel(deep, shallow) for deep, shallow in zip(widths[:0:-1], widths[-2::-1])])
        self.head = nn.Conv2d(widths[0], 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for stage in self.encoder:
            x = stage(x)
            skips.append(x)
        x = skips.pop()
        for level, skip in zip(self.decoder, reversed(skips)):
            x = level(x, skip)
        return self.head(x)
