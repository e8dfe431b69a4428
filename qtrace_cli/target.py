"""Turn a TARGET string such as ``pkg.module:Model`` into an ``nn.Module``.

A TARGET names a module (imported with the current directory on the import path,
as ``python -m`` does) or a ``.py`` file, then a dotted attribute in it. The
attribute may be an ``nn.Module`` subclass (instantiated), a factory returning a
module (called), or a module instance (used as is). ``--init`` JSON supplies the
constructor or factory arguments.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import inspect
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

from qtrace_cli.errors import LoadError, UsageError
from qtrace_cli.naming import qualified_name


@dataclass(frozen=True)
class TargetSpec:
    """A parsed TARGET: where to import from and which attribute to use."""

    text: str
    """The TARGET as the user wrote it."""
    module: str
    """Module name, or the path of a ``.py`` file when `is_file` is set."""
    attr: str
    """Dotted attribute path inside the module."""
    is_file: bool


@dataclass
class InitArgs:
    """Constructor or factory arguments parsed from ``--init`` JSON."""

    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def given(self) -> bool:
        return bool(self.args or self.kwargs)


@dataclass
class LoadedModel:
    """A model built from a TARGET, with the names the report needs."""

    spec: TargetSpec
    model: torch.nn.Module


def parse_target(text: str) -> TargetSpec:
    """Split TARGET into its module (or file) and attribute parts.

    Raises:
        UsageError: when the text is not of the form ``module:Attr``.
    """
    example = "write it as pkg.module:Model or path/to/file.py:Model"
    if not text.strip():
        raise UsageError(f"TARGET is empty; {example}.")
    module, sep, attr = text.rpartition(":")
    if not sep:
        raise UsageError(
            f"TARGET {text!r} has no ':' between the module and the attribute; "
            f"{example}."
        )
    if not module or not attr:
        missing = "module" if not module else "attribute"
        raise UsageError(f"TARGET {text!r} has an empty {missing}; {example}.")
    if not all(part.isidentifier() for part in attr.split(".")):
        raise UsageError(
            f"TARGET {text!r}: {attr!r} is not a dotted Python name; {example}."
        )

    is_file = module.endswith(".py") or "/" in module or os.sep in module
    if not is_file and not all(part.isidentifier() for part in module.split(".")):
        raise UsageError(
            f"TARGET {text!r}: {module!r} is neither a module name nor a .py file; "
            f"{example}."
        )
    return TargetSpec(text=text, module=module, attr=attr, is_file=is_file)


def parse_init(text: str | None) -> InitArgs:
    """Parse ``--init`` JSON: an array is positional, an object is keyword.

    Raises:
        UsageError: when the text is not a JSON array or object.
    """
    if text is None:
        return InitArgs()
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise UsageError(
            f"--init {text!r} is not valid JSON ({err.msg} at column {err.colno}); "
            "pass an array for positional arguments (--init '[10, 3]') or an "
            "object for keyword arguments (--init '{\"depth\": 2}')."
        ) from None
    if isinstance(value, list):
        return InitArgs(args=value)
    if isinstance(value, dict):
        return InitArgs(kwargs=value)
    raise UsageError(
        f"--init {text!r} is a JSON {type(value).__name__}; pass an array for "
        "positional arguments or an object for keyword arguments."
    )


def load_model(spec: TargetSpec, init: InitArgs | None = None) -> LoadedModel:
    """Import the TARGET's module and build the model it names.

    Raises:
        LoadError: when the import fails, the attribute is missing, it is not a
            module, or its constructor or factory raises.
        UsageError: when ``--init`` is given for a module instance.
    """
    init = init or InitArgs()
    # Constructors and factories import too; no __pycache__ from them either.
    with _no_bytecode_writes():
        module = _import(spec)
        obj = _get_attr(module, spec)
        model = _build(obj, spec, init)
    return LoadedModel(spec=spec, model=model)


@contextmanager
def _no_bytecode_writes() -> Iterator[None]:
    # Importing the user's code must not leave __pycache__ folders in their tree.
    before = sys.dont_write_bytecode
    sys.dont_write_bytecode = True
    try:
        yield
    finally:
        sys.dont_write_bytecode = before


def _import(spec: TargetSpec) -> ModuleType:
    if spec.is_file:
        return _import_file(spec)
    return _import_module(spec)


# Modules each file target's folder brought in, so that a second file target
# from another folder (``qtrace diff old/model.py:M new/model.py:M``) imports
# its own siblings rather than reusing the first folder's.
_FOLDER_MODULES: dict[str, set[str]] = {}


def _import_file(spec: TargetSpec) -> ModuleType:
    path = Path(spec.module).expanduser()
    if not path.is_file():
        raise LoadError(
            f"cannot load {spec.text!r}: the file {spec.module} does not exist "
            f"(looked in {Path.cwd()})."
        )
    folder = str(path.resolve().parent)
    for other, names in _FOLDER_MODULES.items():
        if other != folder:
            for name in names:
                sys.modules.pop(name, None)
    if folder in sys.path:
        sys.path.remove(folder)
    sys.path.insert(0, folder)

    name = path.stem if path.stem.isidentifier() else "_qtrace_target"
    loaded = sys.modules.get(name)
    if loaded is not None and getattr(loaded, "__file__", None) != str(path.resolve()):
        # Never replace a module of the same name that is already loaded.
        name = f"_qtrace_file_{name}"
    file_spec = importlib.util.spec_from_file_location(name, path)
    if file_spec is None or file_spec.loader is None:
        raise LoadError(f"cannot load {spec.text!r}: {path} is not a Python file.")
    module = importlib.util.module_from_spec(file_spec)
    before = set(sys.modules)
    sys.modules[name] = module
    try:
        file_spec.loader.exec_module(module)
    except BaseException as err:
        sys.modules.pop(name, None)
        raise _import_failure(spec, err) from err
    _FOLDER_MODULES.setdefault(folder, set()).update(set(sys.modules) - before)
    return module


def _import_module(spec: TargetSpec) -> ModuleType:
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
    try:
        return importlib.import_module(spec.module)
    except ModuleNotFoundError as err:
        missing = err.name or ""
        if spec.module == missing or spec.module.startswith(missing + "."):
            raise LoadError(
                f"cannot load {spec.text!r}: no module named {missing!r} on the "
                f"import path (the current directory {cwd} is on it); check the "
                "spelling, run qtrace from the folder that holds the package, or "
                "name the file instead (path/to/file.py:Model)."
            ) from err
        raise _import_failure(spec, err) from err
    except BaseException as err:
        raise _import_failure(spec, err) from err


def _import_failure(spec: TargetSpec, err: BaseException) -> LoadError:
    if isinstance(err, KeyboardInterrupt):
        raise err
    if isinstance(err, SyntaxError):
        where = f"{err.filename}:{err.lineno}" if err.filename else "its source"
        return LoadError(
            f"cannot load {spec.text!r}: syntax error in {where}: {err.msg}. "
            "Fix the file and run again."
        )
    if isinstance(err, SystemExit):
        return LoadError(
            f"cannot load {spec.text!r}: importing {spec.module} called "
            f"sys.exit({err.code!r}). Guard script code with "
            "`if __name__ == '__main__':`."
        )
    return LoadError(
        f"cannot load {spec.text!r}: importing {spec.module} raised "
        f"{qualified_name(type(err))}: {err}. Fix the import error (run with "
        "--traceback to see where it was raised)."
    )


def _get_attr(module: ModuleType, spec: TargetSpec) -> Any:
    obj: Any = module
    walked: list[str] = []
    for part in spec.attr.split("."):
        if not hasattr(obj, part):
            where = ".".join([spec.module, *walked]) if walked else spec.module
            raise LoadError(
                f"cannot load {spec.text!r}: {where} has no attribute {part!r}."
                + _attr_hints(obj, part)
            )
        obj = getattr(obj, part)
        walked.append(part)
    return obj


def _attr_hints(obj: Any, missing: str) -> str:
    names = [name for name in dir(obj) if not name.startswith("_")]
    hints = ""
    close = difflib.get_close_matches(missing, names, n=3, cutoff=0.6)
    if close:
        hints += " Did you mean " + ", ".join(close) + "?"
    if isinstance(obj, ModuleType):
        classes = sorted(
            name
            for name, value in vars(obj).items()
            if isinstance(value, type)
            and issubclass(value, torch.nn.Module)
            and value.__module__ == obj.__name__
        )
        if classes:
            hints += " nn.Module classes it defines: " + ", ".join(classes) + "."
        else:
            hints += " It defines no nn.Module class."
    return hints


def _build(obj: Any, spec: TargetSpec, init: InitArgs) -> torch.nn.Module:
    if isinstance(obj, torch.nn.Module):
        if init.given:
            raise UsageError(
                f"--init was given, but {spec.text!r} is a module instance that is "
                "used as is; drop --init or point TARGET at its class or factory."
            )
        return obj

    if isinstance(obj, type) and not issubclass(obj, torch.nn.Module):
        raise LoadError(
            f"cannot load {spec.text!r}: it is the class {qualified_name(obj)}, "
            "which is not an nn.Module subclass; point TARGET at a module class, "
            "a factory that returns a module, or a module instance."
        )
    if not callable(obj):
        raise LoadError(
            f"cannot load {spec.text!r}: it is a {qualified_name(type(obj))}, not an "
            "nn.Module class, a factory or a module instance."
        )

    kind = "constructor" if isinstance(obj, type) else "factory"
    signature = _signature(obj)
    if signature is not None:
        try:
            signature.bind(*init.args, **init.kwargs)
        except TypeError as err:
            raise LoadError(
                f"cannot build {spec.text!r}: the {kind} {spec.attr}{signature} "
                f"rejects the arguments given ({err}); pass them with --init, "
                "e.g. --init '[...]' for positional or --init '{...}' for keyword "
                "arguments."
            ) from None

    try:
        built = obj(*init.args, **init.kwargs)
    except KeyboardInterrupt:
        raise
    except BaseException as err:
        raise LoadError(
            f"cannot build {spec.text!r}: the {kind} {spec.attr}"
            f"{signature if signature is not None else '(...)'} raised "
            f"{qualified_name(type(err))}: {err}"
        ) from err

    if not isinstance(built, torch.nn.Module):
        raise LoadError(
            f"cannot load {spec.text!r}: the factory returned a "
            f"{qualified_name(type(built))}, not an nn.Module."
        )
    return built


def _signature(obj: Any) -> inspect.Signature | None:
    try:
        return inspect.signature(obj)
    except (TypeError, ValueError):
        return None
