"""Command-line tests of ``qtrace diff``: report files and targets, exit codes,
tables, JSON, and reports that cannot be read."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from qtrace_cli.cli import app

REPO = Path(__file__).resolve().parent.parent
TRACEBACK = "Traceback (most recent call last)"
RESNET = "sample_models.resnet:TinyResNet"
NESTED = "sample_models.untraceable:NestedFailure"
DIFF_KEYS = {
    "schema",
    "equal",
    "status",
    "nodes_added",
    "nodes_removed",
    "nodes_changed",
    "modules_changed",
}


@pytest.fixture(autouse=True)
def _at_repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    monkeypatch.setattr(sys, "dont_write_bytecode", True)


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
    return " ".join(text.split())


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Reports written by ``qtrace show --format json -o``."""
    folder = tmp_path_factory.mktemp("reports")
    made = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(REPO)
        patch.setattr(sys, "dont_write_bytecode", True)
        for key, args in {
            "resnet": [RESNET],
            "resnet_se": [RESNET, "--skip-name", "layer1.se"],
            "nested_ok": [NESTED, "--skip-name", "branch.gate"],
            "nested_fails": [NESTED],
        }.items():
            path = folder / f"{key}.json"
            result = invoke("show", *args, "--format", "json", "-o", str(path))
            assert result.exit_code in (0, 1), result.stderr
            assert path.is_file()
            made[key] = path
    return made


# --------------------------------------------------------------------------
# equal


def test_a_file_against_itself_is_equal(reports: dict[str, Path]) -> None:
    result = invoke("diff", str(reports["resnet"]), str(reports["resnet"]))

    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == "no structural difference"


def test_a_file_against_its_target_is_equal(reports: dict[str, Path]) -> None:
    plain = invoke("diff", str(reports["resnet"]), RESNET)
    skipped = invoke(
        "diff", RESNET, str(reports["resnet_se"]), "--skip-name", "layer1.se"
    )

    assert plain.exit_code == 0, plain.stderr
    assert "no structural difference" in plain.stdout
    assert skipped.exit_code == 0, skipped.stderr
    assert "no structural difference" in skipped.stdout


def test_two_targets_are_equal() -> None:
    result = invoke("diff", RESNET, RESNET)

    assert result.exit_code == 0, result.stderr
    assert "no structural difference" in result.stdout


def test_equal_as_json(reports: dict[str, Path]) -> None:
    result = invoke("diff", str(reports["resnet"]), RESNET, "--format", "json")

    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert set(document) == DIFF_KEYS
    assert document["schema"] == "qtrace.diff/1"
    assert document["equal"] is True
    assert document["status"] is None
    for key in ("nodes_added", "nodes_removed", "nodes_changed", "modules_changed"):
        assert document[key] == []


# --------------------------------------------------------------------------
# different


def test_a_new_leaf_shows_the_tables(reports: dict[str, Path]) -> None:
    result = invoke(
        "diff", str(reports["resnet"]), str(reports["resnet_se"]), "--width", "120"
    )

    assert result.exit_code == 1, result.stderr
    lines = result.stdout.splitlines()
    assert "nodes added" in lines
    assert "nodes removed" in lines
    assert "module decisions changed" in lines
    out = words(result.stdout)
    assert "layer1_se call_module layer1.se" in out
    assert "layer1.se SE traced leaf (skip-name)" in out
    assert "layer1.se.fc1 Conv2d leaf (torch-module) inside-leaf" in out
    assert "no structural difference" not in out


def test_a_file_against_a_target_with_flags_differs(reports: dict[str, Path]) -> None:
    result = invoke("diff", str(reports["resnet"]), RESNET, "--skip-name", "layer1.se")

    assert result.exit_code == 1, result.stderr
    assert "module decisions changed" in result.stdout


def test_status_change_is_shown_first(reports: dict[str, Path]) -> None:
    result = invoke(
        "diff",
        str(reports["nested_ok"]),
        str(reports["nested_fails"]),
        "--width",
        "120",
    )

    assert result.exit_code == 1, result.stderr
    assert result.stdout.splitlines()[0] == "trace status: traced -> failed"
    assert "module decisions changed" in result.stdout


def test_different_as_json(reports: dict[str, Path]) -> None:
    result = invoke(
        "diff",
        str(reports["resnet"]),
        str(reports["resnet_se"]),
        "--format",
        "json",
    )

    assert result.exit_code == 1, result.stderr
    document = json.loads(result.stdout)
    assert set(document) == DIFF_KEYS
    assert document["schema"] == "qtrace.diff/1"
    assert document["equal"] is False
    assert document["status"] is None
    added = document["nodes_added"]
    assert [(n["op"], n["target"]) for n in added] == [("call_module", "layer1.se")]
    assert set(added[0]) >= {"index", "name", "op", "target", "args", "scope"}
    assert document["nodes_removed"]
    se = {m["path"]: m for m in document["modules_changed"]}["layer1.se"]
    assert se["old"]["decision"] == "traced"
    assert se["new"] == {
        "type": "sample_models.blocks.SE",
        "decision": "leaf",
        "reasons": ["skip-name"],
    }


