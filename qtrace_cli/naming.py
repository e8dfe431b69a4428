"""Fully qualified names, as the report writes types and functions."""

from __future__ import annotations

from typing import Any

# The C implementations live in private modules; users know them by the public one.
_PUBLIC_MODULES = {"_operator": "operator", "builtins": "builtins"}


def qualified_name(obj: Any) -> str:
    """Return ``module.QualName`` for a class or function (``operator.add``)."""
    module = getattr(obj, "__module__", None) or ""
    module = _PUBLIC_MODULES.get(module, module)
    name = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None)
    if name is None:
        return repr(obj)
    return f"{module}.{name}" if module else name


def short_name(qualified: str | None) -> str:
    """Return the last dotted part of a qualified name (``TinyResNet``)."""
    if not qualified:
        return ""
    return qualified.rsplit(".", 1)[-1]
