"""Command-line tests of ``qtrace show``: exit codes, streams, JSON, filters, files.

Most tests run the Typer app in-process through ``typer.testing.CliRunner``,
which keeps stdout and stderr apart (``result.stdout`` / ``result.stderr``).
Where the process itself matters (the console script, imports, the real stdout,
a closed pipe, files left in the working directory) the installed ``qtrace``
script runs in a subprocess; each of those costs a torch import, so they are few.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from qtrace_cli.cli import app

REPO = Path(__file__).resolve().parent.parent
TRACEBACK = "Traceback (most recent call last)"
RESNET = "sample_models.resnet:TinyResNet"
GATED = "sample_models.gated:GatedNet"
MIXER = "sample_models.mixer:Mixer"
SCHEMA = "qtrace.report/1"
TRACERS = (
    "torch.ao.quantization.fx.tracer.QuantizationTracer",
    "qtrace_cli.fallback_tracer.FallbackQuantizationTracer",
)

# Environment variables that would turn colour on, fix a width or keep Python
# from writing bytecode (which would hide a __pycache__ left behind).
_UNSET = (
    "FORCE_COLOR",
    "CLICOLOR_FORCE",
    "TTY_COMPATIBLE",
    "TTY_INTERACTIVE",
    "COLUMNS",
    "LINES",
    "PYTHONDONTWRITEBYTECODE",
    "PYTHONPYCACHEPREFIX",
)


# --------------------------------------------------------------------------
# helpers


@pytest.fixture(autouse=True)
def _at_repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run from the repository root, as the sample model TARGETs expect."""
    monkeypatch.chdir(REPO)


def invoke(*args: str) -> Result:
    """Run ``qtrace ARGS`` in-process; fail on an unexpected Python exception
    and on a traceback in any output unless ``--traceback`` was given."""
    env: dict[str, str | None] = dict.fromkeys(_UNSET)
    env["NO_COLOR"] = "1"
    result = CliRunner().invoke(app, list(args), env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(
            f"qtrace {' '.join(args)} raised {result.exception!r}\n{result.output}"
        ) from result.exception
    if "--traceback" not in args:
        assert TRACEBACK not in result.stdout
        assert TRACEBACK not in result.stderr
    return result


def show(*args: str) -> Result:
    return invoke("show", *args)


def show_json(*args: str, code: int = 0) -> dict[str, Any]:
    """``qtrace show ARGS --format json``: the document parsed from stdout alone."""
    result = show(*args, "--format", "json")
    assert result.exit_code == code, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def flat(text: str) -> str:
    """Text with runs of whitespace (rich's line wrapping) made one space."""
    return " ".join(text.split())


def write_model(folder: Path, name: str, source: str) -> Path:
    path = folder / f"{name}.py"
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return path


def script_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _UNSET}
    env["NO_COLOR"] = "1"
    return env


def qtrace_script() -> str:
    found = shutil.which("qtrace", path=str(Path(sys.executable).parent))
    assert found, "the qtrace console script is not installed next to python"
    return found


