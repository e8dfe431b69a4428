"""The ``qtrace`` command line: parse flags, call the core, hand results on.

torch is imported only inside commands, so ``qtrace --help`` stays fast.
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
import traceback
import warnings
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from qtrace_cli.errors import QtraceError, UsageError

app = typer.Typer(
    name="qtrace",
    help="See how torch's FX quantization tracer sees your model.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


class OutputFormat(StrEnum):
    table = "table"
    json = "json"
    dot = "dot"


class Op(StrEnum):
    placeholder = "placeholder"
    get_attr = "get_attr"
    call_function = "call_function"
    call_method = "call_method"
    call_module = "call_module"
    output = "output"


class TextOrJson(StrEnum):
    table = "table"
    json = "json"


class Stack(StrEnum):
    user = "user"
    full = "full"
    none = "none"


SkipNames = Annotated[
    list[str],
    typer.Option(
        "--skip-name",
        metavar="NAME",
        help="Skip (keep as a leaf) the module at this qualified path; globs such "
        "as 'layers.*.attn' are expanded. Repeatable.",
    ),
]
SkipClasses = Annotated[
    list[str],
    typer.Option(
        "--skip-class",
        metavar="CLASS",
        help="Skip every module of this class: pkg.mod:Cls, pkg.mod.Cls or a bare "
        "class name used in the model. Repeatable.",
    ),
]
Init = Annotated[
    str | None,
    typer.Option(
        "--init",
        metavar="JSON",
        help="Constructor or factory arguments: a JSON array (positional) or "
        "object (keyword).",
    ),
]
Train = Annotated[
    bool,
    typer.Option(
        "--train",
        help="Trace in training mode, as prepare_qat_fx does (default: eval).",
    ),
]
ConcreteArgs = Annotated[
    list[str],
    typer.Option(
        "--concrete-arg",
        metavar="NAME=JSON",
        help="Pin a non-tensor forward argument, e.g. augment=false. Repeatable.",
    ),
]
Width = Annotated[
    int | None,
    typer.Option(
        "--width",
        min=60,
        help="Table width in columns (default: the terminal's, COLUMNS, or 100).",
    ),
]
TextFormat = Annotated[TextOrJson, typer.Option("--format", help="Output format.")]
ShowTraceback = Annotated[
    bool,
    typer.Option("--traceback", help="Print Python tracebacks (for bug reports)."),
]


def _fail(message: str, code: int) -> NoReturn:
    sys.stderr.write(f"qtrace: error: {message}\n")
    raise typer.Exit(code)


def _guarded(show_traceback: bool, body: Callable[[], int]) -> NoReturn:
    """Run a command body and turn every outcome into an exit code."""
    try:
        code = body()
        sys.stdout.flush()
    except QtraceError as err:
        if show_traceback:
            traceback.print_exc()
        _fail(str(err), err.exit_code)
    except KeyboardInterrupt:
        sys.stderr.write("qtrace: interrupted\n")
        raise typer.Exit(130) from None
    except BrokenPipeError:
        # The reader went away (qtrace show ... | head): end quietly, and keep
        # Python from complaining while it flushes stdout on the way out.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        raise typer.Exit(0) from None
    except typer.Exit:
        raise
    except Exception as err:
        if show_traceback:
            traceback.print_exc()
            raise typer.Exit(1) from None
        _fail(
            f"internal error: {type(err).__name__}: {err}. This is a qtrace bug; "
            "rerun with --traceback and report the output.",
            1,
        )
    raise typer.Exit(code)


def _quiet_torch_import() -> None:
    # torch warns on import when NumPy is missing; qtrace never needs NumPy.
    warnings.filterwarnings("ignore", message="Failed to initialize NumPy")


def _sections(values: list[str]) -> tuple[str, ...]:
    from qtrace_cli.render.view import SECTIONS

    if not values:
        return SECTIONS
    chosen: list[str] = []
    for value in values:
        for part in value.split(","):
            name = part.strip()
            if name not in SECTIONS:
                raise UsageError(
                    f"--section {name!r} is not a section; choose from "
                    + ", ".join(SECTIONS)
                    + " (repeat the flag or separate them with commas)."
                )
            if name not in chosen:
                chosen.append(name)
    return tuple(chosen)


@app.callback()
def _root(
    verbose: Annotated[
        int,
        typer.Option(
            "--verbose", "-v", count=True, help="Log what qtrace does (-vv for more)."
        ),
    ] = 0,
) -> None:
    """See how torch's FX quantization tracer sees your model."""
    _quiet_torch_import()
    # Whatever the model's code imports, qtrace leaves no __pycache__ behind.
    sys.dont_write_bytecode = True
    if verbose:
        import logging

        from qtrace_cli.render.logs import attach_stderr_handler

        attach_stderr_handler(logging.INFO if verbose == 1 else logging.DEBUG)


