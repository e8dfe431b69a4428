"""Find the user's source line that created each node, cheaply.

torch's tracer can record a stack trace per node, but it captures and formats
the whole Python stack for every node, which costs more than the rest of the
trace together. qtrace instead walks the live frames once per node and keeps the
innermost frame of code outside torch (the model's own files, and libraries such
as torchvision or transformers, since that is the code that made the node), plus
every such frame when the full stack is asked for.
"""

from __future__ import annotations

import linecache
import os
import site
import sys
import sysconfig
from pathlib import Path
from types import FrameType, TracebackType

import torch

from qtrace_cli.report import Location, StackMode


def _internal_prefixes() -> tuple[tuple[str, ...], tuple[str, ...]]:
    torch_dir = str(Path(torch.__file__).resolve().parent) + os.sep
    own_dir = str(Path(__file__).resolve().parent) + os.sep
    paths = sysconfig.get_paths()
    stdlib = {
        str(Path(paths[key]).resolve()) + os.sep
        for key in ("stdlib", "platstdlib")
        if key in paths
    }
    site_dirs = set(site.getsitepackages()) | {paths["purelib"], paths["platlib"]}
    user_site = site.getusersitepackages()
    if isinstance(user_site, str):
        site_dirs.add(user_site)
    third_party = tuple(str(Path(d).resolve()) + os.sep for d in site_dirs)
    return (torch_dir, own_dir, *sorted(stdlib)), third_party


class FrameFilter:
    """Tells user frames from torch's, qtrace's and the standard library's."""

    def __init__(self, cwd: str | None = None) -> None:
        self._internal, self._third_party = _internal_prefixes()
        self._cwd = cwd or os.getcwd()
        self._is_user: dict[str, bool] = {}
        self._display: dict[str, str] = {}
        self._locations: dict[tuple[str, int, str], Location] = {}

    def is_user(self, filename: str) -> bool:
        """Whether frames of ``filename`` count as the user's code."""
        known = self._is_user.get(filename)
        if known is not None:
            return known
        verdict = self._classify(filename)
        self._is_user[filename] = verdict
        return verdict

    def _classify(self, filename: str) -> bool:
        # Generated code ("<eval_with_key>.3", "<frozen runpy>") has no source to show.
        if filename.startswith("<"):
            return False
        path = os.path.realpath(filename)
        if path.startswith(self._third_party) and not path.startswith(
            self._internal[:2]
        ):
            return True
        return not path.startswith(self._internal)

    def display_path(self, filename: str) -> str:
        """``filename`` relative to the current directory when it lies below it."""
        shown = self._display.get(filename)
        if shown is None:
            shown = filename
            if os.path.isabs(filename):
                rel = os.path.relpath(filename, self._cwd)
                if rel != os.pardir and not rel.startswith(os.pardir + os.sep):
                    shown = rel
            self._display[filename] = shown
        return shown

    def location(self, filename: str, line: int, function: str) -> Location:
        """The `Location` of one frame, with its stripped source line.

        One line of a model creates many nodes (every block runs the same
        forward), so locations are built once per line and shared.
        """
        key = (filename, line, function)
        found = self._locations.get(key)
        if found is None:
            code = linecache.getline(filename, line).strip()
            found = Location(self.display_path(filename), line, function, code)
            self._locations[key] = found
        return found


class Locator:
    """Captures user frames for the nodes of one trace."""

    def __init__(self, mode: StackMode, frames: FrameFilter | None = None) -> None:
        self.mode = mode
        self.frames = frames or FrameFilter()
        self.stop: FrameType | None = None
        """The frame that started the trace; walks never go above it."""

    def capture(self, frame: FrameType | None) -> tuple[Location, ...]:
        """User frames from ``frame`` outwards: the innermost, or all of them."""
        if self.mode is StackMode.NONE:
            return ()

        found: list[Location] = []
        is_user = self.frames.is_user
        while frame is not None and frame is not self.stop:
            code = frame.f_code
            if is_user(code.co_filename):
                found.append(
                    self.frames.location(code.co_filename, frame.f_lineno, code.co_name)
                )
                if self.mode is StackMode.USER:
                    break
            frame = frame.f_back
        found.reverse()
        return tuple(found)

    def innermost_in_traceback(self, tb: TracebackType | None) -> Location | None:
        """The innermost user frame of an exception's traceback."""
        best: Location | None = None
        while tb is not None:
            code = tb.tb_frame.f_code
            if self.frames.is_user(code.co_filename):
                best = self.frames.location(
                    code.co_filename, tb.tb_lineno, code.co_name
                )
            tb = tb.tb_next
        return best


def current_frame() -> FrameType:
    """The caller's frame (a cheap ``inspect.currentframe().f_back``)."""
    return sys._getframe(1)
