"""Every bad input gets its exit code and a message naming the problem.

Each row runs the installed ``qtrace`` in a subprocess, in a folder of small
model files (some broken on purpose), and checks the exit code, words the
message must contain, and that no Python traceback reaches the user.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

QTRACE = shutil.which("qtrace", path=str(Path(sys.executable).parent)) or "qtrace"

MODELS = {
    "good.py": """
import torch
from torch import nn

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(self.fc(x))

class NeedsArgs(nn.Module):
    def __init__(self, width, depth=2):
        super().__init__()
        self.fc = nn.Linear(width, width)

    def forward(self, x):
        return self.fc(x)

class Explodes(nn.Module):
    def __init__(self):
        super().__init__()
        raise ValueError("weights file missing")

def make_list():
    return [1, 2, 3]

def make_net(width=4):
    return Net()

class NotAModule:
    pass

CONSTANT = 3
instance = Net()
""",
    "syntax_error.py": "def broken(:\n    pass\n",
    "raises_on_import.py": "raise RuntimeError('no GPU found')\n",
    "exits_on_import.py": "import sys\nsys.exit(3)\n",
    "imports_missing.py": "import package_that_is_not_installed\n",
    "bad_toml/pyproject.toml": "[tool.qtrace\nmodels = 1\n",
    "wrong_toml/pyproject.toml": (
        '[tool.qtrace]\nmodels = [{target = "good:Net", skips = []}]\n'
    ),
    "empty_toml/pyproject.toml": "[tool.qtrace]\nmodels = []\n",
    "truncated.json": '{"schema": "qtrace.report/1", "nodes": [',
    "wrong_schema.json": json.dumps({"schema": "something/2"}),
    "not_a_report.json": json.dumps([1, 2, 3]),
    "damaged.json": json.dumps({"schema": "qtrace.report/1", "nodes": []}),
}

# (id, arguments, exit code, words the message must contain (lower case), where)
# "where" is a subfolder to run in, relative to the model folder.
CASES = [
    ("empty target", ["show", ""], 2, ["target is empty"], "."),
    ("no colon", ["show", "good.Net"], 2, ["no ':'", "pkg.module:model"], "."),
    ("empty attribute", ["show", "good:"], 2, ["empty attribute"], "."),
    (
        "bad attribute name",
        ["show", "good:Net-1"],
        2,
        ["not a dotted python name"],
        ".",
    ),
    ("missing module", ["show", "nosuchmodule:Net"], 3, ["no module named"], "."),
    ("missing file", ["show", "missing/file.py:Net"], 3, ["does not exist"], "."),
    (
        "syntax error",
        ["show", "syntax_error:X"],
        3,
        ["syntax error", "syntax_error.py"],
        ".",
    ),
    (
        "raises on import",
        ["show", "raises_on_import:X"],
        3,
        ["runtimeerror", "no gpu"],
        ".",
    ),
    (
        "sys.exit on import",
        ["show", "exits_on_import:X"],
        3,
        ["sys.exit", "__main__"],
        ".",
    ),
    (
        "import inside model fails",
        ["show", "imports_missing:X"],
        3,
        ["modulenotfounderror", "package_that_is_not_installed"],
        ".",
    ),
    (
        "missing attribute",
        ["show", "good:Nett"],
        3,
        ["no attribute", "did you mean net"],
        ".",
    ),
    (
        "missing attribute lists classes",
        ["show", "good:Zebra"],
        3,
        ["nn.module classes it defines", "needsargs"],
        ".",
    ),
    ("not a module class", ["show", "good:NotAModule"], 3, ["not an nn.module"], "."),
    ("not callable", ["show", "good:CONSTANT"], 3, ["not an nn.module class"], "."),
    (
        "factory returns list",
        ["show", "good:make_list"],
        3,
        ["returned a builtins.list"],
        ".",
    ),
    (
        "constructor needs arguments",
        ["show", "good:NeedsArgs"],
        3,
        ["(width, depth=2)", "--init"],
        ".",
    ),
    (
        "constructor raises",
        ["show", "good:Explodes"],
        3,
        ["valueerror", "weights file"],
        ".",
    ),
    (
        "invalid --init json",
        ["show", "good:Net", "--init", "{width: 4}"],
        2,
        ["not valid json"],
        ".",
    ),
    ("--init scalar", ["show", "good:Net", "--init", "4"], 2, ["array", "object"], "."),
    (
        "--init wrong arity",
        ["show", "good:NeedsArgs", "--init", "[1, 2, 3]"],
        3,
        ["too many positional", "(width, depth=2)"],
        ".",
    ),
    (
        "--init for an instance",
        ["show", "good:instance", "--init", "[1]"],
        2,
        ["instance"],
        ".",
    ),
    (
        "unresolvable --skip-class",
        ["show", "good:Net", "--skip-class", "Lineer"],
        2,
        ["names no class", "torch.nn.modules.linear.linear"],
        ".",
    ),
    (
        "unimportable --skip-class",
        ["show", "good:Net", "--skip-class", "nosuch.mod:Cls"],
        2,
        ["cannot be imported"],
        ".",
    ),
    (
        "--skip-class not a module class",
        ["show", "good:Net", "--skip-class", "good:CONSTANT"],
        2,
        ["not an nn.module class"],
        ".",
    ),
    (
        "unknown --section",
        ["show", "good:Net", "--section", "nodes"],
        2,
        ["not a section"],
        ".",
    ),
    ("unknown --op", ["show", "good:Net", "--op", "call"], 2, ["--op"], "."),
    ("unknown --format", ["show", "good:Net", "--format", "xml"], 2, ["--format"], "."),
    (
        "-o into a missing folder",
        ["show", "good:Net", "-o", "nope/r.json"],
        2,
        ["does not exist"],
        ".",
    ),
    ("-o is a folder", ["show", "good:Net", "-o", "bad_toml"], 2, ["is a folder"], "."),
    (
        "bad --concrete-arg",
        ["show", "good:Net", "--concrete-arg", "augment"],
        2,
        ["name=json"],
        ".",
    ),
    (
        "--concrete-arg not a parameter",
        ["show", "good:Net", "--concrete-arg", "augment=false"],
        2,
        ["not a parameter", "x"],
        ".",
    ),
    (
        "diff truncated json",
        ["diff", "truncated.json", "good:Net"],
        2,
        ["not valid json", "truncated"],
        ".",
    ),
    (
        "diff wrong schema",
        ["diff", "wrong_schema.json", "good:Net"],
        2,
        ["not a qtrace report"],
        ".",
    ),
    (
        "diff not a report",
        ["diff", "not_a_report.json", "good:Net"],
        2,
        ["not a qtrace report"],
        ".",
    ),
    ("diff damaged report", ["diff", "damaged.json", "good:Net"], 2, ["damaged"], "."),
    (
        "diff missing file",
        ["diff", "gone.json", "good:Net"],
        2,
        ["does not exist"],
        ".",
    ),
    ("bad shard", ["check", "good:Net", "--shard", "3"], 2, ["i/n"], "."),
    (
        "shard out of range",
        ["check", "good:Net", "--shard", "3/2"],
        2,
        ["out of range"],
        ".",
    ),
    (
        "two targets, one baseline",
        ["check", "good:Net", "good:Net", "--baseline", "b.json"],
        2,
        ["one target"],
        ".",
    ),
    (
        "check with a truncated baseline",
        ["check", "good:Net", "--baseline", "truncated.json"],
        1,
        ["not valid json"],
        ".",
    ),
    ("broken toml", ["check"], 2, ["not valid toml"], "bad_toml"),
    (
        "unknown key in [tool.qtrace]",
        ["check"],
        2,
        ["unknown key 'skips'"],
        "wrong_toml",
    ),
    ("no models in [tool.qtrace]", ["check"], 2, ["needs 'models'"], "empty_toml"),
]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bad_inputs")
    for name, text in MODELS.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def run_qtrace(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(cwd), "NO_COLOR": "1", "COLUMNS": "100"}
    return subprocess.run(
        [QTRACE, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    ("args", "code", "words", "where"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_bad_input(
    model_dir: Path, args: list[str], code: int, words: list[str], where: str
) -> None:
    before = sorted(p.relative_to(model_dir) for p in model_dir.rglob("*"))

    done = run_qtrace(args, model_dir / where)

    # check reports a model's problems on stdout, with its PASS/FAIL line.
    message = " ".join((done.stderr + done.stdout).lower().split())
    assert done.returncode == code, done.stderr
    for word in words:
        assert word in message, f"{word!r} not in: {done.stderr}{done.stdout}"
    assert "Traceback (most recent call last)" not in done.stderr + done.stdout
    # Nothing the user owns is written: no report, no __pycache__.
    after = sorted(p.relative_to(model_dir) for p in model_dir.rglob("*"))
    assert after == before


def test_table_has_at_least_thirty_rows() -> None:
    assert len(CASES) >= 30


def test_skip_name_matching_nothing_warns_and_still_traces(model_dir: Path) -> None:
    done = run_qtrace(
        ["show", "good:Net", "--skip-name", "fcc", "--section", "summary"], model_dir
    )

    assert done.returncode == 0
    assert "warning" in done.stderr
    assert "closest: fc" in done.stderr
