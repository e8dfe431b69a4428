"""A plain-text table in the look of rich's ``SIMPLE_HEAD`` box, built fast.

rich measures every cell of every row to lay a table out, which costs about a
third of a millisecond per row: seconds for a graph of ten thousand nodes. This
grid measures each column once (the longest cell), fits the columns to the
width by shrinking the widest, then wraps or cuts each cell with plain string
operations. Colour is applied per cell from a style name when the console has
colour, through rich's own style rendering.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache

from rich.style import Style

_GAP = 2
_MARGIN = 1


@dataclass(frozen=True)
class Column:
    """One column: its header and how its cells behave when too long."""

    header: str
    wrap: bool = True
    """Wrap long cells over several lines; otherwise cut them with an ellipsis."""
    right: bool = False
    """Right-justify (numbers)."""
    min_width: int = 4
    detail: bool = False
    """When the table is too wide, show this cell on a line of its own under
    the row instead of in a column."""


Styler = Callable[[int, str], str | None]
"""Given a column index and a cell, the rich style name to draw it in."""


def render_grid(
    title: str,
    columns: Sequence[Column],
    rows: Sequence[Sequence[str]],
    width: int,
    color_system: str | None = None,
    styler: Styler | None = None,
) -> Iterator[str]:
    """Yield the lines of the table, each at most ``width`` characters wide."""
    paint = _painter(color_system)
    natural = _natural_widths(columns, rows)
    inline = list(range(len(columns)))
    detail: list[int] = []
    if _total(natural) > width and any(c.detail for c in columns):
        inline = [i for i, c in enumerate(columns) if not c.detail]
        detail = [i for i, c in enumerate(columns) if c.detail]
    shown = [columns[i] for i in inline]
    widths = _fit(shown, [natural[i] for i in inline], width)
    indent = " " * min(_MARGIN + widths[0] + _GAP, width // 2)
    room = width - len(indent)

    yield paint(title, "bold")
    yield ""
    header = [_pad(_cut(c.header, w), w, c.right) for c, w in zip(shown, widths)]
    yield _line([paint(h, "bold") for h in header])
    if detail:
        names = " ".join(columns[i].header for i in detail)
        yield indent + paint(_cut(names, room), "bold")
    yield " " + "─" * (min(_total(widths), width) - 2)
    for row in rows:
        cells = [
            _cell_lines(row[i], col, w) for i, col, w in zip(inline, shown, widths)
        ]
        height = max(len(lines) for lines in cells)
        for line_index in range(height):
            parts = []
            for position, (lines, col, w) in enumerate(zip(cells, shown, widths)):
                piece = lines[line_index] if line_index < len(lines) else ""
                padded = _pad(piece, w, col.right)
                style = styler(inline[position], piece) if styler and piece else None
                parts.append(paint(padded, style) if style else padded)
            yield _line(parts)
        if detail:
            extra = "  ".join(row[i] for i in detail if row[i])
            if extra:
                yield indent + paint(_cut(extra, room), "dim")
    yield ""


def _natural_widths(
    columns: Sequence[Column], rows: Sequence[Sequence[str]]
) -> list[int]:
    natural = [len(c.header) for c in columns]
    for row in rows:
        for index, text in enumerate(row):
            if len(text) > natural[index]:
                natural[index] = len(text)
    return natural


def _total(widths: Sequence[int]) -> int:
    return sum(widths) + _GAP * (len(widths) - 1) + 2 * _MARGIN


def _line(parts: list[str]) -> str:
    return (" " * _MARGIN + (" " * _GAP).join(parts)).rstrip()


def _pad(text: str, width: int, right: bool) -> str:
    return text.rjust(width) if right else text.ljust(width)


def _fit(columns: Sequence[Column], natural: list[int], width: int) -> list[int]:
    widths = list(natural)
    budget = width - _GAP * (len(columns) - 1) - 2 * _MARGIN
    floor = [min(n, max(c.min_width, 1)) for c, n in zip(columns, natural)]
    while sum(widths) > budget:
        # Shrink the widest column that can still give way, down to the next
        # widest or just enough to fit.
        candidates = [i for i, w in enumerate(widths) if w > floor[i]]
        if not candidates:
            break
        widest = max(candidates, key=lambda i: widths[i])
        others = [widths[i] for i in candidates if i != widest]
        excess = sum(widths) - budget
        goal = max(max(others, default=0), widths[widest] - excess)
        widths[widest] = max(floor[widest], min(widths[widest] - 1, goal))
    # Still too wide for the columns' preferred minimums: give those up too,
    # widest first, rather than overflow the width.
    while sum(widths) > budget and max(widths) > 1:
        widest = max(range(len(widths)), key=lambda i: widths[i])
        widths[widest] -= 1
    return widths


def _cut(text: str, width: int) -> str:
    """``text`` cut to ``width`` with an ellipsis when longer."""
    if len(text) <= width:
        return text
    return text[: max(width - 1, 0)] + "…" if width > 0 else ""


def _cell_lines(text: str, column: Column, width: int) -> list[str]:
    if len(text) <= width:
        return [text]
    if not column.wrap:
        return [_cut(text, width)]
    return wrap(text, width)


def wrap(text: str, width: int) -> list[str]:
    """Break ``text`` into lines of at most ``width``, preferring to break after
    a space, a comma or a dot, and cutting words longer than the width."""
    lines = []
    rest = text
    while len(rest) > width:
        cut = max(
            rest.rfind(" ", 1, width + 1),
            rest.rfind(",", 1, width),
            rest.rfind(".", 1, width),
        )
        if cut <= 0:
            cut = width
        elif rest[cut] != " ":
            cut += 1
        lines.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest or not lines:
        lines.append(rest)
    return lines


def _painter(color_system: str | None) -> Callable[[str, str | None], str]:
    if color_system is None:
        return lambda text, style: text
    return lambda text, style: _ansi(style, color_system)(text) if style else text


@cache
def _ansi(style: str, color_system: str) -> Callable[[str], str]:
    from rich.color import ColorSystem

    system = {
        "standard": ColorSystem.STANDARD,
        "256": ColorSystem.EIGHT_BIT,
        "truecolor": ColorSystem.TRUECOLOR,
        "windows": ColorSystem.WINDOWS,
    }.get(color_system, ColorSystem.STANDARD)
    sample = Style.parse(style).render("\0", color_system=system)
    before, _, after = sample.partition("\0")
    return lambda text: f"{before}{text}{after}"
