"""Building blocks shared by the sample models."""

from __future__ import annotations

import torch
from torch import nn


class SE(nn.Module):
    """Squeeze-and-excitation: traceable, made only of torch.nn modules and ops."""

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, hidden, 1)
        self.act = nn.ReLU()
        self.fc2 = nn.Conv2d(hidden, channels, 1)
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.gate(self.fc2(self.act(self.fc1(self.pool(x)))))
        return x * scale


class Gate(nn.Module):
    """Skips its work when the input is all zeros: control flow on a tensor value,
    which symbolic tracing cannot follow."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.abs().sum() == 0:
            return x
        return x + self.proj(x)


class TokenMixer(nn.Module):
    """Mixes tokens with a loop over the sequence length, which needs a concrete
    length and so cannot be traced symbolically."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.mix = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = [self.mix(self.norm(x[:, i])) for i in range(len(x[0]))]
        return x + torch.stack(tokens, dim=1)
