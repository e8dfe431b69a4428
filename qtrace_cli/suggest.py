"""Find the skip list that makes a model trace: deepest, 1-minimal, verified.

The search traces, skips the innermost module that was being traced through
when the trace failed, and repeats. A failing module whose class has other
instances in the model is tried as a whole class first, so a model with many
copies of one untraceable block costs one trace, not one per copy. Then the
list is made 1-minimal (each entry is dropped in turn; those the model traces
without are removed), a class is narrowed to the instances that need it, and
the answer is checked once more with the plain quantization tracer.
"""

from __future__ import annotations

import inspect
import json
import logging
import re
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from qtrace_cli.module_tree import in_subtree, walk_modules
from qtrace_cli.naming import qualified_name, short_name
from qtrace_cli.report import Location, Report, StackMode
from qtrace_cli.trace import trace_model
from qtrace_cli.tracer import base_tracer_class

SUGGEST_SCHEMA = "qtrace.suggest/1"

logger = logging.getLogger(__name__)

Progress = Callable[[int, str], None]
"""Called before each trace with the trace count so far and what it checks."""


@dataclass
class Failure:
    """One failure the search found, and the module it skipped for it."""

    module_path: str
    type: str
    message: str
    location: Location | None
    module_type: str | None = None


@dataclass
class SkipCost:
    """What one skip entry keeps out of quantization."""

    entry: str
    """The flag, e.g. ``--skip-name layers.1.gate``."""
    modules: int
    """Skipped module instances."""
    inner_modules: Counter[str] = field(default_factory=Counter)
    """Classes of the submodules inside them, which stay in float too."""
    ops_seen: int = 0
    """Operations inside them that the failed traces reached before failing: a
    lower bound, since tracing stops where a module cannot be traced."""


@dataclass
class Suggestion:
    """The answer of `suggest`: the skips, why, and what they cost."""

    ok: bool
    skip_names: list[str]
    skip_classes: list[type]
    failures: list[Failure]
    traces: int
    seconds: float
    given_names: list[str] = field(default_factory=list)
    given_classes: list[type] = field(default_factory=list)
    root_failure: Failure | None = None
    """Set when the failure is in the root's own forward, where no skip helps."""
    hint: str | None = None
    """What to do instead when no skip list helps."""
    costs: list[SkipCost] = field(default_factory=list)
    report: Report | None = None
    """The report of the last trace, with the answer applied."""

    def to_dict(self) -> dict[str, Any]:
        """The ``qtrace.suggest/1`` JSON document."""
        return {
            "schema": SUGGEST_SCHEMA,
            "ok": self.ok,
            "skip_names": self.skip_names,
            "skip_classes": [qualified_name(c) for c in self.skip_classes],
            "failures": [
                {
                    "module_path": f.module_path,
                    "type": f.type,
                    "message": f.message,
                    "location": None if f.location is None else vars(f.location),
                }
                for f in self.failures
            ],
            "traces": self.traces,
            "seconds": round(self.seconds, 6),
            "root_failure": self.root_failure is not None,
            "hint": self.hint,
            "costs": [
                {
                    "entry": c.entry,
                    "modules": c.modules,
                    "inner_modules": dict(c.inner_modules),
                    "ops_seen": c.ops_seen,
                }
                for c in self.costs
            ],
        }


