"""Route qtrace's log records to stderr through rich."""

from __future__ import annotations

import logging
import sys

from rich.console import Console
from rich.logging import RichHandler


def attach_stderr_handler(level: int) -> None:
    """Show ``qtrace_cli`` log records at ``level`` and above on stderr."""
    handler = RichHandler(console=Console(file=sys.stderr), show_path=False)
    logger = logging.getLogger("qtrace_cli")
    logger.addHandler(handler)
    logger.setLevel(level)
