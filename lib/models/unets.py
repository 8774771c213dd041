"""The from-scratch U-Net family of the paper's ladder (Table II rows 1-5), one configurable network:

- `unet`: the classic encoder-decoder (two 3x3 conv-BN-ReLU per level, max-pool down, transposed conv up);
- attention gates (Oktay et al. 2018) weigh each skip connection by where the decoder looks (spatial), and a
  squeeze-excitation block (timm's `SEModule`) re-weighs the channels after every decoder level (channel);
- `aspp` puts smp's atrous spatial pyramid pooling in the bottleneck (multi-scale context);
- `dropout` adds Dropout2d after every block; MC-Dropout keeps it on at inference (active learning).
smp has no plain U-Net with attention gates, so this is written here; the blocks it has are reused.
"""
from __future__ import annotations

import torch
import torch.nn as nn
from segmentation_models_pytorch.decoders.deeplabv3.decoder import ASPP
from timm.layers import SEModule


def conv_block(in_channels: int, out_channels: int, dropout: float) -> nn.Sequential:
    layers: list[nn.Module] = []
    for channels in (in_channels, out_channels):
        layers += [nn.Conv2d(channels, out_channels, 3, padding=1, bias=False), nn.BatchNorm2d(out_channels),
                   nn.ReLU(inplace=True)]
    if dropout:
        layers.append(nn.Dropout2d(dropout))
    return nn.Sequential(*layers)


class AttentionGate(nn.Module):
    """Additive attention: skip * sigmoid(psi(ReLU(W_g g + W_x x))), g the coarser decoder signal."""

    def __init__(self, gate_channels: int, skip_channels: int):
        super().__init__()
        inner = max(skip_channels // 2, 1)
        self.gate = nn.Sequential(nn.Conv2d(gate_channels, inner, 1, bias=False), nn.BatchNorm2d(inner))
        self.skip = nn.Sequential(nn.Conv2d(skip_channels, inner, 1, bias=False), nn.BatchNorm2d(inner))
        self.psi = nn.Sequential(nn.ReLU(inplace=True), nn.Conv2d(inner, 1, 1), nn.Sigmoid())

    def forward(self, gate: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return skip * self.psi(self.gate(gate) + self.skip(skip))


class UNet(nn.Module):
    def __init__(self, in_channels: int = 3, base_channels: int = 32, depth: int = 4, attention: bool = False,
                 aspp: bool = False, dropout: float = 0.0):
        super().__init__()
        widths = [base_channels * 2 ** level for level in range(depth + 1)]
        self.down = nn.ModuleList([conv_block(c_in, c_out, dropout)
                                   for c_in, c_out in zip([in_channels] + widths[:-2], widths[:-1])])
        self.pool = nn.MaxPool2d(2)
        bottom = conv_block(widths[-2], widths[-1], dropout)
        self.bottleneck = (nn.Sequential(bottom, ASPP(widths[-1], widths[-1], (2, 4, 6), separable=False,
                                                      dropout=dropout)) if aspp else bottom)
        ups, gates, blocks, channel_attention = [], [], [], []
        for deep, shallow in zip(widths[:0:-1], widths[-2::-1]):
            ups.append(nn.ConvTranspose2d(deep, shallow, 2, stride=2))
            gates.append(AttentionGate(shallow, shallow) if attention else nn.Identity())
            blocks.append(conv_block(2 * shallow, shallow, dropout))
            channel_attention.append(SEModule(shallow, rd_ratio=0.25) if attention else nn.Identity())
        self.up, self.gates = nn.ModuleList(ups), nn.ModuleList(gates)
        self.blocks, self.channel_attention = nn.ModuleList(blocks), nn.ModuleList(channel_attention)
        self.attention = attention
        self.head = nn.Conv2d(widths[0], 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = self.pool(x)
        x = self.bottleneck(x)
        for up, gate, block, channel_attention, skip in zip(self.up, self.gates, self.blocks,
                                                            self.channel_attention, reversed(skips)):
            x = up(x)
            skip = gate(x, skip) if self.attention else skip
            x = channel_attention(block(torch.cat([x, skip], 1)))
        return self.head(x)
