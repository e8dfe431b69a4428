"""How ``qtrace suggest`` prints its answer."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from rich.console import Console

from qtrace_cli.naming import qualified_name, short_name
from qtrace_cli.render.grid import Column, render_grid
from qtrace_cli.render.table_renderer import make_console, table_colours, table_width
from qtrace_cli.render.words import location_words
from qtrace_cli.suggest import Progress, Suggestion


def render_suggestion(
    suggestion: Suggestion, output_format: str, out: TextIO, width: int | None = None
) -> None:
    """Write the suggestion as text (tables and snippets) or as JSON."""
    if output_format == "json":
        json.dump(suggestion.to_dict(), out, indent=2)
        out.write("\n")
        return

    console = make_console(out)
    width = table_width(console, width)
    colours = table_colours(console)
    if suggestion.failures:
        rows = [
            [
                f.module_path or "(root)",
                short_name(f.module_type),
                short_name(f.type),
                f.message,
                location_words(f.location),
            ]
            for f in suggestion.failures
        ]
        columns = [
            Column("module", min_width=8),
            Column("class", min_width=6),
            Column("exception", min_width=9),
            Column("message", min_width=12),
            Column("source", min_width=12, detail=True),
        ]
        out.write(
            "\n".join(render_grid("failures found", columns, rows, width, colours))
        )
        out.write("\n")

    text = make_console(out, width)
    if not suggestion.ok:
        text.print("[bold red]No skip list makes this model trace.[/]")
        if suggestion.hint:
            text.print(suggestion.hint, markup=False)
    elif not suggestion.failures:
        text.print("[bold green]The model traces as it is; nothing to skip.[/]")
    else:
        text.print("[bold green]Skip these to make the model trace:[/]\n")
        # Ready to paste: never wrapped, whatever the width.
        out.write("  " + " ".join(answer_flags(suggestion)) + "\n")
        text.print("\nor, for prepare_fx:\n")
        out.write(prepare_custom_config_snippet(suggestion) + "\n")
        if suggestion.costs:
            text.print("\n[bold]What stays in float:[/]")
            for cost in suggestion.costs:
                inner = ", ".join(
                    f"{n} {cls}" for cls, n in sorted(cost.inner_modules.items())
                )
                count = f"{cost.modules} module{'s' if cost.modules != 1 else ''}"
                ops = (
                    f"; at least {cost.ops_seen} operation"
                    f"{'s' if cost.ops_seen != 1 else ''} inside"
                    if cost.ops_seen
                    else ""
                )
                text.print(
                    f"  {cost.entry}: {count}"
                    + (f", containing {inner}" if inner else "")
                    + ops,
                    markup=False,
                    soft_wrap=True,
                )
    text.print(
        f"\n{suggestion.traces} trace{'s' if suggestion.traces != 1 else ''} in "
        f"{suggestion.seconds:.2f} s",
        style="dim",
    )


def answer_flags(suggestion: Suggestion) -> list[str]:
    """The answer as flags to paste after ``qtrace show``."""
    flags = [f"--skip-name {name}" for name in suggestion.skip_names]
    flags += [f"--skip-class {qualified_name(cls)}" for cls in suggestion.skip_classes]
    return flags


def prepare_custom_config_snippet(suggestion: Suggestion) -> str:
    """Python that builds the same skips as a ``PrepareCustomConfig``."""
    lines = ["from torch.ao.quantization.fx.custom_config import PrepareCustomConfig"]
    for cls in suggestion.skip_classes:
        lines.append(f"from {cls.__module__} import {cls.__qualname__.split('.')[0]}")
    lines.append("")
    lines.append("prepare_custom_config = (")
    lines.append("    PrepareCustomConfig()")
    if suggestion.skip_names:
        names = json.dumps(suggestion.skip_names)
        lines.append(f"    .set_non_traceable_module_names({names})")
    if suggestion.skip_classes:
        classes = ", ".join(cls.__qualname__ for cls in suggestion.skip_classes)
        lines.append(f"    .set_non_traceable_module_classes([{classes}])")
    lines.append(")")
    return "\n".join(lines)


@contextmanager
def progress_on_stderr() -> Iterator[Progress | None]:
    """A spinner on stderr while the search runs; nothing when stderr is not a
    terminal."""
    console = Console(stderr=True)
    if not console.is_terminal:
        yield None
        return
    with console.status("tracing") as status:

        def update(done: int, what: str) -> None:
            status.update(f"trace {done + 1}: {what}")

        yield update
