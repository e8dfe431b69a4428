"""TARGET parsing (usage errors, exit 2) and model loading (load errors, exit 3)."""

from __future__ import annotations

import importlib
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from torch import nn

from qtrace_cli.errors import LoadError, UsageError
from qtrace_cli.target import (
    InitArgs,
    LoadedModel,
    load_model,
    parse_init,
    parse_target,
)

NET = """
from torch import nn

class Net(nn.Module):
    def __init__(self, width: int = 2) -> None:
        super().__init__()
        self.lin = nn.Linear(width, width)

    def forward(self, x):
        return self.lin(x)
"""


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty current directory that is not yet on the import path; imports
    made from it are forgotten afterwards, and bytecode writing is on, so a
    stray ``__pycache__`` would show."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", ".")])
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        del sys.modules[name]


def write(root: Path, relative: str, source: str) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source))
    importlib.invalidate_caches()
    return path


def no_bytecode(root: Path) -> bool:
    return not list(root.rglob("__pycache__")) and not list(root.rglob("*.pyc"))


def load(target: str, init: str | None = None) -> nn.Module:
    return load_model(parse_target(target), parse_init(init)).model


def load_error(target: str, init: str | None = None) -> str:
    with pytest.raises(LoadError) as raised:
        load(target, init)
    assert raised.value.exit_code == 3
    message = str(raised.value)
    assert target in message
    return message


# --- parsing ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "module", "attr", "is_file"),
    [
        ("pkg.models:Net", "pkg.models", "Net", False),
        ("models:Zoo.small", "models", "Zoo.small", False),
        ("models.py:Net", "models.py", "Net", True),
        ("path/to/models.py:Net", "path/to/models.py", "Net", True),
        ("path/to/models:Net", "path/to/models", "Net", True),
        ("../up/m.py:a.b.c", "../up/m.py", "a.b.c", True),
    ],
)
def test_parse_target(text: str, module: str, attr: str, is_file: bool) -> None:
    spec = parse_target(text)
    assert (spec.text, spec.module, spec.attr, spec.is_file) == (
        text,
        module,
        attr,
        is_file,
    )


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("models.Net", "no ':'"),
        (":Net", "empty module"),
        ("models:", "empty attribute"),
        ("models:1Net", "not a dotted Python name"),
        ("models:Zoo..small", "not a dotted Python name"),
        ("models:Net-2", "not a dotted Python name"),
        ("my-models:Net", "neither a module name nor a .py file"),
        ("pkg..mod:Net", "neither a module name nor a .py file"),
    ],
)
def test_parse_target_errors(text: str, says: str) -> None:
    with pytest.raises(UsageError) as raised:
        parse_target(text)
    message = str(raised.value)
    assert raised.value.exit_code == 2
    assert says in message
    if text.strip():
        assert repr(text) in message
    assert "pkg.module:Model" in message  # how to write it
    assert "path/to/file.py:Model" in message


def test_parse_init() -> None:
    assert parse_init(None) == InitArgs()
    assert not parse_init(None).given
    assert parse_init("[10, 3]") == InitArgs(args=[10, 3])
    assert parse_init('{"depth": 2}') == InitArgs(kwargs={"depth": 2})
    assert parse_init('{"depth": 2}').given
    assert not parse_init("[]").given


@pytest.mark.parametrize("text", ["{depth: 2}", "[1, 2", "'x'", ""])
def test_parse_init_invalid_json(text: str) -> None:
    with pytest.raises(UsageError) as raised:
        parse_init(text)
    message = str(raised.value)
    assert raised.value.exit_code == 2
    assert "--init" in message and "not valid JSON" in message
    assert repr(text) in message
    assert "--init '[10, 3]'" in message  # shows the forms that work


@pytest.mark.parametrize(("text", "kind"), [("5", "int"), ('"a"', "str")])
def test_parse_init_not_array_or_object(text: str, kind: str) -> None:
    with pytest.raises(UsageError) as raised:
        parse_init(text)
    assert raised.value.exit_code == 2
    assert kind in str(raised.value)
    assert "array" in str(raised.value) and "object" in str(raised.value)


# --- loading the sample models --------------------------------------------------


def test_class_is_instantiated(repo_root: Path) -> None:
    from sample_models.resnet import TinyResNet

    loaded = load_model(parse_target("sample_models.resnet:TinyResNet"))
    assert isinstance(loaded, LoadedModel)
    assert type(loaded.model) is TinyResNet
    assert loaded.spec.attr == "TinyResNet"


