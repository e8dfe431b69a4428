"""Which frames are the user's, and how their locations are written."""

from __future__ import annotations

import importlib
import json
import os
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import rich
import torch

import qtrace_cli.trace
from qtrace_cli.locations import FrameFilter, Locator
from qtrace_cli.report import StackMode

FRAMES = """\
import json

import torch


def outer(capture):
    return middle(capture)


def middle(capture):
    return torch.no_grad()(inner)(capture)


def inner(capture):
    return capture()


def parse_with(hook):
    return json.loads('{"a": 1}', object_hook=hook)


def bad_hook(data):
    raise ValueError("bad data")


def call_linear():
    layer = torch.nn.Linear(2, 2)
    return layer(torch.zeros(3))
"""


def line_of(text: str) -> int:
    return next(i for i, line in enumerate(FRAMES.splitlines(), 1) if text in line)


@pytest.fixture
def frames_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A user module in a temporary current directory."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    (tmp_path / "frames_q.py").write_text(FRAMES)
    importlib.invalidate_caches()
    module = importlib.import_module("frames_q")
    yield module
    sys.modules.pop("frames_q", None)


# --- which files are the user's -----------------------------------------------


def module_file(module: ModuleType) -> str:
    assert module.__file__ is not None
    return module.__file__


def test_internal_files_are_not_user_files() -> None:
    frames = FrameFilter()
    assert not frames.is_user(module_file(torch))
    assert not frames.is_user(module_file(torch.nn.modules.linear))
    assert not frames.is_user(module_file(qtrace_cli.trace))
    assert not frames.is_user(module_file(json))  # the standard library
    assert not frames.is_user(module_file(os))


@pytest.mark.parametrize("name", ["<string>", "<eval_with_key>.3", "<frozen runpy>"])
def test_generated_code_is_not_user_code(name: str) -> None:
    assert not FrameFilter().is_user(name)


def test_user_and_third_party_files_are_user_files(tmp_path: Path) -> None:
    model = tmp_path / "model.py"
    model.write_text("")
    frames = FrameFilter()
    assert frames.is_user(str(model))
    assert frames.is_user(__file__)
    # Libraries that build models (torchvision, transformers...) count too.
    assert frames.is_user(module_file(rich))


# --- how paths are shown --------------------------------------------------------


def test_display_path_relative_below_cwd(tmp_path: Path) -> None:
    frames = FrameFilter(cwd=str(tmp_path))
    assert frames.display_path(str(tmp_path / "pkg" / "model.py")) == os.path.join(
        "pkg", "model.py"
    )
    assert frames.display_path(str(tmp_path / "model.py")) == "model.py"


def test_display_path_outside_cwd_stays_absolute(tmp_path: Path) -> None:
    (tmp_path / "work").mkdir()
    frames = FrameFilter(cwd=str(tmp_path / "work"))
    outside = str(tmp_path / "other" / "model.py")
    assert frames.display_path(outside) == outside
    assert frames.display_path("relative/model.py") == "relative/model.py"
    assert frames.display_path("<string>") == "<string>"


def test_display_path_defaults_to_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert FrameFilter().display_path(str(tmp_path / "m.py")) == "m.py"


def test_display_path_folder_starting_with_dots(tmp_path: Path) -> None:
    frames = FrameFilter(cwd=str(tmp_path))
    path = tmp_path / "..cache" / "model.py"
    assert frames.display_path(str(path)) == os.path.join("..cache", "model.py")


def test_location_of_a_line(frames_module: Any) -> None:
    frames = FrameFilter()
    line = line_of("return capture()")
    location = frames.location(module_file(frames_module), line, "inner")
    assert location.file == "frames_q.py"
    assert (location.line, location.function) == (line, "inner")
    assert location.code == "return capture()"


def test_location_of_unreadable_file(tmp_path: Path) -> None:
    location = FrameFilter(cwd=str(tmp_path)).location(
        str(tmp_path / "gone.py"), 3, "f"
    )
    assert location.code == ""
    assert location.file == "gone.py"


# --- capturing frames -------------------------------------------------------------


def capture_from(module: Any, mode: StackMode) -> tuple[Any, ...]:
    locator = Locator(mode)
    locator.stop = sys._getframe()  # never report this test's own frames

    def capture() -> Any:
        return locator.capture(sys._getframe(1))

    result: tuple[Any, ...] = module.outer(capture)
    return result


def test_user_mode_gives_innermost_user_frame(frames_module: Any) -> None:
    [location] = capture_from(frames_module, StackMode.USER)
    assert location.file == "frames_q.py"
    assert location.line == line_of("return capture()")
    assert location.function == "inner"


def test_full_mode_gives_user_frames_outermost_first(frames_module: Any) -> None:
    stack = capture_from(frames_module, StackMode.FULL)
    # torch's no_grad wrapper between middle and inner is left out.
    assert [(loc.function, loc.line) for loc in stack] == [
        ("outer", line_of("return middle(capture)")),
        ("middle", line_of("torch.no_grad()(inner)")),
        ("inner", line_of("return capture()")),
    ]
    assert all(loc.file == "frames_q.py" for loc in stack)


def test_none_mode_gives_nothing(frames_module: Any) -> None:
    assert capture_from(frames_module, StackMode.NONE) == ()


def test_stop_frame_bounds_the_walk(frames_module: Any) -> None:
    locator = Locator(StackMode.FULL)
    locator.stop = None

    def capture() -> Any:
        return locator.capture(sys._getframe(1))

    stack = frames_module.outer(capture)
    # Without a stop frame the walk reaches this test file too.
    assert stack[-1].function == "inner"
    assert any(loc.function == "test_stop_frame_bounds_the_walk" for loc in stack)


def test_stack_modes_parse_from_text() -> None:
    assert [StackMode(text) for text in ("user", "full", "none")] == [
        StackMode.USER,
        StackMode.FULL,
        StackMode.NONE,
    ]
    with pytest.raises(ValueError):
        StackMode("some")


# --- locations of exceptions --------------------------------------------------


def traceback_of(call: Any, *args: Any) -> Any:
    try:
        call(*args)
    except Exception as err:
        return err.__traceback__
    raise AssertionError("no exception")


def test_innermost_user_frame_of_traceback(frames_module: Any) -> None:
    tb = traceback_of(frames_module.parse_with, frames_module.bad_hook)
    location = Locator(StackMode.USER).innermost_in_traceback(tb)
    assert location is not None
    # The hook, past the json frames that called it.
    assert (location.function, location.line) == (
        "bad_hook",
        line_of('raise ValueError("bad data")'),
    )


def test_innermost_user_frame_skips_torch(frames_module: Any) -> None:
    tb = traceback_of(frames_module.call_linear)
    location = Locator(StackMode.USER).innermost_in_traceback(tb)
    assert location is not None
    assert location.function == "call_linear"
    assert location.code == "return layer(torch.zeros(3))"


def test_no_traceback() -> None:
    assert Locator(StackMode.USER).innermost_in_traceback(None) is None


def test_traceback_with_no_user_frame() -> None:
    tb = traceback_of(json.loads, "{")
    # The first frame is this test file's helper; drop it to keep json's only.
    assert Locator(StackMode.USER).innermost_in_traceback(tb.tb_next) is None


def test_traceback_locations_in_user_module_file(frames_module: Any) -> None:
    source = textwrap.dedent(FRAMES)
    tb = traceback_of(frames_module.parse_with, frames_module.bad_hook)
    location = Locator(StackMode.FULL).innermost_in_traceback(tb)
    assert location is not None
    assert location.code == source.splitlines()[location.line - 1].strip()