def test_status_change_as_json(reports: dict[str, Path]) -> None:
    result = invoke(
        "diff",
        str(reports["nested_fails"]),
        str(reports["nested_ok"]),
        "--format",
        "json",
    )

    assert result.exit_code == 1, result.stderr
    document = json.loads(result.stdout)
    assert document["equal"] is False
    assert document["status"] == {"old_ok": False, "new_ok": True}


# --------------------------------------------------------------------------
# reports that cannot be read


def valid_report(reports: dict[str, Path]) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(reports["resnet"].read_text())
    return data


def write_bad(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


BAD_FILES = {
    "malformed": lambda good: "{this is not json",
    "empty": lambda good: "",
    "truncated": lambda good: good[: len(good) // 2],
    "array": lambda good: "[1, 2, 3]",
    "wrong-schema": lambda good: good.replace("qtrace.report/1", "qtrace.report/9"),
    "suggest-document": lambda good: json.dumps(
        {"schema": "qtrace.suggest/1", "ok": True, "skip_names": []}
    ),
    "no-schema": lambda good: json.dumps({"nodes": []}),
    "missing-nodes": lambda good: json.dumps(
        {k: v for k, v in json.loads(good).items() if k != "nodes"}
    ),
    "nodes-not-a-list": lambda good: json.dumps({**json.loads(good), "nodes": 7}),
    "summary-not-a-table": lambda good: json.dumps(
        {**json.loads(good), "summary": [1, 2]}
    ),
    "binary": lambda good: b"\xff\xfe\x00garbage",
}


@pytest.mark.parametrize("kind", list(BAD_FILES))
@pytest.mark.parametrize("side", ["old", "new"])
def test_an_unreadable_report_is_a_usage_error_naming_the_file(
    reports: dict[str, Path], tmp_path: Path, kind: str, side: str
) -> None:
    good = reports["resnet"].read_text()
    bad = write_bad(tmp_path, f"{kind}.json", BAD_FILES[kind](good))
    pair = [str(bad), str(reports["resnet"])]
    if side == "new":
        pair.reverse()

    result = invoke("diff", *pair)

    assert result.exit_code == 2, result.stdout + result.stderr
    assert result.stdout == ""
    assert str(bad) in result.stderr
    assert result.stderr.startswith("qtrace: error:")
    assert "internal error" not in result.stderr


def test_an_unreadable_report_as_json_output_is_still_a_usage_error(
    reports: dict[str, Path], tmp_path: Path
) -> None:
    bad = write_bad(tmp_path, "cut.json", reports["resnet"].read_text()[:100])

    result = invoke("diff", str(bad), RESNET, "--format", "json")

    assert result.exit_code == 2
    assert result.stdout == ""
    assert str(bad) in result.stderr
    assert "truncated" in result.stderr


def test_the_messages_say_what_is_wrong(
    reports: dict[str, Path], tmp_path: Path
) -> None:
    good = reports["resnet"].read_text()
    schema = write_bad(tmp_path, "s.json", BAD_FILES["wrong-schema"](good))
    damaged = write_bad(tmp_path, "d.json", BAD_FILES["missing-nodes"](good))

    wrong_schema = invoke("diff", str(schema), RESNET)
    missing = invoke("diff", str(damaged), RESNET)
    absent = invoke("diff", str(tmp_path / "absent.json"), RESNET)

    assert "qtrace.report/1" in wrong_schema.stderr
    assert "qtrace.report/9" in wrong_schema.stderr
    assert "nodes" in missing.stderr
    assert absent.exit_code == 2
    assert "does not exist" in absent.stderr
    assert str(tmp_path / "absent.json") in absent.stderr


@pytest.mark.parametrize("value", [None, 5])
def test_a_report_with_a_wrongly_typed_field_names_the_file(
    reports: dict[str, Path], tmp_path: Path, value: Any
) -> None:
    data = valid_report(reports)
    data["nodes"][1]["target"] = value
    bad = write_bad(tmp_path, "typed.json", json.dumps(data))

    result = invoke("diff", str(bad), RESNET)

    assert "internal error" not in result.stderr
    assert result.exit_code == 2
    assert str(bad) in result.stderr


def test_diff_of_two_saved_reports_never_imports_torch(
    reports: dict[str, Path],
) -> None:
    saved = str(next(iter(reports.values())))
    probe = (
        "import sys\n"
        "from qtrace_cli.cli import app\n"
        f"try:\n    app(['diff', {saved!r}, {saved!r}], prog_name='qtrace')\n"
        "except SystemExit as done:\n    code = done.code\n"
        "sys.stderr.write(f'{code} {\"torch\" in sys.modules}')\n"
    )

    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120
    )

    assert done.stderr.strip().endswith("0 False"), done.stderr
