"""Tests of ``qtrace suggest``: the answer, its minimality and depth, the trace
count, and how it is printed.

Every answer is held to torch's own ``QuantizationTracer``, called directly:
the answer must trace, and dropping any one entry (or replacing a class by a
strict subset of its instances) must make the trace fail again.
"""

from __future__ import annotations

import importlib
import json
import re
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import torch
from typer.testing import CliRunner, Result

from qtrace_cli import suggest as suggest_module
from qtrace_cli.cli import app
from qtrace_cli.naming import qualified_name
from qtrace_cli.suggest import SUGGEST_SCHEMA, Suggestion, suggest_skips
from qtrace_cli.trace import trace_model

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    warnings.simplefilter("ignore", FutureWarning)
    from torch.ao.quantization.fx.custom_config import PrepareCustomConfig
    from torch.ao.quantization.fx.tracer import QuantizationTracer

REPO = Path(__file__).resolve().parent.parent
TRACEBACK = "Traceback (most recent call last)"
UNTRACEABLE = "sample_models.untraceable"


@pytest.fixture(autouse=True)
def _at_repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run from the repository root, so ``sample_models`` imports and source
    locations are relative to it; import without leaving bytecode behind."""
    monkeypatch.chdir(REPO)
    monkeypatch.syspath_prepend(str(REPO))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)


def build(target: str) -> torch.nn.Module:
    module, _, attr = target.partition(":")
    model: torch.nn.Module = getattr(importlib.import_module(module), attr)()
    return model


def model_class(target: str) -> type:
    module, _, attr = target.partition(":")
    cls: type = getattr(importlib.import_module(module), attr)
    return cls


def raw_traces(
    model: torch.nn.Module,
    names: Sequence[str],
    classes: Sequence[type],
    concrete_args: dict[str, Any] | None = None,
) -> bool:
    """Whether torch's own QuantizationTracer traces ``model`` with these skips,
    as prepare_fx would (eval mode, no observation)."""
    model.eval()
    tracer = QuantizationTracer(list(names), list(classes))
    try:
        tracer.trace(model, concrete_args=concrete_args)
    except Exception:
        return False
    return True


def instances_of(model: torch.nn.Module, cls: type) -> list[str]:
    return [path for path, m in model.named_modules() if path and type(m) is cls]


def invoke(*args: str) -> Result:
    env: dict[str, str | None] = {"NO_COLOR": "1", "COLUMNS": None}
    result = CliRunner().invoke(app, list(args), env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(
            f"qtrace {' '.join(args)} raised {result.exception!r}\n{result.output}"
        ) from result.exception
    assert TRACEBACK not in result.stdout + result.stderr
    return result


def words(text: str) -> str:
    """The text with every run of whitespace made one space (tables wrap)."""
    return " ".join(text.split())


# --------------------------------------------------------------------------
# the answer for every sample model


@dataclass(frozen=True)
class Case:
    target: str
    names: tuple[str, ...] = ()
    classes: tuple[str, ...] = ()
    concrete_args: dict[str, Any] = field(default_factory=dict)


CASES = [
    Case(f"{UNTRACEABLE}:NestedFailure", names=("branch.gate",)),
    Case(f"{UNTRACEABLE}:TwoFailures", names=("left.gate", "right")),
    Case(f"{UNTRACEABLE}:FailureInsideFailure", names=("outer",)),
    Case(f"{UNTRACEABLE}:SomeInstancesFail", names=("clamps.1", "clamps.3")),
    Case(
        f"{UNTRACEABLE}:RepeatedFailingBlock",
        classes=("sample_models.untraceable.Clamp",),
    ),
    Case("sample_models.mixer:Mixer", classes=("sample_models.blocks.TokenMixer",)),
    Case("sample_models.factory:Augmented", concrete_args={"augment": False}),
    Case("sample_models.resnet:TinyResNet"),
]
CASE_IDS = [case.target.rpartition(":")[2] for case in CASES]


@pytest.fixture(scope="module")
def answers() -> Iterator[dict[str, tuple[torch.nn.Module, Suggestion]]]:
    """One suggest run per sample model, shared by the tests below."""
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(REPO)
        patch.syspath_prepend(str(REPO))
        patch.setattr(sys, "dont_write_bytecode", True)
        found = {}
        for case in CASES:
            model = build(case.target)
            found[case.target] = (
                model,
                suggest_skips(model, concrete_args=case.concrete_args),
            )
        yield found


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_the_answer_is_exactly_the_expected_one(
    case: Case, answers: dict[str, tuple[torch.nn.Module, Suggestion]]
) -> None:
    _, suggestion = answers[case.target]

    assert suggestion.ok
    assert sorted(suggestion.skip_names) == sorted(case.names)
    assert sorted(qualified_name(c) for c in suggestion.skip_classes) == sorted(
        case.classes
    )
    assert suggestion.root_failure is None
    assert suggestion.hint is None
    assert suggestion.report is not None and suggestion.report.ok
    # A model that needs nothing reports no failure.
    assert bool(suggestion.failures) == bool(case.names or case.classes)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_the_answer_traces_with_the_raw_quantization_tracer(
    case: Case, answers: dict[str, tuple[torch.nn.Module, Suggestion]]
) -> None:
    model, suggestion = answers[case.target]
    pinned = case.concrete_args or None

    assert raw_traces(model, suggestion.skip_names, suggestion.skip_classes, pinned)
    if case.names or case.classes:
        # The skips are what makes it trace.
        assert not raw_traces(model, [], [], pinned)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_the_answer_is_one_minimal(
    case: Case, answers: dict[str, tuple[torch.nn.Module, Suggestion]]
) -> None:
    model, suggestion = answers[case.target]
    names, classes = suggestion.skip_names, suggestion.skip_classes
    pinned = case.concrete_args or None

    for name in names:
        rest = [n for n in names if n != name]
        assert not raw_traces(model, rest, classes, pinned), f"{name} is not needed"
    for cls in classes:
        rest_classes = [c for c in classes if c is not cls]
        assert not raw_traces(model, names, rest_classes, pinned), (
            f"class {cls.__name__} is not needed"
        )
        # Nor can the class give way to a strict subset of its instances: the
        # model fails when any one instance is left out.
        instances = instances_of(model, cls)
        assert len(instances) > 1
        for left_out in instances:
            subset = [p for p in instances if p != left_out]
            assert not raw_traces(model, names + subset, rest_classes, pinned), (
                f"class {cls.__name__} could be all instances but {left_out}"
            )


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_no_skipped_module_can_give_way_to_its_children(
    case: Case, answers: dict[str, tuple[torch.nn.Module, Suggestion]]
) -> None:
    """Deepest: skipping the children of an answer entry instead of the entry
    itself does not trace, so no ancestor was chosen where descendants do."""
    model, suggestion = answers[case.target]
    names, classes = suggestion.skip_names, suggestion.skip_classes
    pinned = case.concrete_args or None

    for name in names:
        module = model.get_submodule(name)
        children = [f"{name}.{child}" for child, _ in module.named_children()]
        rest = [n for n in names if n != name]
        assert not raw_traces(model, rest + children, classes, pinned), (
            f"{name} could be replaced by its children {children}"
        )


def test_nested_failure_skips_the_gate_not_its_parent() -> None:
    model = build(f"{UNTRACEABLE}:NestedFailure")

    suggestion = suggest_skips(model)

    assert suggestion.skip_names == ["branch.gate"]
    assert "branch" not in suggestion.skip_names
    # Skipping the parent would work too; the search did not settle for it.
    assert raw_traces(model, ["branch"], [])
    assert [f.module_path for f in suggestion.failures] == ["branch.gate"]
    failure = suggestion.failures[0]
    assert failure.type == "torch.fx.proxy.TraceError"
    assert failure.module_type == "sample_models.blocks.Gate"
    assert failure.location is not None
    assert failure.location.file == "sample_models/blocks.py"
    assert "x.abs().sum()" in failure.location.code


def test_failure_inside_failure_keeps_only_the_outer_module() -> None:
    suggestion = suggest_skips(build(f"{UNTRACEABLE}:FailureInsideFailure"))

    assert suggestion.skip_names == ["outer"]
    # Both failures were met on the way; the inner skip was dropped as redundant.
    assert [f.module_path for f in suggestion.failures] == ["outer.inner", "outer"]


def test_some_instances_fail_gets_names_not_the_class() -> None:
    suggestion = suggest_skips(build(f"{UNTRACEABLE}:SomeInstancesFail"))

    assert suggestion.skip_classes == []
    assert sorted(suggestion.skip_names) == ["clamps.1", "clamps.3"]


# --------------------------------------------------------------------------
# when no skip helps


def test_root_failure_is_not_ok_with_a_hint() -> None:
    model = build(f"{UNTRACEABLE}:RootFailure")

    suggestion = suggest_skips(model)

    assert not suggestion.ok
    assert suggestion.root_failure is not None
    assert suggestion.root_failure.module_path == ""
    assert suggestion.hint and "root" in suggestion.hint
    assert "--concrete-arg" not in suggestion.hint
    assert suggestion.skip_names == [] and suggestion.skip_classes == []
    # No search is needed to know that nothing can be skipped.
    assert suggestion.traces == 1
    assert not raw_traces(model, [], [])


def test_root_failure_on_the_command_line_exits_1_and_says_why() -> None:
    result = invoke("suggest", f"{UNTRACEABLE}:RootFailure", "--width", "100")

    assert result.exit_code == 1
    out = words(result.stdout)
    assert "No skip list makes this model trace." in out
    assert "no skip can leave out" in out
    assert "(root)" in out
    assert "sample_models/untraceable.py" in out
    assert "--skip-name" not in out
    assert "PrepareCustomConfig" not in out


def test_augmented_hint_names_the_concrete_arg() -> None:
    suggestion = suggest_skips(build("sample_models.factory:Augmented"))

    assert not suggestion.ok
    assert suggestion.root_failure is not None
    assert suggestion.hint is not None
    assert "--concrete-arg augment=false" in suggestion.hint


def test_augmented_on_the_command_line_names_the_concrete_arg() -> None:
    failing = invoke("suggest", "sample_models.factory:Augmented", "--width", "100")
    as_json = invoke("suggest", "sample_models.factory:Augmented", "--format", "json")
    fixed = invoke(
        "suggest", "sample_models.factory:Augmented", "--concrete-arg", "augment=false"
    )

    assert failing.exit_code == 1
    assert "--concrete-arg augment=false" in words(failing.stdout)
    assert as_json.exit_code == 1
    document = json.loads(as_json.stdout)
    assert document["ok"] is False
    assert document["root_failure"] is True
    assert "--concrete-arg augment=false" in document["hint"]
    assert fixed.exit_code == 0, fixed.stderr
    assert "nothing to skip" in fixed.stdout


# --------------------------------------------------------------------------
# skips the user gives


def test_given_skip_names_are_kept_even_when_not_needed() -> None:
    model = build(f"{UNTRACEABLE}:TwoFailures")

    suggestion = suggest_skips(model, skip_names=["middle"])

    assert suggestion.ok
    assert sorted(suggestion.skip_names) == ["left.gate", "middle", "right"]
    assert suggestion.given_names == ["middle"]
    # Costs are shown for what the search added, not for what was given.
    assert sorted(c.entry for c in suggestion.costs) == [
        "--skip-name left.gate",
        "--skip-name right",
    ]


def test_given_skip_class_is_kept() -> None:
    mixer = importlib.import_module("sample_models.mixer")
    model = mixer.Mixer()

    suggestion = suggest_skips(model, skip_classes=[mixer.MixerLayer])

    assert suggestion.ok
    assert suggestion.skip_classes == [mixer.MixerLayer]
    assert suggestion.skip_names == []
    assert suggestion.failures == []


def test_given_skips_are_kept_on_the_command_line() -> None:
    result = invoke(
        "suggest",
        f"{UNTRACEABLE}:TwoFailures",
        "--skip-name",
        "middle",
        "--format",
        "json",
    )

    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert sorted(document["skip_names"]) == ["left.gate", "middle", "right"]


# --------------------------------------------------------------------------
# how many traces the search runs


def record_search(
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[
    list[tuple[int, str]], list[tuple[list[str], list[type]]], Callable[..., None]
]:
    """A progress callback that records what each trace checks, and a spy on
    the skips each observed trace ran with."""
    progress: list[tuple[int, str]] = []
    skips: list[tuple[list[str], list[type]]] = []
    real = trace_model

    def spy(model: torch.nn.Module, names: Any, classes: Any, **kwargs: Any) -> Any:
        skips.append((list(names), list(classes)))
        return real(model, names, classes, **kwargs)

    monkeypatch.setattr(suggest_module, "trace_model", spy)

    def on_progress(done: int, what: str) -> None:
        progress.append((done, what))

    return progress, skips, on_progress


def test_repeated_failing_block_tries_the_class_on_the_second_trace(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    untraceable = importlib.import_module(UNTRACEABLE)
    model = untraceable.RepeatedFailingBlock()
    instances = len(instances_of(model, untraceable.Clamp))
    assert instances == 12
    progress, skips, on_progress = record_search(monkeypatch)

    suggestion = suggest_skips(model, progress=on_progress)

    assert suggestion.skip_classes == [untraceable.Clamp]
    # The second trace checks the whole class, not one instance.
    assert progress[1][0] == 1
    assert "Clamp" in progress[1][1]
    assert skips[1] == ([], [untraceable.Clamp])
    # The module docstring's algorithm: 1 trace as given, 1 with the class,
    # minimising needs no new trace (without the class is the first trace),
    # 1 check per instance while narrowing, 1 plain-tracer check; the answer is
    # the class trace again, which is remembered. Allow one spare each side.
    assert suggestion.traces <= 2 + instances + 2
    # Far from one trace per instance found one by one plus the checks.
    assert suggestion.traces < 2 * instances
    assert suggestion.traces == len(progress)
    assert [done for done, _ in progress] == list(range(suggestion.traces))


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_traces_counts_every_trace_it_ran(
    case: Case, monkeypatch: pytest.MonkeyPatch
) -> None:
    progress, skips, on_progress = record_search(monkeypatch)

    suggestion = suggest_skips(
        build(case.target), concrete_args=case.concrete_args, progress=on_progress
    )

    assert suggestion.traces == len(progress)
    assert [done for done, _ in progress] == list(range(suggestion.traces))
    # Every trace but the plain-tracer check goes through the observing
    # tracer; no skip set is traced twice.
    assert len(skips) == suggestion.traces - 1
    distinct = {(frozenset(n), frozenset(map(id, c))) for n, c in skips}
    assert len(distinct) == len(skips)


def test_a_model_that_traces_costs_one_trace_and_the_check() -> None:
    suggestion = suggest_skips(build("sample_models.resnet:TinyResNet"))

    assert suggestion.ok
    assert suggestion.failures == []
    assert suggestion.traces == 2


# --------------------------------------------------------------------------
# JSON


SUGGEST_KEYS = {
    "schema",
    "ok",
    "skip_names",
    "skip_classes",
    "failures",
    "traces",
    "seconds",
    "root_failure",
    "hint",
    "costs",
}


@pytest.mark.parametrize(
    ("target", "code"),
    [
        (f"{UNTRACEABLE}:TwoFailures", 0),
        (f"{UNTRACEABLE}:RepeatedFailingBlock", 0),
        (f"{UNTRACEABLE}:RootFailure", 1),
    ],
)
def test_json_matches_the_suggest_schema(target: str, code: int) -> None:
    result = invoke("suggest", target, "--format", "json")

    assert result.exit_code == code, result.stderr
    document = json.loads(result.stdout)  # stdout holds the JSON alone
    assert set(document) == SUGGEST_KEYS
    assert document["schema"] == SUGGEST_SCHEMA == "qtrace.suggest/1"
    assert document["ok"] is (code == 0)
    assert isinstance(document["traces"], int) and document["traces"] >= 1
    assert all(isinstance(n, str) for n in document["skip_names"])
    assert all(isinstance(c, str) for c in document["skip_classes"])
    assert document["failures"]
    for failure in document["failures"]:
        assert set(failure) == {"module_path", "type", "message", "location"}
        assert failure["type"] == "torch.fx.proxy.TraceError"
        assert set(failure["location"]) == {"file", "line", "function", "code"}
        assert isinstance(failure["location"]["line"], int)
    assert document["root_failure"] is (code == 1)


def test_json_answer_of_the_repeated_block_is_the_class() -> None:
    result = invoke(
        "suggest", f"{UNTRACEABLE}:RepeatedFailingBlock", "--format", "json"
    )

    document = json.loads(result.stdout)
    assert document["skip_names"] == []
    assert document["skip_classes"] == ["sample_models.untraceable.Clamp"]
    assert document["failures"][0]["module_path"] == "blocks.0.1"
    assert document["costs"] == [
        {
            "entry": "--skip-class sample_models.untraceable.Clamp",
            "modules": 12,
            "inner_modules": {},
            # Each instance made max() and gt before `if` stopped its trace.
            "ops_seen": 24,
        }
    ]


# --------------------------------------------------------------------------
# table output


def snippet_of(stdout: str) -> str:
    """The PrepareCustomConfig snippet printed after "or, for prepare_fx:"."""
    lines = stdout.splitlines()
    start = lines.index("or, for prepare_fx:") + 1
    end = lines.index(")", start)
    return "\n".join(lines[start : end + 1])


def config_from_snippet(stdout: str) -> Any:
    namespace: dict[str, Any] = {}
    exec(snippet_of(stdout), namespace)
    config = namespace["prepare_custom_config"]
    assert isinstance(config, PrepareCustomConfig)
    return config


@pytest.mark.parametrize(
    ("target", "names", "classes"),
    [
        (f"{UNTRACEABLE}:NestedFailure", ["branch.gate"], []),
        (f"{UNTRACEABLE}:TwoFailures", ["left.gate", "right"], []),
        (f"{UNTRACEABLE}:RepeatedFailingBlock", [], [f"{UNTRACEABLE}.Clamp"]),
        ("sample_models.mixer:Mixer", [], ["sample_models.blocks.TokenMixer"]),
    ],
)
def test_table_prints_the_flags_and_a_working_prepare_custom_config(
    target: str, names: list[str], classes: list[str]
) -> None:
    result = invoke("suggest", target, "--width", "100")

    assert result.exit_code == 0, result.stderr
    flags = [f"--skip-name {n}" for n in names] + [f"--skip-class {c}" for c in classes]
    assert "  " + " ".join(flags) in result.stdout.splitlines()
    config = config_from_snippet(result.stdout)
    assert config.non_traceable_module_names == names
    assert [qualified_name(c) for c in config.non_traceable_module_classes] == classes
    # The snippet imports the very class the model uses.
    for cls in config.non_traceable_module_classes:
        module, _, attr = qualified_name(cls).rpartition(".")
        assert cls is getattr(importlib.import_module(module), attr)


@pytest.mark.parametrize(
    ("target", "cost_line"),
    [
        (
            f"{UNTRACEABLE}:NestedFailure",
            "--skip-name branch.gate: 1 module, containing 1 Conv2d; at least 3 "
            "operations inside",
        ),
        (
            f"{UNTRACEABLE}:FailureInsideFailure",
            "--skip-name outer: 1 module, containing 2 Conv2d, 1 Gate; at least 3 "
            "operations inside",
        ),
        (
            "sample_models.mixer:Mixer",
            "--skip-class sample_models.blocks.TokenMixer: 4 modules, containing "
            "4 LayerNorm, 4 Linear; at least 4 operations inside",
        ),
        (
            f"{UNTRACEABLE}:RepeatedFailingBlock",
            "--skip-class sample_models.untraceable.Clamp: 12 modules; at least 24 "
            "operations inside",
        ),
    ],
)
def test_cost_lines_name_the_inner_modules(target: str, cost_line: str) -> None:
    result = invoke("suggest", target, "--width", "120")

    assert result.exit_code == 0, result.stderr
    lines = [line.strip() for line in result.stdout.splitlines()]
    assert "What stays in float:" in lines
    assert cost_line in lines


def test_table_lists_the_failures_found() -> None:
    result = invoke("suggest", f"{UNTRACEABLE}:TwoFailures", "--width", "120")

    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("failures found")
    out = words(result.stdout)
    assert "left.gate Gate TraceError" in out
    assert "right Clamp TraceError" in out
    assert "sample_models/untraceable.py:23" in out
    assert re.search(r"\b5 traces in [0-9.]+ s\b", out)


def test_a_model_that_traces_says_there_is_nothing_to_skip() -> None:
    result = invoke("suggest", "sample_models.resnet:TinyResNet")

    assert result.exit_code == 0, result.stderr
    assert "The model traces as it is; nothing to skip." in result.stdout
    assert "failures found" not in result.stdout
    assert "PrepareCustomConfig" not in result.stdout


LONG_NAMES_SOURCE = """
from torch import nn