def test_factory_with_keyword_init(repo_root: Path) -> None:
    model = load("sample_models.factory:build_mlp", '{"width": 4, "depth": 3}')
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert len(linears) == 4
    assert linears[0].out_features == 4


def test_factory_with_positional_init(repo_root: Path) -> None:
    model = load("sample_models.factory:build_mlp", '[4, 1, "gelu"]')
    assert any(isinstance(m, nn.GELU) for m in model.modules())


def test_dotted_attribute(repo_root: Path) -> None:
    model = load("sample_models.factory:Zoo.small")
    assert isinstance(model, nn.Sequential)
    assert model[0].out_features == 8


def test_instance_used_as_is(repo_root: Path) -> None:
    from sample_models import factory

    assert load("sample_models.factory:prebuilt") is factory.prebuilt


def test_instance_with_init_is_a_usage_error(repo_root: Path) -> None:
    with pytest.raises(UsageError) as raised:
        load("sample_models.factory:prebuilt", "[1]")
    assert raised.value.exit_code == 2
    assert "--init" in str(raised.value)
    assert "instance" in str(raised.value)


def test_file_target_with_sibling_import(repo_root: Path) -> None:
    model = load("sample_models/by_path/tiny_cnn.py:TinyCNN")
    assert type(model).__name__ == "TinyCNN"
    assert type(model.block1).__module__ == "tiny_layers"


# --- load errors ----------------------------------------------------------------


def test_missing_module(workspace: Path) -> None:
    message = load_error("no_such_models_q:Net")
    assert "no module named 'no_such_models_q'" in message
    assert str(workspace) in message  # where it looked
    assert "path/to/file.py:Model" in message


def test_missing_dependency_is_not_reported_as_missing_target(workspace: Path) -> None:
    write(workspace, "needs_dep.py", "import no_such_dependency_q\n")
    message = load_error("needs_dep:Net")
    assert "no_such_dependency_q" in message
    assert "ModuleNotFoundError" in message
    assert "no module named 'needs_dep'" not in message


def test_module_raising_on_import(workspace: Path) -> None:
    write(workspace, "broken.py", "raise RuntimeError('no GPU here')\n")
    message = load_error("broken:Net")
    assert "builtins.RuntimeError" in message
    assert "no GPU here" in message


def test_syntax_error(workspace: Path) -> None:
    write(workspace, "bad_syntax.py", "x = 1\ndef f(:\n")
    message = load_error("bad_syntax:Net")
    assert "syntax error" in message
    assert "bad_syntax.py:2" in message


def test_sys_exit_on_import(workspace: Path) -> None:
    write(workspace, "script_like.py", "import sys\nsys.exit(4)\n")
    message = load_error("script_like:Net")
    assert "sys.exit(4)" in message
    assert "__name__ == '__main__'" in message


def test_missing_attribute_lists_close_matches_and_classes(repo_root: Path) -> None:
    message = load_error("sample_models.resnet:TinyResNt")
    assert "has no attribute 'TinyResNt'" in message
    assert "Did you mean TinyResNet?" in message
    assert "nn.Module classes it defines: BasicBlock, TinyResNet." in message


def test_missing_attribute_in_module_without_classes(workspace: Path) -> None:
    write(workspace, "empty_mod.py", "VALUE = 1\n")
    message = load_error("empty_mod:Net")
    assert "It defines no nn.Module class." in message


def test_imported_classes_are_not_listed_as_defined(workspace: Path) -> None:
    write(workspace, "reexport.py", "from torch.nn import Linear\n" + NET)
    message = load_error("reexport:Nte")
    assert "nn.Module classes it defines: Net." in message


def test_missing_dotted_attribute(repo_root: Path) -> None:
    message = load_error("sample_models.factory:Zoo.smal")
    assert "sample_models.factory.Zoo has no attribute 'smal'" in message
    assert "Did you mean small?" in message


def test_not_a_module(repo_root: Path) -> None:
    message = load_error("sample_models.factory:ACTIVATIONS")
    assert "builtins.dict" in message
    assert "not an nn.Module class, a factory or a module instance" in message


def test_class_that_is_not_a_module(repo_root: Path) -> None:
    message = load_error("sample_models.factory:Zoo")
    assert "sample_models.factory.Zoo" in message
    assert "not an nn.Module subclass" in message


