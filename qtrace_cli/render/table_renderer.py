"""Rich tables: a summary, the graph, the leaf decisions and the scopes."""

from __future__ import annotations

from typing import TextIO

from rich import box
from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from qtrace_cli.arguments import argument_text
from qtrace_cli.naming import short_name
from qtrace_cli.render.view import View
from qtrace_cli.render.words import decision_words, leaf_ancestors, location_words
from qtrace_cli.report import OPS, Report

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


class TableRenderer:
    """Writes the chosen sections as rich tables."""

    def __init__(self, width: int | None = None) -> None:
        self.width = width

    def render(self, report: Report, view: View, out: TextIO) -> None:
        console = make_console(out, self.width)
        if "summary" in view.sections:
            console.print(summary_text(report))
        if "graph" in view.sections:
            console.print(graph_table(report, view))
        if "leaves" in view.sections:
            console.print(leaf_table(report, view))
        if "scopes" in view.sections:
            console.print(scope_table(report, view))


def summary_text(report: Report) -> Text:
    """A few lines naming the model, the tracer and what it found."""
    s = report.summary
    status = Text("traced", style="bold green") if report.ok else Text(
        "FAILED", style="bold red"
    )
    text = Text()
    text.append(f"{report.target}", style="bold")
    text.append(f"  ({report.model_class})\n")
    text.append(f"torch {report.torch_version}, {report.tracer}, {report.mode} mode\n")
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


def _table(title: str) -> Table:
    return Table(title=title, box=box.SIMPLE_HEAD, title_justify="left", expand=False)


def graph_table(report: Report, view: View) -> Table:
    """One row per node: index, name, op, target, args, users."""
    table = _table("graph")
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("name", overflow="fold")
    table.add_column("op", no_wrap=True)
    table.add_column("target", overflow="fold")
    table.add_column("args", overflow="fold")
    table.add_column("users", overflow="fold")
    for node in view.nodes(report):
        args = [argument_text(a) for a in node.args]
        args += [f"{k}={argument_text(v)}" for k, v in node.kwargs.items()]
        table.add_row(
            str(node.index),
            node.name,
            node.op,
            node.target,
            ", ".join(args),
            ", ".join(node.users),
        )
    return table


def leaf_table(report: Report, view: View) -> Table:
    """One row per submodule: path, class, decision, why, calls."""
    table = _table("leaf decisions")
    table.add_column("module", overflow="fold")
    table.add_column("class", overflow="fold")
    table.add_column("decision", no_wrap=True)
    table.add_column("why", overflow="fold")
    table.add_column("calls", justify="right", no_wrap=True)
    hidden_by = leaf_ancestors(report.modules)
    for module in view.modules(report):
        table.add_row(
            module.path or "(root)",
            short_name(module.type),
            Text(module.decision, style=_DECISION_STYLE.get(module.decision, "")),
            decision_words(module, hidden_by.get(module.path)),
            str(module.calls),
        )
    return table


def scope_table(report: Report, view: View) -> Table:
    """One row per node: its scope, its module stack and its source line."""
    table = _table("scopes")
    table.add_column("name", overflow="fold")
    table.add_column("op", no_wrap=True)
    table.add_column("scope", overflow="fold")
    table.add_column("scope type", overflow="fold")
    table.add_column("module stack", overflow="fold")
    table.add_column("source", overflow="fold")
    for node in view.nodes(report):
        table.add_row(
            node.name,
            node.op,
            node.scope.path or "(root)",
            short_name(node.scope.type),
            " > ".join(entry.key for entry in node.module_stack),
            location_words(node.location),
        )
    return table


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
    else:
        text.append(
            "No skip can help: the failing line is in the root's forward. Make it "
            "traceable, trace a wrapper model, or pin a non-tensor forward argument "
            "with --concrete-arg NAME=VALUE.",
            style="yellow",
        )
    return Panel(text, title="trace failed", title_align="left", border_style="red")
