"""Models that misbehave cannot break qtrace's output or its files."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from torch import nn

from qtrace_cli.trace import trace_model

QTRACE = shutil.which("qtrace", path=str(Path(sys.executable).parent)) or "qtrace"
ROOT = Path(__file__).resolve().parent.parent


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


def qtrace(args: list[str], cwd: Path, **kwargs: object) -> subprocess.Popen[str]:
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "100"}
    return subprocess.Popen(
        [QTRACE, *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,  # type: ignore[call-overload]
    )


class RaisesOwn(nn.Module):
    def forward(self, x):
        raise KeyError("missing feature map")


class UsesLen(nn.Module):
    def forward(self, x):
        return x * len(x)


class Iterates(nn.Module):
    def forward(self, x):
        return sum(row for row in x)


class AsksBool(nn.Module):
    def forward(self, x):
        return x if x else -x


class BadRepr(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(2, 2)

    def __repr__(self) -> str:
        raise RuntimeError("repr is broken")

    def forward(self, x):
        return self.fc(x)


@pytest.mark.parametrize(
    ("inner", "error_type", "words"),
    [
        (RaisesOwn, "builtins.KeyError", "missing feature map"),
        (UsesLen, "builtins.RuntimeError", "'len' is not supported"),
        (Iterates, "torch.fx.proxy.TraceError", "Proxy object cannot be iterated"),
        (AsksBool, "torch.fx.proxy.TraceError", "control flow"),
    ],
)
def test_untraceable_forwards_are_reported(
    inner: type[nn.Module], error_type: str, words: str
) -> None:
    model = nn.Sequential(nn.Linear(2, 2), inner())

    report = trace_model(model)

    assert not report.ok
    assert report.error is not None
    assert report.error.type == error_type
    assert words in report.error.message
    assert report.error.module_path == "1"
    assert report.error.suggestion == "--skip-name 1"
    assert report.error.location is not None
    assert report.error.location.file.endswith("test_hostile.py")


def test_a_module_whose_repr_raises_is_reported() -> None:
    report = trace_model(nn.Sequential(BadRepr()))

    assert report.ok
    assert [m.decision for m in report.modules] == ["root", "traced", "leaf"]


def test_model_printing_everywhere_keeps_json_stdout_clean(tmp_path: Path) -> None:
    write(
        tmp_path,
        "noisy.py",
        """
        import sys
        from torch import nn
        print("importing")
        sys.stdout.write("{not json\\n")

        class Noisy(nn.Module):
            def __init__(self):
                super().__init__()
                print("building")
                self.fc = nn.Linear(2, 2)

            def forward(self, x):
                print("tracing", x)
                return self.fc(x)
        """,
    )

    child = qtrace(["show", "noisy.py:Noisy", "--format", "json"], tmp_path)
    out, err = child.communicate(timeout=120)

    assert child.returncode == 0
    assert json.loads(out)["ok"] is True
    assert "building" in err and "tracing" in err


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_exits_130_with_one_line_and_keeps_the_old_file(tmp_path: Path) -> None:
    write(
        tmp_path,
        "slow.py",
        """
        import time
        from pathlib import Path
        from torch import nn

        class Slow(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(2, 2)

            def forward(self, x):
                Path("started").write_text("yes")
                # Busy for a minute in Python, as a slow trace is. (One long
                # sleep would not do: a library thread, such as OpenBLAS's, may
                # take the signal, and Python only acts on it between bytecodes.)
                for _ in range(600):
                    time.sleep(0.1)
                return self.fc(x)
        """,
    )
    previous = tmp_path / "report.json"
    previous.write_text('{"previous": true}\n')

    child = qtrace(
        ["show", "slow.py:Slow", "--format", "json", "-o", "report.json"],
        tmp_path,
        # A test run started in the background of a shell inherits SIGINT as
        # ignored, and Python keeps it so; give the child the default, as a
        # terminal would.
        preexec_fn=_default_sigint,
    )
    deadline = time.monotonic() + 60
    while not (tmp_path / "started").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    try:
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=60)
    finally:
        child.kill()
        child.communicate()

    assert child.returncode == 130
    assert err.strip().splitlines() == ["qtrace: interrupted"]
    assert out == ""
    assert previous.read_text() == '{"previous": true}\n'
    leftovers = sorted(p.name for p in tmp_path.iterdir())
    assert leftovers == ["report.json", "slow.py", "started"]


def test_closing_the_pipe_early_ends_quietly() -> None:
    child = qtrace(
        ["show", "benchmarks/synthetic.py:build", "--init", '{"blocks": 200}'], ROOT
    )
    assert child.stdout is not None
    first = child.stdout.readline()
    child.stdout.close()
    child.wait(timeout=120)
    assert child.stderr is not None
    err = child.stderr.read()
    child.stderr.close()

    assert "benchmarks/synthetic.py:build" in first
    assert "Traceback" not in err
    assert "BrokenPipe" not in err


def _peak_mib(blocks: int, folder: Path) -> tuple[int, float]:
    out = folder / f"r{blocks}.json"
    child = subprocess.Popen(
        [
            QTRACE,
            "show",
            "benchmarks/synthetic.py:build",
            "--init",
            json.dumps({"blocks": blocks}),
            "--format",
            "json",
            "-o",
            str(out),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4
    assert child.returncode == 0
    nodes = json.loads(out.read_text())["summary"]["nodes"]
    return nodes, usage.ru_maxrss / 1024


def test_fifty_thousand_nodes_complete_in_proportional_memory(tmp_path: Path) -> None:
    small_nodes, small_peak = _peak_mib(500, tmp_path)
    big_nodes, big_peak = _peak_mib(5600, tmp_path)

    assert big_nodes >= 50_000
    # torch itself takes a fixed few hundred MiB; what grows with the graph
    # must grow about linearly (10x the nodes, well under 10x the memory).
    assert big_peak < small_peak * (big_nodes / small_nodes)
    assert big_peak - small_peak < 5 * 1024
