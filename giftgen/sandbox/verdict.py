"""The sandbox's public values: the status vocabulary, per-program limits and the verdict.

Contract. ``STATUSES`` is closed: every verdict has one of them. ``sandbox_error`` means the infrastructure
failed (never the program): it is retried and never counted as a pass or a plain failure. Per-test results are
dicts ``{"status", "detail"}`` whose status is a verdict status or ``not_run`` (a test after a fatal failure, or
whose expected output the reference could not produce).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from giftgen.errors import ConfigError

STATUSES = ("pass", "wrong_answer", "runtime_error", "timeout", "memory_limit", "output_limit", "syntax_error",
            "sandbox_error")
ERROR_CAP = 2000  # characters kept of an error message
# The largest program judged (UTF-8 bytes). Compiling Python source takes some 120 bytes of memory and a second of
# CPU per byte-MiB, so a larger one could not be compiled within the default limits; it is not run, and its
# verdict is memory_limit with every test not_run.
MIN_TIMEOUT = 0.01  # seconds: the shortest per-test or per-program limit (a program's start takes longer)
MAX_PROGRAM_BYTES = 2 << 20


@dataclass(frozen=True)
class Limits:
    """Per-program limits. Times are wall-clock seconds; each process's CPU limit follows from them.

    The reference release allowed 10 s per MBPP program (three asserts) and 5 s per APPS program (ten tests); here
    each test gets ``timeout`` and the whole program ``program_timeout``.
    """

    timeout: float = 6.0  # per test (one call, assert, check function or stdin case), and for loading
    program_timeout: float = 30.0  # all tests of one program together
    memory_mb: int = 1024  # address space of each process
    output_mb: int = 8  # stdout, stderr, and each file the program writes
    disk_mb: int = 32  # the scratch directory (a tmpfs)
    stack_mb: int = 64  # main-thread stack, for deep recursion
    max_threads: int = 64
    max_files: int = 256  # open file descriptors

    def validate(self) -> None:
        if not (MIN_TIMEOUT <= self.timeout < 1e6 and MIN_TIMEOUT <= self.program_timeout < 1e6):  # nan, inf too
            raise ConfigError(f"timeout and program_timeout must be finite seconds from {MIN_TIMEOUT} to under 1e6")
        if self.memory_mb < 128:
            raise ConfigError("memory_mb must be at least 128 (the interpreter itself needs some)")
        if min(self.output_mb, self.disk_mb, self.stack_mb, self.max_threads, self.max_files) < 1:
            raise ConfigError("output_mb, disk_mb, stack_mb, max_threads and max_files must be at least 1")
        if self.max_files < 16:
            raise ConfigError("max_files must be at least 16")
        # The parent holds a program's reply (up to output_mb) and its output in memory: a bound, not a formality.
        for name, value, most in (("memory_mb", self.memory_mb, 1 << 20), ("output_mb", self.output_mb, 1024),
                                  ("disk_mb", self.disk_mb, 1 << 16), ("stack_mb", self.stack_mb, 1 << 16),
                                  ("max_threads", self.max_threads, 1 << 16), ("max_files", self.max_files, 1 << 16)):
            if value > most:
                raise ConfigError(f"{name} must be at most {most}, got {value}")


@dataclass
class Verdict:
    """The judgement of one program: ``status`` (one of ``STATUSES``), ``passed``, per-test results, the first
    error (capped) and the wall time it took, retries included."""

    status: str
    passed: bool
    tests: list[dict[str, str]] = field(default_factory=list)
    error: str | None = None
    duration: float = 0.0

    def to_columns(self) -> dict[str, Any]:
        """Row columns: ``status``, ``passed``, ``test_results`` (uniform ``{status, detail}`` dicts of strings),
        ``error`` ("" when none) and ``duration`` (seconds)."""
        return {
            "status": self.status,
            "passed": self.passed,
            "test_results": [{"status": t.get("status", ""), "detail": t.get("detail") or ""} for t in self.tests],
            "error": self.error or "",
            "duration": round(self.duration, 4),
        }


def format_error(info: Any, prefix: str) -> str:
    """An exception report from a child ({type, msg, tb}) as one capped string."""
    info = info if isinstance(info, dict) else {}
    kind = str(info.get("type") or "error")
    msg = str(info.get("msg") or "")
    tb = str(info.get("tb") or "")
    text = f"{prefix} {kind}" + (f": {msg}" if msg else "")
    if tb.strip():
        text += "\n" + tb.rstrip()
    return text[:ERROR_CAP]
