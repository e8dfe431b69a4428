"""Models built by factories and flags, to exercise ``--init`` and
``--concrete-arg``."""

from __future__ import annotations

import torch
from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU}


def build_mlp(width: int = 16, depth: int = 2, activation: str = "relu") -> nn.Module:
    """An MLP of ``depth`` hidden layers; takes keyword arguments via ``--init``."""
    if activation not in ACTIVATIONS:
        raise ValueError(
            f"unknown activation {activation!r}; choose from {sorted(ACTIVATIONS)}"
        )
    layers: list[nn.Module] = [nn.Linear(8, width), ACTIVATIONS[activation]()]
    for _ in range(depth - 1):
        layers += [nn.Linear(width, width), ACTIVATIONS[activation]()]
    layers.append(nn.Linear(width, 2))
    return nn.Sequential(*layers)


class Augmented(nn.Module):
    """Branches on a boolean ``forward`` argument: traceable only when it is pinned
    with ``--concrete-arg augment=false``."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor, augment: bool = False) -> torch.Tensor:
        if augment:
            x = x.flip(-1)
        return self.body(x)


class Zoo:
    """Named model variants, for dotted attributes (``factory:Zoo.small``)."""

    @staticmethod
    def small() -> nn.Module:
        return build_mlp(width=8, depth=1)

    large = staticmethod(lambda: build_mlp(width=64, depth=4))


prebuilt = build_mlp(width=4, depth=1)
"""A module instance, used as it is."""
