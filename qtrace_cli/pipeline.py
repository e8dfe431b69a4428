"""From a TARGET string and flags to a `Report`: load, resolve skips, trace.

This is the path every command shares. It raises `UsageError` and `LoadError`
for bad input and never prints: whatever the model prints while it is imported,
built or traced is sent to stderr, so stdout carries the report alone.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from qtrace_cli.errors import UsageError
from qtrace_cli.report import Report, StackMode, read_report

# The modules that need torch are imported where they are used, so that
# comparing two saved reports (`report_from` on JSON files) never imports it.
if TYPE_CHECKING:
    import torch

    from qtrace_cli.skips import ResolvedSkips


@dataclass(frozen=True)
class TraceRequest:
    """What the user asked to trace, as the flags gave it."""

    target: str
    skip_names: Sequence[str] = ()
    skip_classes: Sequence[str] = ()
    init: str | None = None
    train: bool = False
    concrete_args: Sequence[str] = ()
    stack: StackMode = StackMode.USER


@dataclass
class TraceOutcome:
    """The report, and warnings the user should see beside it."""

    report: Report
    warnings: list[str] = field(default_factory=list)


def parse_concrete_args(items: Sequence[str]) -> dict[str, Any]:
    """Parse ``--concrete-arg NAME=JSON`` values.

    Raises:
        UsageError: when an item has no ``=`` or its value is not JSON.
    """
    pinned: dict[str, Any] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        name = name.strip()
        if not sep or not name.isidentifier():
            raise UsageError(
                f"--concrete-arg {item!r} is not NAME=JSON; write it as "
                "--concrete-arg augment=false."
            )
        try:
            pinned[name] = json.loads(raw)
        except json.JSONDecodeError:
            raise UsageError(
                f"--concrete-arg {item!r}: {raw!r} is not a JSON value; write "
                'true, false, null, a number or a quoted string (name="mean").'
            ) from None
    return pinned


def check_forward_accepts(model: Any, pinned: dict[str, Any]) -> None:
    """Fail early when a pinned name is not a parameter of ``forward``.

    Raises:
        UsageError: naming the parameters ``forward`` has.
    """
    if not pinned:
        return
    try:
        params = list(inspect.signature(model.forward).parameters)
    except (TypeError, ValueError):
        return
    unknown = [name for name in pinned if name not in params]
    if unknown:
        raise UsageError(
            f"--concrete-arg {unknown[0]} is not a parameter of "
            f"{type(model).__name__}.forward; its parameters are: "
            + ", ".join(params)
            + "."
        )


@dataclass
class PreparedModel:
    """A loaded model with its skips resolved, ready to trace."""

    target: str
    model: torch.nn.Module
    skips: ResolvedSkips
    concrete_args: dict[str, Any]

    @property
    def warnings(self) -> list[str]:
        return self.skips.warnings


def load_for_tracing(
    target: str,
    skip_names: Sequence[str] = (),
    skip_classes: Sequence[str] = (),
    *,
    init: str | None = None,
    concrete_args: Sequence[str] = (),
) -> PreparedModel:
    """Parse the flags, load the model and resolve its skips.

    Raises:
        UsageError: for a malformed TARGET, ``--init``, skip or concrete arg.
        LoadError: when the model cannot be imported or built.
    """
    from qtrace_cli.skips import resolve_skips
    from qtrace_cli.target import load_model, parse_init, parse_target

    spec = parse_target(target)
    parsed_init = parse_init(init)
    pinned = parse_concrete_args(concrete_args)
    with contextlib.redirect_stdout(sys.stderr):
        loaded = load_model(spec, parsed_init)
        check_forward_accepts(loaded.model, pinned)
        skips = resolve_skips(loaded.model, skip_names, skip_classes)
    return PreparedModel(spec.text, loaded.model, skips, pinned)


def run_trace(request: TraceRequest) -> TraceOutcome:
    """Load the target, resolve its skips and trace it.

    Raises:
        UsageError: for a malformed TARGET, ``--init``, skip or concrete arg.
        LoadError: when the model cannot be imported or built.
    """
    from qtrace_cli.trace import trace_model

    prepared = load_for_tracing(
        request.target,
        request.skip_names,
        request.skip_classes,
        init=request.init,
        concrete_args=request.concrete_args,
    )
    with contextlib.redirect_stdout(sys.stderr):
        report = trace_model(
            prepared.model,
            prepared.skips.names,
            prepared.skips.classes,
            target=prepared.target,
            train=request.train,
            concrete_args=prepared.concrete_args,
            stack=request.stack,
        )
    return TraceOutcome(report=report, warnings=prepared.warnings)


def report_from(text: str, request: TraceRequest) -> TraceOutcome:
    """A saved report when ``text`` names a JSON file, else a trace of the
    TARGET ``text`` with the request's flags.

    Raises:
        UsageError: for an unreadable report, or bad flags.
        LoadError: when the model cannot be imported or built.
    """
    if text.endswith(".json") or (os.path.isfile(text) and not text.endswith(".py")):
        return TraceOutcome(report=read_report(text))
    return run_trace(replace(request, target=text))
