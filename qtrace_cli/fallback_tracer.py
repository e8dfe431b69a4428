"""qtrace's own copy of the quantization tracer, for a torch without one.

``torch.ao.quantization`` is deprecated upstream. When it cannot be imported,
qtrace traces with this class instead: the same leaf rule (see `leaf_rule`), the
same root scope, and stack-trace recording switched on as torch's tracer does.
Scope and ``nn_module_stack`` recording come from ``torch.fx.Tracer`` itself.
The report's ``tracer`` field says which class ran, and a test holds this one
equal to torch's on every sample model.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.fx import Tracer
from torch.fx.proxy import Scope

from qtrace_cli.leaf_rule import leaf_reasons


class FallbackQuantizationTracer(Tracer):  # type: ignore[misc]
    """A ``torch.fx.Tracer`` that makes the same leaf decisions as
    ``torch.ao.quantization.fx.tracer.QuantizationTracer``."""

    def __init__(
        self,
        skipped_module_names: list[str],
        skipped_module_classes: list[Callable[..., Any]],
    ) -> None:
        super().__init__()
        self.skipped_module_names = skipped_module_names
        self.skipped_module_classes = skipped_module_classes
        # As torch's tracer: the root's scope has no type, so a qconfig for the
        # whole model is set with the empty path rather than a class.
        self.scope = Scope("", None)
        self.node_name_to_scope: dict[str, tuple[str, type | None]] = {}
        self.record_stack_traces = not torch.fx.config.do_not_emit_stack_traces

    def is_leaf_module(self, m: torch.nn.Module, module_qualified_name: str) -> bool:
        reasons = leaf_reasons(
            m,
            module_qualified_name,
            self.skipped_module_names,
            self.skipped_module_classes,  # type: ignore[arg-type]
        )
        return bool(reasons)

    def create_node(self, *args: Any, **kwargs: Any) -> torch.fx.Node:
        node = super().create_node(*args, **kwargs)
        # torch.fx.Tracer records the scope of every node itself; keep the record
        # should a later torch stop doing so.
        if node.name not in self.node_name_to_scope:
            self.node_name_to_scope[node.name] = (
                self.scope.module_path,
                self.scope.module_type,
            )
        return node
