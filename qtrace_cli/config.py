"""Read the models to check from ``[tool.qtrace]`` in ``pyproject.toml``.

The table is parsed as data only (TOML); nothing in it is evaluated::

    [[tool.qtrace.models]]
    target = "sample_models.resnet:TinyResNet"
    baseline = "baselines/resnet.json"
    expect_leaf = ["layer1.conv1"]

    [[tool.qtrace.models]]
    target = "sample_models.gated:GatedNet"
    skip_names = ["stages.1.gate"]
    init = {channels = 8}
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qtrace_cli.check import ModelCheck
from qtrace_cli.errors import UsageError

_KEYS: dict[str, type | tuple[type, ...]] = {
    "target": str,
    "name": str,
    "skip_names": list,
    "skip_classes": list,
    "init": (list, dict, str),
    "train": bool,
    "concrete_args": dict,
    "baseline": str,
    "expect_leaf": list,
    "expect_traced": list,
    "max_nodes": int,
}


@dataclass(frozen=True)
class ProjectConfig:
    """The ``[tool.qtrace]`` table and the folder it was found in."""

    root: Path
    path: Path
    checks: list[ModelCheck]


def find_config(start: Path | None = None) -> ProjectConfig:
    """Find the nearest ``pyproject.toml`` with a ``[tool.qtrace]`` table.

    Raises:
        UsageError: when none is found or the table is malformed.
    """
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            table = _qtrace_table(candidate)
            if table is not None:
                return ProjectConfig(folder, candidate, parse_models(table, candidate))
    raise UsageError(
        "qtrace check was given no TARGET and found no [tool.qtrace] table in "
        f"pyproject.toml in {here} or its parents; pass targets "
        "(qtrace check pkg.module:Model) or add [[tool.qtrace.models]] entries "
        "with a target each (see the README)."
    )


def _qtrace_table(path: Path) -> dict[str, Any] | None:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise UsageError(f"{path} is not valid TOML: {err}.") from None
    table = data.get("tool", {}).get("qtrace")
    if table is None:
        return None
    if not isinstance(table, dict):
        raise UsageError(f"{path}: [tool.qtrace] must be a table.")
    return table


def parse_models(table: dict[str, Any], source: Path) -> list[ModelCheck]:
    """Turn ``[tool.qtrace]`` into checks.

    Raises:
        UsageError: naming the entry and key that is wrong.
    """
    unknown = set(table) - {"models"}
    if unknown:
        raise UsageError(
            f"{source}: [tool.qtrace] has unknown key(s) {', '.join(sorted(unknown))}; "
            "it takes 'models', a list of targets or tables."
        )
    models = table.get("models")
    if not isinstance(models, list) or not models:
        raise UsageError(
            f"{source}: [tool.qtrace] needs 'models', a non-empty list of targets "
            'or tables such as {target = "pkg.module:Model"}.'
        )
    return [_model(entry, i, source) for i, entry in enumerate(models, start=1)]


def _model(entry: Any, number: int, source: Path) -> ModelCheck:
    where = f"{source}: model {number} in [tool.qtrace]"
    if isinstance(entry, str):
        entry = {"target": entry}
    if not isinstance(entry, dict):
        raise UsageError(f"{where} must be a target string or a table.")
    for key, value in entry.items():
        expected = _KEYS.get(key)
        if expected is None:
            raise UsageError(
                f"{where} has unknown key {key!r}; known keys: {', '.join(_KEYS)}."
            )
        if not isinstance(value, expected) or (
            expected is int and isinstance(value, bool)
        ):
            raise UsageError(
                f"{where}: {key} has the wrong type ({type(value).__name__})."
            )
    if "target" not in entry:
        raise UsageError(f"{where} has no 'target'.")

    init = entry.get("init")
    baseline = entry.get("baseline")
    return ModelCheck(
        target=entry["target"],
        name=entry.get("name", ""),
        skip_names=_strings(entry, "skip_names", where),
        skip_classes=_strings(entry, "skip_classes", where),
        init=init if init is None or isinstance(init, str) else json.dumps(init),
        train=entry.get("train", False),
        concrete_args=tuple(
            f"{k}={json.dumps(v)}" for k, v in entry.get("concrete_args", {}).items()
        ),
        baseline=None if baseline is None else (source.parent / baseline),
        expect_leaf=_strings(entry, "expect_leaf", where),
        expect_traced=_strings(entry, "expect_traced", where),
        max_nodes=entry.get("max_nodes"),
    )


def _strings(entry: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    values: Sequence[Any] = entry.get(key, [])
    if not all(isinstance(v, str) for v in values):
        raise UsageError(f"{where}: {key} must be a list of strings.")
    return tuple(values)
