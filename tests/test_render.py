"""Table output: sample models against checked-in renderings, and the grid layout.

The files in tests/expected/ are the exact output of ``qtrace show`` for the
sample models at a fixed ``--width``, with colour off (NO_COLOR=1, output not a
terminal). Only the trace time in the summary line ("traced in 0.023 s") is
normalised; everything else, including the torch version in the summary (the
Makefile pins the torch these were made with), must match byte for byte.

After an intended change of the output, regenerate the files and review the diff:

    QTRACE_REGEN_EXPECTED=1 .venv/bin/python -m pytest tests/test_render.py
    git diff tests/expected/

The second half unit-tests ``qtrace_cli.render.grid``: ``render_grid`` and ``wrap``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner, Result

from qtrace_cli import tracer as tracer_module
from qtrace_cli.cli import app
from qtrace_cli.render.grid import Column, render_grid, wrap

REPO = Path(__file__).resolve().parent.parent
EXPECTED = Path(__file__).resolve().parent / "expected"
REGENERATE = os.environ.get("QTRACE_REGEN_EXPECTED") == "1"
RESNET = "sample_models.resnet:TinyResNet"
GATED = "sample_models.gated:GatedNet"
MIXER = "sample_models.mixer:Mixer"
_TIME = re.compile(r"^((?:traced|FAILED) in )\d+\.\d+( s)$", re.M)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


# --------------------------------------------------------------------------
# renderings of the sample models


@pytest.fixture
def plain_cli(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Run from the repository root with torch's own tracer."""
    monkeypatch.chdir(REPO)
    monkeypatch.delenv(tracer_module.FALLBACK_ENV, raising=False)
    tracer_module.base_tracer_class.cache_clear()
    yield
    tracer_module.base_tracer_class.cache_clear()


def run_show(*args: str) -> Result:
    env = {
        "NO_COLOR": "1",
        "FORCE_COLOR": None,
        "TTY_COMPATIBLE": None,
        "COLUMNS": None,
        "LINES": None,
    }
    result = CliRunner().invoke(app, ["show", *args], env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"qtrace raised {result.exception!r}") from (
            result.exception
        )
    return result


_TORCH = re.compile(r"^torch \S+, ", re.MULTILINE)


def normalise(text: str) -> str:
    """Replace the trace time and the torch version in the summary; leave
    everything else."""
    return _TORCH.sub("torch <version>, ", _TIME.sub(r"\g<1>0.000\g<2>", text))


def compare(name: str, text: str) -> None:
    path = EXPECTED / name
    if REGENERATE:
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8", newline="")
    assert path.exists(), f"{path} is missing; run with QTRACE_REGEN_EXPECTED=1"
    expected = path.read_text(encoding="utf-8")
    assert text == expected, f"output differs from tests/expected/{name}"


CASES = [
    pytest.param("resnet_w100", [RESNET, "--width", "100"], 0, id="resnet-100"),
    pytest.param("resnet_w80", [RESNET, "--width", "80"], 0, id="resnet-80"),
    pytest.param(
        "gated_skip_w100",
        [GATED, "--skip-name", "stages.1.gate", "--width", "100"],
        0,
        id="gated-skip-100",
    ),
    pytest.param(
        "gated_skip_w80",
        [GATED, "--skip-name", "stages.1.gate", "--width", "80"],
        0,
        id="gated-skip-80",
    ),
    pytest.param("gated_failed_w80", [GATED, "--width", "80"], 1, id="gated-failed"),
    pytest.param(
        "mixer_skip_class_w80",
        [MIXER, "--skip-class", "TokenMixer", "--section", "summary,leaves"]
        + ["--width", "80"],
        0,
        id="mixer-leaves",
    ),
]


@pytest.mark.usefixtures("plain_cli")
@pytest.mark.parametrize(("name", "args", "code"), CASES)
def test_table_matches_expected_rendering(
    name: str, args: list[str], code: int
) -> None:
    result = run_show(*args)
    assert result.exit_code == code, result.stderr
    width = int(args[args.index("--width") + 1])
    for stream in (result.stdout, result.stderr):
        assert "\x1b[" not in stream  # colour off
    assert all(len(line) <= width for line in result.stdout.splitlines())
    assert len(_TIME.findall(result.stdout)) == 1
    compare(f"{name}.txt", normalise(result.stdout))
    if code:
        # The failure panel goes to stderr; it is part of the rendering.
        compare(f"{name}.stderr.txt", result.stderr)
    else:
        assert result.stderr == ""


