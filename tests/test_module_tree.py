"""`walk_modules` lists what ``named_modules()`` lists, without recursion."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterable
from pathlib import Path

import pytest
import torch
from torch import nn

from qtrace_cli.module_tree import set_training, walk_modules


def rows(pairs: Iterable[tuple[str, nn.Module]]) -> list[tuple[str, int]]:
    return [(path, id(module)) for path, module in pairs]


def assert_same_walk(model: nn.Module) -> None:
    assert rows(walk_modules(model)) == rows(model.named_modules())


@pytest.mark.parametrize(
    "target",
    [
        "sample_models.resnet:TinyResNet",
        "sample_models.gated:GatedNet",
        "sample_models.mixer:Mixer",
        "sample_models.factory:build_mlp",
    ],
)
def test_sample_models(target: str, repo_root: Path) -> None:
    module_name, _, attr = target.partition(":")
    model = getattr(importlib.import_module(module_name), attr)()
    assert_same_walk(model)


def test_single_module() -> None:
    relu = nn.ReLU()
    assert list(walk_modules(relu)) == [("", relu)]


def test_shared_submodule_listed_once_at_first_path() -> None:
    shared = nn.Linear(2, 2)
    model = nn.Module()
    model.a = nn.Sequential(nn.ReLU(), shared)
    model.b = shared
    model.c = nn.Sequential(shared, nn.Sequential(shared, nn.Tanh()))
    assert_same_walk(model)
    paths = [path for path, module in walk_modules(model) if module is shared]
    assert paths == ["a.1"]


def test_shared_submodule_seen_first_at_top_level() -> None:
    shared = nn.Linear(2, 2)
    model = nn.Module()
    model.first = shared
    model.deep = nn.Sequential(nn.Sequential(shared))
    assert_same_walk(model)
    assert [p for p, m in walk_modules(model) if m is shared] == ["first"]


def test_shared_subtree() -> None:
    block = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    model = nn.ModuleDict({"x": block, "y": nn.Sequential(block, nn.ReLU())})
    assert_same_walk(model)
    assert len(list(walk_modules(model))) == 6


def test_none_children_are_skipped() -> None:
    model = nn.Module()
    model.register_module("missing", None)
    model.present = nn.Sequential(nn.ReLU())
    model.present.register_module("hole", None)
    model.after = nn.Tanh()
    assert_same_walk(model)
    assert [path for path, _ in walk_modules(model)] == [
        "",
        "present",
        "present.0",
        "after",
    ]


def test_module_containing_itself() -> None:
    model = nn.Sequential(nn.ReLU())
    model.add_module("again", model)
    assert_same_walk(model)
    assert [path for path, _ in walk_modules(model)] == ["", "0"]


def test_wide_tree_order() -> None:
    model = nn.Sequential(
        *(nn.Sequential(nn.ReLU(), nn.Sequential(nn.Tanh())) for _ in range(5))
    )
    assert_same_walk(model)


def nested(depth: int) -> nn.Module:
    model: nn.Module = nn.ReLU()
    for _ in range(depth):
        wrapper = nn.Module()
        wrapper.child = model
        model = wrapper
    return model


def test_deeper_than_recursion_limit() -> None:
    depth = sys.getrecursionlimit() * 2
    model = nested(depth)
    with pytest.raises(RecursionError):
        list(model.named_modules())
    walked = list(walk_modules(model))
    assert len(walked) == depth + 1
    assert walked[-1][0] == ".".join(["child"] * depth)
    assert isinstance(walked[-1][1], nn.ReLU)


def test_set_training_calls_custom_train() -> None:
    calls: list[bool] = []

    class Custom(nn.Module):
        def train(self, mode: bool = True) -> Custom:
            calls.append(mode)
            return super().train(mode)

    model = nn.Sequential(Custom(), nn.Dropout())
    set_training(model, False)
    assert calls == [False]
    assert not any(m.training for m in model.modules())
    set_training(model, True)
    assert calls == [False, True]
    assert all(m.training for m in model.modules())


@pytest.mark.parametrize("training", [True, False])
def test_set_training_on_a_model_too_deep_for_train(training: bool) -> None:
    model = nested(sys.getrecursionlimit() * 2)
    for _, module in walk_modules(model):
        module.training = not training
    set_training(model, training)
    assert all(m.training is training for _, m in walk_modules(model))


def test_walk_is_lazy_and_yields_live_modules() -> None:
    model = nn.Sequential(nn.Linear(1, 1))
    walker = walk_modules(model)
    assert next(walker) == ("", model)
    path, module = next(walker)
    assert path == "0" and module is model[0]
    assert isinstance(module.weight, torch.nn.Parameter)
