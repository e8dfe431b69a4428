"""`trace_model` reports what torch's own ``QuantizationTracer`` does.

Every expectation about the graph, the scopes, the module stacks, the leaf
decisions and the call counts is taken from a raw
``torch.ao.quantization.fx.tracer.QuantizationTracer`` run on the same model,
never from qtrace itself.
"""

from __future__ import annotations

import builtins
import importlib
import inspect
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn
from torch.ao.quantization.fx.tracer import QuantizationTracer

from qtrace_cli.errors import UsageError
from qtrace_cli.report import Report
from qtrace_cli.target import load_model, parse_target
from qtrace_cli.trace import trace_model

REASON_ORDER = ("torch-module", "skip-name", "skip-class", "fused")


def qual(cls: type | None) -> str | None:
    if cls is None:
        return None
    return f"{cls.__module__}.{cls.__qualname__}"


def import_object(spec: str) -> Any:
    """``pkg.mod:Attr.sub`` to the object it names."""
    module_name, _, attr = spec.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


@dataclass(frozen=True)
class Case:
    id: str
    target: str
    ok: bool
    skip_names: tuple[str, ...] = ()
    skip_classes: tuple[str, ...] = ()
    train: bool = False
    concrete_args: dict[str, Any] = field(default_factory=dict)

    def build(self) -> nn.Module:
        if self.target.endswith(".py") or "/" in self.target.partition(":")[0]:
            return load_model(parse_target(self.target)).model
        obj = import_object(self.target)
        return obj if isinstance(obj, nn.Module) else obj()

    def classes(self) -> list[type]:
        return [import_object(spec) for spec in self.skip_classes]


RESNET = "sample_models.resnet:TinyResNet"
GATED = "sample_models.gated:GatedNet"
MIXER = "sample_models.mixer:Mixer"
AUGMENTED = "sample_models.factory:Augmented"
TOKEN_MIXER = "sample_models.blocks:TokenMixer"
UNTRACEABLE = "sample_models.untraceable:"

CASES = [
    Case("resnet", RESNET, True),
    Case("resnet-train", RESNET, True, train=True),
    Case("resnet-skip-names", RESNET, True, skip_names=("layer1.se", "head", "stem")),
    Case(
        "resnet-skip-block",
        RESNET,
        True,
        skip_classes=("sample_models.resnet:BasicBlock",),
    ),
    Case(
        "resnet-skip-fused",
        RESNET,
        True,
        skip_names=("layer1.conv1",),
        skip_classes=("torch.ao.nn.intrinsic:ConvReLU2d",),
    ),
    Case("gated", GATED, False),
    Case("gated-train", GATED, False, train=True),
    Case("gated-skip-gate", GATED, True, skip_names=("stages.1.gate",)),
    Case(
        "gated-skip-gate-train",
        GATED,
        True,
        skip_names=("stages.1.gate",),
        train=True,
    ),
    Case("gated-skip-stage", GATED, True, skip_names=("stages.1",)),
    Case("gated-skip-class", GATED, True, skip_classes=("sample_models.blocks:Gate",)),
    Case("mixer", MIXER, False),
    Case("mixer-skip-one", MIXER, False, skip_names=("layers.0.tokens",)),
    Case("mixer-skip-class", MIXER, True, skip_classes=(TOKEN_MIXER,)),
    Case(
        "mixer-skip-class-train", MIXER, True, skip_classes=(TOKEN_MIXER,), train=True
    ),
    Case("mlp", "sample_models.factory:build_mlp", True),
    Case("zoo-small", "sample_models.factory:Zoo.small", True),
    Case("prebuilt", "sample_models.factory:prebuilt", True),
    Case("augmented", AUGMENTED, False),
    Case("augmented-false", AUGMENTED, True, concrete_args={"augment": False}),
    Case("augmented-true", AUGMENTED, True, concrete_args={"augment": True}),
    Case("tiny-cnn", "sample_models/by_path/tiny_cnn.py:TinyCNN", True),
    Case("nested-failure", UNTRACEABLE + "NestedFailure", False),
    Case(
        "nested-failure-skip",
        UNTRACEABLE + "NestedFailure",
        True,
        skip_names=("branch.gate",),
    ),
    Case("two-failures", UNTRACEABLE + "TwoFailures", False),
    Case("failure-inside-failure", UNTRACEABLE + "FailureInsideFailure", False),
    Case("some-instances-fail", UNTRACEABLE + "SomeInstancesFail", False),
    Case(
        "repeated-failing-block",
        UNTRACEABLE + "RepeatedFailingBlock",
        True,
        skip_classes=(UNTRACEABLE + "Clamp",),
    ),
    Case("root-failure", UNTRACEABLE + "RootFailure", False),
    Case(
        "tiny-cnn-skip",
        "sample_models/by_path/tiny_cnn.py:TinyCNN",
        True,
        skip_names=("block1",),
    ),
]