def test_time_and_torch_version_are_the_only_things_normalised() -> None:
    summary = "torch 2.13.0+cpu, eval mode\nnodes: 32\ntraced in 0.023 s"
    assert normalise(summary) == (
        "torch <version>, eval mode\nnodes: 32\ntraced in 0.000 s"
    )
    assert normalise("a torch 2.13.0, b") == "a torch 2.13.0, b"
    assert normalise("FAILED in 12.5 s\n") == "FAILED in 0.000 s\n"
    assert normalise("stem  in 0.5 s  x") == "stem  in 0.5 s  x"


@pytest.mark.usefixtures("plain_cli")
def test_narrowest_width_is_respected() -> None:
    result = run_show(RESNET, "--width", "60")
    assert result.exit_code == 0
    too_long = [line for line in result.stdout.splitlines() if len(line) > 60]
    assert too_long == []


@pytest.mark.usefixtures("plain_cli")
def test_width_below_sixty_is_a_usage_error() -> None:
    result = run_show(RESNET, "--width", "50")
    assert result.exit_code == 2


# --------------------------------------------------------------------------
# render_grid


def lines_of(
    columns: list[Column], rows: list[list[str]], width: int, **kwargs: object
) -> list[str]:
    return list(render_grid("title", columns, rows, width, **kwargs))  # type: ignore[arg-type]


def test_grid_layout_of_a_table_that_fits() -> None:
    columns = [Column("name"), Column("n", right=True)]
    out = lines_of(columns, [["alpha", "1"], ["b", "22"]], 80)
    assert out == [
        "title",
        "",
        " name    n",
        " ─────────",
        " alpha   1",
        " b      22",
        "",
    ]


_CELL = st.text(alphabet="ab_ ,.x1:()%", max_size=50)


@st.composite
def _tables(draw: st.DrawFn) -> tuple[list[Column], list[list[str]], int]:
    columns = []
    for _ in range(draw(st.integers(1, 6))):
        floor = draw(st.integers(1, 4))
        columns.append(
            Column(
                header=draw(st.text(alphabet="hH", min_size=1, max_size=floor)),
                wrap=draw(st.booleans()),
                right=draw(st.booleans()),
                min_width=floor,
            )
        )
    row = st.lists(_CELL, min_size=len(columns), max_size=len(columns))
    rows = draw(st.lists(row, max_size=6))
    return columns, rows, draw(st.integers(36, 140))


@settings(max_examples=300, database=None, deadline=None)
@given(_tables())
def test_grid_lines_never_exceed_the_width(
    table: tuple[list[Column], list[list[str]], int],
) -> None:
    # Column floors (min widths) and headers that fit the width, as the CLI's
    # tables do at --width 60 and more.
    columns, rows, width = table
    for line in lines_of(columns, rows, width):
        assert len(line) <= width


@pytest.mark.parametrize(
    ("columns", "row", "width"),
    [
        pytest.param(
            [Column("a", min_width=13) for _ in range(4)],
            ["x" * 20] * 4,
            40,
            id="floors",
        ),
        pytest.param(
            [Column("a long header", min_width=4), Column("more header", min_width=4)],
            ["x" * 30, "y" * 30],
            20,
            id="header",
        ),
        pytest.param(
            [Column("name"), Column("source", detail=True)],
            ["n" * 60, "file.py:1"],
            40,
            id="detail",
        ),
    ],
)
def test_grid_overflows_when_the_layout_cannot_fit(
    columns: list[Column], row: list[str], width: int
) -> None:
    assert all(len(line) <= width for line in lines_of(columns, [row], width))


