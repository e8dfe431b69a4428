"""A model loaded by file path (``sample_models/by_path/tiny_cnn.py:TinyCNN``);
it imports its layers from a sibling file, not from a package."""

from __future__ import annotations

import torch
from tiny_layers import ConvBlock  # type: ignore[import-not-found]
from torch import nn


class TinyCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.block1 = ConvBlock(3, 4)
        self.block2 = ConvBlock(4, 4)
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.block2(self.block1(x))).flatten(1)
