"""Trace a model with the quantization tracer and build its `Report`."""

from __future__ import annotations

import gc
import logging
import sys
import time
import traceback
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import torch

from qtrace_cli.arguments import encode_argument, format_target
from qtrace_cli.leaf_rule import leaf_reasons
from qtrace_cli.locations import Locator
from qtrace_cli.module_tree import ancestors_of, set_training, walk_modules
from qtrace_cli.naming import qualified_name
from qtrace_cli.report import (
    ModuleInfo,
    NodeInfo,
    Report,
    Scope,
    StackEntry,
    StackMode,
    Summary,
    TraceFailure,
)
from qtrace_cli.tracer import base_tracer_class, observing_tracer_class

logger = logging.getLogger(__name__)


def trace_model(
    model: torch.nn.Module,
    skip_names: Iterable[str] = (),
    skip_classes: Iterable[type] = (),
    *,
    target: str | None = None,
    train: bool = False,
    concrete_args: Mapping[str, Any] | None = None,
    stack: StackMode | str = StackMode.USER,
) -> Report:
    """Trace ``model`` as ``prepare_fx`` would and report what the tracer did.

    Args:
        model: The model. It is put in eval mode (training mode with ``train``).
        skip_names: Exact qualified module names, passed to the tracer as is.
        skip_classes: Module classes, passed to the tracer as is.
        target: How the model was named, for the report.
        train: Trace in training mode, as ``prepare_qat_fx`` does.
        concrete_args: ``forward`` arguments to pin, as ``Tracer.trace`` takes.
        stack: How many user frames each node records.

    Returns:
        The report. A failed trace gives ``ok=False`` and the nodes built so far.
    """
    with _gc_paused():
        return _trace(
            model,
            list(skip_names),
            list(skip_classes),
            target,
            train,
            concrete_args,
            StackMode(stack),
        )


@contextmanager
def _gc_paused() -> Iterator[None]:
    # Tracing and reporting create a few objects per node and almost no
    # reference cycles, yet each cyclic collection walks every object of the
    # growing graph: about a third of the time on a graph of thousands of
    # nodes. Collection resumes when the report is built.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _trace(
    model: torch.nn.Module,
    names: list[str],
    classes: list[type],
    target: str | None,
    train: bool,
    concrete_args: Mapping[str, Any] | None,
    stack: StackMode,
) -> Report:
    locator = Locator(stack)
    set_training(model, train)

    tracer_cls = observing_tracer_class(base_tracer_class())
    tracer = tracer_cls(names, classes, locator)
    failure: BaseException | None = None
    locator.stop = sys._getframe()
    started = time.perf_counter()
    try:
        tracer.trace(model, concrete_args=dict(concrete_args or {}) or None)
    except KeyboardInterrupt:
        raise
    except BaseException as err:  # the model's code may raise anything
        failure = err
    elapsed = time.perf_counter() - started
    logger.info(
        "traced %s with %s: %d nodes in %.3f s%s",
        target or type(model).__name__,
        type(tracer).__mro__[1].__name__,
        len(tracer.graph.nodes) if hasattr(tracer, "graph") else 0,
        elapsed,
        "" if failure is None else f", failed with {type(failure).__name__}",
    )

    nodes = _nodes(tracer)
    modules = _modules(model, tracer, names, classes)
    error = None if failure is None else _failure(failure, tracer, locator, modules)
    return Report(
        target=target or qualified_name(type(model)),
        model_class=qualified_name(type(model)),
        torch_version=str(torch.__version__),
        tracer=qualified_name(base_tracer_class()),
        mode="train" if train else "eval",
        skip_names=names,
        skip_classes=[qualified_name(cls) for cls in classes],
        ok=failure is None,
        error=error,
        nodes=nodes,
        modules=modules,
        summary=_summary(nodes, modules, elapsed),
        concrete_args=dict(concrete_args or {}),
        stack_mode=stack.value,
    )


