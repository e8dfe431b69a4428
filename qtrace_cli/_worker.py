"""Loaded first by ``check --jobs`` worker processes: import torch once,
quietly (it warns on import when NumPy is missing, which qtrace never needs)."""

import warnings

warnings.filterwarnings("ignore", message="Failed to initialize NumPy")

import qtrace_cli.pipeline  # noqa: E402, F401  (imports torch for every worker)
