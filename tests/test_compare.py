"""Tests of `compare_reports` on real traces: what counts as structure, what is
volatile, and how nodes are aligned when one is inserted."""

from __future__ import annotations

import copy
import importlib
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from qtrace_cli.compare import compare_reports, describe
from qtrace_cli.report import Report
from qtrace_cli.trace import trace_model

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _at_repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    monkeypatch.syspath_prepend(str(REPO))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)


def build(target: str) -> torch.nn.Module:
    module, _, attr = target.partition(":")
    model: torch.nn.Module = getattr(importlib.import_module(module), attr)()
    return model


def trace(target: str, names: list[str] | None = None) -> Report:
    return trace_model(build(target), names or [], target=target)


def round_trip(report: Report) -> Report:
    return Report.from_dict(json.loads(report.to_json()))


RESNET = "sample_models.resnet:TinyResNet"
NESTED = "sample_models.untraceable:NestedFailure"


# --------------------------------------------------------------------------
# equal reports


def test_a_report_equals_itself_and_a_second_trace() -> None:
    first = trace(RESNET)
    second = trace(RESNET)

    assert compare_reports(first, first).empty
    diff = compare_reports(first, second)
    assert diff.empty
    assert diff.to_dict()["equal"] is True


@pytest.mark.parametrize(
    ("target", "names"),
    [(RESNET, []), (NESTED, []), (NESTED, ["branch.gate"])],
    ids=["traces", "fails", "skip"],
)
def test_a_report_equals_its_json_round_trip(target: str, names: list[str]) -> None:
    report = trace(target, names)

    again = round_trip(report)

    assert compare_reports(report, again).empty
    assert compare_reports(again, report).empty
    assert again.ok == report.ok
    assert len(again.nodes) == len(report.nodes)


def volatile_changes(data: dict[str, Any]) -> dict[str, Any]:
    """The same report as if made on another machine, later, with another
    torch, from another checkout: every volatile field changed."""
    changed = copy.deepcopy(data)
    changed["torch_version"] = "9.9.9+cu999"
    changed["summary"]["trace_seconds"] = 123.456
    changed["target"] = "/elsewhere/" + str(changed["target"])
    for node in changed["nodes"]:
        for location in [node["location"], *node["stack"]]:
            if location is not None:
                location["file"] = "/home/someone/checkout/" + location["file"]
                location["line"] += 17
        node["stack"] = node["stack"] + [
            {"file": "/abs/x.py", "line": 3, "function": "f", "code": "y()"}
        ]
    error = changed["error"]
    if error is not None and error["location"] is not None:
        error["location"]["file"] = "/abs/" + error["location"]["file"]
        error["location"]["line"] += 40
    return changed


@pytest.mark.parametrize("target", [RESNET, NESTED], ids=["traces", "fails"])
def test_volatile_fields_never_make_a_difference(target: str) -> None:
    report = trace(target)
    data = report.to_dict()
    changed = volatile_changes(data)
    assert changed != data

    other = Report.from_dict(changed)

    assert compare_reports(report, other).empty
    assert compare_reports(other, report).empty


# --------------------------------------------------------------------------
# one node inserted in the middle

MODEL_SOURCE = """
import torch
from torch import nn


class Block(nn.Module):
    def __init__(self, index):
        super().__init__()
        self.index = index
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        y = self.fc(x)
        if self.index == 1:
            pass  # EXTRA
        return torch.relu(y) + x


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = nn.ModuleList(Block(i) for i in range(3))
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        for block in self.blocks:
            x = block(x)
        return self.head(x)
"""


def load_version(folder: Path, extra: str | None) -> torch.nn.Module:
    """Write one version of the model under a fixed module name and build it,
    so both versions' classes have the same qualified names."""
    folder.mkdir()
    source = MODEL_SOURCE
    if extra is not None:
        source = source.replace("pass  # EXTRA", extra)
    path = folder / "tiny_blocks.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("tiny_blocks", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model: torch.nn.Module = module.Net()
    return model


@pytest.mark.parametrize(
    ("extra", "target"),
    [("y = y * 2", "operator.mul"), ("y = y + 1", "operator.add")],
    ids=["mul", "add-renames-later-adds"],
)
def test_one_node_inserted_is_one_node_added(
    tmp_path: Path, extra: str, target: str
) -> None:
    before = trace_model(load_version(tmp_path / "v1", None))
    after = trace_model(load_version(tmp_path / "v2", extra))
    assert before.ok and after.ok
    assert len(after.nodes) == len(before.nodes) + 1

    diff = compare_reports(before, after)

    assert [(n.op, n.target, n.scope.path) for n in diff.added] == [
        ("call_function", target, "blocks.1")
    ]
    assert diff.removed == []
    assert diff.modules == []
    assert diff.status is None
    # Only the node that consumes the new one changes: its argument.
    assert len(diff.changed) == 1
    change = diff.changed[0]
    assert change.fields == ("args",)
    assert change.new.target == "torch.relu"
    assert change.new.args == [f"%{diff.added[0].name}"]
    assert change.old.args == ["%blocks_1_fc"]


