"""Write the file the user asked for, and nothing else, atomically."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from qtrace_cli.errors import OutputError, UsageError


def check_writable(path: Path, flag: str = "-o") -> None:
    """Fail before any work when ``path`` cannot be written.

    Raises:
        UsageError: when the folder is missing or not writable, or the path is a
            folder.
    """
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise UsageError(f"{flag} {path} is a folder; give a file name inside it.")
    if not folder.is_dir():
        raise UsageError(
            f"{flag} {path}: the folder {folder} does not exist; create it first or "
            "write somewhere else."
        )
    if not os.access(folder, os.W_OK):
        raise UsageError(
            f"{flag} {path}: the folder {folder} is not writable; write somewhere else."
        )


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one step, so a reader or an interrupted
    run never sees half a file, and the previous file survives a failure."""
    folder = path.parent if str(path.parent) else Path(".")
    try:
        _replace(path, folder, text)
    except OSError as err:
        raise OutputError(
            f"cannot write {path}: {err.strerror or err}; the previous file, if "
            "any, is unchanged."
        ) from err


def _replace(path: Path, folder: Path, text: str) -> None:
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=folder)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as temp:
            temp.write(text)
        if path.exists():
            os.chmod(temp_name, path.stat().st_mode & 0o777)
        else:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(temp_name, 0o666 & ~umask)
        os.replace(temp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp_name)
        raise
