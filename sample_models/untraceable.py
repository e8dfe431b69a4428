"""Models that fail to trace in different places, for ``qtrace suggest``.

Each docstring says which skip list makes the model trace.
"""

from __future__ import annotations

import torch
from torch import nn

from sample_models.blocks import Gate


class Clamp(nn.Module):
    """Clamps only when its input has large values: tensor-dependent control
    flow. Built with ``dynamic=False`` it is traceable."""

    def __init__(self, dynamic: bool = True) -> None:
        super().__init__()
        self.dynamic = dynamic

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.dynamic and x.max() > 10:
            return x.clamp(max=10)
        return x.clamp(max=10)


class Branch(nn.Module):
    """Traceable itself; holds one untraceable child."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.gate = Gate(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gate(self.conv(x))


class NestedFailure(nn.Module):
    """Answer: ``--skip-name branch.gate``, not its parent ``branch``."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 1)
        self.branch = Branch(4)
        self.head = nn.Conv2d(4, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.branch(self.stem(x)))


class TwoFailures(nn.Module):
    """Answer: ``--skip-name left.gate --skip-name right``."""

    def __init__(self) -> None:
        super().__init__()
        self.left = Branch(4)
        self.middle = nn.Conv2d(4, 4, 1)
        self.right = Clamp()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.right(self.middle(self.left(x)))


class Looping(nn.Module):
    """Fails in its own forward (iterates over a tensor) after calling a child
    that fails too."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = Gate(4)
        self.proj = nn.Conv2d(4, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.inner(x)
        rows = [self.proj(row.unsqueeze(0)) for row in x]
        return torch.cat(rows)


class FailureInsideFailure(nn.Module):
    """Answer: ``--skip-name outer``; skipping ``outer.inner`` as well would be
    redundant."""

    def __init__(self) -> None:
        super().__init__()
        self.outer = Looping()
        self.head = nn.Conv2d(4, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.outer(x))


class SomeInstancesFail(nn.Module):
    """Four ``Clamp`` blocks, only two of them dynamic. Answer:
    ``--skip-name clamps.1 --skip-name clamps.3``, not the class."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(8, 8)
        self.clamps = nn.Sequential(*(Clamp(dynamic=i % 2 == 1) for i in range(4)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.clamps(self.proj(x))


class RepeatedFailingBlock(nn.Module):
    """``depth`` identical untraceable blocks. Answer: ``--skip-class Clamp``."""

    def __init__(self, depth: int = 12) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Linear(8, 8), Clamp()) for _ in range(depth)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return x


class RootFailure(nn.Module):
    """Fails in the root's own forward: no skip can help."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.proj(x)
        if x.sum() > 0:
            x = -x
        return x
