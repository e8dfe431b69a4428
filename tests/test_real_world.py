"""qtrace on real-world models from torchvision and Hugging Face transformers.

The models are built from tiny configs with random weights; nothing is
downloaded. Each test traces a model with qtrace and, on a second instance built
from the same seed, with a raw ``QuantizationTracer``, and holds the report to
what torch did: the same nodes, the same leaf decisions, the same error. For the
models that do not trace, it also checks the diagnosis: the failing module is a
real path of the model, the source line lies in the library's own file, and
skipping the suggested module lets the trace get further.

The tests skip when torchvision or transformers is not installed.
"""

from __future__ import annotations

import linecache
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch
from torch import nn
from torch.fx.node import _get_qualified_name

from qtrace_cli.report import Location, Report
from qtrace_cli.trace import trace_model

with warnings.catch_warnings():
    # The package announces its deprecation on some torch releases.
    warnings.simplefilter("ignore", DeprecationWarning)
    warnings.simplefilter("ignore", FutureWarning)
    from torch.ao.quantization.fx.tracer import QuantizationTracer

Builder = Callable[[], nn.Module]

MAX_SKIP_STEPS = 6
"""Suggestions followed before a failing model must trace."""


# Models ---------------------------------------------------------------------


def torchvision() -> ModuleType:
    return pytest.importorskip("torchvision")


def transformers() -> ModuleType:
    return pytest.importorskip("transformers")


class TextWrapper(nn.Module):
    """Calls a text encoder with keyword tensors, as an application does."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids, attention_mask=mask)[0]


class ImageWrapper(nn.Module):
    """Calls an image encoder with ``pixel_values``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=pixel_values)[0]


class DetectionWrapper(nn.Module):
    """Passes one image as the list torchvision's detection models take."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor) -> Any:
        return self.model([image])


def bert() -> nn.Module:
    hf = transformers()
    config = hf.BertConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        vocab_size=100,
    )
    return hf.BertModel(config)


def distilbert() -> nn.Module:
    hf = transformers()
    config = hf.DistilBertConfig(
        vocab_size=100, dim=32, n_layers=2, n_heads=2, hidden_dim=64
    )
    return hf.DistilBertModel(config)


def vit() -> nn.Module:
    hf = transformers()
    config = hf.ViTConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        image_size=32,
        patch_size=8,
    )
    return hf.ViTModel(config)


def resnet18() -> nn.Module:
    return torchvision().models.resnet18(weights=None, num_classes=10)


def mobilenet_v3_small() -> nn.Module:
    return torchvision().models.mobilenet_v3_small(weights=None, num_classes=10)


def efficientnet_b0() -> nn.Module:
    return torchvision().models.efficientnet_b0(weights=None, num_classes=10)


def vision_transformer() -> nn.Module:
    models = torchvision().models
    return models.vision_transformer.VisionTransformer(
        image_size=32,
        patch_size=8,
        num_layers=2,
        num_heads=2,
        hidden_dim=32,
        mlp_dim=64,
        num_classes=10,
    )


def fasterrcnn() -> nn.Module:
    detection = torchvision().models.detection
    return detection.fasterrcnn_mobilenet_v3_large_fpn(
        weights=None, weights_backbone=None, num_classes=3
    )


def seeded(build: Builder) -> nn.Module:
    """A fresh model with the same random weights every time."""
    torch.manual_seed(0)
    return build()


# The raw tracer and the comparison ---------------------------------------------


def fx_target(node: torch.fx.Node) -> str:
    """The node's target as torch.fx names it, with ``operator`` for ``_operator``."""
    if isinstance(node.target, str):
        return node.target
    name = str(_get_qualified_name(node.target))
    return "operator." + name[10:] if name.startswith("_operator.") else name


def qual(cls: type | None) -> str | None:
    return None if cls is None else f"{cls.__module__}.{cls.__qualname__}"


