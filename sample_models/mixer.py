"""A model whose custom block class fails to trace in every instance.

Every ``TokenMixer`` loops over the sequence length; the answer is
``--skip-class TokenMixer`` rather than four ``--skip-name`` flags.
"""

from __future__ import annotations

import torch
from torch import nn

from sample_models.blocks import TokenMixer


class MixerLayer(nn.Module):
    """Token mixing followed by a channel MLP."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.tokens = TokenMixer(dim)
        self.channels = nn.Sequential(
            nn.Linear(dim, dim * 2), nn.GELU(), nn.Linear(dim * 2, dim)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.tokens(x)
        return x + self.channels(x)


class Mixer(nn.Module):
    """``depth`` mixer layers over ``dim`` features."""

    def __init__(self, dim: int = 16, depth: int = 4) -> None:
        super().__init__()
        self.embed = nn.Linear(dim, dim)
        self.layers = nn.Sequential(*(MixerLayer(dim) for _ in range(depth)))
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.layers(self.embed(x)))
