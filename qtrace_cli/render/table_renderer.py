"""Rich tables: a summary, the graph, the leaf decisions and the scopes."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TextIO

from rich.console import Console
from rich.panel import Panel
from rich.text import Text

from qtrace_cli.naming import short_name
from qtrace_cli.render.grid import Column, Styler, render_grid
from qtrace_cli.render.view import View
from qtrace_cli.render.words import (
    arguments_words,
    called_below,
    decision_words,
    leaf_ancestors,
)
from qtrace_cli.report import OPS, Location, Report, StackEntry

_DECISION_STYLE = {
    "root": "bold",
    "traced": "green",
    "leaf": "yellow",
    "inside-leaf": "dim",
    "container": "cyan",
    "not-called": "dim red",
}


def make_console(out: TextIO, width: int | None = None) -> Console:
    """A console for ``out``: colour only on a terminal, ``NO_COLOR`` honoured."""
    return Console(file=out, width=width, highlight=False, soft_wrap=False)


def table_colours(console: Console) -> str | None:
    """The colour system to paint tables with, or None for plain text (a pipe, a
    file, or ``NO_COLOR``)."""
    if console.is_terminal and not console.no_color:
        return console.color_system
    return None


def table_width(console: Console, width: int | None) -> int:
    """The width to lay tables out in: ``width`` when given, the terminal's
    width, ``COLUMNS``, or 100 columns when writing to a pipe or file."""
    if width:
        return width
    if console.is_terminal or os.environ.get("COLUMNS", "").isdigit():
        return console.width
    return 100


class TableRenderer:
    """Writes the chosen sections as tables."""

    def render(self, report: Report, view: View, out: TextIO) -> None:
        console = make_console(out)
        width = table_width(console, view.width)
        colours = table_colours(console)
        if "summary" in view.sections:
            make_console(out, width).print(summary_text(report))
            out.write("\n")
        tables = {"graph": graph_table, "leaves": leaf_table, "scopes": scope_table}
        for section in ("graph", "leaves", "scopes"):
            if section in view.sections:
                grid = tables[section](report, view)
                lines = grid.lines(width, colours)
                out.write("\n".join(lines))
                out.write("\n")


@dataclass
class Grid:
    """The rows of one table before layout."""

    title: str
    columns: list[Column]
    rows: list[list[str]]
    styler: Styler | None = None

    def lines(self, width: int, color_system: str | None = None) -> list[str]:
        return list(
            render_grid(
                self.title, self.columns, self.rows, width, color_system, self.styler
            )
        )


def summary_text(report: Report) -> Text:
    """A few lines naming the model, the tracer and what it found."""
    s = report.summary
    status = (
        Text("traced", style="bold green")
        if report.ok
        else Text("FAILED", style="bold red")
    )
    text = Text()
    text.append(f"{report.target}", style="bold")
    text.append(f"  ({report.model_class})\n")
    text.append(f"torch {report.torch_version}, {report.mode} mode\n")
    text.append(f"tracer: {report.tracer}\n")
    ops = ", ".join(f"{s.ops[op]} {op}" for op in OPS if s.ops.get(op))
    text.append(f"nodes: {s.nodes}" + (f" ({ops})" if ops else "") + "\n")

    counts: dict[str, int] = {}
    for module in report.modules:
        counts[module.decision] = counts.get(module.decision, 0) + 1
    parts = [f"{s.leaf_modules} leaf", f"{s.traced_modules} traced"]
    for decision in ("inside-leaf", "container", "not-called"):
        if counts.get(decision):
            parts.append(f"{counts[decision]} {decision.replace('-', ' ')}")
    text.append("modules: " + ", ".join(parts) + "\n")

    flags = [f"--skip-name {n}" for n in report.skip_names]
    flags += [f"--skip-class {c}" for c in report.skip_classes]
    text.append("skips: " + (" ".join(flags) if flags else "none") + "\n")
    if report.concrete_args:
        pinned = ", ".join(f"{k}={v!r}" for k, v in report.concrete_args.items())
        text.append(
            f"concrete args: {pinned} (prepare_fx itself pins none)\n", style="yellow"
        )
    text.append(status)
    text.append(f" in {s.trace_seconds:.3f} s")
    return text


def graph_table(report: Report, view: View) -> Grid:
    """One row per node: index, name, op, target, args, users."""
    rows = []
    for node in view.nodes(report):
        rows.append(
            [
                str(node.index),
                node.name,
                node.op,
                node.target,
                arguments_words(node),
                ", ".join(node.users),
            ]
        )
    columns = [
        Column("#", right=True, wrap=False),
        Column("name", min_width=8),
        Column("op", wrap=False, min_width=13),
        Column("target", min_width=8),
        Column("args", min_width=8),
        Column("users", min_width=8),
    ]
    return Grid("graph", columns, rows)


def leaf_table(report: Report, view: View) -> Grid:
    """One row per submodule: path, class, decision, why, calls."""
    hidden_by = leaf_ancestors(report.modules)
    failed_in = report.error.module_path if report.error is not None else None
    parents = called_below(report.modules)
    rows = [
        [
            module.path or "(root)",
            short_name(module.type),
            module.decision,
            decision_words(
                module, hidden_by.get(module.path), failed_in, module.path in parents
            ),
            str(module.calls),
        ]
        for module in view.modules(report)
    ]
    columns = [
        Column("module", min_width=8),
        Column("class", min_width=8),
        Column("decision", wrap=False, min_width=11),
        Column("why", min_width=10),
        Column("calls", right=True, wrap=False),
    ]

    def styler(column: int, cell: str) -> str | None:
        return _DECISION_STYLE.get(cell) if column == 2 else None

    return Grid("leaf decisions", columns, rows, styler)


def scope_table(report: Report, view: View) -> Grid:
    """One row per node: its scope, its module stack and its source line."""
    rows = []
    for node in view.nodes(report):
        scope = node.scope.path or "(root)"
        if node.scope.type:
            scope += f" ({short_name(node.scope.type)})"
        rows.append(
            [
                node.name,
                node.op,
                scope,
                stack_chain(node.module_stack),
                *_source_cells(node.location, node.stack),
            ]
        )
    columns = [
        Column("name", min_width=8),
        Column("op", wrap=False, min_width=13),
        Column("scope (type)", min_width=10),
        Column("module stack", min_width=10),
        Column("source", min_width=8, detail=True),
        Column("code", wrap=False, min_width=8, detail=True),
    ]
    return Grid("scopes", columns, rows)


def _source_cells(location: Location | None, stack: list[Location]) -> tuple[str, str]:
    """``file:line`` and the code; with ``--stack full``, every user frame's
    ``file:line`` from the outermost in, then the innermost frame's code."""
    if location is None:
        return "", ""
    frames = stack or [location]
    return " > ".join(f"{f.file}:{f.line}" for f in frames), location.code