@dataclass
class Traced:
    """One case traced by qtrace and, on a separate instance, by torch."""

    case: Case
    report: Report
    model: nn.Module
    raw: QuantizationTracer
    raw_error: Exception | None


def run_case(case: Case, **kwargs: Any) -> Traced:
    classes = case.classes()
    model = case.build()
    report = trace_model(
        model,
        case.skip_names,
        classes,
        train=case.train,
        concrete_args=case.concrete_args,
        **kwargs,
    )

    raw_model = case.build()
    raw_model.train(case.train)
    raw = QuantizationTracer(list(case.skip_names), list(classes))
    raw_error = None
    try:
        raw.trace(raw_model, concrete_args=dict(case.concrete_args) or None)
    except Exception as err:  # the expected failures of the failing samples
        raw_error = err
    return Traced(case, report, model, raw, raw_error)


_TRACED: dict[str, Traced] = {}


def trace_sample(case_id: str) -> Traced:
    """The case traced once per session; the tests only read the result."""
    if case_id not in _TRACED:
        _TRACED[case_id] = run_case(next(c for c in CASES if c.id == case_id))
    return _TRACED[case_id]


@pytest.fixture(params=CASES, ids=[case.id for case in CASES])
def traced(request: pytest.FixtureRequest, repo_root: Path) -> Traced:
    return trace_sample(request.param.id)


def node_refs(value: Any) -> set[str]:
    """Names of the nodes an encoded argument refers to."""
    if isinstance(value, str):
        return {value[1:]} if value.startswith("%") else set()
    if isinstance(value, list):
        return set().union(*(node_refs(item) for item in value))
    if isinstance(value, dict):
        return set().union(*(node_refs(item) for item in value.values()))
    return set()


def plain(value: Any) -> Any:
    """A raw argument as JSON would hold it, or ``...`` when it is not plain."""
    if isinstance(value, torch.fx.Node):
        return "%" + value.name
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    return ...


def same_argument(encoded: Any, raw: Any) -> bool:
    expected = plain(raw)
    if expected is ...:
        # Slices, dtypes and such are kept as text.
        return isinstance(encoded, str)
    if isinstance(expected, list):
        return (
            isinstance(encoded, list)
            and len(encoded) == len(raw)
            and all(same_argument(e, r) for e, r in zip(encoded, raw))
        )
    if isinstance(expected, dict):
        return (
            isinstance(encoded, dict)
            and encoded.keys() == expected.keys()
            and all(same_argument(encoded[str(k)], v) for k, v in raw.items())
        )
    return encoded == expected and type(encoded) is type(expected)


def resolve_function(text: str) -> Any:
    """The function a report's ``call_function`` target names."""
    if "." not in text:
        return getattr(builtins, text)
    parts = text.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for part in parts[cut:]:
            obj = getattr(obj, part)
        return obj
    raise LookupError(text)


def source_line(func: Any, text: str) -> tuple[int, str]:
    """The line number and stripped text of the line of ``func`` holding
    ``text``."""
    lines, start = inspect.getsourcelines(func)
    for offset, line in enumerate(lines):
        if text in line:
            return start + offset, line.strip()
    raise LookupError(text)


def module(report: Report, path: str) -> Any:
    return next(m for m in report.modules if m.path == path)


def node(report: Report, name: str) -> Any:
    return next(n for n in report.nodes if n.name == name)