def _nodes(tracer: Any) -> list[NodeInfo]:
    graph = getattr(tracer, "graph", None)
    if graph is None:
        return []

    scopes: dict[str, tuple[str, Any]] = tracer.node_name_to_scope
    stacks = tracer.node_stacks
    # Thousands of nodes share a handful of types, targets and stack levels;
    # name each once.
    type_names: dict[Any, str] = {}
    entries: dict[tuple[str, str, Any], StackEntry] = {}
    scope_rows: dict[tuple[str, Any], Scope] = {}

    def type_name(cls: Any) -> str:
        name = type_names.get(cls)
        if name is None:
            name = type_names[cls] = qualified_name(cls)
        return name

    rows = []
    for index, node in enumerate(graph.nodes):
        scope_key = scopes.get(node.name, ("", None))
        scope = scope_rows.get(scope_key)
        if scope is None:
            path, scope_type = scope_key
            scope = Scope(path, None if scope_type is None else type_name(scope_type))
            scope_rows[scope_key] = scope

        module_stack = []
        for key, (path, module_type) in (
            node.meta.get("nn_module_stack") or {}
        ).items():
            entry_key = (key, path, module_type)
            entry = entries.get(entry_key)
            if entry is None:
                entry = entries[entry_key] = StackEntry(
                    key, path, type_name(module_type)
                )
            module_stack.append(entry)

        locations = stacks.get(node.name, ())
        rows.append(
            NodeInfo(
                index=index,
                name=node.name,
                op=node.op,
                target=format_target(node),
                args=[encode_argument(a) for a in node.args],
                kwargs={k: encode_argument(v) for k, v in node.kwargs.items()},
                users=[user.name for user in node.users],
                scope=scope,
                module_stack=module_stack,
                location=locations[-1] if locations else None,
                stack=list(locations) if len(locations) > 1 else [],
            )
        )
    return rows


def _modules(
    model: torch.nn.Module,
    tracer: Any,
    skip_names: Sequence[str],
    skip_classes: Sequence[type],
) -> list[ModuleInfo]:
    decisions: dict[str, bool] = tracer.leaf_decisions
    calls: dict[str, int] = getattr(tracer, "num_calls", {})

    # A container is "used" when one of its descendants was called.
    has_called_below = ancestors_of(decisions)

    state: dict[str, str] = {}
    rows = []
    for path, module in walk_modules(model):
        reasons: list[str] = []
        parent = path.rpartition(".")[0]
        if not path:
            decision = "root"
        elif path in decisions:
            decision = "leaf" if decisions[path] else "traced"
            reasons = leaf_reasons(module, path, skip_names, skip_classes)
        elif state.get(parent) in ("leaf", "inside-leaf"):
            decision = "inside-leaf"
        elif path in has_called_below and isinstance(
            module, (torch.nn.ModuleList, torch.nn.ModuleDict)
        ):
            decision = "container"
        else:
            decision = "not-called"
        state[path] = decision
        rows.append(
            ModuleInfo(
                path=path,
                type=qualified_name(type(module)),
                decision=decision,
                reasons=reasons,
                calls=calls.get(path, 0),
            )
        )
    return rows


def _failure(
    err: BaseException,
    tracer: Any,
    locator: Locator,
    modules: list[ModuleInfo],
) -> TraceFailure:
    decision = {m.path: m.decision for m in modules}
    stack = tracer.failure_stack_for(err) or []
    # The module whose forward was running: the innermost one traced through
    # (a leaf on the stack failed while its call node was being made).
    traced = [path for _, path, _ in stack if decision.get(path) != "leaf"]
    module_path = traced[-1] if traced else ""

    message = str(err)
    if isinstance(err, RecursionError):
        message = (
            f"{message}. The model nests modules too deeply for Python's "
            f"recursion limit ({sys.getrecursionlimit()} frames; tracing takes "
            "several frames per level of nesting); prepare_fx fails on it the "
            "same way. Flatten the nesting, or raise the limit with "
            "sys.setrecursionlimit before tracing."
        )
    suggestion = f"--skip-name {module_path}" if module_path else None
    return TraceFailure(
        type=qualified_name(type(err)),
        message=message,
        module_path=module_path,
        location=locator.innermost_in_traceback(err.__traceback__),
        suggestion=suggestion,
        traceback="".join(traceback.format_exception(err)),
    )


def _summary(
    nodes: list[NodeInfo], modules: list[ModuleInfo], seconds: float
) -> Summary:
    ops = Counter(node.op for node in nodes)
    decisions = Counter(module.decision for module in modules)
    return Summary(
        nodes=len(nodes),
        ops=dict(ops),
        leaf_modules=decisions["leaf"],
        traced_modules=decisions["traced"],
        trace_seconds=round(seconds, 6),
    )
