"""A synthetic residual model of N blocks, about 9 graph nodes per block.

Each block runs conv, batch norm, relu, cat, slice, mul and add, so N=1000
gives a graph of about 9,000 nodes. Weights are random; nothing is downloaded.
"""

from __future__ import annotations

import torch
from torch import nn


class Block(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 1)
        self.bn = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.bn(self.conv(x)))
        both = torch.cat([x, y], dim=1)
        half = both[:, : x.shape[1]]
        return half * 0.5 + x


class Synthetic(nn.Module):
    def __init__(self, blocks: int = 1000, channels: int = 4) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*(Block(channels) for _ in range(blocks)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x)


def build(blocks: int = 1000) -> nn.Module:
    """The model with ``blocks`` blocks."""
    return Synthetic(blocks)
