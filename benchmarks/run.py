"""Benchmarks of whole qtrace commands against the bare tracer.

Each command runs as its own process, alternating with its baseline, for
several rounds; the table shows medians, the ratio qtrace / baseline and the
target from the performance issue, and peak memory from the operating system's
accounting of each child (``wait4``'s ``ru_maxrss``). Results are printed and
written to ``benchmarks/results.json``.

Usage: python benchmarks/run.py [--rounds N] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
QTRACE = str(BIN / "qtrace")
PYTHON = sys.executable
SYNTHETIC = "benchmarks/synthetic.py:build"

SMALL_TARGETS = [
    "sample_models.resnet:TinyResNet",
    "sample_models.gated:GatedNet",
    "sample_models.mixer:Mixer",
    "sample_models.factory:build_mlp",
    "sample_models.factory:Zoo.small",
    "sample_models.factory:prebuilt",
    "sample_models.factory:Augmented",
    "sample_models/by_path/tiny_cnn.py:TinyCNN",
    "sample_models.untraceable:NestedFailure",
    "sample_models.untraceable:SomeInstancesFail",
]


@dataclass
class Run:
    seconds: float
    peak_mib: float


@dataclass
class Figure:
    name: str
    qtrace_s: float
    baseline_s: float
    ratio: float
    target: str
    met: bool
    qtrace_peak_mib: float = 0.0
    baseline_peak_mib: float = 0.0


def run(command: list[str], stdout_path: str | None = None) -> Run:
    """Run ``command`` once; wall time and the child's peak resident memory."""
    out = open(stdout_path, "w") if stdout_path else subprocess.DEVNULL  # noqa: SIM115
    started = time.perf_counter()
    child = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if stdout_path:
        out.close()  # type: ignore[union-attr]
    if child.returncode not in (0, 1):
        raise SystemExit(f"benchmark command failed ({child.returncode}): {command}")
    return Run(elapsed, usage.ru_maxrss / 1024)


def shell(command: str) -> list[str]:
    """A shell command line, for a sequence of runs timed as one."""
    return ["/bin/sh", "-c", command]


def alternate(
    ours: list[str], theirs: list[str], rounds: int, out: str | None = None
) -> tuple[list[Run], list[Run]]:
    """Run the two commands in turn, ``rounds`` times each."""
    mine, base = [], []
    for _ in range(rounds):
        mine.append(run(ours, out))
        base.append(run(theirs, out))
    return mine, base


def median(runs: list[Run]) -> float:
    return statistics.median(r.seconds for r in runs)


def peak(runs: list[Run]) -> float:
    return max(r.peak_mib for r in runs)


def figure(name: str, mine: list[Run], base: list[Run], limit: float) -> Figure:
    ratio = median(mine) / median(base)
    return Figure(
        name,
        median(mine),
        median(base),
        ratio,
        f"<= {limit} x",
        ratio <= limit,
        peak(mine),
        peak(base),
    )


