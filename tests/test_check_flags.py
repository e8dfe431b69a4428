"""check with no TARGET takes per-model settings from [tool.qtrace] only."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from qtrace_cli.cli import app


@pytest.mark.parametrize(
    "flags",
    [
        ["--skip-name", "gate"],
        ["--baseline", "b.json"],
        ["--expect-leaf", "gate", "--max-nodes", "3"],
        ["--train"],
    ],
)
def test_per_model_flags_without_targets_are_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flags: list[str]
) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[[tool.qtrace.models]]\ntarget = "sample_models.resnet:TinyResNet"\n'
    )
    monkeypatch.chdir(tmp_path)

    result = CliRunner().invoke(app, ["check", *flags])

    assert result.exit_code == 2
    assert flags[0] in result.stderr
    assert "[tool.qtrace]" in result.stderr