def run_script(
    *args: str, cwd: Path = REPO, code: int | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the installed ``qtrace`` console script in a subprocess."""
    proc = subprocess.run(
        [qtrace_script(), *args],
        cwd=cwd,
        env=script_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    if code is not None:
        assert proc.returncode == code, proc.stderr
    if "--traceback" not in args:
        assert TRACEBACK not in proc.stdout
        assert TRACEBACK not in proc.stderr
    return proc


def run_python(code: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        env=script_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return proc


def section_titles(stdout: str) -> list[str]:
    titles = {"graph", "leaf decisions", "scopes"}
    return [line for line in stdout.splitlines() if line in titles]


def has_summary(stdout: str) -> bool:
    return re.search(r"^(traced|FAILED) in \d+\.\d+ s$", stdout, re.M) is not None


def module(report: dict[str, Any], path: str) -> dict[str, Any]:
    rows = [m for m in report["modules"] if m["path"] == path]
    assert len(rows) == 1, path
    return rows[0]


def node(report: dict[str, Any], name: str) -> dict[str, Any]:
    rows = [n for n in report["nodes"] if n["name"] == name]
    assert len(rows) == 1, name
    return rows[0]


NOISY_MODEL = """\
    import torch
    from torch import nn

    print("NOISY import")


    class Noisy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            print("NOISY build")
            self.fc = nn.Linear(4, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            print("NOISY forward")
            return self.fc(x).relu()
"""


# --------------------------------------------------------------------------
# tracing and failing models


def test_traceable_model_exits_0_with_report_on_stdout() -> None:
    result = show(RESNET)
    assert result.exit_code == 0, result.stderr
    assert has_summary(result.stdout)
    assert "traced in" in result.stdout
    assert section_titles(result.stdout) == ["graph", "leaf decisions", "scopes"]
    assert "layer1.se.fc1" in result.stdout
    assert result.stderr == ""


def test_failing_model_exits_1_with_partial_report_and_panel() -> None:
    result = show(GATED)
    assert result.exit_code == 1
    # What the tracer learned before the failure still goes to stdout ...
    assert "FAILED in" in result.stdout
    assert section_titles(result.stdout) == ["graph", "leaf decisions", "scopes"]
    assert "stages.0.conv" in result.stdout
    # ... and the diagnosis to stderr, not stdout.
    panel = flat(result.stderr)
    assert "trace failed" in panel
    assert "torch.fx.proxy.TraceError" in panel
    assert "stages.1.gate" in panel
    assert "sample_models/blocks.py:35" in panel
    assert "if x.abs().sum() == 0:" in panel
    assert "--skip-name stages.1.gate" in panel
    assert "╭─ trace failed" in result.stderr
    assert "╭─ trace failed" not in result.stdout


def test_suggested_skip_makes_failing_model_trace() -> None:
    report = show_json(GATED, "--skip-name", "stages.1.gate")
    assert report["ok"] is True
    assert report["error"] is None
    assert report["skip_names"] == ["stages.1.gate"]
    gate = module(report, "stages.1.gate")
    assert (gate["decision"], gate["reasons"]) == ("leaf", ["skip-name"])
    assert module(report, "stages.1.gate.proj")["decision"] == "inside-leaf"
    assert module(report, "stages")["decision"] == "container"
    assert module(report, "stages.0.gate")["reasons"] == ["torch-module"]


def test_class_failing_in_every_instance_traces_with_skip_class() -> None:
    assert show(MIXER, "--section", "summary").exit_code == 1
    report = show_json(MIXER, "--skip-class", "TokenMixer")
    assert report["skip_classes"] == ["sample_models.blocks.TokenMixer"]
    mixers = [m for m in report["modules"] if m["path"].endswith(".tokens")]
    assert len(mixers) == 4
    assert all(m["reasons"] == ["skip-class"] for m in mixers)


def test_model_deeper_than_the_recursion_limit_fails_with_a_message(
    tmp_path: Path,
) -> None:
    path = write_model(
        tmp_path,
        "qt_deep_model",
        """\
        from torch import nn


        class Wrap(nn.Module):
            def __init__(self, inner: nn.Module) -> None:
                super().__init__()
                self.inner = inner

            def forward(self, x):
                return self.inner(x) + 1


        def build() -> nn.Module:
            model = nn.ReLU()
            for _ in range(1500):
                model = Wrap(model)
            return model
        """,
    )
    result = show(f"{path}:build", "--section", "summary,leaves", "--width", "400")
    assert result.exit_code == 1
    assert "builtins.RecursionError" in flat(result.stderr)
    assert "recursion limit" in flat(result.stderr)
    assert len(result.stdout.splitlines()) > 1500  # every module still listed


# --------------------------------------------------------------------------
# targets and --init


@pytest.mark.parametrize(
    ("target", "init", "check"),
    [
        ("sample_models.factory:build_mlp", '{"depth": 3}', 4),
        ("sample_models.factory:build_mlp", "[8, 1]", 2),
        ("sample_models.factory:Zoo.small", None, 2),
        ("sample_models.factory:Zoo.large", None, 5),
        ("sample_models.factory:prebuilt", None, 2),
        ("sample_models/by_path/tiny_cnn.py:TinyCNN", None, 0),
    ],
)
def test_targets_load_classes_factories_instances_and_files(
    target: str, init: str | None, check: int
) -> None:
    args = [target] + (["--init", init] if init else [])
    report = show_json(*args)
    assert report["ok"] is True
    assert report["target"] == target
    linears = [
        m for m in report["modules"] if m["type"] == "torch.nn.modules.linear.Linear"
    ]
    assert len(linears) == check


def test_file_target_imports_siblings_and_reports_relative_locations() -> None:
    report = show_json("sample_models/by_path/tiny_cnn.py:TinyCNN")
    assert report["model_class"] == "tiny_cnn.TinyCNN"
    assert module(report, "block1")["type"] == "tiny_layers.ConvBlock"
    conv = node(report, "block1_conv")
    assert conv["location"]["file"] == "sample_models/by_path/tiny_layers.py"
    assert conv["location"]["function"] == "forward"


def test_concrete_arg_pins_a_forward_argument() -> None:
    target = "sample_models.factory:Augmented"
    unpinned = show_json(target, code=1)
    assert unpinned["ok"] is False
    assert unpinned["concrete_args"] == {}
    report = show_json(target, "--concrete-arg", "augment=false")
    assert report["ok"] is True
    assert report["concrete_args"] == {"augment": False}
    summary = show(target, "--concrete-arg", "augment=false", "--section", "summary")
    assert summary.exit_code == 0
    assert "concrete args: augment=False" in summary.stdout


USAGE_ERRORS = [
    pytest.param([""], "TARGET is empty", id="empty-target"),
    pytest.param(["   "], "TARGET is empty", id="blank-target"),
    pytest.param(["sample_models.resnet"], "has no ':'", id="no-colon"),
    pytest.param([":TinyResNet"], "empty module", id="no-module"),
    pytest.param(["sample_models.resnet:"], "empty attribute", id="no-attr"),
    pytest.param(["sample_models.resnet:Tiny-Net"], "dotted Python name", id="attr"),
    pytest.param(["not a module:X"], "neither a module name", id="bad-module"),
    pytest.param(
        ["sample_models.factory:build_mlp", "--init", "{depth: 3}"],
        "is not valid JSON",
        id="init-not-json",
    ),
    pytest.param(
        ["sample_models.factory:build_mlp", "--init", "3"],
        "is a JSON int",
        id="init-scalar",
    ),
    pytest.param(
        ["sample_models.factory:prebuilt", "--init", "[1]"],
        "module instance",
        id="init-for-instance",
    ),
    pytest.param([RESNET, "--section", "bogus"], "--section 'bogus'", id="section"),
    pytest.param([RESNET, "--op", "bogus"], "'--op'", id="op"),
    pytest.param([RESNET, "--format", "xml"], "'--format'", id="format"),
    pytest.param([RESNET, "--stack", "some"], "'--stack'", id="stack"),
    pytest.param([RESNET, "--width", "10"], "'--width'", id="width"),
    pytest.param([RESNET, "--no-such-flag"], "--no-such-flag", id="unknown-flag"),
    pytest.param(
        [RESNET, "-o", "no/such/folder/out.json"],
        "does not exist",
        id="output-folder",
    ),
    pytest.param([RESNET, "-o", "sample_models"], "is a folder", id="output-dir"),
    pytest.param(
        ["sample_models.factory:Augmented", "--concrete-arg", "augment"],
        "is not NAME=JSON",
        id="concrete-arg-form",
    ),
    pytest.param(
        ["sample_models.factory:Augmented", "--concrete-arg", "flip=true"],
        "not a parameter",
        id="concrete-arg-name",
    ),
]


@pytest.mark.parametrize(("args", "message"), USAGE_ERRORS)
def test_usage_errors_exit_2(args: list[str], message: str) -> None:
    result = show(*args)
    assert result.exit_code == 2, result.output
    assert message in flat(result.stderr)
    assert result.stdout == ""


def test_usage_error_for_json_format_leaves_stdout_empty() -> None:
    result = show(RESNET, "--format", "json", "--section", "nope")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "summary, graph, leaves, scopes" in result.stderr


@pytest.fixture
def broken_models(tmp_path: Path) -> Path:
    write_model(
        tmp_path,
        "qt_needs_args",
        """\
        from torch import nn


        class Needs(nn.Module):
            def __init__(self, dim: int, depth: int = 2) -> None:
                super().__init__()
                self.fc = nn.Linear(dim, dim)
        """,
    )
    write_model(tmp_path, "qt_raises_on_import", "raise RuntimeError('kaboom')\n")
    write_model(tmp_path, "qt_exits_on_import", "import sys\nsys.exit(4)\n")
    write_model(tmp_path, "qt_not_a_module", "def make():\n    return 42\n")
    return tmp_path


LOAD_ERRORS = [
    pytest.param("qt_no_such_module_here:Model", ["qt_no_such_module_here"], id="mod"),
    pytest.param(
        "no/such/file.py:Model", ["no/such/file.py", "does not exist"], id="f"
    ),
    pytest.param(
        "sample_models.resnet:TinyResnet",
        ["no attribute 'TinyResnet'", "TinyResNet"],
        id="missing-attr",
    ),
    pytest.param(
        "sample_models.factory:Zoo.medium", ["no attribute 'medium'"], id="dotted"
    ),
    pytest.param(
        "sample_models.factory:ACTIVATIONS", ["builtins.dict"], id="not-a-module"
    ),
    pytest.param(
        "sample_models.factory:Zoo",
        ["sample_models.factory.Zoo", "not an nn.Module"],
        id="class-not-a-module",
    ),
    pytest.param(
        "{tmp}/qt_not_a_module.py:make", ["returned a builtins.int"], id="factory-int"
    ),
    pytest.param(
        "{tmp}/qt_needs_args.py:Needs", ["(dim: int, depth: int = 2)"], id="no-args"
    ),
    pytest.param(
        "{tmp}/qt_raises_on_import.py:Model",
        ["builtins.RuntimeError", "kaboom"],
        id="import-raises",
    ),
    pytest.param("{tmp}/qt_exits_on_import.py:Model", ["sys.exit(4)"], id="exit"),
]


@pytest.mark.parametrize(("target", "messages"), LOAD_ERRORS)
def test_load_errors_exit_3(
    broken_models: Path, target: str, messages: list[str]
) -> None:
    result = show(target.format(tmp=broken_models), "--format", "json")
    assert result.exit_code == 3, result.output
    assert result.stderr.startswith("qtrace: error: ")
    for message in messages:
        assert message in flat(result.stderr)
    assert result.stdout == ""


def test_constructor_raising_and_rejected_arguments_exit_3() -> None:
    raised = show("sample_models.factory:build_mlp", "--init", '{"activation": "x"}')
    assert raised.exit_code == 3
    assert "builtins.ValueError: unknown activation 'x'" in flat(raised.stderr)
    rejected = show(RESNET, "--init", '{"classes": 3}')
    assert rejected.exit_code == 3
    assert "num_classes" in rejected.stderr  # the signature, to fix the call
    assert "classes" in rejected.stderr


def test_traceback_flag_shows_the_traceback() -> None:
    result = show(
        "sample_models.factory:build_mlp", "--init", "[8, 1, 7]", "--traceback"
    )
    assert result.exit_code == 3
    assert TRACEBACK in result.stderr
    assert "qtrace: error: cannot build" in result.stderr


# --------------------------------------------------------------------------
# --skip-name and --skip-class


def test_skip_name_matching_nothing_warns_with_closest_names() -> None:
    result = show(RESNET, "--skip-name", "layer1.sx", "--section", "summary")
    assert result.exit_code == 0
    warning = flat(result.stderr)
    assert warning.startswith("warning: --skip-name layer1.sx")
    assert "closest: layer1.se" in warning
    assert "warning" not in result.stdout
    assert "skips: --skip-name layer1.sx" in result.stdout


def test_skip_name_warning_keeps_json_stdout_clean() -> None:
    result = show(RESNET, "--skip-name", "layer9.*", "--format", "json")
    assert result.exit_code == 0
    assert "matches no module path" in flat(result.stderr)
    report = json.loads(result.stdout)
    assert report["skip_names"] == []
    assert report["ok"] is True


def test_skip_name_glob_expands_to_exact_names() -> None:
    report = show_json(RESNET, "--skip-name", "layer*.se")
    assert report["skip_names"] == ["layer1.se", "layer2.se"]
    for block in ("layer1", "layer2"):
        se = module(report, f"{block}.se")
        assert (se["decision"], se["reasons"]) == ("leaf", ["skip-name"])
        assert module(report, f"{block}.se.fc1")["decision"] == "inside-leaf"
    assert node(report, "layer1_se")["op"] == "call_module"


@pytest.mark.parametrize(
    "spec", ["SE", "sample_models.blocks.SE", "sample_models.blocks:SE"]
)
def test_skip_class_accepts_bare_dotted_and_colon_names(spec: str) -> None:
    report = show_json(RESNET, "--skip-class", spec)
    assert report["skip_classes"] == ["sample_models.blocks.SE"]
    se = module(report, "layer2.se")
    assert (se["decision"], se["reasons"]) == ("leaf", ["skip-class"])


@pytest.mark.parametrize(
    ("spec", "listed"),
    [
        ("Nope", ["classes in this model:", "sample_models.blocks.SE"]),
        ("Conv2", ["did you mean", "torch.nn.modules.conv.Conv2d"]),
        ("qt_nowhere.mod:Thing", ["cannot be imported", "sample_models.blocks.SE"]),
        ("torch.nn:functional", ["not an nn.Module class"]),
    ],
)
def test_unresolvable_skip_class_exits_2_with_candidates(
    spec: str, listed: list[str]
) -> None:
    result = show(RESNET, "--skip-class", spec)
    assert result.exit_code == 2
    for text in listed:
        assert text in flat(result.stderr)
    assert result.stdout == ""


def test_ambiguous_skip_class_exits_2_listing_both(tmp_path: Path) -> None:
    write_model(
        tmp_path,
        "qt_amb_other",
        """\
        from torch import nn


        class Block(nn.Module):
            def forward(self, x):
                return x
        """,
    )
    path = write_model(
        tmp_path,
        "qt_amb_model",
        """\
        from qt_amb_other import Block as OtherBlock
        from torch import nn


        class Block(nn.Module):
            def forward(self, x):
                return x


        class Model(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.a = Block()
                self.b = OtherBlock()

            def forward(self, x):
                return self.b(self.a(x))
        """,
    )
    result = show(f"{path}:Model", "--skip-class", "Block")
    assert result.exit_code == 2
    message = flat(result.stderr)
    assert "ambiguous" in message
    assert "qt_amb_model.Block" in message
    assert "qt_amb_other.Block" in message
    ok = show_json(f"{path}:Model", "--skip-class", "qt_amb_other.Block")
    assert module(ok, "b")["reasons"] == ["skip-class"]
    assert module(ok, "a")["decision"] == "traced"


# --------------------------------------------------------------------------
# JSON report


def _check_location(location: Any) -> None:
    assert isinstance(location, dict)
    assert set(location) >= {"file", "line", "function", "code"}
    assert isinstance(location["file"], str) and location["file"]
    assert isinstance(location["line"], int) and location["line"] > 0
    assert isinstance(location["function"], str)
    assert isinstance(location["code"], str)


def _check_report_shape(report: dict[str, Any]) -> None:
    assert set(report) >= {
        "schema",
        "target",
        "model_class",
        "torch_version",
        "tracer",
        "mode",
        "skip_names",
        "skip_classes",
        "ok",
        "error",
        "nodes",
        "modules",
        "summary",
    }
    assert report["schema"] == SCHEMA
    assert next(iter(report)) == "schema"
    assert report["tracer"] in TRACERS
    assert report["mode"] in ("eval", "train")
    assert isinstance(report["torch_version"], str) and report["torch_version"]
    assert isinstance(report["ok"], bool)
    assert all(isinstance(n, str) for n in report["skip_names"])
    assert all(isinstance(c, str) and "." in c for c in report["skip_classes"])

    names = [n["name"] for n in report["nodes"]]
    assert len(set(names)) == len(names)
    for index, row in enumerate(report["nodes"]):
        assert set(row) >= {
            "index",
            "name",
            "op",
            "target",
            "args",
            "kwargs",
            "users",
            "scope",
            "module_stack",
            "location",
        }
        assert row["index"] == index
        assert row["op"] in (
            "placeholder",
            "get_attr",
            "call_function",
            "call_method",
            "call_module",
            "output",
        )
        assert isinstance(row["target"], str)
        assert isinstance(row["args"], list)
        assert isinstance(row["kwargs"], dict)
        assert all(user in names for user in row["users"])
        assert set(row["scope"]) == {"path", "type"}
        assert isinstance(row["scope"]["path"], str)
        scope_type = row["scope"]["type"]
        assert scope_type is None or "." in scope_type
        for entry in row["module_stack"]:
            assert set(entry) == {"key", "path", "type"}
            assert "." in entry["type"]
        if row["location"] is not None:
            _check_location(row["location"])

    paths = [m["path"] for m in report["modules"]]
    assert paths[0] == ""
    assert len(set(paths)) == len(paths)
    root = report["modules"][0]
    assert root["decision"] == "root"
    assert root["type"] == report["model_class"]
    for row in report["modules"]:
        assert set(row) >= {"path", "type", "decision", "reasons", "calls"}
        assert "." in row["type"]
        assert row["decision"] in (
            "root",
            "traced",
            "leaf",
            "inside-leaf",
            "container",
            "not-called",
        )
        assert set(row["reasons"]) <= {
            "torch-module",
            "skip-name",
            "skip-class",
            "fused",
        }
        assert (row["decision"] == "leaf") == bool(row["reasons"])
        assert isinstance(row["calls"], int) and row["calls"] >= 0

    summary = report["summary"]
    assert set(summary) >= {
        "nodes",
        "ops",
        "leaf_modules",
        "traced_modules",
        "trace_seconds",
    }
    assert summary["nodes"] == len(report["nodes"])
    assert sum(summary["ops"].values()) == len(report["nodes"])
    decisions = [m["decision"] for m in report["modules"]]
    assert summary["leaf_modules"] == decisions.count("leaf")
    assert summary["traced_modules"] == decisions.count("traced")
    assert isinstance(summary["trace_seconds"], float)
    assert summary["trace_seconds"] >= 0


def test_json_report_matches_the_schema() -> None:
    report = show_json(RESNET)
    _check_report_shape(report)
    assert report["target"] == RESNET
    assert report["model_class"] == "sample_models.resnet.TinyResNet"
    assert report["mode"] == "eval"
    assert report["ok"] is True
    assert report["error"] is None
    assert (report["skip_names"], report["skip_classes"]) == ([], [])
    assert report["summary"]["nodes"] == 32
    assert report["summary"]["traced_modules"] == 5  # the root not counted

    first = report["nodes"][0]
    assert (first["name"], first["op"], first["users"]) == (
        "x",
        "placeholder",
        ["stem_0"],
    )
    assert first["scope"] == {"path": "", "type": None}
    mul = node(report, "mul")
    assert mul["target"] == "operator.mul"
    assert mul["args"] == ["%layer1_bn", "%layer1_se_gate"]
    assert mul["scope"] == {"path": "layer1.se", "type": "sample_models.blocks.SE"}
    assert [e["path"] for e in mul["module_stack"]] == ["layer1", "layer1.se"]
    assert mul["location"] == {
        "file": "sample_models/blocks.py",
        "line": 23,
        "function": "forward",
        "code": "return x * scale",
    }
    # the second call of the shared pooling module keeps torch's @1 suffix
    assert [e["key"] for e in node(report, "pool_1")["module_stack"]] == ["pool@1"]
    assert module(report, "pool")["calls"] == 2
    assert module(report, "pool")["type"] == "torch.nn.modules.pooling.MaxPool2d"
    assert module(report, "layer1.conv1")["reasons"] == ["fused"]
    assert module(report, "layer1.conv1.0")["decision"] == "inside-leaf"
    assert module(report, "aux_head")["decision"] == "not-called"
    assert module(report, "stem")["decision"] == "traced"


def test_json_report_of_a_failed_trace_holds_the_error() -> None:
    result = show(GATED, "--format", "json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    _check_report_shape(report)
    assert report["ok"] is False
    error = report["error"]
    assert set(error) >= {"type", "message", "module_path", "location", "suggestion"}
    assert error["type"] == "torch.fx.proxy.TraceError"
    assert "control flow" in error["message"]
    assert error["module_path"] == "stages.1.gate"
    _check_location(error["location"])
    assert error["location"]["file"] == "sample_models/blocks.py"
    assert error["location"]["line"] == 35
    assert error["suggestion"] == "--skip-name stages.1.gate"
    assert report["nodes"]  # what was built before the failure
    assert node(report, "stem")["op"] == "call_module"
    assert "trace failed" in result.stderr  # the panel, beside the JSON


def test_model_output_goes_to_stderr_not_into_the_json(tmp_path: Path) -> None:
    path = write_model(tmp_path, "qt_noisy_inproc", NOISY_MODEL)
    result = show(f"{path}:Noisy", "--format", "json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["model_class"] == "qt_noisy_inproc.Noisy"
    for line in ("NOISY import", "NOISY build", "NOISY forward"):
        assert line in result.stderr
        assert line not in result.stdout


# --------------------------------------------------------------------------
# filters and formats


@pytest.mark.parametrize(
    ("sections", "titles", "summary"),
    [
        (["graph"], ["graph"], False),
        (["summary"], [], True),
        (["leaves,scopes"], ["leaf decisions", "scopes"], False),
        (["scopes", "leaves"], ["leaf decisions", "scopes"], False),
        (["summary", "graph"], ["graph"], True),
        (["summary, leaves"], ["leaf decisions"], True),
    ],
)
def test_section_picks_tables(
    sections: list[str], titles: list[str], summary: bool
) -> None:
    args = [arg for name in sections for arg in ("--section", name)]
    result = show(RESNET, *args)
    assert result.exit_code == 0
    assert section_titles(result.stdout) == titles
    assert has_summary(result.stdout) == summary


def test_scope_keeps_one_subtree_in_json_and_table() -> None:
    report = show_json(RESNET, "--scope", "layer1.se")
    assert [m["path"] for m in report["modules"]] == [
        "layer1.se",
        "layer1.se.pool",
        "layer1.se.fc1",
        "layer1.se.act",
        "layer1.se.fc2",
        "layer1.se.gate",
    ]
    assert [n["name"] for n in report["nodes"]] == [
        "layer1_se_pool",
        "layer1_se_fc1",
        "layer1_se_act",
        "layer1_se_fc2",
        "layer1_se_gate",
        "mul",
    ]
    table = show(RESNET, "--scope", "layer1.se", "--section", "leaves")
    rows = [line.split()[0] for line in table.stdout.splitlines()[4:] if line]
    assert rows == [m["path"] for m in report["modules"]]


def test_scope_matches_whole_path_parts(tmp_path: Path) -> None:
    path = write_model(
        tmp_path,
        "qt_prefix_model",
        """\
        from torch import nn


        class Prefix(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.layer1 = nn.Linear(4, 4)
                self.layer10 = nn.Linear(4, 4)

            def forward(self, x):
                return self.layer10(self.layer1(x))
        """,
    )
    report = show_json(f"{path}:Prefix", "--scope", "layer1")
    assert [m["path"] for m in report["modules"]] == ["layer1"]
    assert [n["name"] for n in report["nodes"]] == ["layer1"]


def test_op_keeps_one_opcode() -> None:
    report = show_json(RESNET, "--op", "call_function")
    assert [n["name"] for n in report["nodes"]] == [
        "mul",
        "add",
        "mul_1",
        "add_1",
        "flatten",
    ]
    table = show(RESNET, "--op", "call_method", "--section", "graph")
    rows = [line for line in table.stdout.splitlines()[4:] if line.strip()]
    assert len(rows) == 1
    assert rows[0].split()[1:4] == ["mean", "call_method", "mean"]


def test_dot_format_emits_a_digraph() -> None:
    result = show(RESNET, "--format", "dot")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0] == 'digraph "TinyResNet" {'
    assert lines[-1] == "}"
    declared = re.findall(r'^\s+"([^"]+)" \[label=', result.stdout, re.M)
    assert len(declared) == 32
    edges = re.findall(r'^\s+"([^"]+)" -> "([^"]+)";$', result.stdout, re.M)
    assert ("x", "stem_0") in edges
    assert ("head", "output") in edges
    assert all(a in declared and b in declared for a, b in edges)
    assert 'label="layer1.se";' in result.stdout  # a cluster per scope
    assert result.stdout.count("{") == result.stdout.count("}")


def test_stack_modes_in_json() -> None:
    user = show_json(RESNET)
    assert user["stack_mode"] == "user"
    assert all(n["stack"] == [] for n in user["nodes"])

    full = show_json(RESNET, "--stack", "full")
    assert full["stack_mode"] == "full"
    mul = node(full, "mul")
    assert [(f["file"], f["line"]) for f in mul["stack"]] == [
        ("sample_models/resnet.py", 53),
        ("sample_models/resnet.py", 30),
        ("sample_models/blocks.py", 23),
    ]
    assert mul["stack"][-1] == mul["location"]

    none = show_json(RESNET, "--stack", "none")
    assert none["stack_mode"] == "none"
    assert all(n["location"] is None and n["stack"] == [] for n in none["nodes"])
    table = show(RESNET, "--stack", "none", "--section", "scopes")
    assert "resnet.py" not in table.stdout


def test_stack_full_shows_outer_frames_in_the_table() -> None:
    result = show(RESNET, "--stack", "full", "--section", "scopes", "--width", "120")
    assert result.exit_code == 0
    # `mul` (in layer1.se) was made through resnet.py:30, `out = self.se(out)`;
    # no node has that line as its innermost frame.
    assert "resnet.py:30" in result.stdout


def test_train_mode_is_reported_and_changes_the_graph() -> None:
    args = (GATED, "--skip-name", "stages.1.gate")
    evaluated = show_json(*args)
    trained = show_json(*args, "--train")
    assert (evaluated["mode"], trained["mode"]) == ("eval", "train")
    assert "torch.randn_like" not in [n["target"] for n in evaluated["nodes"]]
    assert "torch.randn_like" in [n["target"] for n in trained["nodes"]]
    summary = show(*args, "--train", "--section", "summary")
    assert "train mode" in summary.stdout
    assert "eval mode" in show(*args, "--section", "summary").stdout


# --------------------------------------------------------------------------
# -o FILE


@pytest.mark.parametrize("output_format", ["json", "table", "dot"])
def test_output_file_gets_the_report_and_stdout_nothing(
    tmp_path: Path, output_format: str
) -> None:
    out = tmp_path / f"report.{output_format}"
    result = show(RESNET, "--format", output_format, "-o", str(out))
    assert result.exit_code == 0
    assert result.stdout == ""
    text = out.read_text(encoding="utf-8")
    if output_format == "json":
        assert json.loads(text)["schema"] == SCHEMA
    elif output_format == "table":
        assert "leaf decisions" in text
    else:
        assert text.startswith("digraph")
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]


def test_failed_trace_still_writes_the_partial_report(tmp_path: Path) -> None:
    out = tmp_path / "gated.json"
    result = show(GATED, "--format", "json", "-o", str(out))
    assert result.exit_code == 1
    assert result.stdout == ""
    assert json.loads(out.read_text(encoding="utf-8"))["ok"] is False
    assert "stages.1.gate" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["qt_no_such_module_here:Model"],
        ["sample_models.factory:build_mlp", "--init", '{"activation": "x"}'],
        ["sample_models.factory:build_mlp", "--init", "{bad"],
        [RESNET, "--skip-class", "Nope"],
    ],
)
def test_failed_run_leaves_an_existing_output_file_untouched(
    tmp_path: Path, args: list[str]
) -> None:
    out = tmp_path / "report.json"
    out.write_text("previous report\n", encoding="utf-8")
    result = show(*args, "--format", "json", "-o", str(out))
    assert result.exit_code in (2, 3)
    assert out.read_text(encoding="utf-8") == "previous report\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]


# --------------------------------------------------------------------------
# the installed console script, in a subprocess


def test_script_traces_a_model() -> None:
    proc = run_script("show", RESNET, "--section", "summary", code=0)
    assert proc.stdout.startswith(f"{RESNET}  (sample_models.resnet.TinyResNet)")
    assert has_summary(proc.stdout)
    assert proc.stderr == ""


def test_script_failing_model_exit_1_panel_on_stderr() -> None:
    proc = run_script("show", GATED, code=1)
    assert "FAILED in" in proc.stdout
    assert "leaf decisions" in proc.stdout
    panel = flat(proc.stderr)
    assert "while tracing module stages.1.gate" in panel
    assert "--skip-name stages.1.gate" in panel


def test_script_failing_model_json_on_stdout_alone() -> None:
    proc = run_script("show", GATED, "--format", "json", code=1)
    report = json.loads(proc.stdout)
    assert report["error"]["module_path"] == "stages.1.gate"
    assert "--skip-name stages.1.gate" in flat(proc.stderr)


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["show", "sample_models.resnet"], 2, "has no ':'"),
        (["show", RESNET, "--format", "yaml"], 2, "'--format'"),
        (["show", "qt_no_such_module_here:Model"], 3, "qt_no_such_module_here"),
        (["show", "sample_models.resnet:Nope", "--traceback"], 3, TRACEBACK),
    ],
)
def test_script_exit_codes(args: list[str], code: int, message: str) -> None:
    proc = run_script(*args, code=code)
    assert message in flat(proc.stderr)
    assert proc.stdout == ""


def test_script_json_survives_a_model_that_prints(tmp_path: Path) -> None:
    write_model(tmp_path, "noisy", NOISY_MODEL)
    before = sorted(p.name for p in tmp_path.iterdir())
    proc = run_script(
        "show", "noisy.py:Noisy", "--format", "json", cwd=tmp_path, code=0
    )
    report = json.loads(proc.stdout)
    assert report["model_class"] == "noisy.Noisy"
    assert node(report, "fc")["location"]["file"] == "noisy.py"
    assert "NOISY import" in proc.stderr
    assert "NOISY forward" in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_script_creates_no_file_but_the_output(tmp_path: Path) -> None:
    write_model(
        tmp_path,
        "qt_sibling_layers",
        """\
        from torch import nn


        class Block(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.fc = nn.Linear(4, 4)

            def forward(self, x):
                return self.fc(x)
        """,
    )
    write_model(
        tmp_path,
        "model",
        """\
        from qt_sibling_layers import Block
        from torch import nn


        class Model(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.block = Block()

            def forward(self, x):
                return self.block(x)
        """,
    )
    before = sorted(p.name for p in tmp_path.iterdir())
    proc = run_script("show", "model.py:Model", "-o", "out.txt", cwd=tmp_path, code=0)
    assert proc.stdout == ""
    after = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    assert after == sorted([*before, "out.txt"])
    assert "block.fc" in (tmp_path / "out.txt").read_text(encoding="utf-8")


def test_python_dash_m_runs_the_cli() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "qtrace_cli", "--help"],
        cwd=REPO,
        env=script_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("Usage: ")
    assert "show" in proc.stdout


def test_help_does_not_import_torch() -> None:
    proc = run_python(
        """\
        import contextlib, io, sys
        from qtrace_cli.cli import app

        codes = []
        for argv in (["--help"], ["show", "--help"], []):
            out = io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
                try:
                    app(argv, prog_name="qtrace")
                except SystemExit as exit:
                    codes.append(exit.code)
            assert "Usage: qtrace" in out.getvalue(), out.getvalue()
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "numpy"))
        print(codes, heavy)
        """
    )
    # exit codes of --help, show --help, and no arguments (help, usage code 2);
    # then the torch modules imported: none.
    assert proc.stdout.strip() == "[0, 0, 2] []"


def test_core_imports_without_typer_or_rich() -> None:
    proc = run_python(
        """\
        import sys
        import qtrace_cli.report, qtrace_cli.trace, qtrace_cli.pipeline

        print(sorted(m for m in sys.modules if m.split(".")[0] in ("typer", "rich")))
        """
    )
    assert proc.stdout.strip() == "[]"


def test_closed_pipe_ends_quietly() -> None:
    # Output far larger than a pipe buffer, so writes continue after the reader
    # has gone.
    proc = subprocess.Popen(
        [
            qtrace_script(),
            "show",
            "sample_models.factory:build_mlp",
            "--init",
            '{"depth": 400}',
        ],
        cwd=REPO,
        env=script_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    proc.stdout.close()
    stderr = proc.stderr.read().decode()
    code = proc.wait(timeout=300)
    proc.stderr.close()
    assert first.startswith(b"sample_models.factory:build_mlp")
    assert TRACEBACK not in stderr
    assert "BrokenPipeError" not in stderr
    assert "Exception ignored" not in stderr
    assert code in (0, 128 + signal.SIGPIPE, -signal.SIGPIPE)