def torch_free_help() -> bool:
    """Whether ``qtrace --help`` and ``qtrace show --help`` import torch."""
    probe = (
        "import sys\n"
        "from qtrace_cli.cli import app\n"
        "for argv in (['--help'], ['show', '--help']):\n"
        "    try:\n"
        "        app(argv, prog_name='qtrace')\n"
        "    except SystemExit:\n"
        "        pass\n"
        "sys.stderr.write(str('torch' in sys.modules))\n"
    )
    done = subprocess.run(
        [PYTHON, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=False
    )
    return done.stderr.strip().endswith("False")


SUGGEST_PROBE = """
import json, statistics, time, warnings
warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
from qtrace_cli.suggest import suggest_skips
from qtrace_cli.trace import trace_model
from sample_models.untraceable import RepeatedFailingBlock

model = RepeatedFailingBlock(12)
trace_model(model)  # warm up imports and caches
plain = []
for _ in range(7):
    started = time.perf_counter()
    trace_model(model, stack="none")
    plain.append(time.perf_counter() - started)
runs = []
for _ in range(5):
    answer = suggest_skips(model)
    runs.append(answer.seconds)
print(json.dumps({
    "traces": answer.traces,
    "answer": [c.__name__ for c in answer.skip_classes] + answer.skip_names,
    "suggest_s": statistics.median(runs),
    "plain_s": statistics.median(plain),
}))
"""


@dataclass
class SuggestCost:
    traces: int
    answer: list[str]
    suggest_s: float
    plain_s: float


def suggest_cost() -> SuggestCost:
    """Traces and time of ``suggest`` on 12 instances of a failing block,
    against one plain trace of the same model, measured in one process."""
    done = subprocess.run(
        [PYTHON, "-c", SUGGEST_PROBE],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return SuggestCost(**json.loads(done.stdout))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--blocks", type=int, default=1000)
    args = parser.parse_args()
    rounds, blocks = args.rounds, args.blocks
    init = json.dumps({"blocks": blocks})
    figures: list[Figure] = []
    work = tempfile.mkdtemp(prefix="qtrace-bench-")
    out = os.path.join(work, "out.txt")

    import_torch = [PYTHON, "-c", "import torch"]
    for argv in (["--help"], ["show", "--help"]):
        mine, base = alternate([QTRACE, *argv], import_torch, rounds)
        figures.append(figure(f"qtrace {' '.join(argv)}", mine, base, 0.25))

    baseline = [PYTHON, "benchmarks/baseline.py", str(blocks)]
    show = [QTRACE, "show", SYNTHETIC, "--init", init]
    json_cmd = [*show, "--format", "json", "-o", os.path.join(work, "r.json")]
    mine, base = alternate(json_cmd, baseline, rounds, out)
    json_figure = figure("show --format json -o FILE", mine, base, 0.6)
    figures.append(json_figure)
    memory = [(mine, base)]

    mine, base = alternate([*show, "--section", "graph"], baseline, rounds, out)
    figures.append(figure("show --section graph > FILE", mine, base, 1.0))
    memory.append((mine, base))

    mine, base = alternate(show, baseline, rounds, out)
    figures.append(figure("show > FILE (all tables)", mine, base, 2.0))
    memory.append((mine, base))

    worst = max(peak(m) / peak(b) for m, b in memory)
    figures.append(
        Figure(
            "peak memory of the three above",
            max(peak(m) for m, _ in memory),
            max(peak(b) for _, b in memory),
            worst,
            "<= 1.3 x",
            worst <= 1.3,
        )
    )

    big = json.dumps({"blocks": blocks * 4})
    big_json = [
        QTRACE,
        "show",
        SYNTHETIC,
        "--init",
        big,
        "--format",
        "json",
        "-o",
        os.path.join(work, "big.json"),
    ]
    big_runs = [run(big_json) for _ in range(max(rounds // 2, 2))]
    ratio = median(big_runs) / json_figure.qtrace_s
    figures.append(
        Figure(
            f"growth: json, N={blocks * 4} vs N={blocks}",
            median(big_runs),
            json_figure.qtrace_s,
            ratio,
            "<= 4.5 x",
            ratio <= 4.5,
        )
    )

    targets = (SMALL_TARGETS * 2)[:20]
    check_cmd = [QTRACE, "check", "--jobs", "2", *targets]
    separate = shell(" ; ".join(f"{QTRACE} show {t} > /dev/null" for t in targets))
    mine, base = alternate(check_cmd, separate, max(rounds // 2, 1))
    figures.append(figure("check of 20 targets --jobs 2 vs 20 shows", mine, base, 0.5))

    cost = suggest_cost()
    help_clean = torch_free_help()
    report = {
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
        },
        "rounds": rounds,
        "blocks": blocks,
        "help_imports_torch": not help_clean,
        "suggest_12_failing_instances": asdict(cost),
        "figures": [asdict(f) for f in figures],
    }
    (ROOT / "benchmarks" / "results.json").write_text(
        json.dumps(report, indent=2) + "\n"
    )

    print(f"{'figure':46} {'qtrace':>9} {'baseline':>9} {'ratio':>7}  target    met")
    for f in figures:
        unit = "MiB" if "memory" in f.name else "s"
        print(
            f"{f.name:46} {f.qtrace_s:8.2f}{unit[0]} {f.baseline_s:8.2f}{unit[0]} "
            f"{f.ratio:7.2f}  {f.target:8}  {'yes' if f.met else 'NO'}"
        )
    print(f"qtrace --help imports torch: {'yes' if not help_clean else 'no'}")
    print(
        f"suggest, 12 failing instances: {cost.traces} traces, answer "
        f"{cost.answer}, {cost.suggest_s:.3f} s = "
        f"{cost.suggest_s / cost.plain_s:.1f} x one plain trace ({cost.plain_s:.4f} s)"
    )
    print(f"machine: {report['machine']}")


if __name__ == "__main__":
    main()
