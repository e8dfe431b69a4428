"""Node arguments and targets as JSON values and short text."""

from __future__ import annotations

import json
import math
import operator
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from torch import nn

from qtrace_cli.arguments import encode_argument, format_target
from qtrace_cli.render.words import argument_text
from qtrace_cli.trace import trace_model


@pytest.fixture
def graph() -> torch.fx.Graph:
    return torch.fx.Graph()


def test_node_reference(graph: torch.fx.Graph) -> None:
    x = graph.placeholder("x")
    y = graph.call_function(operator.add, (x, 1))
    assert encode_argument(x) == "%x"
    assert encode_argument(y) == f"%{y.name}"


def test_nested_tuples_become_lists(graph: torch.fx.Graph) -> None:
    x = graph.placeholder("x")
    value = (x, (1, (x, 2.5, None)), [True, "s"])
    assert encode_argument(value) == ["%x", [1, ["%x", 2.5, None]], [True, "s"]]


def test_dict_keys_become_text(graph: torch.fx.Graph) -> None:
    x = graph.placeholder("x")
    assert encode_argument({"a": x, 1: (2,)}) == {"a": "%x", "1": [2]}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True),
        (False, False),
        (0, 0),
        (-3, -3),
        (1.5, 1.5),
        (-0.0, -0.0),
        (None, None),
        ("mean", "mean"),
        (torch.Size([2, 3]), [2, 3]),
    ],
)
def test_plain_values_kept(value: Any, expected: Any) -> None:
    encoded = encode_argument(value)
    assert encoded == expected
    assert type(encoded) is type(expected)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (math.inf, "inf"),
        (-math.inf, "-inf"),
        (math.nan, "nan"),
    ],
)
def test_non_finite_floats_become_text(value: float, expected: str) -> None:
    assert encode_argument(value) == expected


def test_slices(graph: torch.fx.Graph) -> None:
    x = graph.placeholder("x")
    assert encode_argument(slice(None, 2, None)) == "slice(None, 2, None)"
    assert encode_argument(slice(1, None, -1)) == "slice(1, None, -1)"
    assert encode_argument(slice(x, None, 1)) == "slice(%x, None, 1)"
    assert encode_argument((slice(None), 0)) == ["slice(None, None, None)", 0]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (torch.float32, "torch.float32"),
        (torch.int8, "torch.int8"),
        (torch.contiguous_format, "torch.contiguous_format"),
        (torch.device("cpu"), repr(torch.device("cpu"))),
        (Ellipsis, "Ellipsis"),
        (operator.add, "operator.add"),
    ],
)
def test_other_values_become_text(value: Any, expected: str) -> None:
    assert encode_argument(value) == expected


def test_unprintable_object() -> None:
    class Opaque:
        def __repr__(self) -> str:
            raise RuntimeError("no repr")

    text = encode_argument(Opaque())
    assert isinstance(text, str)
    assert "Opaque" in text


def test_encoded_values_are_strict_json(graph: torch.fx.Graph) -> None:
    x = graph.placeholder("x")
    value = (x, slice(None, x), torch.float16, math.inf, {"k": (math.nan, [x])})
    text = json.dumps(encode_argument(value), allow_nan=False)
    assert json.loads(text) == [
        "%x",
        "slice(None, %x, None)",
        "torch.float16",
        "inf",
        {"k": ["nan", ["%x"]]},
    ]


class Ops(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.register_buffer("scale", torch.ones(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.lin(x[:, 1:3].to(torch.float16).float().repeat(1, 2))
        y = torch.clamp(y, max=math.inf) * self.scale
        return torch.flatten(operator.add(y, 1), start_dim=1).view(-1)


def test_arguments_of_a_traced_model() -> None:
    report = trace_model(Ops())
    by_target = {n.target: n for n in report.nodes}
    getitem = by_target["operator.getitem"]
    assert getitem.op == "call_function"
    assert getitem.args == ["%x", ["slice(None, None, None)", "slice(1, 3, None)"]]
    to = by_target["to"]
    assert (to.op, to.args) == ("call_method", [f"%{getitem.name}", "torch.float16"])
    clamp = by_target["torch.clamp"]
    assert clamp.kwargs == {"max": "inf"}
    assert by_target["torch.flatten"].kwargs == {"start_dim": 1}
    assert by_target["view"].args[1:] == [-1]
    assert by_target["lin"].op == "call_module"
    assert by_target["scale"].op == "get_attr"
    assert by_target["operator.add"].args[1] == 1
    assert by_target["operator.mul"].args[1] == "%scale"
    json.dumps(report.to_dict(), allow_nan=False)


def test_format_target(graph: torch.fx.Graph) -> None:
    x = graph.placeholder("x")
    cases = [
        (x, "x"),
        (graph.call_function(operator.add, (x, 1)), "operator.add"),
        (graph.call_function(operator.getitem, (x, 0)), "operator.getitem"),
        (graph.call_function(torch.flatten, (x,)), "torch.flatten"),
        (graph.call_function(torch.nn.functional.relu, (x,)), ""),
        (graph.call_method("view", (x, -1)), "view"),
        (graph.call_module("layers.0.attn", (x,)), "layers.0.attn"),
        (graph.get_attr("scale"), "scale"),
    ]
    for node, expected in cases:
        text = format_target(node)
        if expected:
            assert text == expected
        else:
            assert text.endswith(".relu") and text.startswith("torch.nn.functional")


def test_format_target_of_unusual_callables(graph: torch.fx.Graph) -> None:
    class Unhashable:
        __hash__ = None  # type: ignore[assignment]

        def __call__(self, value: Any) -> Any:
            return value

    # torch.fx graphs cannot hold an unhashable target; a stand-in node can.
    unhashable = SimpleNamespace(target=Unhashable())
    x = graph.placeholder("x")
    lam = graph.call_function(lambda v: v, (x,))
    for node in (unhashable, lam):
        text = format_target(node)
        assert isinstance(text, str) and text


@pytest.mark.parametrize(
    ("encoded", "text"),
    [
        ("%x", "%x"),
        (["%x", [1, 2]], "(%x, (1, 2))"),
        ({"dim": 1, "keepdim": True}, "{dim: 1, keepdim: True}"),
        (None, "None"),
        (2.5, "2.5"),
        ([], "()"),
    ],
)
def test_argument_text(encoded: Any, text: str) -> None:
    assert argument_text(encoded) == text