def test_constructor_needing_arguments_shows_signature(workspace: Path) -> None:
    write(
        workspace,
        "needs_args.py",
        """
        from torch import nn

        class Net(nn.Module):
            def __init__(self, channels: int, depth: int = 2) -> None:
                super().__init__()
        """,
    )
    message = load_error("needs_args:Net")
    assert "constructor" in message
    assert "Net(channels: int, depth: int = 2)" in message
    assert "channels" in message.split("rejects")[1]  # the missing one
    assert "--init" in message


@pytest.mark.parametrize("init", ["[1, 2, 3, 4]", '{"colour": "red"}'])
def test_arguments_the_factory_rejects(init: str, repo_root: Path) -> None:
    message = load_error("sample_models.factory:build_mlp", init)
    assert "factory build_mlp(width" in message
    assert "activation" in message  # the whole signature
    assert "rejects the arguments" in message


def test_constructor_raising(repo_root: Path) -> None:
    message = load_error("sample_models.factory:build_mlp", '{"activation": "tanh"}')
    assert "raised builtins.ValueError" in message
    assert "unknown activation 'tanh'" in message


def test_factory_returning_something_else(workspace: Path) -> None:
    write(workspace, "bad_factory.py", "def make():\n    return {'a': 1}\n")
    message = load_error("bad_factory:make")
    assert "the factory returned a builtins.dict, not an nn.Module" in message


def test_missing_file(workspace: Path) -> None:
    message = load_error("models/nope.py:Net")
    assert "models/nope.py does not exist" in message
    assert str(workspace) in message


def test_file_raising_on_import(workspace: Path) -> None:
    write(workspace, "models/boom.py", "raise KeyError('weights')\n")
    message = load_error("models/boom.py:Net")
    assert "builtins.KeyError" in message and "weights" in message


# --- user files: import path and no bytecode ----------------------------------------


def test_module_target_imports_from_current_directory(workspace: Path) -> None:
    write(workspace, "mypkg/__init__.py", "")
    write(workspace, "mypkg/nets.py", "from mypkg.layers import Net\n")
    write(workspace, "mypkg/layers.py", NET)
    model = load("mypkg.nets:Net", '{"width": 3}')
    assert model.lin.in_features == 3
    assert type(model).__module__ == "mypkg.layers"
    assert no_bytecode(workspace)


def test_file_target_with_sibling_import_writes_no_bytecode(workspace: Path) -> None:
    write(workspace, "models/layers_q.py", NET)
    write(
        workspace,
        "models/zoo_q.py",
        """
        from layers_q import Net

        class Zoo:
            big = staticmethod(lambda: Net(4))
        """,
    )
    model = load("models/zoo_q.py:Zoo.big")
    assert model.lin.in_features == 4
    assert no_bytecode(workspace)


def test_file_target_by_absolute_path(workspace: Path, tmp_path: Path) -> None:
    path = write(workspace, "deep/er/abs_net_q.py", NET)
    model = load(f"{path}:Net")
    assert type(model).__name__ == "Net"
    assert no_bytecode(workspace)


def test_lazy_import_in_constructor_writes_no_bytecode(workspace: Path) -> None:
    write(workspace, "models/helper_q.py", NET)
    write(
        workspace,
        "models/lazy_q.py",
        """
        def build():
            from helper_q import Net

            return Net()
        """,
    )
    load("models/lazy_q.py:build")
    assert no_bytecode(workspace)


def test_two_file_targets_with_same_named_siblings(workspace: Path) -> None:
    for folder, layer in (("old", "nn.ReLU()"), ("new", "nn.Tanh()")):
        write(
            workspace, f"{folder}/parts_q.py", f"from torch import nn\nPART = {layer}"
        )
        write(
            workspace,
            f"{folder}/model_q.py",
            "from torch import nn\nfrom parts_q import PART\n"
            "def build():\n    return nn.Sequential(PART)\n",
        )
    old = load("old/model_q.py:build")
    new = load("new/model_q.py:build")
    assert isinstance(old[0], nn.ReLU)
    assert isinstance(new[0], nn.Tanh)


def test_file_target_does_not_shadow_loaded_module(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import colorsys

    # Restored at teardown whatever the loader does.
    monkeypatch.setitem(sys.modules, "colorsys", colorsys)
    write(workspace, "models/colorsys.py", NET)
    load("models/colorsys.py:Net")
    assert sys.modules["colorsys"] is colorsys
