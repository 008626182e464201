"""Progress on stderr: a rich bar when stderr is a terminal, else one summary line when the stage ends."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def log(message: str) -> None:
    """Talk goes to stderr; stdout is for records."""
    print(message, file=sys.stderr, flush=True)


class Progress:
    """Count rows through a stage. ``with Progress("verify", total) as p: ... p.advance()``."""

    def __init__(self, stage: str, total: int | None = None, unit: str = "rows", quiet: bool = False):
        self.stage = stage
        self.total = total
        self.unit = unit
        self.quiet = quiet
        self.count = 0
        self.start = time.perf_counter()
        self._bar = None
        self._task = None
        self.extra = ""

    def __enter__(self) -> Progress:
        if not self.quiet and sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(
                TextColumn(f"[bold]{self.stage}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=Console(file=sys.stderr),
                transient=False,
            )
            self._bar.__enter__()
            self._task = self._bar.add_task(self.stage, total=self.total, rate="")
        return self

    def advance(self, n: int = 1) -> None:
        self.count += n
        if self._bar is not None:
            elapsed = time.perf_counter() - self.start
            rate = f"{self.count / elapsed:.1f} {self.unit}/s" if elapsed > 0 else ""
            self._bar.update(self._task, advance=n, rate=rate)

    def track(self, items: Iterable[T]) -> Iterator[T]:
        for item in items:
            yield item
            self.advance()

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._bar is not None:
            self._bar.__exit__(exc_type, exc, tb)
        if exc_type is None and not self.quiet:
            elapsed = time.perf_counter() - self.start
            rate = self.count / elapsed if elapsed > 0 else 0.0
            extra = f", {self.extra}" if self.extra else ""
            log(f"{self.stage}: {self.count} {self.unit} in {elapsed:.1f}s ({rate:.1f} {self.unit}/s){extra}")
