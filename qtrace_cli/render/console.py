"""Send a rendered report to stdout or a file, and notes to stderr."""

from __future__ import annotations

import io
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol, TextIO

from rich.text import Text

from qtrace_cli.output_file import write_atomically
from qtrace_cli.render.dot_renderer import DotRenderer
from qtrace_cli.render.json_renderer import JsonRenderer
from qtrace_cli.render.table_renderer import TableRenderer, failure_panel, make_console
from qtrace_cli.render.view import SECTIONS, View
from qtrace_cli.report import Report


class Renderer(Protocol):
    """Writes one report in one format."""

    def render(self, report: Report, view: View, out: TextIO) -> None: ...


RENDERERS: dict[str, type[Renderer]] = {
    "table": TableRenderer,
    "json": JsonRenderer,
    "dot": DotRenderer,
}


def render(
    report: Report,
    output_format: str,
    *,
    sections: tuple[str, ...] = SECTIONS,
    scope: str | None = None,
    op: str | None = None,
    output: Path | None = None,
    width: int | None = None,
) -> None:
    """Render ``report`` to stdout, or atomically to ``output``."""
    renderer = RENDERERS[output_format]()
    view = View(sections=sections, scope=scope, op=op, width=width)
    warning = view.scope_warning(report)
    if warning:
        print_warnings([warning])
    if output is None:
        renderer.render(report, view, sys.stdout)
        return
    buffer = io.StringIO()
    renderer.render(report, view, buffer)
    write_atomically(output, buffer.getvalue())


def print_warnings(warnings: Iterable[str]) -> None:
    """Print each warning on stderr."""
    console = make_console(sys.stderr)
    for warning in warnings:
        # One line per warning, so that it greps whole; the terminal wraps it.
        console.print(
            Text("warning: ", style="bold yellow") + Text(warning), soft_wrap=True
        )


def print_failure(report: Report, width: int | None = None) -> None:
    """Print the failure panel on stderr."""
    panel = failure_panel(report)
    if panel is not None:
        make_console(sys.stderr, width).print(panel)