@app.command()
def show(
    target: Annotated[
        str,
        typer.Argument(
            metavar="TARGET",
            help="pkg.module:Model or path/to/file.py:Model (a class, factory or "
            "instance; dotted attributes work).",
        ),
    ],
    skip_name: SkipNames = [],  # noqa: B006 - typer reads the default
    skip_class: SkipClasses = [],  # noqa: B006
    init: Init = None,
    train: Train = False,
    concrete_arg: ConcreteArgs = [],  # noqa: B006
    section: Annotated[
        list[str],
        typer.Option(
            "--section",
            metavar="NAME",
            help="Tables to show: summary, graph, leaves, scopes (repeatable or "
            "comma-separated; default all).",
        ),
    ] = [],  # noqa: B006
    scope: Annotated[
        str | None,
        typer.Option(
            "--scope", metavar="PREFIX", help="Keep nodes and modules under this path."
        ),
    ] = None,
    op: Annotated[
        Op | None, typer.Option("--op", help="Keep nodes of this opcode only.")
    ] = None,
    output_format: Annotated[
        OutputFormat, typer.Option("--format", help="Output format.")
    ] = OutputFormat.table,
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", metavar="FILE", help="Write the output here."),
    ] = None,
    stack: Annotated[
        Stack,
        typer.Option(
            "--stack",
            help="Source frames per node: the innermost user frame, every user "
            "frame, or none.",
        ),
    ] = Stack.user,
    width: Width = None,
    show_traceback: ShowTraceback = False,
) -> None:
    """Trace TARGET and print the graph, the leaf decisions and the scopes."""

    def body() -> int:
        from qtrace_cli.output_file import check_writable

        sections = _sections(section)
        if output is not None:
            check_writable(output)

        from qtrace_cli.pipeline import TraceRequest, run_trace
        from qtrace_cli.render.console import print_failure, print_warnings, render
        from qtrace_cli.report import StackMode

        outcome = run_trace(
            TraceRequest(
                target=target,
                skip_names=skip_name,
                skip_classes=skip_class,
                init=init,
                train=train,
                concrete_args=concrete_arg,
                stack=StackMode(stack.value),
            )
        )
        # The traced graph stays alive until exit; spare the garbage collector
        # from walking it again while the output is rendered.
        gc.freeze()
        print_warnings(outcome.warnings)
        render(
            outcome.report,
            output_format.value,
            sections=sections,
            scope=scope,
            op=op.value if op else None,
            output=output,
            width=width,
        )
        if not outcome.report.ok:
            error = outcome.report.error
            if show_traceback and error is not None:
                sys.stderr.write(error.traceback)
            print_failure(outcome.report, width)
            return 1
        return 0

    _guarded(show_traceback, body)


@app.command()
def suggest(
    target: Annotated[
        str,
        typer.Argument(
            metavar="TARGET", help="pkg.module:Model or path/to/file.py:Model."
        ),
    ],
    skip_name: SkipNames = [],  # noqa: B006
    skip_class: SkipClasses = [],  # noqa: B006
    init: Init = None,
    train: Train = False,
    concrete_arg: ConcreteArgs = [],  # noqa: B006
    output_format: TextFormat = TextOrJson.table,
    width: Width = None,
    show_traceback: ShowTraceback = False,
) -> None:
    """Find the smallest, deepest skip list that makes TARGET trace."""

    def body() -> int:
        from qtrace_cli.pipeline import load_for_tracing
        from qtrace_cli.render.console import print_warnings
        from qtrace_cli.render.suggest_renderer import (
            progress_on_stderr,
            render_suggestion,
        )
        from qtrace_cli.suggest import suggest_skips

        prepared = load_for_tracing(
            target, skip_name, skip_class, init=init, concrete_args=concrete_arg
        )
        print_warnings(prepared.warnings)
        # Whatever the model prints stays off stdout, which carries the answer.
        with progress_on_stderr() as progress, contextlib.redirect_stdout(sys.stderr):
            suggestion = suggest_skips(
                prepared.model,
                prepared.skips.names,
                prepared.skips.classes,
                train=train,
                concrete_args=prepared.concrete_args,
                progress=progress,
            )
        render_suggestion(suggestion, output_format.value, sys.stdout, width)
        return 0 if suggestion.ok else 1

    _guarded(show_traceback, body)