class RawTrace:
    """One model traced by torch's own ``QuantizationTracer``, watched only by
    wrapping the instance's ``is_leaf_module``."""

    def __init__(
        self, model: nn.Module, names: Sequence[str], classes: Sequence[type]
    ) -> None:
        self.tracer = QuantizationTracer(list(names), list(classes))
        self.decisions: dict[str, bool] = {}
        real = self.tracer.is_leaf_module

        def spy(module: nn.Module, path: str) -> bool:
            leaf: bool = real(module, path)
            self.decisions[path] = leaf
            return leaf

        self.tracer.is_leaf_module = spy
        self.error: Exception | None = None
        model.eval()
        try:
            self.tracer.trace(model)
        except Exception as err:  # the failures under test
            self.error = err

    def failing_module(self) -> str:
        """The innermost module traced through when the trace failed.

        ``Tracer.call_module`` pops its ``module_stack`` entry only on success,
        so after a failure the stack still holds the calls that were running.
        """
        running = [path for path, _ in self.tracer.module_stack.values()]
        traced = [path for path in running if not self.decisions.get(path)]
        return traced[-1] if traced else ""

    def nodes(self) -> list[tuple[Any, ...]]:
        graph = getattr(self.tracer, "graph", None)
        if graph is None:
            return []
        scopes = self.tracer.node_name_to_scope
        rows = []
        for node in graph.nodes:
            path, scope_type = scopes.get(node.name, ("", None))
            stack = node.meta.get("nn_module_stack") or {}
            rows.append(
                (
                    node.name,
                    node.op,
                    fx_target(node),
                    [user.name for user in node.users],
                    path,
                    qual(scope_type),
                    [
                        (key, module_path, qual(module_type))
                        for key, (module_path, module_type) in stack.items()
                    ],
                )
            )
        return rows


def report_nodes(report: Report) -> list[tuple[Any, ...]]:
    return [
        (
            node.name,
            node.op,
            node.target,
            node.users,
            node.scope.path,
            node.scope.type,
            [(entry.key, entry.path, entry.type) for entry in node.module_stack],
        )
        for node in report.nodes
    ]


def trace_faithfully(
    build: Builder, names: Sequence[str] = (), classes: Sequence[type] = ()
) -> tuple[Report, nn.Module]:
    """Trace with qtrace and with the raw tracer; assert they agree."""
    model = seeded(build)
    report = trace_model(model, names, classes)
    raw = RawTrace(seeded(build), names, classes)

    assert report_nodes(report) == raw.nodes()

    modules = dict(model.named_modules())
    assert [row.path for row in report.modules] == list(modules)
    decided = {
        row.path: row.decision == "leaf"
        for row in report.modules
        if row.decision in ("leaf", "traced")
    }
    assert decided == raw.decisions

    checker = QuantizationTracer(list(names), list(classes))
    for row in report.modules:
        assert row.calls == raw.tracer.num_calls.get(row.path, 0), row.path
        if row.decision in ("leaf", "traced"):
            leaf = checker.is_leaf_module(modules[row.path], row.path)
            assert (row.decision == "leaf") == leaf, row.path
            assert bool(row.reasons) == leaf, row.path

    assert report.ok == (raw.error is None)
    if raw.error is not None:
        assert report.error is not None
        assert report.error.type == qual(type(raw.error))
        assert report.error.message == str(raw.error)
        assert report.error.module_path == raw.failing_module()
    return report, model


def source_file(location: Location) -> Path:
    """The absolute file of a location, which may be shown relative to the cwd."""
    path = Path(location.file)
    return (path if path.is_absolute() else Path.cwd() / path).resolve()


def assert_in_library(location: Location | None, library: ModuleType) -> None:
    """The location is a real line of the library's own code."""
    assert location is not None
    root = Path(str(library.__file__)).resolve().parent
    path = source_file(location)
    assert path.is_relative_to(root), f"{path} is not in {root}"
    assert linecache.getline(str(path), location.line).strip() == location.code
    assert location.function


def assert_diagnosis(report: Report, model: nn.Module, library: ModuleType) -> None:
    """The failure names a module of the model and a line of the library."""
    error = report.error
    assert error is not None
    assert error.module_path in dict(model.named_modules())
    if error.module_path:
        assert error.suggestion == f"--skip-name {error.module_path}"
    else:
        assert error.suggestion is None
    assert_in_library(error.location, library)


def follow_suggestions(
    build: Builder, library: ModuleType
) -> tuple[list[str], list[Report]]:
    """Skip each suggested module in turn, as ``qtrace suggest`` would, checking
    every trace on the way; return the skips and the reports."""
    skips: list[str] = []
    report, model = trace_faithfully(build)
    reports = [report]
    while not report.ok:
        assert_diagnosis(report, model, library)
        error = report.error
        assert error is not None and error.module_path, "no skip can help"
        assert len(skips) < MAX_SKIP_STEPS
        skips.append(error.module_path)

        report, model = trace_faithfully(build, skips)
        reports.append(report)
        if report.error is not None:
            # The trace got further: the same failure does not come back.
            moved = (report.error.module_path, report.error.location)
            assert moved != (error.module_path, error.location)
    return skips, reports


