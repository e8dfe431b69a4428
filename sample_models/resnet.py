"""A tiny residual CNN that traces as it is.

It has what makes the leaf table interesting: an ``nn.Sequential`` stem (traced
through), a fused conv + relu from ``torch.ao.nn.intrinsic`` (a leaf), a module
called twice, an SE block (traced through) and a head that is never called.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.ao.nn.intrinsic import ConvReLU2d

from sample_models.blocks import SE


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a skip connection."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = ConvReLU2d(nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU())
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.bn = nn.BatchNorm2d(channels)
        self.se = SE(channels)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn(self.conv2(self.conv1(x)))
        out = self.se(out)
        return self.relu(out + x)


class TinyResNet(nn.Module):
    """Stem, two residual blocks sharing one pooling module, and a classifier."""

    def __init__(self, num_classes: int = 10, width: int = 8) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.stem = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1),
            nn.BatchNorm2d(width),
            nn.ReLU(),
        )
        self.layer1 = BasicBlock(width)
        self.layer2 = BasicBlock(width)
        self.pool = nn.MaxPool2d(2)
        self.head = nn.Linear(width, num_classes)
        self.aux_head = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = self.pool(self.layer1(x))
        x = self.pool(self.layer2(x))
        x = torch.flatten(x.mean((2, 3), keepdim=True), 1)
        return self.head(x)
