"""``qtrace check``: trace a list of models and hold each to its expectations.

Each model is traced in its own worker when ``jobs`` > 1 (workers are started
once and reused). A model passes when it traces, its expected leaves are leaves,
its expected traced modules are traced, it has at most ``max_nodes`` nodes, and
its report has the same structure as its baseline.
"""

from __future__ import annotations

import multiprocessing
import os
import time
import zlib
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from qtrace_cli.compare import ReportDiff, compare_reports
from qtrace_cli.errors import QtraceError, UsageError
from qtrace_cli.naming import short_name
from qtrace_cli.output_file import write_atomically
from qtrace_cli.report import Report, read_report


@dataclass(frozen=True)
class ModelCheck:
    """One model to check, with its skips and expectations."""

    target: str
    name: str = ""
    """Label in the output; the target when empty."""
    skip_names: tuple[str, ...] = ()
    skip_classes: tuple[str, ...] = ()
    init: str | None = None
    train: bool = False
    concrete_args: tuple[str, ...] = ()
    baseline: Path | None = None
    expect_leaf: tuple[str, ...] = ()
    expect_traced: tuple[str, ...] = ()
    max_nodes: int | None = None

    @property
    def label(self) -> str:
        return self.name or self.target


@dataclass
class CheckResult:
    """How one model fared."""

    check: ModelCheck
    ok: bool
    problems: list[str] = field(default_factory=list)
    nodes: int = 0
    seconds: float = 0.0
    report: Report | None = None
    diff: ReportDiff | None = None
    baseline_written: bool = False
    warnings: list[str] = field(default_factory=list)


def checks_for_targets(targets: Sequence[str], flags: ModelCheck) -> list[ModelCheck]:
    """One check per TARGET, each with the flags given on the command line.

    Raises:
        UsageError: when one ``--baseline`` is given for several targets.
    """
    if flags.baseline is not None and len(targets) > 1:
        raise UsageError(
            "--baseline takes one TARGET; list several models with their own "
            "baselines in [tool.qtrace] in pyproject.toml instead."
        )
    return [replace(flags, target=target) for target in targets]


def shard(checks: Sequence[ModelCheck], index: int, count: int) -> list[ModelCheck]:
    """The models of shard ``index`` (1-based) of ``count``.

    A model's shard depends only on its label, so adding a model never moves
    the others between CI machines.
    """
    if count < 1 or not 1 <= index <= count:
        raise UsageError(
            f"--shard {index}/{count} is out of range; use I/N with 1 <= I <= N."
        )
    return [c for c in checks if zlib.crc32(c.label.encode()) % count == index - 1]


def parse_shard(text: str) -> tuple[int, int]:
    """Parse ``I/N``.

    Raises:
        UsageError: when the text is not two integers separated by a slash.
    """
    first, sep, second = text.partition("/")
    if not sep or not first.strip().isdigit() or not second.strip().isdigit():
        raise UsageError(f"--shard {text!r} is not I/N; write e.g. --shard 2/4.")
    return int(first), int(second)


def run_checks(
    checks: Sequence[ModelCheck],
    *,
    update_baseline: bool = False,
    jobs: int = 1,
    on_result: Callable[[CheckResult], None] | None = None,
) -> list[CheckResult]:
    """Check every model, in ``jobs`` worker processes when more than one.

    Results come back in the order of ``checks``; ``on_result`` sees each as
    soon as it is ready.
    """
    if jobs <= 1 or len(checks) <= 1:
        results = []
        for check in checks:
            result = check_model(check, update_baseline)
            if on_result is not None:
                on_result(result)
            results.append(result)
        return results

    context = _worker_context()
    with ProcessPoolExecutor(
        max_workers=min(jobs, len(checks)), mp_context=context
    ) as pool:
        futures = [pool.submit(check_model, check, update_baseline) for check in checks]
        results = []
        for future in futures:
            result = future.result()
            if on_result is not None:
                on_result(result)
            results.append(result)
    return results


def _worker_context() -> multiprocessing.context.BaseContext:
    # A fork server that has imported torch once forks ready workers cheaply,
    # without forking this process's threads.
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["qtrace_cli._worker"])
        return context
    return multiprocessing.get_context("spawn")


