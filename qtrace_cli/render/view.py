"""What part of a report to show: sections and node / module filters."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from qtrace_cli.module_tree import in_subtree
from qtrace_cli.report import ModuleInfo, NodeInfo, Report

SECTIONS = ("summary", "graph", "leaves", "scopes")


@dataclass(frozen=True)
class View:
    """Sections to show and the filters that narrow them."""

    sections: tuple[str, ...] = SECTIONS
    scope: str | None = None
    """Keep nodes whose scope, and modules whose path, lie in this subtree."""
    op: str | None = None
    """Keep nodes of this opcode only."""
    width: int | None = None
    """Table width in columns; None for the console's own."""
    extra: dict[str, str] = field(default_factory=dict)

    def nodes(self, report: Report) -> list[NodeInfo]:
        """The report's nodes that pass the filters."""
        return [
            node
            for node in report.nodes
            if (self.op is None or node.op == self.op)
            and (self.scope is None or in_subtree(node.scope.path, self.scope))
        ]

    def scope_warning(self, report: Report) -> str | None:
        """A warning when ``scope`` names no module of the report."""
        if not self.scope or any(m.path == self.scope for m in report.modules):
            return None
        paths = [m.path for m in report.modules if m.path]
        close = difflib.get_close_matches(self.scope, paths, n=3, cutoff=0.5)
        hint = ("closest: " + ", ".join(close)) if close else "the tables are empty"
        return f"--scope {self.scope} is not a module path in this model; {hint}."

    def modules(self, report: Report) -> list[ModuleInfo]:
        """The report's modules that lie in the ``scope`` subtree."""
        if self.scope is None:
            return report.modules
        return [m for m in report.modules if in_subtree(m.path, self.scope)]
