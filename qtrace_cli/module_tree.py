"""Walk a module tree without recursion.

``nn.Module.named_modules()`` recurses once per level, so a model nested deeper
than the recursion limit cannot even be listed with it. This walk gives the same
rows in the same order (pre-order, each module once, first path wins) with an
explicit stack, so qtrace can still report such a model.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def walk_modules(root: torch.nn.Module) -> Iterator[tuple[str, torch.nn.Module]]:
    """Yield ``(path, module)`` in ``root.named_modules()`` order."""
    seen: set[int] = set()
    stack: list[tuple[str, torch.nn.Module]] = [("", root)]
    while stack:
        path, module = stack.pop()
        if id(module) in seen:
            continue
        seen.add(id(module))
        yield path, module

        children = [
            (f"{path}.{name}" if path else name, child)
            for name, child in module._modules.items()
            if child is not None
        ]
        stack.extend(reversed(children))


def set_training(root: torch.nn.Module, training: bool) -> None:
    """Put every module in training or eval mode, as ``Module.train`` does.

    ``Module.train`` recurses per level; when the tree is too deep for it, the
    flags are set with a flat walk instead (custom ``train`` overrides are then
    not called, which only matters for models that deep).
    """
    try:
        root.train(training)
    except RecursionError:
        for _, module in walk_modules(root):
            module.training = training


def ancestors_of(paths: Iterable[str]) -> set[str]:
    """Every proper ancestor path of ``paths`` ("" for the root excluded)."""
    found: set[str] = set()
    for path in paths:
        while "." in path:
            path = path.rpartition(".")[0]
            if path in found:
                break
            found.add(path)
    return found


def in_subtree(path: str, prefix: str) -> bool:
    """Whether module ``path`` is ``prefix`` or lies below it ("" is the root)."""
    if not prefix:
        return True
    return path == prefix or path.startswith(prefix + ".")