class Dyn(nn.Module):
    def __init__(self, dynamic):
        super().__init__()
        self.dynamic = dynamic

    def forward(self, x):
        if self.dynamic and x.max() > 10:
            return x
        return x


class Layer(nn.Module):
    def __init__(self, i):
        super().__init__()
        self.attention_output_gate = Dyn(i % 2 == 0)

    def forward(self, x):
        return self.attention_output_gate(x)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder_layers = nn.ModuleList(Layer(i) for i in range(8))

    def forward(self, x):
        for layer in self.encoder_layers:
            x = layer(x)
        return x
"""
LONG_NAMES = [f"encoder_layers.{i}.attention_output_gate" for i in (0, 2, 4, 6)]


@pytest.fixture
def long_names_target(tmp_path: Path) -> Iterator[str]:
    """A model whose four failing instances have long paths."""
    (tmp_path / "long_skip_names.py").write_text(LONG_NAMES_SOURCE)
    yield f"{tmp_path}/long_skip_names.py:Net"
    sys.modules.pop("long_skip_names", None)


def test_long_names_get_the_failing_instances(long_names_target: str) -> None:
    result = invoke("suggest", long_names_target, "--format", "json")

    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["skip_names"] == LONG_NAMES
    assert document["skip_classes"] == []


def test_long_flags_stay_on_one_line(long_names_target: str) -> None:
    result = invoke("suggest", long_names_target)

    assert result.exit_code == 0, result.stderr
    flags = " ".join(f"--skip-name {n}" for n in LONG_NAMES)
    assert "  " + flags in result.stdout.splitlines()


def test_cost_counts_the_operations_seen_inside_a_skipped_module() -> None:
    from sample_models.gated import GatedNet

    model = GatedNet()
    answer = suggest_skips(model)
    failed = trace_model(model)

    assert answer.skip_names == ["stages.1.gate"]
    (cost,) = answer.costs
    # The gate's forward made abs, sum and eq before `if` stopped the trace.
    inside = [
        n.name
        for n in failed.nodes
        if n.scope.path == "stages.1.gate" and n.op != "placeholder"
    ]
    assert cost.ops_seen == len(inside) == 3
    assert cost.inner_modules == {"Conv2d": 1}
    assert answer.to_dict()["costs"][0]["ops_seen"] == 3
