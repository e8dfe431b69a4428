"""Turn node targets and arguments into JSON values and short text.

Arguments keep their structure (lists, dicts, numbers, strings). A reference to
another node becomes ``"%name"``, as ``Graph.print_tabular`` writes it, and a
literal string that starts with ``%`` gets a second one (``"%%"``); values JSON
cannot hold (slices, dtypes, non-finite floats, ...) become their text.
"""

from __future__ import annotations

import math
from functools import cache
from typing import Any

import torch
from torch.fx.node import _get_qualified_name as _fx_qualified_name

from qtrace_cli.naming import qualified_name


def format_target(node: torch.fx.Node) -> str:
    """The node's target as text: a qualified function name or a module path."""
    target = node.target
    if isinstance(target, str):
        return target
    try:
        return _cached_callable_name(target)
    except TypeError:  # an unhashable callable object
        return _callable_name(target)


def _callable_name(target: Any) -> str:
    try:
        # The name torch.fx itself prints and generates code with.
        name = str(_fx_qualified_name(target))
    except Exception:  # a target torch cannot name, such as an unnamed lambda
        return qualified_name(target)
    # torch.fx names the operator module by its C name; users know "operator".
    return "operator." + name[10:] if name.startswith("_operator.") else name


_cached_callable_name = cache(_callable_name)


def encode_argument(value: Any) -> Any:
    """A JSON value standing for one node argument."""
    if isinstance(value, torch.fx.Node):
        return f"%{value.name}"
    if isinstance(value, str):
        # "%name" means a node; a literal string starting with % gets a second
        # one, so the two never read alike.
        return "%" + value if value.startswith("%") else value
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, (list, tuple)):
        return [encode_argument(item) for item in value]
    if isinstance(value, dict):
        return {str(key): encode_argument(item) for key, item in value.items()}
    if isinstance(value, slice):
        parts = (value.start, value.stop, value.step)
        return "slice(" + ", ".join(_text(part) for part in parts) + ")"
    return _text(value)


def _text(value: Any) -> str:
    if isinstance(value, torch.fx.Node):
        return f"%{value.name}"
    if callable(value) and hasattr(value, "__qualname__"):
        return qualified_name(value)
    try:
        return repr(value)
    except Exception:  # a user object whose __repr__ raises
        return f"<{qualified_name(type(value))}>"
