"""The ``qtrace.report/1`` JSON document."""

from __future__ import annotations

from dataclasses import replace
from typing import TextIO

from qtrace_cli.render.view import View
from qtrace_cli.report import Report


class JsonRenderer:
    """Writes the report as one JSON document; filters narrow nodes and modules."""

    def render(self, report: Report, view: View, out: TextIO) -> None:
        shown = report
        if view.scope is not None or view.op is not None:
            shown = replace(
                report, nodes=view.nodes(report), modules=view.modules(report)
            )
        out.write(shown.to_json())