def stack_chain(stack: list[StackEntry]) -> str:
    """The ``nn_module_stack`` keys, each shortened to the part its parent lacks:
    ``layer1 > se > pool`` for ``layer1``, ``layer1.se``, ``layer1.se.pool``."""
    parts = []
    parent = ""
    for entry in stack:
        key = entry.key
        if parent and key.startswith(parent + "."):
            key = key[len(parent) + 1 :]
        parts.append(key)
        parent = entry.path
    return " > ".join(parts)


def failure_panel(report: Report) -> Panel | None:
    """The exception, where it happened and the skip that gets past it."""
    error = report.error
    if error is None:
        return None
    text = Text()
    text.append(f"{error.type}: ", style="bold red")
    text.append(f"{error.message}\n")
    module = next((m for m in report.modules if m.path == error.module_path), None)
    if error.module_path:
        kind = f" ({short_name(module.type)})" if module else ""
        text.append(f"while tracing module {error.module_path}{kind}\n")
    else:
        text.append("in the root module's own forward\n")
    if error.location is not None:
        loc = error.location
        text.append(f"at {loc.file}:{loc.line} in {loc.function}\n")
        if loc.code:
            text.append(f"    {loc.code}\n", style="bold")
    if error.suggestion:
        text.append("fix: skip the module with ", style="green")
        text.append(error.suggestion, style="bold green")
        text.append(
            " (it stays in float), or make its forward traceable.", style="green"
        )
    elif error.location is None:
        text.append(
            "No skip can help: torch.fx failed before the model's own code ran "
            "(often a decorator on forward that hides its signature). Trace a "
            "wrapper module whose forward calls this model instead.",
            style="yellow",
        )
    else:
        text.append(
            "No skip can help: the failing line is in the root's forward. Make it "
            "traceable, trace a wrapper model, or pin a non-tensor forward argument "
            "with --concrete-arg NAME=VALUE.",
            style="yellow",
        )
    return Panel(text, title="trace failed", title_align="left", border_style="red")
