"""Filters of what `show` prints: --scope and --op narrow nodes and modules."""

from __future__ import annotations

import pytest

from qtrace_cli.module_tree import in_subtree
from qtrace_cli.render.view import View
from qtrace_cli.report import Report
from qtrace_cli.trace import trace_model
from sample_models.resnet import TinyResNet


@pytest.fixture(scope="module")
def report() -> Report:
    return trace_model(TinyResNet())


def test_scope_keeps_the_subtree_only(report: Report) -> None:
    view = View(scope="layer1.se")

    nodes = view.nodes(report)
    modules = view.modules(report)

    assert {n.scope.path for n in nodes} == {
        "layer1.se",
        "layer1.se.pool",
        "layer1.se.fc1",
        "layer1.se.act",
        "layer1.se.fc2",
        "layer1.se.gate",
    }
    assert [m.path for m in modules][0] == "layer1.se"
    assert all(m.path.startswith("layer1.se") for m in modules)
    assert view.scope_warning(report) is None


def test_op_and_scope_combine(report: Report) -> None:
    nodes = View(scope="layer2", op="call_function").nodes(report)

    assert [(n.name, n.target) for n in nodes] == [
        ("mul_1", "operator.mul"),
        ("add_1", "operator.add"),
    ]


def test_a_scope_that_names_no_module_warns_with_close_paths(report: Report) -> None:
    warning = View(scope="layer1.s").scope_warning(report)

    assert warning is not None
    assert warning.startswith("--scope layer1.s is not a module path")
    assert "closest: layer1.se" in warning
    assert View(scope="layer1.s").nodes(report) == []


@pytest.mark.parametrize(
    ("path", "prefix", "inside"),
    [
        ("layer1", "layer1", True),
        ("layer1.se", "layer1", True),
        ("layer10", "layer1", False),
        ("layer1", "", True),
        ("", "layer1", False),
    ],
)
def test_in_subtree_respects_dotted_parts(path: str, prefix: str, inside: bool) -> None:
    assert in_subtree(path, prefix) is inside
