"""Tables of what differs between two reports."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TextIO

from qtrace_cli.compare import ReportDiff
from qtrace_cli.naming import short_name
from qtrace_cli.render.grid import Column, render_grid
from qtrace_cli.render.table_renderer import make_console, table_colours, table_width
from qtrace_cli.render.words import arguments_words
from qtrace_cli.report import ModuleInfo, NodeInfo

_NODE_COLUMNS = [
    Column("#", right=True, wrap=False),
    Column("name", min_width=8),
    Column("op", wrap=False, min_width=13),
    Column("target", min_width=8),
    Column("args", min_width=8),
    Column("scope", min_width=8),
]


def _node_row(node: NodeInfo) -> list[str]:
    return [
        str(node.index),
        node.name,
        node.op,
        node.target,
        arguments_words(node),
        node.scope.path or "(root)",
    ]


def _module_words(module: ModuleInfo | None) -> str:
    if module is None:
        return "(absent)"
    reasons = f" ({', '.join(module.reasons)})" if module.reasons else ""
    return f"{module.decision}{reasons}"


def _either(old: ModuleInfo | None, new: ModuleInfo | None) -> ModuleInfo:
    found = new or old
    assert found is not None, "a module change has at least one side"
    return found


def diff_lines(
    diff: ReportDiff, width: int, colours: str | None = None
) -> Iterator[str]:
    """The lines of every non-empty difference table."""
    if diff.status is not None:
        before, after = ("traced" if ok else "failed" for ok in diff.status)
        yield f"trace status: {before} -> {after}"
        yield ""
    if diff.added:
        rows = [_node_row(n) for n in diff.added]
        yield from render_grid("nodes added", _NODE_COLUMNS, rows, width, colours)
    if diff.removed:
        rows = [_node_row(n) for n in diff.removed]
        yield from render_grid("nodes removed", _NODE_COLUMNS, rows, width, colours)
    if diff.changed:
        rows = []
        for change in diff.changed:
            old, new = _node_row(change.old), _node_row(change.new)
            fields = {"op": 2, "target": 3, "args": 4, "kwargs": 4, "scope": 5}
            for field in dict.fromkeys(fields[f] for f in change.fields):
                name = _NODE_COLUMNS[field].header
                rows.append([change.new.name, name, old[field], new[field]])
        columns = [
            Column("node", min_width=8),
            Column("field", wrap=False, min_width=6),
            Column("before", min_width=10),
            Column("after", min_width=10),
        ]
        yield from render_grid("nodes changed", columns, rows, width, colours)
    if diff.modules:
        rows = [
            [
                change.path or "(root)",
                short_name(_either(change.old, change.new).type),
                _module_words(change.old),
                _module_words(change.new),
            ]
            for change in diff.modules
        ]
        columns = [
            Column("module", min_width=8),
            Column("class", min_width=6),
            Column("before", min_width=10),
            Column("after", min_width=10),
        ]
        yield from render_grid(
            "module decisions changed", columns, rows, width, colours
        )


def print_diff(diff: ReportDiff, out: TextIO, width: int | None = None) -> None:
    """Write the difference tables, or a line saying the reports are equal."""
    console = make_console(out)
    colours = table_colours(console)
    if diff.empty:
        make_console(out).print(
            "[bold green]no structural difference[/]", highlight=False
        )
        return
    out.write("\n".join(diff_lines(diff, table_width(console, width), colours)))
    out.write("\n")
