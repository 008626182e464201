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
                left: int = 1, bold_last: bool = False, notes: Sequence[str] = ()) -> None:
    """Draw a table (and ``notes`` under it, rich markup allowed) on stderr, or on ``file``."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for i, column in enumerate(header):
        table.add_column(column, justify="left" if i < left else "right")
    for i, row in enumerate(rows):
        table.add_row(*row, style="bold" if bold_last and i == len(rows) - 1 else None)
    console = Console(file=file if file is not None else sys.stderr)
    console.print(table)
    for note in notes:
        console.print(note)


def table_lines(header: Sequence[str], rows: Sequence[Sequence[str]], right_from: int = 1) -> list[str]:
    """A markdown table (columns from ``right_from`` on right-aligned), then a blank line."""
    align = ["---" if i < right_from else "---:" for i in range(len(header))]
    return ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |",
            *["| " + " | ".join(r) + " |" for r in rows], ""]
