"""The report of one trace: typed data that every renderer reads.

`Report.to_dict` gives the ``qtrace.report/1`` JSON document and
`Report.from_dict` reads one back (for baselines and ``diff``). Nothing here
imports torch, so saved reports can be read without it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from qtrace_cli.errors import UsageError

SCHEMA = "qtrace.report/1"

DECISIONS = ("root", "traced", "leaf", "inside-leaf", "container", "not-called")
OPS = (
    "placeholder",
    "get_attr",
    "call_function",
    "call_method",
    "call_module",
    "output",
)


class StackMode(StrEnum):
    """How much of the stack each node records."""

    USER = "user"
    """The innermost user frame only."""
    FULL = "full"
    """Every user frame, outermost first."""
    NONE = "none"
    """No source location."""


@dataclass(frozen=True)
class Location:
    """A line of source code that created a node."""

    file: str
    """Path relative to the current directory where possible."""
    line: int
    function: str
    code: str
    """The source line, stripped; empty when the file cannot be read."""


@dataclass(frozen=True)
class Scope:
    """The tracer's ``node_name_to_scope`` entry of a node."""

    path: str
    type: str | None


@dataclass(frozen=True)
class StackEntry:
    """One level of a node's ``nn_module_stack``."""

    key: str
    """torch's key: the module path, with ``@N`` for its N-th repeated call."""
    path: str
    type: str


@dataclass
class NodeInfo:
    """One node of the traced graph."""

    index: int
    name: str
    op: str
    target: str
    args: list[Any]
    kwargs: dict[str, Any]
    users: list[str]
    scope: Scope
    module_stack: list[StackEntry]
    location: Location | None
    stack: list[Location] = field(default_factory=list)
    """Every user frame, outermost first; filled only with ``--stack full``."""


@dataclass
class ModuleInfo:
    """The tracer's decision about one submodule."""

    path: str
    type: str
    decision: str
    """One of `DECISIONS`."""
    reasons: list[str]
    """Clauses of the leaf rule that held, in the tracer's order."""
    calls: int


@dataclass
class TraceFailure:
    """Why a trace stopped, and the skip that would get past it."""

    type: str
    message: str
    module_path: str | None
    """Innermost module being traced through; "" for the root's forward."""
    location: Location | None
    suggestion: str | None
    """A flag that would skip the failing module, or None when none can."""
    traceback: str = field(default="", compare=False, repr=False)
    """The exception's formatted traceback, for ``--traceback``; never saved."""


@dataclass
class Summary:
    nodes: int
    ops: dict[str, int]
    leaf_modules: int
    traced_modules: int
    """Modules traced through, not counting the root."""
    trace_seconds: float


