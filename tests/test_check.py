"""Tests of ``qtrace check``, the CI command: baselines, expectations,
``[tool.qtrace]``, JUnit, shards, jobs and GitHub annotations.

Most runs go through ``typer.testing.CliRunner`` in-process. Tests that edit a
model work on a copy of ``sample_models`` in a temporary project folder; since
an in-process run imports the package, every run first forgets the
``sample_models`` modules (as a fresh process would), and the repository's
own modules are restored at the end of each test. A few runs use the
installed ``qtrace`` script in a subprocess.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from qtrace_cli import output_file
from qtrace_cli.check import (
    CheckResult,
    ModelCheck,
    github_annotations,
    parse_shard,
    shard,
)
from qtrace_cli.cli import app
from qtrace_cli.errors import UsageError
from qtrace_cli.report import Location, TraceFailure

REPO = Path(__file__).resolve().parent.parent
TRACEBACK = "Traceback (most recent call last)"
RESNET = "sample_models.resnet:TinyResNet"
GATED = "sample_models.gated:GatedNet"
NESTED = "sample_models.untraceable:NestedFailure"
MLP = "sample_models.factory:build_mlp"
RESNET_NODES = 32


# --------------------------------------------------------------------------
# helpers


def _ours(name: str) -> bool:
    return name == "sample_models" or name.startswith("sample_models.")


def forget_sample_models() -> None:
    for name in [n for n in sys.modules if _ours(n)]:
        del sys.modules[name]


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Run from the repository root; give back the repository's
    ``sample_models`` modules (and the import path) afterwards."""
    saved = {n: m for n, m in sys.modules.items() if _ours(n)}
    monkeypatch.chdir(REPO)
    monkeypatch.syspath_prepend(str(REPO))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    yield
    forget_sample_models()
    sys.modules.update(saved)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder holding a copy of ``sample_models``, as the current
    directory and first on the import path."""
    root = tmp_path / "proj"
    shutil.copytree(
        REPO / "sample_models",
        root / "sample_models",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    monkeypatch.chdir(root)
    monkeypatch.syspath_prepend(str(root))
    return root


def invoke(*args: str, env: dict[str, str | None] | None = None) -> Result:
    """Run ``qtrace ARGS`` in-process, as a fresh process would import."""
    forget_sample_models()
    full_env: dict[str, str | None] = {
        "NO_COLOR": "1",
        "COLUMNS": None,
        "GITHUB_ACTIONS": None,
    }
    full_env.update(env or {})
    result = CliRunner().invoke(app, list(args), env=full_env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(
            f"qtrace {' '.join(args)} raised {result.exception!r}\n{result.output}"
        ) from result.exception
    assert TRACEBACK not in result.stdout + result.stderr
    return result


def check(*args: str, env: dict[str, str | None] | None = None) -> Result:
    return invoke("check", *args, "--width", "120", env=env)


def run_script(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the installed ``qtrace`` console script in a subprocess, with
    bytecode writing on (so a stray ``__pycache__`` would show)."""
    script = shutil.which("qtrace", path=str(Path(sys.executable).parent))
    assert script, "the qtrace console script is not installed next to python"
    unset = (
        "COLUMNS",
        "FORCE_COLOR",
        "GITHUB_ACTIONS",
        "PYTHONPATH",
        "PYTHONDONTWRITEBYTECODE",
    )
    full_env = {k: v for k, v in os.environ.items() if k not in unset}
    full_env.update({"NO_COLOR": "1", **(env or {})})
    proc = subprocess.run(
        [script, *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert TRACEBACK not in proc.stdout + proc.stderr
    return proc


def words(text: str) -> str:
    return " ".join(text.split())


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} not once in {path}"
    path.write_text(text.replace(old, new))


def status_lines(stdout: str) -> list[str]:
    """The PASS/FAIL lines, without their timings."""
    return [
        re.sub(r"\s+[0-9.]+ s(\s+\(baseline written\))?$", "", line)
        for line in stdout.splitlines()
        if line.startswith(("PASS", "FAIL"))
    ]


# --------------------------------------------------------------------------
# baselines


def test_baseline_is_written_then_passes(project: Path) -> None:
    baseline = project / "baselines" / "resnet.json"
    baseline.parent.mkdir()

    written = check(RESNET, "--baseline", str(baseline), "--update-baseline")
    again = check(RESNET, "--baseline", str(baseline))

    assert written.exit_code == 0, written.stdout + written.stderr
    assert "(baseline written)" in written.stdout
    data = json.loads(baseline.read_text())
    assert data["schema"] == "qtrace.report/1"
    assert data["ok"] is True
    assert again.exit_code == 0, again.stdout
    assert status_lines(again.stdout) == [f"PASS  {RESNET}  {RESNET_NODES} nodes"]
    assert "1 passed, 0 failed" in again.stdout
    assert "baseline written" not in again.stdout


def write_baseline(project: Path, *args: str) -> Path:
    baseline = project / "base.json"
    result = check(*args, "--baseline", str(baseline), "--update-baseline")
    assert result.exit_code == 0, result.stdout + result.stderr
    return baseline


def test_a_submodule_that_becomes_untraceable_fails(project: Path) -> None:
    baseline = write_baseline(project, RESNET)
    edit(
        project / "sample_models" / "blocks.py",
        "        return x * scale\n",
        "        if scale.sum() > 0:\n            scale = scale * 2\n"
        "        return x * scale\n",
    )

    result = check(RESNET, "--baseline", str(baseline))

    assert result.exit_code == 1
    out = words(result.stdout)
    assert out.startswith(f"FAIL {RESNET}")
    assert "does not trace: TraceError in layer1.se" in out
    # Paths below the current folder are shown relative to it.
    assert f"differs from baseline {baseline.name}: traced before" in out
    assert "trace status: traced -> failed" in result.stdout
    assert "0 passed, 1 failed" in out


def test_a_leaf_that_becomes_traced_fails(project: Path) -> None:
    baseline = write_baseline(project, RESNET, "--skip-name", "layer1.se")

    result = check(RESNET, "--baseline", str(baseline))

    assert result.exit_code == 1
    out = words(result.stdout)
    assert out.startswith(f"FAIL {RESNET}")
    assert "module decision(s) changed" in out
    assert "module decisions changed" in result.stdout.splitlines()
    assert "layer1.se SE leaf (skip-name) traced" in out
    assert "layer1.se.fc1 Conv2d inside-leaf leaf (torch-module)" in out
    assert "trace status" not in out


def test_a_fused_leaf_replaced_by_a_traced_sequential_fails(project: Path) -> None:
    baseline = write_baseline(project, RESNET)
    edit(
        project / "sample_models" / "resnet.py",
        "ConvReLU2d(nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU())",
        "nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU())",
    )

    result = check(RESNET, "--baseline", str(baseline))

    assert result.exit_code == 1
    out = words(result.stdout)
    assert "layer1.conv1 Sequential leaf (fused) traced" in out


def test_an_added_node_fails_showing_that_node(project: Path) -> None:
    baseline = write_baseline(project, RESNET)
    edit(
        project / "sample_models" / "resnet.py",
        "        x = self.stem(x)\n",
        "        x = self.stem(x)\n        x = x * 2\n",
    )

    result = check(RESNET, "--baseline", str(baseline))

    assert result.exit_code == 1
    out = words(result.stdout)
    assert status_lines(result.stdout) == [f"FAIL  {RESNET}  {RESNET_NODES + 1} nodes"]
    # The new node has two users, the block's first conv and its residual add:
    # they change, and no later node does although the SE blocks' multiplications
    # are renamed (mul -> mul_1).
    summary = (
        f"differs from baseline {baseline.name}: 1 node(s) added, 2 node(s) changed"
    )
    assert summary in out
    assert "nodes added" in result.stdout.splitlines()
    assert "mul call_function operator.mul %stem_2, 2 (root)" in out
    assert "layer1_conv1 args %stem_2 %mul" in out
    assert "add args %mul, %stem_2 %mul_1, %mul" in out
    assert "nodes removed" not in result.stdout
    assert "module decisions changed" not in result.stdout


def test_junit_failure_spells_out_the_difference(project: Path) -> None:
    baseline = write_baseline(project, RESNET)
    edit(
        project / "sample_models" / "resnet.py",
        "        x = self.stem(x)\n",
        "        x = self.stem(x)\n        x = x * 2\n",
    )
    junit = project / "qtrace.xml"

    result = check(RESNET, "--baseline", str(baseline), "--junit-xml", str(junit))

    assert result.exit_code == 1
    failure = ET.parse(junit).getroot().find("./testsuite/testcase/failure")
    assert failure is not None and failure.text is not None
    lines = failure.text.splitlines()
    assert "added mul (call_function operator.mul) in (root)" in lines
    assert "changed layer1_conv1 args: ['%stem_2'] -> ['%mul']" in lines


def test_only_volatile_fields_changed_in_the_baseline_passes(project: Path) -> None:
    baseline = write_baseline(project, RESNET)
    data = json.loads(baseline.read_text())
    data["torch_version"] = "1.0.0+prehistoric"
    data["summary"]["trace_seconds"] = 99.5
    for node in data["nodes"]:
        if node["location"] is not None:
            node["location"]["line"] += 100
            node["location"]["file"] = "/somewhere/else/" + node["location"]["file"]
    baseline.write_text(json.dumps(data))

    result = check(RESNET, "--baseline", str(baseline))

    assert result.exit_code == 0, result.stdout
    assert status_lines(result.stdout) == [f"PASS  {RESNET}  {RESNET_NODES} nodes"]


def test_a_missing_baseline_fails_and_says_how_to_make_it(tmp_path: Path) -> None:
    baseline = tmp_path / "nowhere.json"

    result = check(RESNET, "--baseline", str(baseline))

    assert result.exit_code == 1
    out = words(result.stdout)
    assert out.startswith(f"FAIL {RESNET}")
    assert str(baseline) in out
    assert "--update-baseline" in out
    assert not baseline.exists()


def good_baseline_text() -> str:
    result = invoke("show", RESNET, "--format", "json")
    assert result.exit_code == 0
    return result.stdout


BAD_BASELINES: dict[str, Callable[[str], str]] = {
    "malformed": lambda good: "{not: json,,",
    "empty": lambda good: "",
    "truncated": lambda good: good[: len(good) // 3],
    "wrong-schema": lambda good: good.replace("qtrace.report/1", "other/2"),
    "a-list": lambda good: "[]",
    "missing-modules": lambda good: json.dumps(
        {k: v for k, v in json.loads(good).items() if k != "modules"}
    ),
    "node-missing-op": lambda good: json.dumps(
        {
            **json.loads(good),
            "nodes": [{"index": 0, "name": "x"}],
        }
    ),
}


@pytest.mark.parametrize("kind", list(BAD_BASELINES))
def test_an_unreadable_baseline_fails_with_a_clear_message(
    tmp_path: Path, kind: str
) -> None:
    baseline = tmp_path / "baseline.json"
    baseline.write_text(BAD_BASELINES[kind](good_baseline_text()))

    result = check(RESNET, "--baseline", str(baseline))

    assert result.exit_code == 1
    out = words(result.stdout)
    assert out.startswith(f"FAIL {RESNET}")
    assert f"baseline {baseline}" in out
    assert any(
        hint in out for hint in ("not valid JSON", "not a qtrace report", "damaged")
    )
    assert "internal error" not in result.stderr
    assert result.stderr == ""


def test_a_baseline_with_a_wrongly_typed_field_fails_that_model_only(
    tmp_path: Path,
) -> None:
    data = json.loads(good_baseline_text())
    data["nodes"][1]["target"] = None
    baseline = tmp_path / "baseline.json"
    baseline.write_text(json.dumps(data))

    result = check(RESNET, "--baseline", str(baseline))

    assert "internal error" not in result.stderr
    assert result.exit_code == 1
    assert str(baseline) in words(result.stdout)


def test_baseline_with_two_targets_is_a_usage_error(tmp_path: Path) -> None:
    result = check(RESNET, GATED, "--baseline", str(tmp_path / "b.json"))

    assert result.exit_code == 2
    assert result.stdout == ""
    assert "--baseline takes one TARGET" in result.stderr
    assert "[tool.qtrace]" in result.stderr


# --------------------------------------------------------------------------
# writing baselines


def test_update_baseline_of_a_failing_model_keeps_the_old_file(
    project: Path,
) -> None:
    baseline = write_baseline(project, NESTED, "--skip-name", "branch.gate")
    before = baseline.read_bytes()

    result = check(NESTED, "--baseline", str(baseline), "--update-baseline")

    assert result.exit_code == 1
    assert "not written: the model does not trace" in words(result.stdout)
    assert baseline.read_bytes() == before


class _FailingReplace:
    """``os`` as qtrace's output module sees it, with a disk that fills up at
    the moment the new file would replace the old one."""

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    @staticmethod
    def replace(src: Any, dst: Any) -> None:
        raise OSError(28, "No space left on device")


@pytest.mark.parametrize("command", ["check", "show"])
def test_a_failed_write_leaves_the_previous_file_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    target = tmp_path / "out.json"
    target.write_text('{"previous": true}\n')
    monkeypatch.setattr(output_file, "os", _FailingReplace())

    if command == "check":
        result = check(RESNET, "--baseline", str(target), "--update-baseline")
    else:
        result = invoke("show", RESNET, "--format", "json", "-o", str(target))

    assert result.exit_code != 0
    assert target.read_text() == '{"previous": true}\n'
    # No half-written temporary file is left next to it.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]
    # show reports the error on stderr; check reports it as that model's
    # problem, on its FAIL line.
    assert "No space left on device" in result.stdout + result.stderr


def test_update_baseline_into_a_new_folder(project: Path) -> None:
    baseline = project / "baselines" / "resnet.json"

    result = check(RESNET, "--baseline", str(baseline), "--update-baseline")

    assert "internal error" not in result.stderr
    assert result.exit_code in (0, 2)
    if result.exit_code == 0:
        assert json.loads(baseline.read_text())["schema"] == "qtrace.report/1"
    else:
        assert str(baseline.parent) in result.stderr


# --------------------------------------------------------------------------
# expectations


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["--expect-leaf", "layer1.conv1"], None),
        (["--expect-leaf", "pool", "--expect-leaf", "head"], None),
        (
            ["--expect-leaf", "layer1.se"],
            "expected layer1.se to be leaf, but it is traced",
        ),
        (["--expect-traced", "layer1.se", "--expect-traced", "stem"], None),
        (["--expect-traced", "stem.0"], "expected stem.0 to be traced, but it is leaf"),
        (
            ["--expect-traced", "aux_head"],
            "expected aux_head to be traced, but it is not-called",
        ),
        (
            ["--expect-leaf", "layer3"],
            "expected leaf layer3, but the model has no such module",
        ),
        (["--max-nodes", str(RESNET_NODES)], None),
        (
            ["--max-nodes", str(RESNET_NODES - 1)],
            f"{RESNET_NODES} nodes, more than --max-nodes {RESNET_NODES - 1}",
        ),
        (
            ["--skip-name", "layer1.se", "--expect-leaf", "layer1.se"],
            None,
        ),
    ],
)
def test_expectations_pass_and_fail(args: list[str], problem: str | None) -> None:
    result = check(RESNET, *args)

    if problem is None:
        assert result.exit_code == 0, result.stdout
        assert result.stdout.startswith(f"PASS  {RESNET}")
    else:
        assert result.exit_code == 1
        assert result.stdout.startswith(f"FAIL  {RESNET}")
        assert problem in words(result.stdout)


