"""``qtrace check`` output: one line per model, then a total."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TextIO

from qtrace_cli.check import CheckResult
from qtrace_cli.render.diff_renderer import diff_lines
from qtrace_cli.render.table_renderer import make_console, table_colours, table_width


class CheckPrinter:
    """Prints each result as it arrives, and the total at the end."""

    def __init__(self, out: TextIO, width: int | None = None) -> None:
        self.out = out
        console = make_console(out)
        self.width = table_width(console, width)
        self.colours = table_colours(console)
        self.console = make_console(out, self.width)

    def result(self, result: CheckResult) -> None:
        """One line for the model; a failing model adds its problems and diff."""
        label = result.check.label
        timing = f"{result.nodes} nodes  {result.seconds:.2f} s"
        if result.ok:
            extra = "  (baseline written)" if result.baseline_written else ""
            self.console.print(
                f"[bold green]PASS[/]  {label}  {timing}{extra}", highlight=False
            )
            return
        self.console.print(f"[bold red]FAIL[/]  {label}  {timing}", highlight=False)
        for problem in result.problems:
            self.console.print(f"      {problem}", markup=False, highlight=False)
        if result.diff is not None:
            self.out.write("\n".join(diff_lines(result.diff, self.width, self.colours)))
            self.out.write("\n")
        self.out.flush()

    def total(self, results: Sequence[CheckResult], seconds: float) -> None:
        """``N passed, M failed in S s``."""
        failed = sum(not r.ok for r in results)
        passed = len(results) - failed
        style = "bold red" if failed else "bold green"
        self.console.print(
            f"[{style}]{passed} passed, {failed} failed[/] in {seconds:.2f} s",
            highlight=False,
        )