@dataclass
class Report:
    """Everything one trace showed about a model."""

    target: str
    model_class: str
    torch_version: str
    tracer: str
    mode: str
    skip_names: list[str]
    skip_classes: list[str]
    ok: bool
    error: TraceFailure | None
    nodes: list[NodeInfo]
    modules: list[ModuleInfo]
    summary: Summary
    concrete_args: dict[str, Any] = field(default_factory=dict)
    stack_mode: str = "user"
    schema: str = SCHEMA

    def to_dict(self) -> dict[str, Any]:
        """The ``qtrace.report/1`` document, ready for ``json.dumps``."""
        data = self._head()
        data["nodes"] = [_node_dict(node) for node in self.nodes]
        data["modules"] = [asdict(module) for module in self.modules]
        data.update(self._tail())
        return data

    def _head(self) -> dict[str, Any]:
        return {
            "schema": self.schema,
            "target": self.target,
            "model_class": self.model_class,
            "torch_version": self.torch_version,
            "tracer": self.tracer,
            "mode": self.mode,
            "skip_names": self.skip_names,
            "skip_classes": self.skip_classes,
            "ok": self.ok,
            "error": None if self.error is None else _error_dict(self.error),
        }

    def _tail(self) -> dict[str, Any]:
        return {
            "summary": asdict(self.summary),
            "concrete_args": self.concrete_args,
            "stack_mode": self.stack_mode,
        }

    def to_json(self) -> str:
        """The document as JSON text: one line per node and per module, so a
        baseline under version control diffs line by line. Ends in a newline."""
        dumps = json.JSONEncoder(allow_nan=False).encode
        parts = ["{"]
        for key, value in self._head().items():
            parts.append(f"  {dumps(key)}: {dumps(value)},")
        for key, rows in (
            ("nodes", [_node_dict(node) for node in self.nodes]),
            ("modules", [asdict(module) for module in self.modules]),
        ):
            parts.append(f"  {dumps(key)}: [")
            parts.append(",\n".join("    " + dumps(row) for row in rows))
            parts.append("  ],")
        tail = list(self._tail().items())
        for i, (key, value) in enumerate(tail):
            comma = "," if i < len(tail) - 1 else ""
            parts.append(f"  {dumps(key)}: {dumps(value)}{comma}")
        parts.append("}")
        return "\n".join(part for part in parts if part) + "\n"

    @classmethod
    def from_dict(cls, data: Any, source: str = "report") -> Report:
        """Read a document written by `to_dict`.

        Raises:
            UsageError: when the data is not a ``qtrace.report/1`` document.
        """
        if not isinstance(data, dict) or data.get("schema") != SCHEMA:
            found = data.get("schema") if isinstance(data, dict) else None
            raise UsageError(
                f"{source} is not a qtrace report (expected schema {SCHEMA!r}, "
                f"found {found!r}); write one with qtrace show TARGET --format json "
                "-o FILE."
            )
        try:
            report = _report_from_dict(data)
            _validate(report)
            return report
        except (KeyError, TypeError, ValueError) as err:
            raise UsageError(
                f"{source} is a damaged qtrace report ({type(err).__name__}: {err}); "
                "write it again with qtrace show TARGET --format json -o FILE."
            ) from None


def _error_dict(error: TraceFailure) -> dict[str, Any]:
    return {
        "type": error.type,
        "message": error.message,
        "module_path": error.module_path,
        "location": _location_dict(error.location),
        "suggestion": error.suggestion,
    }


def _location_dict(location: Location | None) -> dict[str, Any] | None:
    if location is None:
        return None
    return {
        "file": location.file,
        "line": location.line,
        "function": location.function,
        "code": location.code,
    }


def _node_dict(node: NodeInfo) -> dict[str, Any]:
    # Written out rather than with dataclasses.asdict, which deep-copies every
    # value and costs seconds on graphs of thousands of nodes.
    return {
        "index": node.index,
        "name": node.name,
        "op": node.op,
        "target": node.target,
        "args": node.args,
        "kwargs": node.kwargs,
        "users": node.users,
        "scope": {"path": node.scope.path, "type": node.scope.type},
        "module_stack": [
            {"key": e.key, "path": e.path, "type": e.type} for e in node.module_stack
        ],
        "location": _location_dict(node.location),
        "stack": [_location_dict(loc) for loc in node.stack],
    }


def _location(data: Any) -> Location | None:
    return None if data is None else Location(**data)


def _expect(value: Any, kinds: type | tuple[type, ...], where: str) -> None:
    allowed = kinds if isinstance(kinds, tuple) else (kinds,)
    # bool is an int to isinstance, but never a valid count or line number.
    if not isinstance(value, allowed) or (
        isinstance(value, bool) and bool not in allowed
    ):
        raise ValueError(f"{where} is a {type(value).__name__}")


def _expect_strings(values: Any, where: str) -> None:
    _expect(values, list, where)
    for value in values:
        _expect(value, str, f"an item of {where}")


def _validate_location(location: Location | None, where: str) -> None:
    if location is None:
        return
    _expect(location.file, str, f"{where} file")
    _expect(location.line, int, f"{where} line")
    _expect(location.function, str, f"{where} function")
    _expect(location.code, str, f"{where} code")