# torchvision classifiers -----------------------------------------------------------

CLASSIFIERS = [resnet18, mobilenet_v3_small, efficientnet_b0, vision_transformer]


@pytest.mark.parametrize("build", CLASSIFIERS, ids=lambda b: b.__name__)
def test_torchvision_classifier_traces_as_torch_does(build: Builder) -> None:
    report, _ = trace_faithfully(build)

    assert report.ok
    assert report.summary.leaf_modules > 0
    made_by_code = [n for n in report.nodes if n.op not in ("placeholder", "output")]
    for node in made_by_code:
        assert_in_library(node.location, torchvision())


def test_torchvision_skip_class_and_name() -> None:
    blocks = torchvision().models.resnet
    report, _ = trace_faithfully(
        resnet18, names=["layer4.1"], classes=[blocks.BasicBlock]
    )

    rows = {row.path: row for row in report.modules}
    assert rows["layer1.0"].decision == "leaf"
    assert rows["layer1.0"].reasons == ["skip-class"]
    assert rows["layer1.0.conv1"].decision == "inside-leaf"
    assert rows["layer4.1"].reasons == ["skip-name", "skip-class"]
    assert rows["layer1"].decision == "traced"


# Detection models --------------------------------------------------------------


def test_fasterrcnn_fails_in_its_own_forward() -> None:
    report, model = trace_faithfully(fasterrcnn)

    assert not report.ok
    assert_diagnosis(report, model, torchvision())
    assert report.error is not None
    assert report.error.module_path == ""
    assert report.error.location is not None
    assert source_file(report.error.location).parent.name == "detection"


def test_fasterrcnn_in_a_wrapper_gets_a_skip_that_works() -> None:
    def build() -> nn.Module:
        return DetectionWrapper(fasterrcnn())

    skips, reports = follow_suggestions(build, torchvision())

    assert skips == ["model"]
    assert reports[-1].ok
    rows = {row.path: row for row in reports[-1].modules}
    assert rows["model"].reasons == ["skip-name"]
    assert rows["model.backbone"].decision == "inside-leaf"


def test_fasterrcnn_backbone_traces_as_torch_does() -> None:
    report, _ = trace_faithfully(lambda: fasterrcnn().backbone)

    assert report.ok
    assert {row.decision for row in report.modules} >= {"leaf", "traced"}


# Hugging Face encoders -----------------------------------------------------------

ENCODERS = [bert, distilbert, vit]
WRAPPED = [
    pytest.param(bert, TextWrapper, id="bert"),
    pytest.param(distilbert, TextWrapper, id="distilbert"),
    pytest.param(vit, ImageWrapper, id="vit"),
]


@pytest.mark.parametrize("build", ENCODERS, ids=lambda b: b.__name__)
def test_hf_encoder_traces_as_torch_does(build: Builder) -> None:
    report, model = trace_faithfully(build)

    # The encoders' forward takes **kwargs and branches on its inputs, which
    # symbolic tracing has never followed (transformers ships its own tracer).
    assert not report.ok
    assert report.error is not None
    assert report.error.module_path in dict(model.named_modules())
    if report.error.location is not None:
        assert_in_library(report.error.location, transformers())


@pytest.mark.parametrize(("build", "wrapper"), WRAPPED)
def test_hf_encoder_in_a_wrapper_gets_skips_that_work(
    build: Builder, wrapper: type[nn.Module]
) -> None:
    skips, reports = follow_suggestions(lambda: wrapper(build()), transformers())

    # The first failure is inside the encoder, never in the wrapper's forward.
    first = reports[0].error
    assert first is not None and first.module_path
    assert first.module_path.startswith("model")
    assert skips[0] == first.module_path
    assert reports[-1].ok


def test_hf_skip_class_moves_the_failure_out() -> None:
    hf = transformers()
    embeddings = hf.models.bert.modeling_bert.BertEmbeddings

    def build() -> nn.Module:
        return TextWrapper(bert())

    before, _ = trace_faithfully(build)
    after, model = trace_faithfully(build, classes=[embeddings])

    assert before.error is not None
    assert before.error.module_path == "model.embeddings"
    rows = {row.path: row for row in after.modules}
    assert rows["model.embeddings"].reasons == ["skip-class"]
    assert rows["model.embeddings.word_embeddings"].decision == "inside-leaf"
    if after.error is not None:
        assert after.error.module_path != "model.embeddings"
        assert_diagnosis(after, model, hf)