# --- faithfulness to the real tracer, on every sample -------------------------


def test_outcome_matches_real_tracer(traced: Traced) -> None:
    report = traced.report
    assert report.ok is traced.case.ok
    assert (traced.raw_error is None) is traced.case.ok
    assert report.tracer == "torch.ao.quantization.fx.tracer.QuantizationTracer"
    assert report.mode == ("train" if traced.case.train else "eval")
    assert report.skip_names == list(traced.case.skip_names)
    assert report.skip_classes == [qual(cls) for cls in traced.case.classes()]
    assert report.concrete_args == traced.case.concrete_args
    assert report.torch_version == str(torch.__version__)
    assert report.model_class == qual(type(traced.model))
    if traced.raw_error is None:
        assert report.error is None
    else:
        assert report.error is not None
        assert report.error.type == qual(type(traced.raw_error))
        assert report.error.message == str(traced.raw_error)


def test_nodes_match_real_graph(traced: Traced) -> None:
    graph_nodes = list(traced.raw.graph.nodes)
    report = traced.report
    assert graph_nodes, "the raw tracer built no node"
    assert [n.name for n in report.nodes] == [n.name for n in graph_nodes]
    assert [n.index for n in report.nodes] == list(range(len(graph_nodes)))
    for info, raw in zip(report.nodes, graph_nodes):
        assert info.op == raw.op, raw.name
        assert info.users == [user.name for user in raw.users], raw.name
        if raw.op == "call_function":
            assert resolve_function(info.target) is raw.target, raw.name
        else:
            assert info.target == raw.target, raw.name
        refs = node_refs(info.args) | node_refs(info.kwargs)
        assert refs == {n.name for n in raw.all_input_nodes}, raw.name
        assert same_argument(info.args, raw.args), (raw.name, info.args)
        assert same_argument(info.kwargs, raw.kwargs), (raw.name, info.kwargs)


def test_scopes_match_node_name_to_scope(traced: Traced) -> None:
    scopes = traced.raw.node_name_to_scope
    assert set(scopes) == {n.name for n in traced.report.nodes}
    for info in traced.report.nodes:
        path, scope_type = scopes[info.name]
        assert (info.scope.path, info.scope.type) == (path, qual(scope_type))


def test_module_stacks_match_nn_module_stack(traced: Traced) -> None:
    for info, raw in zip(traced.report.nodes, traced.raw.graph.nodes):
        stack = raw.meta.get("nn_module_stack") or {}
        expected = [(key, path, qual(t)) for key, (path, t) in stack.items()]
        got = [(e.key, e.path, e.type) for e in info.module_stack]
        assert got == expected, info.name


def test_modules_listed_in_named_modules_order(traced: Traced) -> None:
    expected = [(path, qual(type(m))) for path, m in traced.model.named_modules()]
    assert [(m.path, m.type) for m in traced.report.modules] == expected


def test_leaf_decisions_match_is_leaf_module(traced: Traced) -> None:
    case, report = traced.case, traced.report
    called = set(traced.raw.num_calls)
    decided = {m.path for m in report.modules if m.decision in ("leaf", "traced")}
    assert decided == called

    by_path = dict(traced.model.named_modules())
    fresh = QuantizationTracer(list(case.skip_names), case.classes())
    for info in report.modules:
        if info.decision in ("leaf", "traced"):
            is_leaf = fresh.is_leaf_module(by_path[info.path], info.path)
            assert (info.decision == "leaf") is is_leaf, info.path


def test_calls_match_num_calls(traced: Traced) -> None:
    for info in traced.report.modules:
        assert info.calls == traced.raw.num_calls.get(info.path, 0), info.path


