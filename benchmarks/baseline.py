"""What a quantization engineer runs without qtrace: trace with torch's
QuantizationTracer as shipped and print the graph with ``print_tabular``.

Usage: python benchmarks/baseline.py BLOCKS
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

warnings.filterwarnings("ignore", message="Failed to initialize NumPy")

import torch  # noqa: E402
from torch.ao.quantization.fx.tracer import QuantizationTracer  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from synthetic import build  # type: ignore[import-not-found]  # noqa: E402

model = build(int(sys.argv[1])).eval()
graph = QuantizationTracer([], []).trace(model)
graph.print_tabular()
print(torch.__version__, file=sys.stderr)
