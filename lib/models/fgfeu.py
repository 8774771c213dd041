"""FgFEU-Net (Wang et al. 2025): a U-Net whose encoder is the first ten convolution layers of VGG16 (its first
four blocks, torchvision's `vgg16().features[:23]`), with dropout 0.07 in the encoder and 0.1 in the decoder.

The ImageNet VGG16 weights come from torchvision's download; where it cannot be reached the model trains from
random initialisation if the config allows it, and the run records why.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
import torchvision

from .pretrained import with_fallback
from .unets import conv_block

VGG16_STAGES = ((0, 4), (4, 9), (9, 16), (16, 23))  # slices of vgg16().features: 2 + 2 + 3 + 3 convolutions
ENCODER_DROPOUT, DECODER_DROPOUT = 0.07, 0.1


class FgFEUNet(nn.Module):
    def __init__(self, vgg16: torchvision.models.VGG):
        super().__init__()
        self.stages = nn.ModuleList([vgg16.features[a:b] for a, b in VGG16_STAGES])
        self.encoder_dropout = nn.Dropout2d(ENCODER_DROPOUT)
        widths = (64, 128, 256, 512)
        self.up = nn.ModuleList([nn.ConvTranspose2d(deep, shallow, 2, stride=2)
                                 for deep, shallow in zip(widths[:0:-1], widths[-2::-1])])
        self.blocks = nn.ModuleList([conv_block(2 * shallow, shallow, DECODER_DROPOUT) for shallow in widths[-2::-1]])
        self.head = nn.Conv2d(widths[0], 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for stage in self.stages:
            x = self.encoder_dropout(stage(x))
            skips.append(x)
        x = skips.pop()
        for up, block, skip in zip(self.up, self.blocks, reversed(skips)):
            x = block(torch.cat([up(x), skip], 1))
        return self.head(x)


def build_fgfeu(model_cfg: dict[str, Any]) -> tuple[nn.Module, str]:
    if model_cfg["encoder_weights"] in (None, "none"):
        return FgFEUNet(torchvision.models.vgg16()), "random initialisation (encoder_weights: none)"
    return with_fallback(lambda: FgFEUNet(torchvision.models.vgg16(weights="IMAGENET1K_V1")),
                         lambda: FgFEUNet(torchvision.models.vgg16()),
                         "ImageNet weights for VGG16 (torchvision)", model_cfg["allow_random_init"], from_hub=False)