def test_decisions_follow_their_definitions(traced: Traced) -> None:
    report = traced.report
    decision = {m.path: m.decision for m in report.modules}
    by_path = dict(traced.model.named_modules())
    called = set(traced.raw.num_calls)
    for info in report.modules:
        path = info.path
        ancestors = [p for p in decision if p and path.startswith(p + ".")]
        leaf_above = any(decision[p] == "leaf" for p in ancestors)
        called_below = any(p.startswith(path + ".") for p in called)
        if not path:
            assert info.decision == "root"
        elif path in called:
            assert not leaf_above, path
        elif leaf_above:
            assert info.decision == "inside-leaf", path
        elif called_below and isinstance(by_path[path], (nn.ModuleList, nn.ModuleDict)):
            assert info.decision == "container", path
        else:
            assert info.decision == "not-called", path


def test_reasons_explain_leaves_only(traced: Traced) -> None:
    for info in traced.report.modules:
        if info.decision == "leaf":
            assert info.reasons, info.path
            assert set(info.reasons) <= set(REASON_ORDER)
            order = [REASON_ORDER.index(r) for r in info.reasons]
            assert order == sorted(set(order)), info.path
            if "skip-name" in info.reasons:
                assert info.path in traced.case.skip_names
        else:
            assert info.reasons == [], info.path


def test_summary_counts(traced: Traced) -> None:
    report = traced.report
    assert report.summary.nodes == len(list(traced.raw.graph.nodes))
    ops: dict[str, int] = {}
    for raw in traced.raw.graph.nodes:
        ops[raw.op] = ops.get(raw.op, 0) + 1
    assert report.summary.ops == ops
    decisions = [m.decision for m in report.modules]
    assert report.summary.leaf_modules == decisions.count("leaf")
    assert report.summary.traced_modules == decisions.count("traced")
    assert report.summary.traced_modules == len(traced.raw.num_calls) - (
        report.summary.leaf_modules
    )


def test_report_json_round_trip(traced: Traced) -> None:
    report = traced.report
    text = json.dumps(report.to_dict(), allow_nan=False)
    assert Report.from_dict(json.loads(text)) == report
    assert Report.from_dict(json.loads(report.to_json())) == report


# --- decisions and reasons of particular modules ------------------------------


def test_resnet_decisions(repo_root: Path) -> None:
    report = trace_sample("resnet").report
    assert module(report, "").decision == "root"
    assert module(report, "").reasons == []
    assert module(report, "aux_head").decision == "not-called"
    assert module(report, "aux_head").calls == 0
    assert module(report, "stem").decision == "traced"  # nn.Sequential
    assert module(report, "stem.0").reasons == ["torch-module"]
    conv1 = module(report, "layer1.conv1")
    assert (conv1.decision, conv1.reasons) == ("leaf", ["fused"])
    assert module(report, "layer1.conv1.0").decision == "inside-leaf"
    assert module(report, "layer1.conv1.1").decision == "inside-leaf"
    assert module(report, "layer1.se").decision == "traced"
    assert module(report, "pool").calls == 2
    assert module(report, "head").calls == 1


def test_resnet_repeated_call_keeps_torch_key(repo_root: Path) -> None:
    report = trace_sample("resnet").report
    pools = [n for n in report.nodes if n.op == "call_module" and n.target == "pool"]
    assert len(pools) == 2
    assert [[e.key for e in n.module_stack] for n in pools] == [["pool"], ["pool@1"]]
    assert all(e.path == "pool" for n in pools for e in n.module_stack)


def test_skip_name_reasons(repo_root: Path) -> None:
    report = trace_sample("resnet-skip-names").report
    se = module(report, "layer1.se")
    assert (se.decision, se.reasons) == ("leaf", ["skip-name"])
    assert module(report, "layer1.se.fc1").decision == "inside-leaf"
    assert module(report, "layer2.se").decision == "traced"
    assert module(report, "head").reasons == ["torch-module", "skip-name"]
    stem = module(report, "stem")
    assert (stem.decision, stem.reasons) == ("leaf", ["skip-name"])
    assert module(report, "stem.0").decision == "inside-leaf"
    assert node(report, "layer1_se").op == "call_module"


def test_skip_class_reasons(repo_root: Path) -> None:
    report = trace_sample("resnet-skip-block").report
    for path in ("layer1", "layer2"):
        block = module(report, path)
        assert (block.decision, block.reasons) == ("leaf", ["skip-class"])
        assert module(report, f"{path}.conv1").decision == "inside-leaf"
        assert module(report, f"{path}.se.fc1").decision == "inside-leaf"


