"""Tables for people: one printer for the terminal (rich, on stderr) and one for markdown reports.

Contract. A table is a header (column names) and rows (lists of strings, already formatted); the first
``left`` columns are left-aligned, the rest right-aligned (numbers). ``print_table`` draws it on stderr (or
``file``), with an optional last row in bold (a total) and notes printed under it; ``table_lines`` returns it as
markdown lines followed by a blank line. Nothing here formats numbers: each caller says how its values read.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[str]], *, file: Any = None,
                left: int = 1, bold_last: bool = False, notes: Sequence[str] = (), width: int | None = None) -> None:
    """Draw a table (and ``notes`` under it, rich markup allowed) on stderr, or on ``file``.

    Never cut: off a terminal (a log) the table is drawn at its full width; on a terminal narrower than the
    table, each row is printed as a block of ``column: value`` lines instead, so no cell is cut or wrapped.
    ``width`` stands for the terminal's (tests)."""
    from rich.console import Console
    from rich.measure import Measurement
    from rich.table import Table

    table = Table(title=title)
    for i, column in enumerate(header):
        table.add_column(column, justify="left" if i < left else "right", no_wrap=True)
    for i, row in enumerate(rows):
        table.add_row(*row, style="bold" if bold_last and i == len(rows) - 1 else None)
    out = file if file is not None else sys.stderr
    console = Console(file=out, width=width) if width is not None else Console(file=out)
    natural = Measurement.get(console, console.options.update(width=10_000), table).maximum
    terminal = console.is_terminal or width is not None
    if natural > console.width and terminal:
        console.print(f"[bold]{title}[/bold]" if title else "")
        for i, row in enumerate(rows):
            style = "bold" if bold_last and i == len(rows) - 1 else None
            console.print(" ".join(row[:left]), style=style or "bold")
            for column, value in list(zip(header, row, strict=False))[left:]:
                console.print(f"  {column}: {value}", style=style, soft_wrap=True)
    else:
        if natural > console.width:
            console = Console(file=out, width=natural)
        console.print(table)
    for note in notes:
        console.print(note)


def table_lines(header: Sequence[str], rows: Sequence[Sequence[str]], right_from: int = 1) -> list[str]:
    """A markdown table (columns from ``right_from`` on right-aligned), then a blank line."""
    align = ["---" if i < right_from else "---:" for i in range(len(header))]
    return ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |",
            *["| " + " | ".join(r) + " |" for r in rows], ""]