def test_expectations_hold_for_every_target_and_list_every_problem() -> None:
    result = check(
        RESNET,
        GATED,
        "--skip-name",
        "stem",
        "--expect-leaf",
        "stem",
        "--expect-traced",
        "head",
        "--max-nodes",
        "5",
    )

    assert result.exit_code == 1
    out = words(result.stdout)
    assert "expected head to be traced, but it is leaf" in out
    assert "more than --max-nodes 5" in out
    assert len(status_lines(result.stdout)) == 2
    assert "0 passed, 2 failed" in out


def test_a_model_that_does_not_trace_or_load_fails_without_hiding_others() -> None:
    result = check(NESTED, RESNET, "sample_models.nowhere:Model")

    assert result.exit_code == 1
    lines = status_lines(result.stdout)
    assert [line.split()[0:2] for line in lines] == [
        ["FAIL", NESTED],
        ["PASS", RESNET],
        ["FAIL", "sample_models.nowhere:Model"],
    ]
    out = words(result.stdout)
    assert "does not trace: TraceError in branch.gate" in out
    assert "cannot load" in out
    assert "1 passed, 2 failed" in out


# --------------------------------------------------------------------------
# [tool.qtrace] in pyproject.toml

PYPROJECT = """\
[project]
name = "demo"

[[tool.qtrace.models]]
target = "sample_models.resnet:TinyResNet"

[[tool.qtrace.models]]
target = "sample_models.gated:GatedNet"
name = "gated"
skip_names = ["stages.1.gate"]
expect_leaf = ["stages.1.gate"]
baseline = "baselines/gated.json"

[[tool.qtrace.models]]
target = "sample_models.factory:build_mlp"
init = { depth = 3 }
max_nodes = 12

[[tool.qtrace.models]]
target = "sample_models.factory:Augmented"
concrete_args = { augment = false }

[[tool.qtrace.models]]
target = "sample_models.resnet:TinyResNet"
name = "resnet-se"
skip_names = ["layer1.se"]
baseline = "baselines/resnet_se.json"
"""
LABELS = [
    RESNET,
    "gated",
    MLP,
    "sample_models.factory:Augmented",
    "resnet-se",
]


