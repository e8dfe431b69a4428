"""The graph in Graphviz DOT, one box per node, grouped by module scope."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import TextIO

from qtrace_cli.naming import short_name
from qtrace_cli.render.view import View
from qtrace_cli.report import NodeInfo, Report

_OP_COLOURS = {
    "placeholder": "lightblue",
    "get_attr": "lightyellow",
    "call_function": "white",
    "call_method": "white",
    "call_module": "palegreen",
    "output": "lightblue",
}


def _quote(text: str) -> str:
    # JSON string escaping is also valid DOT string escaping.
    return json.dumps(text)


class DotRenderer:
    """Writes ``digraph``: call_module nodes are leaves, clusters are scopes."""

    def render(self, report: Report, view: View, out: TextIO) -> None:
        nodes = view.nodes(report)
        shown = {node.name for node in nodes}
        by_scope: dict[str, list[NodeInfo]] = defaultdict(list)
        for node in nodes:
            by_scope[node.scope.path].append(node)

        out.write(f"digraph {_quote(short_name(report.model_class))} {{\n")
        out.write("  node [shape=box, style=filled, fontname=monospace];\n")
        for index, (scope, members) in enumerate(by_scope.items()):
            indent = "  "
            if scope:
                out.write(f"  subgraph cluster_{index} {{\n")
                out.write(f"    label={_quote(scope)};\n")
                indent = "    "
            for node in members:
                label = _quote(f"{node.name}\n{node.op} {node.target}")
                colour = _OP_COLOURS.get(node.op, "white")
                out.write(
                    f"{indent}{_quote(node.name)} "
                    f"[label={label}, fillcolor={colour}];\n"
                )
            if scope:
                out.write("  }\n")
        for node in nodes:
            for user in node.users:
                if user in shown:
                    out.write(f"  {_quote(node.name)} -> {_quote(user)};\n")
        out.write("}\n")
