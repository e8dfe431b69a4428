"""torch's ``QuantizationTracer``, subclassed only to watch what it decides.

`ObservingTracer` classes add no logic of their own to tracing: every leaf
decision is the return value of the real ``is_leaf_module``, the graph is the
graph it builds, and the scopes and module stacks are the ones it records. They
remember each decision, the module stack when an exception passes through a
module call, and the user's source line of each node.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Callable
from functools import cache
from typing import Any

import torch

from qtrace_cli.locations import Locator
from qtrace_cli.naming import qualified_name
from qtrace_cli.report import Location

FALLBACK_ENV = "QTRACE_TRACER"
"""Set to ``fallback`` to trace with qtrace's own tracer even when torch ships
one: a preview of a torch without ``torch.ao.quantization``."""


@cache
def base_tracer_class() -> type:
    """torch's ``QuantizationTracer``, or qtrace's fallback when torch lacks it
    (or when ``QTRACE_TRACER=fallback`` asks for it)."""
    if os.environ.get(FALLBACK_ENV) == "fallback":
        from qtrace_cli.fallback_tracer import FallbackQuantizationTracer

        return FallbackQuantizationTracer
    try:
        with warnings.catch_warnings():
            # The package announces its deprecation on import; qtrace says which
            # tracer ran in every report instead.
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            from torch.ao.quantization.fx.tracer import QuantizationTracer
    except ImportError:
        from qtrace_cli.fallback_tracer import FallbackQuantizationTracer

        return FallbackQuantizationTracer
    return QuantizationTracer  # type: ignore[no-any-return]


@cache
def observing_tracer_class(base: type) -> type:
    """A subclass of ``base`` that records what the tracer did."""

    class ObservingTracer(base):  # type: ignore[misc]
        def __init__(
            self,
            skipped_module_names: list[str],
            skipped_module_classes: list[Callable[..., Any]],
            locator: Locator,
        ) -> None:
            super().__init__(skipped_module_names, skipped_module_classes)
            # qtrace records source lines itself (see locations.py); torch's own
            # per-node traceback formatting would only cost time.
            self.record_stack_traces = False
            self.locator = locator
            self.leaf_decisions: dict[str, bool] = {}
            self.node_stacks: dict[str, tuple[Location, ...]] = {}
            self.failure_stack: list[tuple[str, str, str]] = []
            self._failure_seen: BaseException | None = None

        def is_leaf_module(
            self, m: torch.nn.Module, module_qualified_name: str
        ) -> bool:
            leaf: bool = super().is_leaf_module(m, module_qualified_name)
            self.leaf_decisions[module_qualified_name] = leaf
            return leaf

        def call_module(
            self,
            m: torch.nn.Module,
            forward: Callable[..., Any],
            args: tuple[Any, ...],
            kwargs: dict[str, Any],
        ) -> Any:
            try:
                return super().call_module(m, forward, args, kwargs)
            except BaseException as err:
                # The innermost call sees the exception first; outer calls
                # leave that record alone.
                if err is not self._failure_seen:
                    self._failure_seen = err
                    self.failure_stack = [
                        (key, path, qualified_name(module_type))
                        for key, (path, module_type) in self.module_stack.items()
                    ]
                raise

        def create_node(self, *args: Any, **kwargs: Any) -> torch.fx.Node:
            node = super().create_node(*args, **kwargs)
            stack = self.locator.capture(sys._getframe(1))
            if stack:
                self.node_stacks[node.name] = stack
            return node

        def failure_stack_for(
            self, err: BaseException
        ) -> list[tuple[str, str, str]] | None:
            """The module stack when ``err`` left the innermost module call."""
            cause: BaseException | None = err
            while cause is not None:
                if cause is self._failure_seen:
                    return self.failure_stack
                cause = cause.__cause__ or cause.__context__
            return None

    ObservingTracer.__qualname__ = f"Observing{base.__name__}"
    return ObservingTracer
