"""Property tests: random module trees, held to the raw QuantizationTracer.

Hypothesis builds trees of user modules (three classes, one of which branches on
a tensor value and so cannot be traced), torch.nn modules, nn.Sequential, fused
modules, children called twice or never, and random skip names and classes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn
from torch.ao.nn.intrinsic import LinearReLU
from torch.ao.quantization.fx.tracer import QuantizationTracer

from qtrace_cli.compare import compare_reports
from qtrace_cli.module_tree import walk_modules
from qtrace_cli.report import Report
from qtrace_cli.suggest import suggest_skips
from qtrace_cli.trace import trace_model


class Block(nn.Module):
    """Calls its children in order, each as many times as ``calls`` says."""

    def __init__(self, children: list[tuple[nn.Module, int]]) -> None:
        super().__init__()
        self.calls = []
        for index, (child, times) in enumerate(children):
            self.add_module(f"c{index}", child)
            self.calls.append((f"c{index}", times))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for name, times in self.calls:
            for _ in range(times):
                x = getattr(self, name)(x) + 1
        return x


class OtherBlock(Block):
    """The same behaviour under another class, for --skip-class."""


class Branchy(Block):
    """Branches on a tensor value: symbolic tracing fails here."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:
            x = x * 2
        return super().forward(x)


@dataclass
class Spec:
    kind: str
    children: list[tuple[Spec, int]] = field(default_factory=list)


LEAVES = st.sampled_from(["relu", "linear", "identity", "fused"])


def _specs() -> st.SearchStrategy[Spec]:
    leaf = LEAVES.map(lambda kind: Spec(kind))
    return st.recursive(
        leaf,
        lambda inner: st.builds(
            Spec,
            st.sampled_from(["block", "other", "branchy", "sequential"]),
            st.lists(
                st.tuples(inner, st.sampled_from([0, 1, 1, 1, 2])),
                min_size=1,
                max_size=3,
            ),
        ),
        max_leaves=8,
    )


def build(spec: Spec) -> nn.Module:
    if spec.kind == "relu":
        return nn.ReLU()
    if spec.kind == "linear":
        return nn.Linear(4, 4)
    if spec.kind == "identity":
        return nn.Identity()
    if spec.kind == "fused":
        return LinearReLU(nn.Linear(4, 4), nn.ReLU())
    children = [(build(child), times) for child, times in spec.children]
    if spec.kind == "sequential":
        # Sequential calls every child once, in order.
        return nn.Sequential(*(child for child, _ in children))
    cls = {"block": Block, "other": OtherBlock, "branchy": Branchy}[spec.kind]
    return cls(children)


def root_of(spec: Spec) -> nn.Module:
    return Block([(build(spec), 1)])


@st.composite
def models_and_skips(draw: st.DrawFn) -> tuple[nn.Module, list[str], list[type]]:
    model = root_of(draw(_specs()))
    paths = [path for path, _ in walk_modules(model) if path]
    names = draw(st.lists(st.sampled_from(paths), max_size=3, unique=True))
    classes: list[type] = draw(
        st.lists(st.sampled_from([Block, OtherBlock, Branchy]), max_size=2, unique=True)
    )
    return model, names, classes


def raw_trace(
    model: nn.Module, names: list[str], classes: list[type]
) -> tuple[QuantizationTracer, BaseException | None]:
    tracer = QuantizationTracer(list(names), list(classes))
    try:
        tracer.trace(model.eval())
    except Exception as err:
        return tracer, err
    return tracer, None


def without_volatile(report: Report) -> dict[str, object]:
    data = report.to_dict()
    data["summary"]["trace_seconds"] = 0
    return data


PROPERTY = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@PROPERTY
@given(models_and_skips())
def test_report_is_what_the_raw_tracer_built(case) -> None:
    model, names, classes = case
    report = trace_model(model, names, classes)
    tracer, error = raw_trace(model, names, classes)

    assert report.ok == (error is None)
    graph_nodes = list(tracer.graph.nodes)
    assert [(n.name, n.op) for n in report.nodes] == [
        (n.name, n.op) for n in graph_nodes
    ]
    assert [n.users for n in report.nodes] == [
        [u.name for u in n.users] for n in graph_nodes
    ]
    assert [n.scope.path for n in report.nodes] == [
        tracer.node_name_to_scope[n.name][0] for n in graph_nodes
    ]
    assert {m.path: m.calls for m in report.modules if m.calls} == {
        path: count for path, count in tracer.num_calls.items() if count
    }
    modules = dict(walk_modules(model))
    for row in report.modules:
        if row.decision in ("leaf", "traced"):
            fresh = QuantizationTracer(list(names), list(classes))
            expected = fresh.is_leaf_module(modules[row.path], row.path)
            assert (row.decision == "leaf") == expected, row.path
            assert bool(row.reasons) == expected, row.path


@PROPERTY
@given(models_and_skips())
def test_json_round_trip_and_self_diff(case) -> None:
    model, names, classes = case
    report = trace_model(model, names, classes)

    again = Report.from_dict(json.loads(report.to_json()))

    assert again == report
    assert compare_reports(report, again).empty


@PROPERTY
@given(models_and_skips())
def test_two_runs_agree_apart_from_times(case) -> None:
    model, names, classes = case

    first = trace_model(model, names, classes)
    second = trace_model(model, names, classes)

    assert without_volatile(first) == without_volatile(second)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_specs())
def test_suggest_answers_trace_with_the_raw_tracer(spec: Spec) -> None:
    model = root_of(spec)

    answer = suggest_skips(model)

    # The root only calls children, so some skip list always helps.
    assert answer.ok
    _, error = raw_trace(model, answer.skip_names, answer.skip_classes)
    assert error is None
    for name in answer.skip_names:
        rest = [n for n in answer.skip_names if n != name]
        assert raw_trace(model, rest, answer.skip_classes)[1] is not None, name
    for cls in answer.skip_classes:
        rest_classes = [c for c in answer.skip_classes if c is not cls]
        assert raw_trace(model, answer.skip_names, rest_classes)[1] is not None