class _Search:
    """Runs and counts the traces of one suggest call."""

    def __init__(
        self,
        model: torch.nn.Module,
        train: bool,
        concrete_args: Mapping[str, Any] | None,
        progress: Progress | None,
    ) -> None:
        self.model = model
        self.train = train
        self.concrete_args = dict(concrete_args or {})
        self.progress = progress
        self.traces = 0
        self._seen: dict[tuple[frozenset[str], frozenset[int]], Report] = {}

    def trace(self, names: Sequence[str], classes: Sequence[type], why: str) -> Report:
        """Trace with these skips; a skip set traced before is not traced again."""
        key = (frozenset(names), frozenset(id(c) for c in classes))
        known = self._seen.get(key)
        if known is not None:
            return known
        if self.progress is not None:
            self.progress(self.traces, why)
        logger.info("trace %d: %s", self.traces + 1, why)
        self.traces += 1
        report = trace_model(
            self.model,
            names,
            classes,
            train=self.train,
            concrete_args=self.concrete_args,
            stack=StackMode.NONE,
        )
        self._seen[key] = report
        return report

    def failed_reports(self) -> list[Report]:
        """Every report of a trace that failed, in the order they ran."""
        return [report for report in self._seen.values() if not report.ok]

    def traces_ok(
        self, names: Sequence[str], classes: Sequence[type], why: str
    ) -> bool:
        return self.trace(names, classes, why).ok

    def verify(self, names: Sequence[str], classes: Sequence[type]) -> bool:
        """Trace with the plain quantization tracer, no observation at all."""
        if self.progress is not None:
            self.progress(self.traces, "checking the answer with the plain tracer")
        logger.info(
            "trace %d: checking the answer with the plain tracer", self.traces + 1
        )
        self.traces += 1
        tracer = base_tracer_class()(list(names), list(classes))
        # Stack traces change no node and no decision, and torch's recording of
        # them costs a heavy import on first use.
        tracer.record_stack_traces = False
        try:
            tracer.trace(self.model, concrete_args=self.concrete_args or None)
        except Exception:
            return False
        return True


def suggest_skips(
    model: torch.nn.Module,
    skip_names: Sequence[str] = (),
    skip_classes: Sequence[type] = (),
    *,
    train: bool = False,
    concrete_args: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
) -> Suggestion:
    """Search for the skips that make ``model`` trace, keeping the given ones."""
    started = time.perf_counter()
    search = _Search(model, train, concrete_args, progress)
    given_names, given_classes = list(skip_names), list(skip_classes)
    names, classes = list(given_names), list(given_classes)
    failures: list[Failure] = []
    path_types = {path: type(module) for path, module in walk_modules(model)}
    instances: dict[type, list[str]] = {}
    for path, cls in path_types.items():
        if path:
            instances.setdefault(cls, []).append(path)

    report = search.trace(names, classes, "tracing as given")
    root_failure: Failure | None = None
    stuck: Failure | None = None
    limit = len(path_types) + 1
    while not report.ok and len(failures) < limit:
        error = report.error
        assert error is not None
        failing_type = path_types.get(error.module_path or "")
        failure = Failure(
            module_path=error.module_path or "",
            type=error.type,
            message=error.message,
            location=error.location,
            module_type=None if failing_type is None else qualified_name(failing_type),
        )
        failures.append(failure)
        if not error.module_path:
            root_failure = failure
            break
        if error.module_path in names:
            stuck = failure
            break

        cls = path_types[error.module_path]
        user_class = not cls.__module__.startswith("torch.")
        if user_class and len(instances.get(cls, ())) > 1 and cls not in classes:
            classes.append(cls)
            why = f"skipping class {cls.__name__}"
        else:
            names.append(error.module_path)
            why = f"skipping {error.module_path}"
        report = search.trace(names, classes, why)

    if not report.ok:
        return Suggestion(
            ok=False,
            skip_names=names,
            skip_classes=classes,
            failures=failures,
            traces=search.traces,
            seconds=time.perf_counter() - started,
            given_names=given_names,
            given_classes=given_classes,
            root_failure=root_failure,
            hint=_stuck_hint(stuck) if stuck else _root_hint(model, root_failure),
            report=report,
        )

    names, classes = _minimise(search, names, classes, given_names, given_classes)
    names, classes = _narrow_classes(
        search, report, names, classes, given_names, given_classes, instances
    )
    verified = search.verify(names, classes)
    final = search.trace(names, classes, "recording the answer")
    return Suggestion(
        ok=verified and final.ok,
        skip_names=names,
        skip_classes=classes,
        failures=failures,
        traces=search.traces,
        seconds=time.perf_counter() - started,
        given_names=given_names,
        given_classes=given_classes,
        costs=_costs(
            final, search.failed_reports(), names, classes, given_names, given_classes
        ),
        report=final,
    )


def _minimise(
    search: _Search,
    names: list[str],
    classes: list[type],
    given_names: list[str],
    given_classes: list[type],
) -> tuple[list[str], list[type]]:
    """Drop every found entry the model traces without (1-minimality)."""
    for name in [n for n in names if n not in given_names]:
        rest = [n for n in names if n != name]
        if search.traces_ok(rest, classes, f"is {name} needed?"):
            names = rest
    for cls in [c for c in classes if c not in given_classes]:
        rest_classes = [c for c in classes if c is not cls]
        if search.traces_ok(names, rest_classes, f"is class {cls.__name__} needed?"):
            classes = rest_classes
    return names, classes


