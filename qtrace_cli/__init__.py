"""qtrace: see how torch's FX quantization tracer sees a model.

The public names load lazily, so ``import qtrace_cli`` (and ``qtrace --help``)
does not import torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["Report", "suggest_skips", "trace_model"]

if TYPE_CHECKING:
    from qtrace_cli.report import Report
    from qtrace_cli.suggest import suggest_skips
    from qtrace_cli.trace import trace_model

_HOMES = {
    "Report": "qtrace_cli.report",
    "suggest_skips": "qtrace_cli.suggest",
    "trace_model": "qtrace_cli.trace",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'qtrace_cli' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(home), name)
