"""qtrace's own tracer, for a torch without ``torch.ao.quantization``, does what
torch's ``QuantizationTracer`` does on every sample model."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn
from torch.ao.nn import intrinsic as nni
from torch.ao.quantization.fx.tracer import QuantizationTracer

from qtrace_cli import tracer as tracer_module
from qtrace_cli.fallback_tracer import FallbackQuantizationTracer
from qtrace_cli.report import Report
from qtrace_cli.target import load_model, parse_target
from qtrace_cli.trace import trace_model

REPO_ROOT = Path(__file__).resolve().parent.parent
TORCH_TRACER = "torch.ao.quantization.fx.tracer.QuantizationTracer"
FALLBACK = "qtrace_cli.fallback_tracer.FallbackQuantizationTracer"

RESNET = "sample_models.resnet:TinyResNet"
GATED = "sample_models.gated:GatedNet"
MIXER = "sample_models.mixer:Mixer"
TINY_CNN = "sample_models/by_path/tiny_cnn.py:TinyCNN"
UNTRACEABLE = "sample_models.untraceable:"

# id: (target, skip names, skip classes, train, concrete args)
CASES: dict[str, tuple[str, tuple[str, ...], tuple[str, ...], bool, dict[str, Any]]]
CASES = {
    "resnet": (RESNET, (), (), False, {}),
    "resnet-train": (RESNET, (), (), True, {}),
    "resnet-skips": (
        RESNET,
        ("layer1.se", "head", "stem", "layer2.conv1"),
        ("torch.ao.nn.intrinsic:ConvReLU2d",),
        False,
        {},
    ),
    "gated": (GATED, (), (), False, {}),
    "gated-train": (GATED, (), (), True, {}),
    "gated-skip-gate": (GATED, ("stages.1.gate",), (), False, {}),
    "gated-skip-gate-train": (GATED, ("stages.1.gate",), (), True, {}),
    "gated-skip-class": (GATED, (), ("sample_models.blocks:Gate",), False, {}),
    "mixer": (MIXER, (), (), False, {}),
    "mixer-skip-one": (MIXER, ("layers.0.tokens",), (), False, {}),
    "mixer-skip-class": (MIXER, (), ("sample_models.blocks:TokenMixer",), False, {}),
    "mlp": ("sample_models.factory:build_mlp", (), (), False, {}),
    "zoo-small": ("sample_models.factory:Zoo.small", (), (), False, {}),
    "prebuilt": ("sample_models.factory:prebuilt", (), (), False, {}),
    "augmented": ("sample_models.factory:Augmented", (), (), False, {}),
    "augmented-pinned": (
        "sample_models.factory:Augmented",
        (),
        (),
        False,
        {"augment": False},
    ),
    "tiny-cnn": (TINY_CNN, ("block1",), (), False, {}),
    "nested-failure": (UNTRACEABLE + "NestedFailure", (), (), False, {}),
    "two-failures": (UNTRACEABLE + "TwoFailures", ("left.gate",), (), False, {}),
    "failure-inside-failure": (UNTRACEABLE + "FailureInsideFailure", (), (), False, {}),
    "some-instances-fail": (UNTRACEABLE + "SomeInstancesFail", (), (), False, {}),
    "repeated-failing-block": (
        UNTRACEABLE + "RepeatedFailingBlock",
        (),
        (UNTRACEABLE + "Clamp",),
        False,
        {},
    ),
    "root-failure": (UNTRACEABLE + "RootFailure", (), (), False, {}),
}


def import_object(spec: str) -> Any:
    module_name, _, attr = spec.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def build(target: str) -> nn.Module:
    if "/" in target:
        return load_model(parse_target(target)).model
    obj = import_object(target)
    return obj if isinstance(obj, nn.Module) else obj()


def trace_case(case_id: str, **kwargs: Any) -> tuple[Report, nn.Module]:
    target, names, class_specs, train, pinned = CASES[case_id]
    classes = [import_object(spec) for spec in class_specs]
    model = build(target)
    report = trace_model(
        model, names, classes, train=train, concrete_args=pinned, **kwargs
    )
    return report, model


@pytest.fixture(scope="module")
def real_reports() -> dict[str, Report]:
    """Every case traced with torch's tracer, before any test forces the
    fallback (module-scoped fixtures are set up first)."""
    tracer_module.base_tracer_class.cache_clear()
    tracer_module.observing_tracer_class.cache_clear()
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv(tracer_module.FALLBACK_ENV, raising=False)
        patch.chdir(REPO_ROOT)
        patch.syspath_prepend(str(REPO_ROOT))
        reports = {case_id: trace_case(case_id)[0] for case_id in CASES}
    assert all(report.tracer == TORCH_TRACER for report in reports.values())
    return reports


def comparable(report: Report) -> dict[str, Any]:
    data = report.to_dict()
    del data["tracer"]
    del data["summary"]["trace_seconds"]
    return data


@pytest.mark.parametrize("case_id", list(CASES))
def test_fallback_report_equals_torch_report(
    case_id: str,
    real_reports: dict[str, Report],
    fallback_tracer: None,
    repo_root: Path,
) -> None:
    real = real_reports[case_id]
    report, _ = trace_case(case_id)

    assert report.tracer == FALLBACK
    assert report.ok is real.ok
    assert report.error == real.error

    def graph(r: Report) -> list[Any]:
        return [(n.name, n.op, n.target, n.args, n.kwargs, n.users) for n in r.nodes]

    assert graph(report) == graph(real)
    assert [n.scope for n in report.nodes] == [n.scope for n in real.nodes]
    assert [n.module_stack for n in report.nodes] == [
        n.module_stack for n in real.nodes
    ]
    assert [n.location for n in report.nodes] == [n.location for n in real.nodes]

    def decisions(r: Report) -> list[Any]:
        return [(m.path, m.type, m.decision, m.reasons, m.calls) for m in r.modules]

    assert decisions(report) == decisions(real)
    assert comparable(report) == comparable(real)


@pytest.mark.parametrize("case_id", list(CASES))
def test_fallback_graph_equals_raw_torch_graph(
    case_id: str, fallback_tracer: None, repo_root: Path
) -> None:
    target, names, class_specs, train, pinned = CASES[case_id]
    classes = [import_object(spec) for spec in class_specs]
    report, _ = trace_case(case_id)

    raw_model = build(target).train(train)
    raw = QuantizationTracer(list(names), classes)
    try:
        raw.trace(raw_model, concrete_args=pinned or None)
    except Exception:  # the failing samples fail in both
        assert not report.ok
    else:
        assert report.ok
    raw_nodes = list(raw.graph.nodes)
    assert [(n.name, n.op) for n in report.nodes] == [(n.name, n.op) for n in raw_nodes]
    assert [n.users for n in report.nodes] == [
        [user.name for user in n.users] for n in raw_nodes
    ]
    for info in report.nodes:
        path, scope_type = raw.node_name_to_scope[info.name]
        assert info.scope.path == path
        assert (info.scope.type is None) is (scope_type is None)
    assert {m.path for m in report.modules if m.decision in ("leaf", "traced")} == set(
        raw.num_calls
    )


def every_sample_module() -> list[tuple[str, str, nn.Module]]:
    rows = []
    for case_id, (target, *_rest) in CASES.items():
        for path, module in build(target).named_modules():
            rows.append((case_id, path, module))
    return rows


class UserSequential(nn.Sequential):
    pass


class UserLinear(nn.Linear):
    pass


EXTRA_MODULES: list[tuple[str, nn.Module]] = [
    ("sequential", nn.Sequential(nn.ReLU())),
    ("module-list", nn.ModuleList([nn.ReLU()])),
    ("module-dict", nn.ModuleDict({"a": nn.ReLU()})),
    (
        "conv-bn-relu",
        nni.ConvBnReLU2d(nn.Conv2d(1, 1, 1), nn.BatchNorm2d(1), nn.ReLU()),
    ),
    ("linear-relu", nni.LinearReLU(nn.Linear(1, 1), nn.ReLU())),
    ("quant-stub", torch.ao.quantization.QuantStub()),
    ("user-sequential", UserSequential(nn.ReLU())),
    ("user-linear", UserLinear(1, 1)),
]


@pytest.mark.parametrize(
    ("skip_names", "skip_classes"),
    [
        ((), ()),
        (("x", "layer1", "stages.1.gate", "layers.0.tokens"), ()),
        ((), (UserLinear, nni.LinearReLU, nn.Sequential, nn.Conv2d)),
    ],
)
def test_leaf_rule_equals_torch_on_every_module(
    skip_names: tuple[str, ...], skip_classes: tuple[type, ...], repo_root: Path
) -> None:
    from sample_models.blocks import Gate

    classes: list[Callable[..., Any]] = [*skip_classes, Gate]
    ours = FallbackQuantizationTracer(list(skip_names), classes)
    theirs = QuantizationTracer(list(skip_names), classes)
    rows = every_sample_module() + [("extra", "x", m) for _, m in EXTRA_MODULES]
    assert len(rows) > 100
    for case_id, path, module in rows:
        expected = theirs.is_leaf_module(module, path)
        assert ours.is_leaf_module(module, path) is expected, (case_id, path)


def test_fixture_selects_fallback(fallback_tracer: None) -> None:
    base = tracer_module.base_tracer_class()
    assert base is FallbackQuantizationTracer
    observing = tracer_module.observing_tracer_class(base)
    assert issubclass(observing, FallbackQuantizationTracer)
    assert not issubclass(observing, QuantizationTracer)
    report = trace_model(nn.Sequential(nn.Linear(2, 2)))
    assert report.tracer == FALLBACK


def test_fallback_when_torch_lacks_quantization(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(tracer_module.FALLBACK_ENV, raising=False)
    # A None entry makes the import raise ImportError, as on a torch without it.
    monkeypatch.setitem(sys.modules, "torch.ao.quantization.fx.tracer", None)
    tracer_module.base_tracer_class.cache_clear()
    tracer_module.observing_tracer_class.cache_clear()
    try:
        assert tracer_module.base_tracer_class() is FallbackQuantizationTracer
        report = trace_model(nn.Sequential(nn.Linear(2, 2), nn.ReLU()))
        assert report.ok and report.tracer == FALLBACK
        assert [m.decision for m in report.modules] == ["root", "leaf", "leaf"]
    finally:
        tracer_module.base_tracer_class.cache_clear()
        tracer_module.observing_tracer_class.cache_clear()


def test_torch_tracer_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(tracer_module.FALLBACK_ENV, raising=False)
    tracer_module.base_tracer_class.cache_clear()
    tracer_module.observing_tracer_class.cache_clear()
    assert tracer_module.base_tracer_class() is QuantizationTracer
    assert trace_model(nn.ReLU()).tracer == TORCH_TRACER