def test_all_matching_clauses_listed_in_order(repo_root: Path) -> None:
    report = trace_sample("resnet-skip-fused").report
    assert module(report, "layer1.conv1").reasons == [
        "skip-name",
        "skip-class",
        "fused",
    ]
    assert module(report, "layer2.conv1").reasons == ["skip-class", "fused"]


def test_mixer_skip_class_covers_every_instance(repo_root: Path) -> None:
    report = trace_sample("mixer-skip-class").report
    tokens = [m for m in report.modules if m.path.endswith(".tokens")]
    assert len(tokens) == 4
    assert all(m.reasons == ["skip-class"] for m in tokens)
    assert module(report, "layers").decision == "traced"  # nn.Sequential


def test_gated_container(repo_root: Path) -> None:
    report = trace_sample("gated-skip-gate").report
    stages = module(report, "stages")
    assert (stages.decision, stages.calls, stages.reasons) == ("container", 0, [])
    gate = module(report, "stages.1.gate")
    assert (gate.decision, gate.reasons) == ("leaf", ["skip-name"])
    assert module(report, "stages.1.gate.proj").decision == "inside-leaf"
    assert module(report, "stages.0.gate").reasons == ["torch-module"]  # Identity


def test_container_of_unused_children_is_not_called(repo_root: Path) -> None:
    class Holder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.used = nn.ModuleList([nn.ReLU()])
            self.heads = nn.ModuleDict({"a": nn.Sequential(nn.ReLU())})
            self.unused = nn.ModuleDict({"a": nn.ReLU()})

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.heads["a"](self.used[0](x))

    report = trace_model(Holder())
    assert module(report, "used").decision == "container"
    assert module(report, "heads").decision == "container"
    assert module(report, "heads.a").decision == "traced"
    assert module(report, "unused").decision == "not-called"
    assert module(report, "unused.a").decision == "not-called"


# --- failures -----------------------------------------------------------------


def test_gated_failure(repo_root: Path) -> None:
    from sample_models.blocks import Gate

    traced = trace_sample("gated")
    error = traced.report.error
    assert error is not None
    assert error.type == "torch.fx.proxy.TraceError"
    assert error.module_path == "stages.1.gate"
    assert error.suggestion == "--skip-name stages.1.gate"
    line, code = source_line(Gate.forward, "if ")
    assert error.location is not None
    assert error.location.file == "sample_models/blocks.py"
    assert (error.location.line, error.location.code) == (line, code)
    assert error.location.function == "forward"


def test_gated_failure_keeps_partial_graph(repo_root: Path) -> None:
    report = trace_sample("gated").report
    names = [n.name for n in report.nodes]
    assert "stages_0_se_gate" in names  # stage 0 traced completely
    assert "stages_1_conv" in names  # stage 1 started
    assert "output" not in names and "head" not in names
    assert report.summary.nodes == len(names)


def test_suggested_skip_makes_model_trace(repo_root: Path) -> None:
    from sample_models.gated import GatedNet

    report = trace_sample("gated").report
    assert report.error is not None and report.error.suggestion
    flag, _, name = report.error.suggestion.partition(" ")
    assert flag == "--skip-name"
    assert trace_model(GatedNet(), [name]).ok


def test_mixer_failure_names_first_token_mixer(repo_root: Path) -> None:
    from sample_models.blocks import TokenMixer

    error = trace_sample("mixer").report.error
    assert error is not None
    assert error.module_path == "layers.0.tokens"
    assert error.location is not None
    assert error.location.file == "sample_models/blocks.py"
    assert error.location.line == source_line(TokenMixer.forward, "len(")[0]
    later = trace_sample("mixer-skip-one").report.error
    assert later is not None and later.module_path == "layers.1.tokens"


def test_failure_in_root_forward_has_no_suggestion(repo_root: Path) -> None:
    from sample_models.factory import Augmented

    report = trace_sample("augmented").report
    error = report.error
    assert error is not None
    assert error.type == "torch.fx.proxy.TraceError"
    assert error.module_path == ""
    assert error.suggestion is None
    assert error.location is not None
    assert error.location.file == "sample_models/factory.py"
    assert error.location.line == source_line(Augmented.forward, "if augment")[0]


