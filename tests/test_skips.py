"""``--skip-name`` globs and ``--skip-class`` names resolved against a model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from qtrace_cli.errors import UsageError
from qtrace_cli.skips import glob_to_regex, resolve_class, resolve_skips


class Attn(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(2, 2)


class Inner(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.attn = Attn()


class Layer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.attn = Attn()
        self.mlp = nn.Sequential(nn.Linear(2, 2))
        self.inner = Inner()


class Model(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.ModuleList([Layer() for _ in range(3)])
        self.head = nn.Linear(2, 2)


@pytest.fixture
def model() -> Model:
    return Model()


def names(model: nn.Module, *patterns: str) -> list[str]:
    resolved = resolve_skips(model, patterns)
    assert resolved.warnings == []
    return resolved.names


# --- globs --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("layers.*.attn", "layers.0.attn", True),
        ("layers.*.attn", "layers.10.attn", True),
        ("layers.*.attn", "layers.0.inner.attn", False),
        ("layers.*.attn", "layers.0.attn.proj", False),
        ("layers.*", "layers.0", True),
        ("layers.*", "layers.0.attn", False),
        ("layers.**", "layers.0.attn.proj", True),
        ("layers.**.attn", "layers.0.inner.attn", True),
        ("layers.**.attn", "layers.0.attn", True),
        ("**.proj", "layers.2.inner.attn.proj", True),
        ("layers.?", "layers.1", True),
        ("layers.?", "layers.12", False),
        ("layer?.attn", "layer..attn", False),
        ("layers.[01]", "layers.1", True),
        ("layers.[01]", "layers.2", False),
        ("layers.[!0]", "layers.2", True),
        ("layers.[!0]", "layers.0", False),
        ("head", "head", True),
        ("head", "heads", False),
        ("layers.0", "layersX0", False),  # a dot is not "any character"
        ("h(a)", "h(a)", True),
        ("h+", "hh", False),
    ],
)
def test_glob_to_regex(pattern: str, path: str, matches: bool) -> None:
    assert bool(glob_to_regex(pattern).match(path)) is matches


def test_single_star_stays_within_one_part(model: Model) -> None:
    assert names(model, "layers.*.attn") == [
        "layers.0.attn",
        "layers.1.attn",
        "layers.2.attn",
    ]


def test_double_star_spans_parts(model: Model) -> None:
    assert names(model, "layers.**.attn") == [
        "layers.0.attn",
        "layers.0.inner.attn",
        "layers.1.attn",
        "layers.1.inner.attn",
        "layers.2.attn",
        "layers.2.inner.attn",
    ]


def test_star_star_alone_matches_every_submodule(model: Model) -> None:
    expected = [path for path, _ in model.named_modules() if path]
    assert names(model, "**") == expected


def test_expansion_follows_model_order_and_drops_duplicates(model: Model) -> None:
    assert names(model, "layers.1.attn", "layers.*.attn", "head", "layers.[01]") == [
        "layers.1.attn",
        "layers.0.attn",
        "layers.2.attn",
        "head",
        "layers.0",
        "layers.1",
    ]


def test_exact_names_pass_through(model: Model) -> None:
    assert names(model, "layers.0.inner.attn.proj") == ["layers.0.inner.attn.proj"]


def test_missing_exact_name_warns_with_close_matches(model: Model) -> None:
    resolved = resolve_skips(model, ["layers.0.atn"])
    # The tracer still gets it: it compares names as given.
    assert resolved.names == ["layers.0.atn"]
    [warning] = resolved.warnings
    assert "layers.0.atn" in warning
    assert "closest" in warning
    assert "layers.0.attn" in warning


def test_glob_matching_nothing_warns(model: Model) -> None:
    resolved = resolve_skips(model, ["layers.*.atn"])
    assert resolved.names == []
    [warning] = resolved.warnings
    assert "layers.*.atn" in warning
    assert "layers.0.attn" in warning


def test_warning_without_close_match_points_to_leaf_table(model: Model) -> None:
    resolved = resolve_skips(model, ["zzzzzzzz"])
    [warning] = resolved.warnings
    assert "zzzzzzzz" in warning
    assert "--section leaves" in warning


def test_root_is_never_a_skip_target(model: Model) -> None:
    resolved = resolve_skips(model, ["*"])
    assert "" not in resolved.names
    assert resolved.names == ["layers", "head"]


@pytest.mark.parametrize("pattern", ["layers.[]", "layers.[!]", "layers.[z-a]"])
def test_malformed_bracket_is_a_usage_error_or_literal(
    model: Model, pattern: str
) -> None:
    try:
        resolved = resolve_skips(model, [pattern])
    except UsageError as err:
        assert pattern in str(err)
    else:
        assert resolved.warnings


# --- classes ------------------------------------------------------------------


def types_of(model: nn.Module) -> list[type]:
    found: list[type] = []
    for module in model.modules():
        if type(module) not in found:
            found.append(type(module))
    return found


@pytest.mark.parametrize(
    "spec",
    [
        "sample_models.blocks:Gate",
        "sample_models.blocks.Gate",
        "Gate",
        "  Gate ",
    ],
)
def test_three_forms(spec: str, repo_root: Path) -> None:
    from sample_models.blocks import Gate
    from sample_models.gated import GatedNet

    assert resolve_class(spec, types_of(GatedNet())) is Gate


def test_torch_classes(model: Model) -> None:
    model_types = types_of(model)
    assert resolve_class("Linear", model_types) is nn.Linear
    assert resolve_class("torch.nn:Linear", model_types) is nn.Linear
    assert resolve_class("torch.nn.Linear", model_types) is nn.Linear
    assert resolve_class("torch.nn.modules.linear.Linear", model_types) is nn.Linear
    # Importable classes need not occur in the model.
    assert resolve_class("torch.nn:GELU", model_types) is nn.GELU
    assert resolve_class("torch.nn.modules.container:Sequential", []) is nn.Sequential


def test_dotted_attribute_after_colon() -> None:
    assert resolve_class("torch:nn.ReLU", []) is nn.ReLU


def test_resolve_skips_returns_classes_once(repo_root: Path) -> None:
    from sample_models.blocks import Gate
    from sample_models.gated import GatedNet

    resolved = resolve_skips(
        GatedNet(), classes=["Gate", "sample_models.blocks.Gate", "Conv2d"]
    )
    assert resolved.classes == [Gate, nn.Conv2d]


def raises_usage(spec: str, model_types: list[type]) -> str:
    with pytest.raises(UsageError) as raised:
        resolve_class(spec, model_types)
    assert raised.value.exit_code == 2
    message = str(raised.value)
    assert spec.strip() in message
    return message


def test_unknown_bare_name_suggests_close_class(repo_root: Path) -> None:
    from sample_models.gated import GatedNet

    message = raises_usage("Gatee", types_of(GatedNet()))
    assert "sample_models.blocks.Gate" in message


def test_unknown_bare_name_lists_model_classes(model: Model) -> None:
    message = raises_usage("Zebra", types_of(model))
    for cls in types_of(model):
        assert f"{cls.__module__}.{cls.__qualname__}" in message


def make_block(module_name: str) -> type[nn.Module]:
    return type("Block", (nn.Module,), {"__module__": module_name})


def test_ambiguous_bare_name_lists_both() -> None:
    first, second = make_block("pkg_a.blocks"), make_block("pkg_b.blocks")
    model = nn.Sequential(first(), second())
    message = raises_usage("Block", types_of(model))
    assert "ambiguous" in message
    assert "pkg_a.blocks.Block" in message
    assert "pkg_b.blocks.Block" in message
    # The qualified name settles it, even without an importable module.
    assert resolve_class("pkg_b.blocks.Block", types_of(model)) is second
    assert resolve_class("pkg_a.blocks.Block", types_of(model)) is first


@pytest.mark.parametrize(
    "spec",
    [
        "no_such_package_q:Block",
        "no_such_package_q.Block",
        "torch.nn:NoSuchLayer",
        "torch.nn.NoSuchLayer",
        ":Linear",
        "torch.nn:",
    ],
)
def test_unimportable(spec: str, model: Model) -> None:
    message = raises_usage(spec, types_of(model))
    assert "cannot be imported" in message
    # Candidates: the close class names, or else every class of the model.
    assert "did you mean" in message or "torch.nn.modules.linear.Linear" in message


@pytest.mark.parametrize(
    ("spec", "kind"),
    [
        ("math:pi", "builtins.float"),
        ("collections:OrderedDict", "builtins.type"),
        ("torch:relu", ""),
    ],
)
def test_not_a_module_class(spec: str, kind: str, model: Model) -> None:
    message = raises_usage(spec, types_of(model))
    assert "not an nn.Module class" in message
    assert kind in message


def test_usage_error_from_resolve_skips(model: Model) -> None:
    with pytest.raises(UsageError):
        resolve_skips(model, names=["head"], classes=["Nope"])


def test_class_of_any_torch_module_resolves() -> None:
    assert resolve_class("torch.ao.nn.intrinsic:ConvReLU2d", []) is (
        torch.ao.nn.intrinsic.ConvReLU2d
    )
