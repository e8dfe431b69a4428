"""Resolve ``--skip-name`` and ``--skip-class`` into what the tracer compares.

The tracer compares exact qualified names and exact types. Users write globs
(``layers.*.attn``) and short class names, so these are expanded against the
model's own ``named_modules()`` before tracing; the report lists the result.
"""

from __future__ import annotations

import difflib
import importlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import torch

from qtrace_cli.errors import UsageError
from qtrace_cli.module_tree import walk_modules
from qtrace_cli.naming import qualified_name

_GLOB_CHARS = re.compile(r"[*?\[]")


@dataclass
class ResolvedSkips:
    """Skip lists ready for the tracer, with warnings about names that missed."""

    names: list[str] = field(default_factory=list)
    classes: list[type] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def resolve_skips(
    model: torch.nn.Module,
    names: Iterable[str] = (),
    classes: Iterable[str] = (),
) -> ResolvedSkips:
    """Expand name globs and look up class names against ``model``.

    Raises:
        UsageError: when a class cannot be found or names more than one class.
    """
    paths = [path for path, _ in walk_modules(model) if path]
    resolved = ResolvedSkips()
    for pattern in names:
        matched, warning = _expand_name(pattern, paths)
        resolved.names.extend(name for name in matched if name not in resolved.names)
        if warning:
            resolved.warnings.append(warning)

    model_types = _model_types(model)
    for spec in classes:
        cls = resolve_class(spec, model_types)
        if cls not in resolved.classes:
            resolved.classes.append(cls)
    return resolved


def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """Compile a module-path glob: ``*`` and ``?`` stay within one dotted part,
    ``**`` spans any number of parts."""
    out = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if char == "*":
            out.append(r"[^.]*")
        elif char == "?":
            out.append(r"[^.]")
        elif char == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out.append(re.escape(char))
            else:
                body = pattern[i + 1 : end].replace("\\", "\\\\")
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append(f"[{body}]")
                i = end
        else:
            out.append(re.escape(char))
        i += 1
    return re.compile("".join(out) + r"\Z")


def _expand_name(pattern: str, paths: list[str]) -> tuple[list[str], str | None]:
    if not _GLOB_CHARS.search(pattern):
        if pattern in paths:
            return [pattern], None
        # An exact name still reaches the tracer as given: it is what the user
        # asked for, and it can do no harm there.
        return [pattern], _no_match_warning(pattern, paths, "is not a module path")

    try:
        regex = glob_to_regex(pattern)
    except re.error as err:
        raise UsageError(
            f"--skip-name {pattern} is not a valid glob ({err}); use * and ? for "
            "parts of one name, ** across dots, [abc] for one of a few characters."
        ) from None
    matched = [path for path in paths if regex.match(path)]
    if matched:
        return matched, None
    return [], _no_match_warning(pattern, paths, "matches no module path")


def _no_match_warning(pattern: str, paths: list[str], what: str) -> str:
    close = difflib.get_close_matches(pattern, paths, n=3, cutoff=0.5)
    hint = (
        "closest: " + ", ".join(close)
        if close
        else "see the leaf table (qtrace show TARGET --section leaves) for paths"
    )
    return f"--skip-name {pattern} {what} in this model; {hint}."


def _model_types(model: torch.nn.Module) -> list[type]:
    types: list[type] = []
    for _, module in walk_modules(model):
        if type(module) not in types:
            types.append(type(module))
    return types


def resolve_class(spec: str, model_types: list[type]) -> type:
    """Find the class that ``--skip-class spec`` names.

    ``spec`` is ``pkg.mod:Cls``, ``pkg.mod.Cls`` or a bare class name found among
    ``model_types``.

    Raises:
        UsageError: when no class or more than one class matches.
    """
    text = spec.strip()
    if ":" in text:
        module_name, _, attr = text.partition(":")
        return _import_class(text, module_name, attr, model_types)

    by_qualified = [cls for cls in model_types if qualified_name(cls) == text]
    if by_qualified:
        return by_qualified[0]

    if "." in text:
        module_name, _, attr = text.rpartition(".")
        return _import_class(text, module_name, attr, model_types)

    by_name = [cls for cls in model_types if cls.__name__ == text]
    if len(by_name) == 1:
        return by_name[0]
    if len(by_name) > 1:
        names = ", ".join(qualified_name(cls) for cls in by_name)
        raise UsageError(
            f"--skip-class {text} is ambiguous: the model has {len(by_name)} classes "
            f"of that name ({names}); pass the qualified one, e.g. "
            f"--skip-class {qualified_name(by_name[0])}."
        )
    raise UsageError(
        f"--skip-class {text} names no class of this model; "
        + _candidates(text, model_types)
    )


def _import_class(
    spec: str, module_name: str, attr: str, model_types: list[type]
) -> type:
    obj: object
    try:
        obj = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError, ValueError):
        raise UsageError(
            f"--skip-class {spec} cannot be imported; " + _candidates(attr, model_types)
        ) from None
    except Exception as err:  # the module itself raised while importing
        raise UsageError(
            f"--skip-class {spec}: importing {module_name} raised "
            f"{qualified_name(type(err))}: {err}; " + _candidates(attr, model_types)
        ) from None
    if not isinstance(obj, type) or not issubclass(obj, torch.nn.Module):
        raise UsageError(
            f"--skip-class {spec} is a {qualified_name(type(obj))}, not an nn.Module "
            "class; " + _candidates(attr, model_types)
        )
    return obj


def _candidates(name: str, model_types: list[type]) -> str:
    user_types = [qualified_name(cls) for cls in model_types]
    short = {cls.__name__: qualified_name(cls) for cls in model_types}
    close = difflib.get_close_matches(name.rpartition(".")[2], list(short), n=3)
    if close:
        return "did you mean " + ", ".join(short[c] for c in close) + "?"
    return "classes in this model: " + ", ".join(user_types) + "."
