"""Structural differences between two reports, for ``diff`` and baselines.

Only structure counts: node ops, targets, arguments, scopes, and module
decisions and reasons. Times, torch versions, file paths and line numbers are
volatile and never make two reports differ.

Nodes are aligned as sequences of (op, target), the way ``diff`` aligns lines,
then compared pair by pair. Matching by name alone would not do: torch.fx names
function nodes by counter (``add``, ``add_1``, ...), so one node inserted in
the middle renames every later one of its kind. Aligned nodes whose names
differ are the same node; argument references are translated through the
alignment before they are compared.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

from qtrace_cli.report import ModuleInfo, NodeInfo, Report


@dataclass(frozen=True)
class NodeChange:
    """A node present on both sides whose structure differs."""

    old: NodeInfo
    new: NodeInfo
    fields: tuple[str, ...]
    """Which of op, target, args, kwargs, scope differ."""


@dataclass(frozen=True)
class ModuleChange:
    """A module whose decision or reasons differ, or that exists on one side."""

    path: str
    old: ModuleInfo | None
    new: ModuleInfo | None


@dataclass
class ReportDiff:
    """Everything that differs between two reports."""

    added: list[NodeInfo] = field(default_factory=list)
    removed: list[NodeInfo] = field(default_factory=list)
    changed: list[NodeChange] = field(default_factory=list)
    modules: list[ModuleChange] = field(default_factory=list)
    status: tuple[bool, bool] | None = None
    """(old ok, new ok) when one side traced and the other did not."""

    @property
    def empty(self) -> bool:
        return not (
            self.added or self.removed or self.changed or self.modules or self.status
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON document of the differences."""
        return {
            "schema": "qtrace.diff/1",
            "equal": self.empty,
            "status": None
            if self.status is None
            else {"old_ok": self.status[0], "new_ok": self.status[1]},
            "nodes_added": [_node_brief(n) for n in self.added],
            "nodes_removed": [_node_brief(n) for n in self.removed],
            "nodes_changed": [
                {
                    "old": _node_brief(c.old),
                    "new": _node_brief(c.new),
                    "fields": list(c.fields),
                }
                for c in self.changed
            ],
            "modules_changed": [
                {
                    "path": m.path,
                    "old": None if m.old is None else _module_brief(m.old),
                    "new": None if m.new is None else _module_brief(m.new),
                }
                for m in self.modules
            ],
        }


def describe(diff: ReportDiff) -> list[str]:
    """The differences as plain lines, for JUnit reports and logs."""
    lines = []
    if diff.status is not None:
        before, after = ("traced" if ok else "failed" for ok in diff.status)
        lines.append(f"trace status: {before} -> {after}")
    for node in diff.added:
        lines.append(f"added {_node_words(node)}")
    for node in diff.removed:
        lines.append(f"removed {_node_words(node)}")
    for change in diff.changed:
        for name in change.fields:
            before = _field(change.old, name)
            after = _field(change.new, name)
            lines.append(f"changed {change.new.name} {name}: {before} -> {after}")
    for module in diff.modules:
        before = "absent" if module.old is None else module.old.decision
        after = "absent" if module.new is None else module.new.decision
        lines.append(f"module {module.path or '(root)'}: {before} -> {after}")
    return lines


def _node_words(node: NodeInfo) -> str:
    return f"{node.name} ({node.op} {node.target}) in {node.scope.path or '(root)'}"


def _field(node: NodeInfo, name: str) -> str:
    if name == "scope":
        return node.scope.path or "(root)"
    return str(getattr(node, name))


def _node_brief(node: NodeInfo) -> dict[str, Any]:
    return {
        "index": node.index,
        "name": node.name,
        "op": node.op,
        "target": node.target,
        "args": node.args,
        "kwargs": node.kwargs,
        "scope": node.scope.path,
    }


def _module_brief(module: ModuleInfo) -> dict[str, Any]:
    return {
        "type": module.type,
        "decision": module.decision,
        "reasons": module.reasons,
    }


def compare_reports(old: Report, new: Report) -> ReportDiff:
    """The structural differences from ``old`` to ``new``."""
    diff = ReportDiff()
    if old.ok != new.ok:
        diff.status = (old.ok, new.ok)
    pairs = _align(old.nodes, new.nodes, diff)
    renamed = {o.name: n.name for o, n in pairs}
    for o, n in pairs:
        fields = _node_fields(o, n, renamed)
        if fields:
            diff.changed.append(NodeChange(o, n, fields))
    diff.modules = _module_changes(old.modules, new.modules)
    return diff


def _align(
    old: list[NodeInfo], new: list[NodeInfo], diff: ReportDiff
) -> list[tuple[NodeInfo, NodeInfo]]:
    old_keys = [(n.op, n.target) for n in old]
    new_keys = [(n.op, n.target) for n in new]
    matcher = difflib.SequenceMatcher(None, old_keys, new_keys, autojunk=False)
    pairs: list[tuple[NodeInfo, NodeInfo]] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            pairs.extend(zip(old[i1:i2], new[j1:j2]))
            continue
        # Within a differing stretch, a node kept under the same name changed
        # its op or target; the others were added or removed.
        new_by_name = {n.name: n for n in new[j1:j2]}
        matched_new: set[str] = set()
        for node in old[i1:i2]:
            twin = new_by_name.get(node.name)
            if twin is not None and twin.op == node.op:
                pairs.append((node, twin))
                matched_new.add(twin.name)
            else:
                diff.removed.append(node)
        diff.added.extend(n for n in new[j1:j2] if n.name not in matched_new)
    pairs.sort(key=lambda pair: pair[1].index)
    return pairs


def _translate(value: Any, renamed: dict[str, str]) -> Any:
    if isinstance(value, str) and value.startswith("%") and value[1:2] != "%":
        return "%" + renamed.get(value[1:], value[1:])
    if isinstance(value, list):
        return [_translate(item, renamed) for item in value]
    if isinstance(value, dict):
        return {key: _translate(item, renamed) for key, item in value.items()}
    return value


def _node_fields(
    old: NodeInfo, new: NodeInfo, renamed: dict[str, str]
) -> tuple[str, ...]:
    fields = []
    if old.op != new.op:
        fields.append("op")
    if old.target != new.target and old.op not in ("placeholder", "output"):
        fields.append("target")
    if _translate(old.args, renamed) != new.args:
        fields.append("args")
    if _translate(old.kwargs, renamed) != new.kwargs:
        fields.append("kwargs")
    if old.scope != new.scope:
        fields.append("scope")
    return tuple(fields)


def _module_changes(old: list[ModuleInfo], new: list[ModuleInfo]) -> list[ModuleChange]:
    old_by_path = {m.path: m for m in old}
    new_by_path = {m.path: m for m in new}
    changes = []
    for path, before in old_by_path.items():
        after = new_by_path.get(path)
        if after is None:
            changes.append(ModuleChange(path, before, None))
        elif (before.decision, before.reasons, before.type) != (
            after.decision,
            after.reasons,
            after.type,
        ):
            changes.append(ModuleChange(path, before, after))
    for path, after in new_by_path.items():
        if path not in old_by_path:
            changes.append(ModuleChange(path, None, after))
    return changes