@pytest.mark.parametrize(
    ("case_id", "module_path"),
    [
        ("nested-failure", "branch.gate"),
        ("two-failures", "left.gate"),
        ("failure-inside-failure", "outer.inner"),
        ("some-instances-fail", "clamps.1"),
        ("root-failure", ""),
    ],
)
def test_failure_names_innermost_traced_module(
    case_id: str, module_path: str, repo_root: Path
) -> None:
    error = trace_sample(case_id).report.error
    assert error is not None
    assert error.module_path == module_path
    expected = f"--skip-name {module_path}" if module_path else None
    assert error.suggestion == expected


def test_failure_of_leaf_call_names_traced_parent() -> None:
    class Holder:
        pass

    class Parent(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(2, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            # A leaf call with an argument the graph cannot hold.
            return self.lin(x, Holder())

    class Root(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.parent = Parent()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.parent(x)

    raw = QuantizationTracer([], [])
    with pytest.raises(Exception) as raised:
        raw.trace(Root())
    report = trace_model(Root())
    assert report.error is not None
    assert report.error.type == qual(type(raised.value))
    assert report.error.module_path == "parent"


# --- train and eval -----------------------------------------------------------


def test_train_mode_traces_noise(repo_root: Path) -> None:
    train = trace_sample("gated-skip-gate-train").report
    evaluated = trace_sample("gated-skip-gate").report
    assert (train.mode, evaluated.mode) == ("train", "eval")
    assert train.to_dict()["mode"] == "train"
    train_targets = [n.target for n in train.nodes if n.op == "call_function"]
    eval_targets = [n.target for n in evaluated.nodes if n.op == "call_function"]
    assert "torch.randn_like" in train_targets
    assert "torch.randn_like" not in eval_targets
    assert len(train.nodes) == len(evaluated.nodes) + 3  # randn_like, mul, add
    noise = node(train, "randn_like")
    assert noise.index < node(train, "stages_0_conv").index


def test_mode_is_set_on_every_module(repo_root: Path) -> None:
    from sample_models.gated import GatedNet

    model = GatedNet().train()
    trace_model(model, ["stages.1.gate"])
    assert not any(m.training for m in model.modules())
    model.eval()
    trace_model(model, ["stages.1.gate"], train=True)
    assert all(m.training for m in model.modules())


# --- concrete args ------------------------------------------------------------


def test_concrete_args(repo_root: Path) -> None:
    pinned_false = trace_sample("augmented-false").report
    pinned_true = trace_sample("augmented-true").report
    assert pinned_false.ok and pinned_true.ok
    assert pinned_false.concrete_args == {"augment": False}
    assert pinned_false.to_dict()["concrete_args"] == {"augment": False}
    false_targets = {n.target for n in pinned_false.nodes}
    true_targets = {n.target for n in pinned_true.nodes}
    assert "flip" not in false_targets
    assert "flip" in true_targets
    assert "body" in false_targets and "body" in true_targets


# --- source locations ---------------------------------------------------------


def test_user_stack_gives_innermost_user_frame(repo_root: Path) -> None:
    from sample_models.resnet import BasicBlock

    report = trace_sample("resnet").report
    conv = node(report, "layer1_conv1")
    line, code = source_line(BasicBlock.forward, "self.conv1(x)")
    assert conv.location is not None
    assert (conv.location.file, conv.location.line) == ("sample_models/resnet.py", line)
    assert (conv.location.function, conv.location.code) == ("forward", code)
    assert conv.stack == []
    for info in report.nodes:
        if info.op.startswith("call_"):
            assert info.location is not None, info.name
            assert not Path(info.location.file).is_absolute()
            assert (repo_root / info.location.file).is_file()


def test_full_stack_lists_user_frames_outermost_first(repo_root: Path) -> None:
    from sample_models.resnet import BasicBlock, TinyResNet

    case = next(c for c in CASES if c.id == "resnet")
    report = run_case(case, stack="full").report
    assert report.stack_mode == "full"
    conv = node(report, "layer1_conv1")
    assert len(conv.stack) >= 2
    outer, inner = conv.stack[0], conv.stack[-1]
    assert outer.line == source_line(TinyResNet.forward, "self.layer1(x)")[0]
    assert inner.line == source_line(BasicBlock.forward, "self.conv1(x)")[0]
    assert conv.location == inner
    # No frame of the test, torch or qtrace itself.
    assert all(loc.file == "sample_models/resnet.py" for loc in conv.stack)
    stem = node(report, "stem_0")  # made directly in the root's forward
    assert stem.stack == [] and stem.location is not None


def test_full_stack_across_files(repo_root: Path) -> None:
    case = next(c for c in CASES if c.id == "tiny-cnn")
    report = run_case(case, stack="full").report
    conv = node(report, "block1_conv")
    files = [loc.file for loc in conv.stack]
    assert files == [
        "sample_models/by_path/tiny_cnn.py",
        "sample_models/by_path/tiny_layers.py",
    ]


def test_no_stack(repo_root: Path) -> None:
    case = next(c for c in CASES if c.id == "gated")
    report = run_case(case, stack="none").report
    assert report.nodes
    assert all(n.location is None and n.stack == [] for n in report.nodes)
    # The failure still says where it happened.
    assert report.error is not None and report.error.location is not None


# --- a model deeper than the recursion limit ----------------------------------


class Wrap(nn.Module):
    def __init__(self, child: nn.Module) -> None:
        super().__init__()
        self.child = child

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.child(x)


def test_model_deeper_than_recursion_limit() -> None:
    depth = 3000
    limit = sys.getrecursionlimit()
    assert depth > limit
    model: nn.Module = nn.ReLU()
    for _ in range(depth):
        model = Wrap(model)

    report = trace_model(model)
    assert sys.getrecursionlimit() == limit
    assert report.ok is False
    assert report.error is not None
    assert report.error.type == "builtins.RecursionError"
    assert "recursion limit" in report.error.message
    assert str(limit) in report.error.message
    assert len(report.modules) == depth + 1
    assert report.modules[0].decision == "root"
    assert report.modules[1].path == "child"
    assert report.modules[-1].type == qual(nn.ReLU)
    assert report.modules[-1].path == ".".join(["child"] * depth)
    text = json.dumps(report.to_dict())
    assert Report.from_dict(json.loads(text)) == report


# --- JSON ---------------------------------------------------------------------


def test_json_document_shape(repo_root: Path) -> None:
    data = trace_sample("gated").report.to_dict()
    assert next(iter(data)) == "schema"
    assert data["schema"] == "qtrace.report/1"
    assert data["ok"] is False
    assert set(data["error"]) >= {
        "type",
        "message",
        "module_path",
        "location",
        "suggestion",
    }
    first = data["nodes"][0]
    assert set(first) >= {"index", "name", "op", "target", "args", "kwargs"}
    assert set(first) >= {"users", "scope", "module_stack", "location"}
    assert data["modules"][0]["path"] == ""


def test_json_round_trip_full_stack(repo_root: Path) -> None:
    case = next(c for c in CASES if c.id == "gated")
    report = run_case(case, stack="full").report
    assert any(n.stack for n in report.nodes)
    text = json.dumps(report.to_dict(), allow_nan=False)
    assert Report.from_dict(json.loads(text)) == report


@pytest.mark.parametrize("data", [[], {"schema": "other/1"}, {"nodes": []}])
def test_from_dict_rejects_other_documents(data: Any) -> None:
    with pytest.raises(UsageError) as raised:
        Report.from_dict(data, source="old.json")
    assert raised.value.exit_code == 2
    assert "old.json" in str(raised.value)
    assert "qtrace.report/1" in str(raised.value)


def test_from_dict_rejects_damaged_report(repo_root: Path) -> None:
    data = trace_sample("mlp").report.to_dict()
    del data["nodes"][0]["op"]
    with pytest.raises(UsageError) as raised:
        Report.from_dict(data, source="base.json")
    assert "damaged" in str(raised.value)
