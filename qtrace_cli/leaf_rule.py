"""The clauses of ``QuantizationTracer.is_leaf_module``, named one by one.

The decision in a report always comes from the tracer that ran. These clauses
only explain it: for each module the tracer asked about, the report lists every
clause that holds, in the tracer's order. The fallback tracer (for a torch that
no longer ships ``torch.ao.quantization``) decides with them too, and a test
holds the two equal.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import torch

REASONS = ("torch-module", "skip-name", "skip-class", "fused")
"""Every clause name, in the order the tracer evaluates them."""


def _fused_base() -> type | None:
    try:
        from torch.ao.nn.intrinsic import _FusedModule
    except ImportError:
        return None
    fused: type = _FusedModule
    return fused


_FUSED_BASE = _fused_base()


def leaf_reasons(
    module: torch.nn.Module,
    path: str,
    skip_names: Collection[str],
    skip_classes: Sequence[type],
) -> list[str]:
    """Return the clauses of the leaf rule that hold for ``module`` at ``path``."""
    reasons = []
    defined_in_torch = module.__module__.startswith(
        "torch.nn"
    ) or module.__module__.startswith("torch.ao.nn")
    if defined_in_torch and not isinstance(module, torch.nn.Sequential):
        reasons.append("torch-module")
    if path in skip_names:
        reasons.append("skip-name")
    if type(module) in skip_classes:
        reasons.append("skip-class")
    if _FUSED_BASE is not None and isinstance(module, _FUSED_BASE):
        reasons.append("fused")
    return reasons