def test_inserted_add_renames_later_nodes_without_changing_them(
    tmp_path: Path,
) -> None:
    before = trace_model(load_version(tmp_path / "v1", None))
    after = trace_model(load_version(tmp_path / "v2", "y = y + 1"))
    old_names = [n.name for n in before.nodes]
    new_names = [n.name for n in after.nodes]
    # torch.fx renamed the residual adds after the inserted one ...
    assert "add_3" in new_names and "add_3" not in old_names

    diff = compare_reports(before, after)

    # ... yet none of them counts as changed.
    assert [c.new.name for c in diff.changed] == [
        n.name for n in after.nodes if n.args == [f"%{diff.added[0].name}"]
    ]


def test_identical_versions_in_two_files_are_equal(tmp_path: Path) -> None:
    before = trace_model(load_version(tmp_path / "v1", None))
    after = trace_model(load_version(tmp_path / "v2", None))

    assert compare_reports(before, after).empty


# --------------------------------------------------------------------------
# decisions and status


def test_a_submodule_becoming_a_leaf_is_a_module_change() -> None:
    traced = trace(RESNET)
    skipped = trace(RESNET, ["layer1.se"])

    diff = compare_reports(traced, skipped)

    by_path = {change.path: change for change in diff.modules}
    se = by_path["layer1.se"]
    assert se.old is not None and se.new is not None
    assert (se.old.decision, se.old.reasons) == ("traced", [])
    assert (se.new.decision, se.new.reasons) == ("leaf", ["skip-name"])
    assert se.new.type == "sample_models.blocks.SE"
    # Its children are no longer visited.
    for child in ("layer1.se.pool", "layer1.se.fc1", "layer1.se.gate"):
        change = by_path[child]
        assert change.old is not None and change.new is not None
        assert change.old.decision == "leaf"
        assert change.new.decision == "inside-leaf"
    assert set(by_path) <= {"layer1.se"} | {
        m.path for m in traced.modules if m.path.startswith("layer1.se.")
    }
    # The leaf is one call_module node in place of the nodes inside it.
    assert [(n.op, n.target) for n in diff.added] == [("call_module", "layer1.se")]
    assert {n.target for n in diff.removed} >= {"layer1.se.fc1", "operator.mul"}
    assert all(n.scope.path.startswith("layer1.se") for n in diff.removed)
    assert diff.status is None


def test_the_reverse_change_is_the_mirror_image() -> None:
    traced = trace(RESNET)
    skipped = trace(RESNET, ["layer1.se"])

    forward = compare_reports(traced, skipped)
    backward = compare_reports(skipped, traced)

    assert [n.name for n in backward.added] == [n.name for n in forward.removed]
    assert [n.name for n in backward.removed] == [n.name for n in forward.added]
    assert [(c.path, c.old, c.new) for c in backward.modules] == [
        (c.path, c.new, c.old) for c in forward.modules
    ]


def test_a_model_that_stops_tracing_is_a_status_change() -> None:
    tracing = trace(NESTED, ["branch.gate"])
    failing = trace(NESTED)
    assert tracing.ok and not failing.ok

    diff = compare_reports(tracing, failing)

    assert diff.status == (True, False)
    assert not diff.empty
    assert diff.to_dict()["status"] == {"old_ok": True, "new_ok": False}
    gate = {c.path: c for c in diff.modules}["branch.gate"]
    assert gate.old is not None and gate.old.decision == "leaf"
    assert gate.new is not None and gate.new.decision == "traced"
    assert compare_reports(failing, tracing).status == (False, True)


def test_module_present_on_one_side_only(tmp_path: Path) -> None:
    before = trace_model(load_version(tmp_path / "v1", None))
    after_model = load_version(tmp_path / "v2", None)
    after_model.extra = torch.nn.Linear(4, 4)  # registered, never called
    after = trace_model(after_model)

    diff = compare_reports(before, after)

    assert [(c.path, c.old, c.new is not None) for c in diff.modules] == [
        ("extra", None, True)
    ]
    assert diff.added == [] and diff.removed == [] and diff.changed == []


def test_describe_lists_each_difference_in_words() -> None:
    traced = trace(RESNET)
    skipped = trace(RESNET, ["layer1.se"])

    lines = describe(compare_reports(traced, skipped))

    assert "added layer1_se (call_module layer1.se) in layer1.se" in lines
    assert "module layer1.se: traced -> leaf" in lines
    assert "module layer1.se.fc1: leaf -> inside-leaf" in lines
    assert any(
        line.startswith("removed mul (call_function operator.mul)") for line in lines
    )
    assert describe(compare_reports(traced, traced)) == []
