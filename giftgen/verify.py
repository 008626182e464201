"""`giftgen verify`: run each row's `code` against its problem's tests in the sandbox; add the verdict.

Contract. ``verify_rows(rows, config, stats)`` reads rows with the seed columns plus ``code`` (checked with
``records.require``: ``code``, ``tests``, ``entry_point``; ``reference`` too when the tests need it) and yields
them in input order with ``status`` (one of ``giftgen.sandbox.STATUSES``), ``passed``, ``test_results`` (one
``{status, detail}`` per test), ``error`` and ``duration`` added; every other column passes through. Rows stream:
at most a few per worker are held at a time, so a million rows verify in constant memory. ``--keep passed``
writes only the rows that passed. A ``sandbox_error`` (the infrastructure failed, not the program) has already
been retried by the executor; it is counted in ``stats`` and the command ends with an error after writing
everything else, so it is never dropped silently.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from giftgen.config import command_config, sandbox_settings, setting
from giftgen.errors import GiftgenError, InputError
from giftgen.progress import Progress
from giftgen.records import require


@command_config("verify")
class VerifyConfig(sandbox_settings(tests="all", timeout=6.0, limits=True)):
    keep: str = setting("all", "Rows to write: all, or only those that passed.", choices=("all", "passed"))

    def validate(self) -> None:
        self.validate_sandbox()


# What `verify` reads from each row, with the types it accepts.
COLUMNS: dict[str, type | tuple[type, ...]] = {"code": str, "tests": (str, dict), "entry_point": (str, type(None))}


@dataclass
class VerifyStats:
    """Counts of one run: rows read, rows written, and verdicts by status."""

    rows: int = 0
    written: int = 0
    statuses: Counter = field(default_factory=Counter)
    sandbox_error_rows: list[int] = field(default_factory=list)  # 1-based row numbers, the first 20

    @property
    def sandbox_errors(self) -> int:
        return self.statuses["sandbox_error"]

    def summary(self) -> str:
        passed = self.statuses["pass"]
        parts = [f"{passed}/{self.rows} passed"]
        parts += [f"{n} {s}" for s, n in sorted(self.statuses.items()) if s != "pass"]
        return ", ".join(parts)


def verify_rows(rows: Iterable[dict[str, Any]], config: VerifyConfig, stats: VerifyStats | None = None,
                executor: Any = None) -> Iterator[dict[str, Any]]:
    """Verify ``rows`` in the sandbox; yield them (or, with ``keep="passed"``, those that passed) with the
    verdict columns, in input order. ``executor`` defaults to a ``giftgen.sandbox.Executor`` for ``config``."""
    stats = stats if stats is not None else VerifyStats()
    owned = executor is None
    if owned:
        executor = config.executor()
    try:
        waiting: deque[dict[str, Any]] = deque()  # rows submitted, in order, whose verdicts are not yet out

        def jobs() -> Iterator[tuple[str, Any]]:
            for index, row in enumerate(rows, start=1):
                require(row, COLUMNS, index, "verify")
                try:
                    plan = executor.plan(row)
                except InputError as e:
                    raise InputError(f"`giftgen verify`: row {index}: {e}") from None
                waiting.append(row)
                stats.rows += 1
                yield row["code"], plan

        # a bounded number in flight; a slow program delays the output's order, not the other workers
        for verdict in executor.map(jobs()):
            yield from _emit(waiting.popleft(), verdict, config, stats)
    finally:
        if owned:
            executor.close(cancel=True)  # nothing is pending after a full run; after `| head`, stop at once


def _emit(row: dict[str, Any], verdict: Any, config: VerifyConfig, stats: VerifyStats) -> Iterator[dict[str, Any]]:
    stats.statuses[verdict.status] += 1
    if verdict.status == "sandbox_error" and len(stats.sandbox_error_rows) < 20:
        stats.sandbox_error_rows.append(sum(stats.statuses.values()))  # rows are judged in input order
    if config.keep == "passed" and not verdict.passed:
        return
    out = dict(row)
    out.update(verdict.to_columns())
    stats.written += 1
    yield out


def check_sandbox_errors(stats: VerifyStats) -> None:
    """Raise when programs met sandbox errors after retries: infrastructure, not wrong code (no result is final)."""
    if stats.sandbox_errors:
        where = ", ".join(map(str, stats.sandbox_error_rows)) + (", ..." if stats.sandbox_errors > 20 else "")
        raise GiftgenError(f"{stats.sandbox_errors} of {stats.rows} programs met sandbox errors after retries "
                           f"(rows {where}); the sandbox failed, not the programs",
                           hint="see the `error` column of those rows (written with --keep all), then verify them "
                                "again (a run: rerun the same command)")


def verify_into(rows: Iterable[dict[str, Any]], config: VerifyConfig,
                write: Callable[[Iterable[dict[str, Any]]], Any]) -> VerifyStats:
    """Verify ``rows`` with progress on stderr and hand the verified rows to ``write``, which consumes them; then
    raise (``check_sandbox_errors``) if any program met a sandbox error, once every row is written. What `giftgen
    verify` and `giftgen run`'s verify job both call."""
    stats = VerifyStats()
    with Progress("verify") as progress:
        write(progress.track(verify_rows(rows, config, stats)))
        progress.extra = stats.summary()
    check_sandbox_errors(stats)
    return stats
