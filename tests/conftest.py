"""Fixtures shared by the core tests (CLI tests keep their own)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from qtrace_cli import tracer as tracer_module

REPO_ROOT = Path(__file__).resolve().parent.parent


def _clear_tracer_caches() -> None:
    tracer_module.base_tracer_class.cache_clear()
    tracer_module.observing_tracer_class.cache_clear()


@pytest.fixture
def repo_root(monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run from the repository root, so ``sample_models`` imports and source
    locations are shown relative to it."""
    monkeypatch.chdir(REPO_ROOT)
    monkeypatch.syspath_prepend(str(REPO_ROOT))
    return REPO_ROOT


@pytest.fixture
def fallback_tracer(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Trace with qtrace's own tracer, as on a torch without
    ``torch.ao.quantization``."""
    monkeypatch.setenv(tracer_module.FALLBACK_ENV, "fallback")
    _clear_tracer_caches()
    yield
    # The caches fill lazily, so clearing them here (before monkeypatch restores
    # the environment) leaves the next test with torch's tracer.
    _clear_tracer_caches()
