"""Decisions and reasons in words, as the tables print them."""

from __future__ import annotations

from typing import Any

from qtrace_cli.module_tree import ancestors_of
from qtrace_cli.naming import short_name
from qtrace_cli.report import Location, ModuleInfo, NodeInfo


def reason_words(module: ModuleInfo, reason: str) -> str:
    """One clause of the leaf rule, as the user would recognise it."""
    if reason == "torch-module":
        if module.type.startswith("torch.ao.nn"):
            return "torch.ao.nn module"
        return "torch.nn module"
    if reason == "skip-name":
        return f"--skip-name {module.path}"
    if reason == "skip-class":
        return f"--skip-class {short_name(module.type)}"
    if reason == "fused":
        return "fused module"
    return reason


def decision_words(
    module: ModuleInfo,
    leaf_ancestor: str | None,
    failed_in: str | None = None,
    children_called: bool = False,
) -> str:
    """Why the module got its decision, in a few words.

    ``failed_in`` is the module path where a failed trace stopped, if it did;
    ``children_called`` says whether a module below this one was called.
    """
    if module.decision == "root":
        return "the model itself"
    if module.decision == "traced":
        if failed_in == module.path:
            return "traced through; the trace failed here"
        return "traced through"
    if module.decision == "leaf":
        if not module.reasons:
            return "leaf (rule not recognised)"
        return "; ".join(reason_words(module, reason) for reason in module.reasons)
    if module.decision == "inside-leaf":
        return f"inside leaf {leaf_ancestor}" if leaf_ancestor else "inside a leaf"
    if module.decision == "container":
        return "container; its children were called"
    if failed_in is not None:
        return "not reached before the trace failed"
    if children_called:
        return "never called itself; its children were"
    return "never called"


def leaf_ancestors(modules: list[ModuleInfo]) -> dict[str, str]:
    """For each inside-leaf module, the path of the leaf that hides it."""
    decision = {m.path: m.decision for m in modules}
    found: dict[str, str] = {}
    for module in modules:
        if module.decision != "inside-leaf":
            continue
        parent = module.path.rpartition(".")[0]
        if decision.get(parent) == "leaf":
            found[module.path] = parent
        elif parent in found:
            found[module.path] = found[parent]
    return found


def called_below(modules: list[ModuleInfo]) -> set[str]:
    """Paths of the modules with a called module somewhere below them."""
    return ancestors_of(m.path for m in modules if m.calls)


def arguments_words(node: NodeInfo) -> str:
    """A node's positional and keyword arguments as one line of text."""
    args = [argument_text(a) for a in node.args]
    args += [f"{k}={argument_text(v)}" for k, v in node.kwargs.items()]
    return ", ".join(args)


def location_words(location: Location | None) -> str:
    """``file:line  code`` for a source location, or an empty string."""
    if location is None:
        return ""
    return f"{location.file}:{location.line}  {location.code}".rstrip()


def argument_text(value: Any) -> str:
    """Short text for an encoded argument, as the tables show it."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "(" + ", ".join(argument_text(item) for item in value) + ")"
    if isinstance(value, dict):
        return (
            "{" + ", ".join(f"{k}: {argument_text(v)}" for k, v in value.items()) + "}"
        )
    return repr(value)