def _validate(report: Report) -> None:
    """Check the types a saved report's readers rely on."""
    for text in (report.target, report.model_class, report.torch_version):
        _expect(text, str, "a header field")
    _expect_strings(report.skip_names, "skip_names")
    _expect_strings(report.skip_classes, "skip_classes")
    for node in report.nodes:
        where = f"node {node.name!r}"
        _expect(node.index, int, f"{where} index")
        _expect(node.name, str, "a node name")
        if node.op not in OPS:
            raise ValueError(f"{where} has op {node.op!r}")
        _expect(node.target, str, f"{where} target")
        _expect(node.args, list, f"{where} args")
        _expect(node.kwargs, dict, f"{where} kwargs")
        _expect_strings(node.users, f"{where} users")
        _expect(node.scope.path, str, f"{where} scope path")
        _expect(node.scope.type, (str, type(None)), f"{where} scope type")
        for entry in node.module_stack:
            for text in (entry.key, entry.path, entry.type):
                _expect(text, str, f"{where} module_stack")
        _validate_location(node.location, f"{where} location")
        for frame in node.stack:
            _validate_location(frame, f"{where} stack")
    for module in report.modules:
        _expect(module.path, str, "a module path")
        _expect(module.type, str, f"module {module.path!r} type")
        if module.decision not in DECISIONS:
            raise ValueError(f"module {module.path!r} has decision {module.decision!r}")
        _expect_strings(module.reasons, f"module {module.path!r} reasons")
        _expect(module.calls, int, f"module {module.path!r} calls")
    if report.error is not None:
        _expect(report.error.type, str, "error type")
        _expect(report.error.message, str, "error message")
        _expect(report.error.module_path, (str, type(None)), "error module_path")
        _validate_location(report.error.location, "error location")
    _expect(report.summary.nodes, int, "summary nodes")
    _expect(report.summary.ops, dict, "summary ops")


def _report_from_dict(data: dict[str, Any]) -> Report:
    nodes = [
        NodeInfo(
            index=n["index"],
            name=n["name"],
            op=n["op"],
            target=n["target"],
            args=list(n["args"]),
            kwargs=dict(n["kwargs"]),
            users=list(n["users"]),
            scope=Scope(**n["scope"]),
            module_stack=[StackEntry(**e) for e in n["module_stack"]],
            location=_location(n.get("location")),
            stack=[Location(**loc) for loc in n.get("stack", [])],
        )
        for n in data["nodes"]
    ]
    modules = [ModuleInfo(**m) for m in data["modules"]]
    error = data.get("error")
    failure = None
    if error is not None:
        failure = TraceFailure(
            type=error["type"],
            message=error["message"],
            module_path=error["module_path"],
            location=_location(error.get("location")),
            suggestion=error.get("suggestion"),
        )
    return Report(
        target=data["target"],
        model_class=data["model_class"],
        torch_version=data["torch_version"],
        tracer=data["tracer"],
        mode=data["mode"],
        skip_names=list(data["skip_names"]),
        skip_classes=list(data["skip_classes"]),
        ok=bool(data["ok"]),
        error=failure,
        nodes=nodes,
        modules=modules,
        summary=Summary(**data["summary"]),
        concrete_args=dict(data.get("concrete_args", {})),
        stack_mode=data.get("stack_mode", "user"),
    )


def read_report(path: str | Path, what: str = "report") -> Report:
    """Read a saved ``qtrace.report/1`` JSON file.

    Raises:
        UsageError: when the file is missing, not JSON, or not a qtrace report.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{what} {path} does not exist.") from None
    except (OSError, UnicodeDecodeError) as err:
        raise UsageError(f"{what} {path} cannot be read: {err}.") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise UsageError(
            f"{what} {path} is not valid JSON ({err.msg}, line {err.lineno}); it may "
            "be truncated. Write it again with qtrace show TARGET --format json -o "
            "FILE (or check --update-baseline)."
        ) from None
    return Report.from_dict(data, source=f"{what} {path}")
