"""Progress on stderr: a labelled rich bar on a terminal, plain lines every so often elsewhere.

The rate and the time left come from one estimate, so they always agree: the work done by this process divided by
the time it has run (work a resumed stage found already done is counted in the total, never in the rate). Stages
that advance in large steps (the chain advances a whole chain step at once) would make a short-window estimate
swing between extremes; the average since the start does not.

When stderr is not a terminal (a log file, CI), a plain line is printed every ``GIFTGEN_PROGRESS_EVERY`` seconds
(default 30; 0 turns the periodic lines off), and a summary line when the stage ends, so a long stage never goes
silent in a log.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

DEFAULT_EVERY_S = 30.0


def log(message: str) -> None:
    """Talk goes to stderr; stdout is for records."""
    print(message, file=sys.stderr, flush=True)


def format_duration(seconds: float) -> str:
    """``h:mm:ss`` (``-:--:--`` when unknown)."""
    if seconds != seconds or seconds < 0 or seconds == float("inf"):
        return "-:--:--"
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _every_from_env() -> float:
    raw = os.environ.get("GIFTGEN_PROGRESS_EVERY", "")
    try:
        value = float(raw) if raw else DEFAULT_EVERY_S
    except ValueError:
        return DEFAULT_EVERY_S
    return value if value >= 0 and value == value else DEFAULT_EVERY_S


class Progress:
    """Count rows through a stage. ``with Progress("verify", total) as p: ... p.advance()``.

    ``skip(n)`` counts work found already done (a resume): it moves the count, not the rate.
    """

    def __init__(self, stage: str, total: int | None = None, unit: str = "rows", quiet: bool = False,
                 every: float | None = None, clock: Callable[[], float] = time.perf_counter,
                 terminal: bool | None = None):
        self.stage = stage
        self.total = total
        self.unit = unit
        self.quiet = quiet
        self.count = 0
        self.skipped = 0
        self.every = _every_from_env() if every is None else every
        self._clock = clock
        self._terminal = sys.stderr.isatty() if terminal is None else terminal
        self.start = clock()
        self._last_line = self.start
        self._bar = None
        self._task = None
        self.extra = ""

    # -- the one estimate --------------------------------------------------------------------------------------
    def elapsed(self) -> float:
        return self._clock() - self.start

    def rate(self) -> float:
        """Work done by this process per second since it started (0 before any)."""
        elapsed = self.elapsed()
        done = self.count - self.skipped
        return done / elapsed if elapsed > 0 and done > 0 else 0.0

    def remaining(self) -> float:
        """Seconds left at the current rate (inf when unknown: no total or no work done yet)."""
        if self.total is None:
            return float("inf")
        rate = self.rate()
        return max(self.total - self.count, 0) / rate if rate > 0 else float("inf")

    def status(self) -> str:
        """One plain line: ``chain: 40/512 problem-steps, 1.3 problem-steps/s, elapsed 0:00:30, left 0:06:03``."""
        done = f"{self.count}/{self.total}" if self.total is not None else str(self.count)
        parts = [f"{self.stage}: {done} {self.unit}", f"{self.rate():.2f} {self.unit}/s",
                 f"elapsed {format_duration(self.elapsed())}"]
        if self.total is not None:
            parts.append(f"left {format_duration(self.remaining())}")
        return ", ".join(parts)

    # -- display -----------------------------------------------------------------------------------------------
    def __enter__(self) -> Progress:
        if not self.quiet and self._terminal:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(
                TextColumn(f"[bold]{self.stage}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn(self.unit),
                TextColumn("{task.fields[rate]}"),
                TextColumn("elapsed {task.fields[elapsed]}"),
                TextColumn("left {task.fields[left]}"),
                console=Console(file=sys.stderr),
                transient=False,
            )
            self._bar.__enter__()
            self._task = self._bar.add_task(self.stage, total=self.total, **self._fields())
        return self

    def _fields(self) -> dict[str, str]:
        return {"rate": f"{self.rate():.2f} {self.unit}/s", "elapsed": format_duration(self.elapsed()),
                "left": format_duration(self.remaining())}

    def skip(self, n: int) -> None:
        """Count ``n`` units that a resumed stage found already done."""
        self.skipped += n
        self.advance(n)

    def advance(self, n: int = 1) -> None:
        self.count += n
        if self._bar is not None:
            self._bar.update(self._task, completed=self.count, **self._fields())
        elif not self.quiet and self.every > 0:
            now = self._clock()
            if now - self._last_line >= self.every:
                self._last_line = now
                log(self.status())

    def track(self, items: Iterable[T]) -> Iterator[T]:
        for item in items:
            yield item
            self.advance()

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._bar is not None:
            self._bar.__exit__(exc_type, exc, tb)
        if exc_type is None and not self.quiet:
            elapsed = self.elapsed()
            rate = (self.count - self.skipped) / elapsed if elapsed > 0 else 0.0
            extra = f", {self.extra}" if self.extra else ""
            resumed = f" ({self.skipped} found done)" if self.skipped else ""
            log(f"{self.stage}: {self.count} {self.unit}{resumed} in {elapsed:.1f}s ({rate:.1f} {self.unit}/s){extra}")