@app.command()
def check(
    targets: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[TARGET]...",
            help="Targets to check; none reads [tool.qtrace] from pyproject.toml.",
            show_default=False,
        ),
    ] = None,
    skip_name: SkipNames = [],  # noqa: B006
    skip_class: SkipClasses = [],  # noqa: B006
    init: Init = None,
    train: Train = False,
    concrete_arg: ConcreteArgs = [],  # noqa: B006
    baseline: Annotated[
        Path | None,
        typer.Option(
            "--baseline",
            metavar="FILE",
            help="Saved JSON report; fail on any structural change (one TARGET).",
        ),
    ] = None,
    update_baseline: Annotated[
        bool,
        typer.Option(
            "--update-baseline", help="Write the baselines instead of comparing."
        ),
    ] = False,
    expect_leaf: Annotated[
        list[str],
        typer.Option(
            "--expect-leaf", metavar="PATH", help="This module must be a leaf."
        ),
    ] = [],  # noqa: B006
    expect_traced: Annotated[
        list[str],
        typer.Option(
            "--expect-traced",
            metavar="PATH",
            help="This module must be traced through.",
        ),
    ] = [],  # noqa: B006
    max_nodes: Annotated[
        int | None,
        typer.Option("--max-nodes", metavar="N", min=0, help="Fail above N nodes."),
    ] = None,
    junit_xml: Annotated[
        Path | None,
        typer.Option("--junit-xml", metavar="FILE", help="Write a JUnit XML report."),
    ] = None,
    jobs: Annotated[
        int, typer.Option("--jobs", "-j", min=1, help="Trace in N worker processes.")
    ] = 1,
    shard_spec: Annotated[
        str | None,
        typer.Option("--shard", metavar="I/N", help="Check only share I of N."),
    ] = None,
    width: Width = None,
    show_traceback: ShowTraceback = False,
) -> None:
    """Check that models trace and match their expectations (the CI command)."""

    def body() -> int:
        import time

        from qtrace_cli.check import (
            ModelCheck,
            checks_for_targets,
            github_annotations,
            parse_shard,
            run_checks,
            shard,
        )
        from qtrace_cli.output_file import check_writable, write_atomically
        from qtrace_cli.render.check_renderer import CheckPrinter

        junit_path = junit_xml.resolve() if junit_xml else None
        if junit_path is not None:
            check_writable(junit_path, "--junit-xml")
        shard_of = parse_shard(shard_spec) if shard_spec else None

        if targets:
            checks = checks_for_targets(
                targets,
                ModelCheck(
                    target="",
                    skip_names=tuple(skip_name),
                    skip_classes=tuple(skip_class),
                    init=init,
                    train=train,
                    concrete_args=tuple(concrete_arg),
                    baseline=baseline.resolve() if baseline else None,
                    expect_leaf=tuple(expect_leaf),
                    expect_traced=tuple(expect_traced),
                    max_nodes=max_nodes,
                ),
            )
        else:
            from qtrace_cli.config import find_config

            per_model = {
                "--skip-name": skip_name,
                "--skip-class": skip_class,
                "--init": init,
                "--train": train,
                "--concrete-arg": concrete_arg,
                "--baseline": baseline,
                "--expect-leaf": expect_leaf,
                "--expect-traced": expect_traced,
                "--max-nodes": max_nodes,
            }
            given = [flag for flag, value in per_model.items() if value]
            if given:
                raise UsageError(
                    f"{', '.join(given)}: these flags work only with TARGETs on "
                    "the command line; for the models in [tool.qtrace], set them "
                    "in each model's table (skip_names, baseline, ...) instead."
                )

            config = find_config()
            checks = config.checks
            # Targets in the table are named from the project's root, as they
            # would be by a `python -m` run there.
            os.chdir(config.root)
        if shard_of is not None:
            checks = shard(checks, *shard_of)

        printer = CheckPrinter(sys.stdout, width)
        started = time.perf_counter()
        results = run_checks(
            checks, update_baseline=update_baseline, jobs=jobs, on_result=printer.result
        )
        elapsed = time.perf_counter() - started
        printer.total(results, elapsed)
        if os.environ.get("GITHUB_ACTIONS") == "true":
            for line in github_annotations(results):
                print(line)
        if junit_path is not None:
            from qtrace_cli.junit import junit_xml as junit_text

            write_atomically(junit_path, junit_text(results, elapsed))
        return 0 if all(r.ok for r in results) else 1

    _guarded(show_traceback, body)


@app.command()
def diff(
    old: Annotated[
        str, typer.Argument(metavar="A", help="A JSON report file or a TARGET.")
    ],
    new: Annotated[
        str, typer.Argument(metavar="B", help="A JSON report file or a TARGET.")
    ],
    skip_name: SkipNames = [],  # noqa: B006
    skip_class: SkipClasses = [],  # noqa: B006
    init: Init = None,
    train: Train = False,
    concrete_arg: ConcreteArgs = [],  # noqa: B006
    output_format: TextFormat = TextOrJson.table,
    width: Width = None,
    show_traceback: ShowTraceback = False,
) -> None:
    """Compare two reports (JSON files or targets); exit 1 when they differ."""

    def body() -> int:
        import json

        from qtrace_cli.pipeline import TraceRequest, report_from
        from qtrace_cli.render.console import print_warnings

        request = TraceRequest(
            target="",
            skip_names=skip_name,
            skip_classes=skip_class,
            init=init,
            train=train,
            concrete_args=concrete_arg,
        )
        sides = []
        for text in (old, new):
            outcome = report_from(text, request)
            print_warnings(outcome.warnings)
            sides.append(outcome.report)

        from qtrace_cli.compare import compare_reports

        found = compare_reports(*sides)
        if output_format is TextOrJson.json:
            sys.stdout.write(json.dumps(found.to_dict(), indent=2) + "\n")
        else:
            from qtrace_cli.render.diff_renderer import print_diff

            print_diff(found, sys.stdout, width)
        return 0 if found.empty else 1

    _guarded(show_traceback, body)


def main() -> None:
    """Console-script entry point."""
    app(prog_name="qtrace")


__all__ = ["app", "main"]