def write_pyproject(root: Path, text: str = PYPROJECT) -> Path:
    path = root / "pyproject.toml"
    path.write_text(text)
    (root / "baselines").mkdir(exist_ok=True)
    return path


def test_pyproject_models_from_a_subfolder(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_pyproject(project)
    deeper = project / "src" / "deeper"
    deeper.mkdir(parents=True)
    monkeypatch.chdir(deeper)

    written = check("--update-baseline")
    monkeypatch.chdir(deeper)
    passed = check()

    assert written.exit_code == 0, written.stdout + written.stderr
    assert sorted(p.name for p in (project / "baselines").iterdir()) == [
        "gated.json",
        "resnet_se.json",
    ]
    assert not (deeper / "baselines").exists()
    assert passed.exit_code == 0, passed.stdout
    assert [line.split()[1] for line in status_lines(passed.stdout)] == LABELS
    assert "5 passed, 0 failed" in passed.stdout


def test_pyproject_removing_a_skip_fails_with_the_leaf_change(
    project: Path,
) -> None:
    pyproject = write_pyproject(project)
    assert check("--update-baseline").exit_code == 0
    os.chdir(project)
    edit(pyproject, 'skip_names = ["layer1.se"]\n', "")

    result = check()

    assert result.exit_code == 1
    lines = status_lines(result.stdout)
    assert [line.split()[0] for line in lines] == ["PASS"] * 4 + ["FAIL"]
    out = words(result.stdout)
    assert "layer1.se SE leaf (skip-name) traced" in out
    assert "4 passed, 1 failed" in out


def test_pyproject_baselines_catch_an_edited_model(project: Path) -> None:
    write_pyproject(project)
    assert check("--update-baseline").exit_code == 0
    os.chdir(project)
    edit(
        project / "sample_models" / "gated.py",
        "        return self.se(self.gate(self.act(self.conv(x))))\n",
        "        x = self.act(self.conv(x))\n        x = x + 1\n"
        "        return self.se(self.gate(x))\n",
    )

    result = check()

    assert result.exit_code == 1
    fails = [line for line in status_lines(result.stdout) if line.startswith("FAIL")]
    assert [line.split()[1] for line in fails] == ["gated"]
    # One add per stage, all in the stages' own scopes.
    out = words(result.stdout)
    assert "3 node(s) added" in out
    for stage in range(3):
        assert (
            f"call_function operator.add %stages_{stage}_act, 1 stages.{stage}" in out
        )


def test_the_nearest_pyproject_with_a_table_wins(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_pyproject(
        project, '[tool.qtrace]\nmodels = ["sample_models.resnet:TinyResNet"]\n'
    )
    inner = project / "pkg"
    inner.mkdir()
    # A pyproject.toml without [tool.qtrace] on the way up is passed over.
    (inner / "pyproject.toml").write_text('[project]\nname = "inner"\n')
    monkeypatch.chdir(inner)

    result = check()

    assert result.exit_code == 0, result.stdout + result.stderr
    assert status_lines(result.stdout) == [f"PASS  {RESNET}  {RESNET_NODES} nodes"]


def test_no_target_and_no_table_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    monkeypatch.chdir(tmp_path)

    result = check()

    assert result.exit_code == 2
    assert "found no [tool.qtrace] table" in words(result.stderr)


@pytest.mark.parametrize(
    ("toml", "problem"),
    [
        (
            '[tool.qtrace]\nmodels = ["a.b:C"]\nmodles = 1\n',
            "unknown key(s) modles",
        ),
        (
            '[tool.qtrace]\nmodels = [{ target = "a.b:C", skip_name = ["x"] }]\n',
            "model 1 in [tool.qtrace] has unknown key 'skip_name'",
        ),
        (
            '[tool.qtrace]\nmodels = ["a.b:C", { target = "a.b:C", max_nodes = "9" }]'
            "\n",
            "model 2 in [tool.qtrace]: max_nodes has the wrong type (str)",
        ),
        (
            '[tool.qtrace]\nmodels = [{ target = "a.b:C", max_nodes = true }]\n',
            "max_nodes has the wrong type (bool)",
        ),
        (
            '[tool.qtrace]\nmodels = [{ target = "a.b:C", train = "yes" }]\n',
            "train has the wrong type (str)",
        ),
        (
            '[tool.qtrace]\nmodels = [{ target = "a.b:C", skip_names = [1] }]\n',
            "skip_names must be a list of strings",
        ),
        ("[tool.qtrace\nmodels = []\n", "is not valid TOML"),
        ("[tool.qtrace]\nmodels = []\n", "needs 'models', a non-empty list"),
        ("[tool.qtrace]\n", "needs 'models', a non-empty list"),
        ('[tool.qtrace]\nmodels = "a.b:C"\n', "needs 'models', a non-empty list"),
        ('[tool.qtrace]\nmodels = [{ name = "x" }]\n', "has no 'target'"),
        ("[tool.qtrace]\nmodels = [3]\n", "must be a target string or a table"),
        ("[tool]\nqtrace = 3\n", "[tool.qtrace] must be a table"),
    ],
    ids=[
        "unknown-key",
        "unknown-model-key",
        "wrong-type",
        "bool-for-int",
        "str-for-bool",
        "non-string-skip",
        "bad-toml",
        "no-models",
        "empty-table",
        "models-not-a-list",
        "no-target",
        "model-not-a-table",
        "table-not-a-table",
    ],
)
def test_a_broken_table_is_a_usage_error_naming_the_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, toml: str, problem: str
) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(toml)
    sub = tmp_path / "sub"
    sub.mkdir()
    monkeypatch.chdir(sub)

    result = check()

    assert result.exit_code == 2, result.stdout
    assert result.stdout == ""
    message = words(result.stderr)
    assert message.startswith("qtrace: error:")
    assert str(pyproject) in message
    assert problem in message


# --------------------------------------------------------------------------
# JUnit XML


def test_junit_xml_has_one_case_per_model(tmp_path: Path) -> None:
    report = tmp_path / "qtrace.xml"

    result = check(RESNET, NESTED, MLP, "--junit-xml", str(report))

    assert result.exit_code == 1
    root = ET.parse(report).getroot()
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures")) == ("3", "1")
    suites = root.findall("testsuite")
    assert len(suites) == 1
    assert (suites[0].get("tests"), suites[0].get("failures")) == ("3", "1")
    cases = suites[0].findall("testcase")
    assert [c.get("name") for c in cases] == [RESNET, NESTED, MLP]
    failed = {c.get("name"): c.find("failure") for c in cases}
    assert failed[RESNET] is None and failed[MLP] is None
    failure = failed[NESTED]
    assert failure is not None
    assert "does not trace" in (failure.get("message") or "")
    assert "branch.gate" in (failure.text or "")
    for case in cases:
        assert float(case.get("time") or "-1") >= 0


def test_junit_xml_uses_the_names_from_pyproject(project: Path) -> None:
    write_pyproject(project)
    assert check("--update-baseline").exit_code == 0
    os.chdir(project / "sample_models")

    result = check("--junit-xml", "out.xml")

    assert result.exit_code == 0, result.stdout
    # A relative --junit-xml is relative to where qtrace was run.
    report = project / "sample_models" / "out.xml"
    cases = ET.parse(report).getroot().findall("testsuite/testcase")
    assert [c.get("name") for c in cases] == LABELS
    assert all(c.find("failure") is None for c in cases)


def test_junit_xml_into_a_missing_folder_is_a_usage_error(tmp_path: Path) -> None:
    result = check(RESNET, "--junit-xml", str(tmp_path / "no" / "x.xml"))

    assert result.exit_code == 2
    assert "--junit-xml" in result.stderr
    assert result.stdout == ""


# --------------------------------------------------------------------------
# shards


def checks_named(count: int) -> list[ModelCheck]:
    return [ModelCheck(target=f"pkg.models:Model{i}") for i in range(count)] + [
        ModelCheck(target="pkg.models:Model0", name=f"named-{i}") for i in range(5)
    ]


@pytest.mark.parametrize("count", [1, 2, 3, 4, 7])
def test_shards_are_disjoint_and_cover_the_list(count: int) -> None:
    checks = checks_named(30)

    shares = [shard(checks, i, count) for i in range(1, count + 1)]

    seen = [c for share in shares for c in share]
    assert sorted(seen, key=checks.index) == checks
    assert len(seen) == len(checks)  # no model in two shares
    for share in shares:
        # Each share keeps the list's order.
        assert share == [c for c in checks if c in share]
    if count > 1:
        assert sum(1 for share in shares if share) > 1


def test_a_models_share_depends_on_its_name_only() -> None:
    checks = checks_named(20)
    more = [ModelCheck(target="other:New"), *checks, ModelCheck(target="x:Y")]

    for i in (1, 2, 3):
        assert [c for c in shard(more, i, 3) if c in checks] == shard(checks, i, 3)


@pytest.mark.parametrize(("index", "count"), [(0, 2), (3, 2), (1, 0), (-1, 2)])
def test_shard_out_of_range_is_a_usage_error(index: int, count: int) -> None:
    with pytest.raises(UsageError, match="out of range"):
        shard(checks_named(3), index, count)


def test_parse_shard() -> None:
    assert parse_shard("2/4") == (2, 4)
    assert parse_shard("1/1") == (1, 1)
    for bad in ["", "2", "2/", "/4", "a/b", "1-2", "1/2/3", "-1/2", "1.5/2"]:
        with pytest.raises(UsageError, match="I/N"):
            parse_shard(bad)


@pytest.mark.parametrize("value", ["0/2", "3/2", "1/0", "x/2", "1-2", "2"])
def test_bad_shard_flag_is_a_usage_error(value: str) -> None:
    result = check(RESNET, "--shard", value)

    assert result.exit_code == 2
    assert "--shard" in result.stderr
    assert result.stdout == ""


def test_shard_flag_splits_the_targets() -> None:
    targets = [RESNET, GATED, MLP, NESTED, "sample_models.factory:Zoo.small"]

    first = check(*targets, "--shard", "1/2")
    second = check(*targets, "--shard", "2/2")

    labels = [
        line.split()[1]
        for result in (first, second)
        for line in status_lines(result.stdout)
    ]
    assert sorted(labels) == sorted(targets)
    assert [line.split()[1] for line in status_lines(first.stdout)] == [
        c.target for c in shard([ModelCheck(t) for t in targets], 1, 2)
    ]


# --------------------------------------------------------------------------
# jobs


def test_jobs_give_the_same_results_as_one_process() -> None:
    targets = [RESNET, GATED, MLP, NESTED]

    serial = check(*targets, "--jobs", "1")
    parallel = check(*targets, "--jobs", "2")

    assert serial.exit_code == parallel.exit_code == 1
    assert status_lines(parallel.stdout) == status_lines(serial.stdout)
    assert [line.split()[0] for line in status_lines(serial.stdout)] == [
        "PASS",
        "FAIL",
        "PASS",
        "FAIL",
    ]

    def problems(stdout: str) -> list[str]:
        return [line for line in stdout.splitlines() if line.startswith("      ")]

    assert problems(parallel.stdout) == problems(serial.stdout)
    assert "2 passed, 2 failed" in parallel.stdout


# --------------------------------------------------------------------------
# GitHub annotations


def test_github_actions_annotates_a_failing_trace() -> None:
    result = check(NESTED, RESNET, env={"GITHUB_ACTIONS": "true"})

    assert result.exit_code == 1
    annotations = [line for line in result.stdout.splitlines() if line.startswith("::")]
    assert len(annotations) == 1
    assert annotations[0].startswith(
        "::error file=sample_models/blocks.py,line=35,"
        f"title=qtrace check {NESTED.replace(':', '%3A')}::does not trace: "
        "TraceError in branch.gate"
    )


def test_no_annotations_outside_github_actions() -> None:
    result = check(NESTED)

    assert result.exit_code == 1
    assert "::error" not in result.stdout + result.stderr


def test_github_annotations_escape_and_skip_passing_models() -> None:
    failing = CheckResult(
        ModelCheck(target="m:M"), ok=False, problems=["100% wrong", "second\nline"]
    )
    passing = CheckResult(ModelCheck(target="ok:Model"), ok=True)

    lines = github_annotations([passing, failing])

    # Property values escape ':' and ',' too, as GitHub's command syntax needs.
    assert lines == ["::error title=qtrace check m%3AM::100%25 wrong; second%0Aline"]


def test_github_annotations_point_at_relative_files_only() -> None:
    import torch

    from qtrace_cli.trace import trace_model

    relative = Location("models/net.py", 12, "forward", "if x:")
    absolute = Location("/usr/lib/x.py", 3, "forward", "if x:")
    results = []
    for location in (relative, absolute):
        report = trace_model(torch.nn.Linear(2, 2))
        report.ok = False
        report.error = TraceFailure("builtins.ValueError", "boom", "", location, None)
        results.append(
            CheckResult(ModelCheck("m:M"), ok=False, problems=["x"], report=report)
        )

    lines = github_annotations(results)

    assert lines == [
        "::error file=models/net.py,line=12,title=qtrace check m%3AM::x",
        "::error title=qtrace check m%3AM::x",
    ]


# --------------------------------------------------------------------------
# the installed script


def test_script_walkthrough_baseline_then_edit(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    shutil.copytree(
        REPO / "sample_models",
        root / "sample_models",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    write_pyproject(
        root,
        textwrap.dedent(
            """\
            [[tool.qtrace.models]]
            target = "sample_models.gated:GatedNet"
            skip_names = ["stages.1.gate"]
            expect_leaf = ["stages.1.gate"]
            baseline = "baselines/gated.json"
            """
        ),
    )
    sub = root / "sample_models"

    written = run_script("check", "--update-baseline", cwd=sub)
    edit(
        root / "sample_models" / "gated.py",
        "gated=i == 1",
        "gated=i >= 1",
    )
    failed = run_script("check", "--junit-xml", "qtrace.xml", cwd=sub)

    assert written.returncode == 0, written.stderr
    assert (root / "baselines" / "gated.json").is_file()
    assert failed.returncode == 1
    out = words(failed.stdout)
    assert "does not trace: TraceError in stages.2.gate" in out
    assert "trace status: traced -> failed" in out
    root_xml = ET.parse(sub / "qtrace.xml").getroot()
    assert (root_xml.get("tests"), root_xml.get("failures")) == ("1", "1")
    # Nothing but the baseline and the report was written.
    assert not list(root.rglob("__pycache__"))


def test_script_github_annotation() -> None:
    proc = run_script("check", NESTED, RESNET, cwd=REPO, env={"GITHUB_ACTIONS": "true"})

    assert proc.returncode == 1
    annotations = [line for line in proc.stdout.splitlines() if "::error" in line]
    assert annotations == [
        "::error file=sample_models/blocks.py,line=35,title=qtrace check "
        f"{NESTED.replace(':', '%3A')}::does not trace: TraceError in branch.gate: "
        "symbolically traced variables cannot be used as inputs to control flow"
    ]