def _narrow_classes(
    search: _Search,
    report: Report,
    names: list[str],
    classes: list[type],
    given_names: list[str],
    given_classes: list[type],
    instances: dict[type, list[str]],
) -> tuple[list[str], list[type]]:
    """Replace a found class by its failing instances unless all of them fail."""
    # Only instances the tracer reached as skipped leaves can fail; the rest sit
    # inside other skipped modules or are never called.
    reached = {
        m.path
        for m in report.modules
        if m.decision == "leaf" and "skip-class" in m.reasons
    }
    for cls in [c for c in classes if c not in given_classes]:
        candidates = [p for p in instances.get(cls, []) if p in reached]
        rest_classes = [c for c in classes if c is not cls]
        needed = []
        for path in candidates:
            others = [p for p in candidates if p != path]
            if not search.traces_ok(
                names + others, rest_classes, f"does {path} fail on its own?"
            ):
                needed.append(path)
        if len(needed) < len(candidates):
            classes = rest_classes
            names = names + [p for p in needed if p not in names]
    return names, classes


def _costs(
    report: Report,
    failed: list[Report],
    names: list[str],
    classes: list[type],
    given_names: list[str],
    given_classes: list[type],
) -> list[SkipCost]:
    costs = []
    for name in names:
        if name not in given_names:
            costs.append(_cost_of(f"--skip-name {name}", [name], report, failed))
    for cls in classes:
        if cls in given_classes:
            continue
        wanted = qualified_name(cls)
        paths = [
            m.path for m in report.modules if m.type == wanted and m.decision == "leaf"
        ]
        costs.append(_cost_of(f"--skip-class {wanted}", paths, report, failed))
    return costs


_OPERATIONS = ("call_function", "call_method", "call_module")


def _cost_of(
    entry: str, paths: list[str], report: Report, failed: list[Report]
) -> SkipCost:
    inner: Counter[str] = Counter()
    for module in report.modules:
        if module.decision == "inside-leaf" and any(
            module.path.startswith(p + ".") for p in paths
        ):
            inner[short_name(module.type)] += 1

    ops_seen = 0
    for path in paths:
        ops_seen += max(
            (
                sum(
                    node.op in _OPERATIONS and in_subtree(node.scope.path, path)
                    for node in attempt.nodes
                )
                for attempt in failed
            ),
            default=0,
        )
    return SkipCost(entry, len(paths), inner, ops_seen)


def _root_hint(model: torch.nn.Module, failure: Failure | None) -> str | None:
    if failure is None:
        return None
    if failure.location is None:
        return (
            "torch.fx failed before the model's own code ran (often a decorator on "
            "forward that hides its signature), so no skip can help: trace a "
            "wrapper module whose forward calls this model instead."
        )
    code = failure.location.code
    for name, value in _flag_parameters(model).items():
        if re.search(rf"\b{re.escape(name)}\b", code):
            return (
                f"forward branches on its argument {name!r}, which is a flag, not a "
                f"tensor: pin it with --concrete-arg {name}={json.dumps(value)}, or "
                "trace a wrapper model whose forward passes it as a constant."
            )
    return (
        "the failing line is in the root module's own forward, which no skip can "
        "leave out: make that line traceable, or trace a wrapper model around the "
        "traceable part."
    )


def _stuck_hint(failure: Failure) -> str:
    return (
        f"the trace still fails in {failure.module_path} although it is skipped; "
        "the failure is in the call itself (its arguments), so fix that call in "
        "the parent module's forward."
    )


def _flag_parameters(model: torch.nn.Module) -> dict[str, Any]:
    """forward's parameters that look like flags: a plain default, or bool."""
    try:
        params = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return {}
    flags: dict[str, Any] = {}
    for name, param in params.items():
        default = param.default
        if default is not inspect.Parameter.empty:
            if default is None or isinstance(default, (bool, int, float, str)):
                flags[name] = default
        elif param.annotation in (bool, "bool"):
            flags[name] = False
    return flags