def test_grid_wraps_long_cells_at_spaces_commas_and_dots() -> None:
    columns = [Column("name"), Column("args", min_width=4)]
    rows = [["n", "%layer1_bn, %layer1_se_gate, torch.nn.functional.relu"]]
    out = lines_of(columns, rows, 24)
    assert out[4:] == [
        " n     %layer1_bn,",
        "       %layer1_se_gate,",
        "       torch.nn.",
        "       functional.relu",
        "",
    ]
    assert all(len(line) <= 24 for line in out)


def test_grid_cuts_no_wrap_cells_with_an_ellipsis() -> None:
    columns = [Column("op", wrap=False, min_width=4), Column("target")]
    rows = [["call_function", "add"], ["output", "output"]]
    out = lines_of(columns, rows, 20)
    assert out[4:] == [" call_func…  add", " output      output", ""]
    assert all(len(line) <= 20 for line in out)


def test_grid_keeps_detail_columns_inline_when_they_fit() -> None:
    columns = [Column("name"), Column("op"), Column("source", detail=True)]
    out = lines_of(columns, [["mul", "call_function", "m.py:3"]], 80)
    assert out[2].split() == ["name", "op", "source"]
    assert out[4].split() == ["mul", "call_function", "m.py:3"]


def test_grid_moves_detail_columns_under_the_row_when_too_wide() -> None:
    columns = [
        Column("name"),
        Column("op", wrap=False),
        Column("source", detail=True),
        Column("code", wrap=False, detail=True),
    ]
    code = "scale = self.gate(self.fc2(self.act(self.fc1(self.pool(x)))))"
    rows = [
        ["layer1_se_fc1", "call_module", "sample_models/blocks.py:22", code],
        ["x", "placeholder", "", ""],
    ]
    out = lines_of(columns, rows, 60)
    assert out[2].split() == ["name", "op"]
    indent = " " * (1 + len("layer1_se_fc1") + 2)
    assert out[3] == indent + "source code"
    assert out[5].split() == ["layer1_se_fc1", "call_module"]
    detail = out[6]
    assert detail.startswith(indent + "sample_models/blocks.py:22  scale = ")
    assert detail.endswith("…")
    assert len(detail) == 60
    assert out[7].split() == ["x", "placeholder"]  # an empty detail adds no line
    assert out[8] == ""
    assert all(len(line) <= 60 for line in out)


def test_grid_colours_only_with_a_colour_system() -> None:
    columns = [Column("decision")]
    rows = [["leaf"], ["traced"]]

    def styler(column: int, cell: str) -> str | None:
        return "yellow" if cell == "leaf" else None

    plain = lines_of(columns, rows, 40, styler=styler)
    assert not any("\x1b[" in line for line in plain)
    coloured = lines_of(columns, rows, 40, color_system="standard", styler=styler)
    assert "\x1b[33m" in coloured[4]
    assert "\x1b[" not in coloured[5]
    assert [_ANSI.sub("", line).rstrip() for line in coloured] == plain


# --------------------------------------------------------------------------
# wrap


@pytest.mark.parametrize(
    ("text", "width", "lines"),
    [
        ("alpha beta gamma", 11, ["alpha beta", "gamma"]),
        ("alpha beta gamma", 10, ["alpha beta", "gamma"]),
        ("a,b,c,d,e", 4, ["a,b,", "c,d,", "e"]),
        ("%x, %y, %z", 5, ["%x,", "%y,", "%z"]),
        ("layer1.se.pool", 10, ["layer1.se.", "pool"]),
        ("torch.nn.functional.relu", 12, ["torch.nn.", "functional.", "relu"]),
        ("abcdefghij", 4, ["abcd", "efgh", "ij"]),
        ("short", 10, ["short"]),
        ("", 5, [""]),
    ],
)
def test_wrap_breaks_after_spaces_commas_and_dots(
    text: str, width: int, lines: list[str]
) -> None:
    assert wrap(text, width) == lines


@settings(max_examples=300, database=None, deadline=None)
@given(st.text(alphabet="ab_ ,.x1", max_size=60), st.integers(1, 30))
def test_wrap_keeps_every_character_within_the_width(text: str, width: int) -> None:
    lines = wrap(text, width)
    assert all(len(line) <= width for line in lines)
    assert "".join(lines).replace(" ", "") == text.replace(" ", "")