def check_model(check: ModelCheck, update_baseline: bool = False) -> CheckResult:
    """Trace one model and hold it to its expectations."""
    from qtrace_cli.pipeline import TraceRequest, run_trace

    started = time.perf_counter()
    try:
        outcome = run_trace(
            TraceRequest(
                target=check.target,
                skip_names=check.skip_names,
                skip_classes=check.skip_classes,
                init=check.init,
                train=check.train,
                concrete_args=check.concrete_args,
            )
        )
    except QtraceError as err:
        return CheckResult(
            check, ok=False, problems=[str(err)], seconds=time.perf_counter() - started
        )

    report = outcome.report
    result = CheckResult(
        check,
        ok=True,
        nodes=report.summary.nodes,
        seconds=time.perf_counter() - started,
        report=report,
        warnings=outcome.warnings,
    )
    result.problems.extend(expectation_problems(check, report))
    if check.baseline is not None:
        _hold_to_baseline(check.baseline, report, update_baseline, result)
    result.ok = not result.problems
    return result


def expectation_problems(check: ModelCheck, report: Report) -> list[str]:
    """What in ``report`` breaks the model's expectations, in words."""
    problems = []
    if not report.ok and report.error is not None:
        error = report.error
        where = f" in {error.module_path}" if error.module_path else " in forward"
        problems.append(
            f"does not trace: {short_name(error.type)}{where}: {error.message}"
        )
    decisions = {m.path: m.decision for m in report.modules}
    for path, wanted in _expected(check):
        found = decisions.get(path)
        if found is None:
            problems.append(
                f"expected {wanted} {path}, but the model has no such module"
            )
        elif found != wanted:
            problems.append(f"expected {path} to be {wanted}, but it is {found}")
    if check.max_nodes is not None and report.summary.nodes > check.max_nodes:
        problems.append(
            f"{report.summary.nodes} nodes, more than --max-nodes {check.max_nodes}"
        )
    return problems


def _expected(check: ModelCheck) -> Iterable[tuple[str, str]]:
    for path in check.expect_leaf:
        yield path, "leaf"
    for path in check.expect_traced:
        yield path, "traced"


def _hold_to_baseline(
    baseline: Path, report: Report, update: bool, result: CheckResult
) -> None:
    if update:
        if report.ok:
            try:
                baseline.parent.mkdir(parents=True, exist_ok=True)
                write_atomically(baseline, report.to_json())
            except (OSError, QtraceError) as err:
                result.problems.append(
                    f"baseline {shown_path(baseline)} not written: {err}"
                )
                return
            result.baseline_written = True
        else:
            result.problems.append(
                f"baseline {shown_path(baseline)} not written: the model does not trace"
            )
        return
    if not baseline.exists():
        result.problems.append(
            f"baseline {shown_path(baseline)} does not exist; create it with "
            "--update-baseline"
        )
        return
    try:
        saved = read_report(shown_path(baseline), "baseline")
    except UsageError as err:
        result.problems.append(str(err))
        return
    diff = compare_reports(saved, report)
    if not diff.empty:
        result.diff = diff
        result.problems.append(
            f"differs from baseline {shown_path(baseline)}: {diff_summary(diff)}"
        )


def shown_path(path: Path) -> str:
    """``path`` relative to the current folder when it lies below it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def diff_summary(diff: ReportDiff) -> str:
    """A few words on how much differs."""
    parts = []
    if diff.status is not None:
        parts.append("traced before" if diff.status[0] else "did not trace before")
    for count, what in (
        (len(diff.added), "node(s) added"),
        (len(diff.removed), "node(s) removed"),
        (len(diff.changed), "node(s) changed"),
        (len(diff.modules), "module decision(s) changed"),
    ):
        if count:
            parts.append(f"{count} {what}")
    return ", ".join(parts) or "no difference"


def github_annotations(results: Iterable[CheckResult]) -> list[str]:
    """``::error`` workflow commands for failures, pointing at the source line
    when the trace failed."""
    lines = []
    for result in results:
        if result.ok:
            continue
        location = None
        if result.report is not None and result.report.error is not None:
            location = result.report.error.location
        message = _escape_data("; ".join(result.problems))
        props = f"title={_escape_property('qtrace check ' + result.check.label)}"
        if location is not None and not os.path.isabs(location.file):
            props = (
                f"file={_escape_property(location.file)},line={location.line}," + props
            )
        lines.append(f"::error {props}::{message}")
    return lines


def _escape_data(text: str) -> str:
    # GitHub's workflow-command encoding for a message.
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    # ... and for a property value, where ':' and ',' are separators.
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")
