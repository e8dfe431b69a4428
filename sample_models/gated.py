"""A model that traces only when one nested block is skipped.

``stages.1.gate`` branches on a tensor value. Skipping it
(``--skip-name stages.1.gate``) keeps the rest of the model quantizable;
skipping its parent ``stages.1`` would work too, but costs more.
"""

from __future__ import annotations

import torch
from torch import nn

from sample_models.blocks import SE, Gate


class Stage(nn.Module):
    """A conv, an optional gate and an SE block."""

    def __init__(self, channels: int, gated: bool) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.act = nn.ReLU()
        self.gate = Gate(channels) if gated else nn.Identity()
        self.se = SE(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.se(self.gate(self.act(self.conv(x))))


class GatedNet(nn.Module):
    """Three stages; only the middle one is gated. Adds noise in training mode."""

    def __init__(self, channels: int = 8) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, channels, 3, padding=1)
        self.stages = nn.ModuleList([Stage(channels, gated=i == 1) for i in range(3)])
        self.head = nn.Conv2d(channels, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        if self.training:
            x = x + 0.01 * torch.randn_like(x)
        for stage in self.stages:
            x = stage(x)
        return self.head(x)
