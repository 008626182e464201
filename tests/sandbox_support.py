"""Helpers for the sandbox tests: seed rows of the benchmark files (through giftgen.seeds), canaries, a loopback
listener, and the process-table check for leftovers."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from giftgen.sandbox.zygote import UID_BASE

# ------------------------------------------------------------------------------------------------ benchmark rows


def _rows(source: str, path: Path, split: str | None) -> Iterator[tuple[str, dict[str, Any]]]:
    from giftgen.seeds import load_seeds

    for row in load_seeds(source, str(path), split):
        yield row["reference"], row


def mbpp_rows(data: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """(reference solution, seed row) for each of the 427 sanitized MBPP problems (every split)."""
    return _rows("mbpp", data / "mbpp-sanitized.json", "all")


def mbppplus_rows(data: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """(reference, seed row) for each of the 399 MBPP+ problems: base and plus inputs, outputs from the reference."""
    return _rows("mbppplus", data / "mbppplus-v0.1.0.jsonl", None)


def humaneval_rows(data: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """(prompt + canonical solution, seed row) for each of the 164 HumanEval problems."""
    return _rows("humaneval", data / "HumanEval.jsonl.gz", None)


# ------------------------------------------------------------------------------------------------ process table


def _status(pid: str) -> dict[str, str]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.split()[0] if value.split() else ""
    return fields


def _descends_from_us(pid: str) -> bool:
    me = str(os.getpid())
    for _ in range(64):
        try:
            pid = _status(pid)["PPid"]
        except (OSError, KeyError):
            return False
        if pid == me:
            return True
        if pid in ("0", "1"):
            return False
    return False


def sandbox_processes(waiting: set[int] | frozenset[int] = frozenset(), uids: set[int] | None = None) -> list[str]:
    """Processes running as a sandbox uid that this test process started (its descendants, or those running as
    one of ``uids``, for children whose zygote was killed), but for the ``waiting`` ones
    (``Executor.waiting_processes()``: children forked ahead for the next program). Other sessions may run
    sandboxes of their own on this machine at the same time: theirs are not ours to count."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in waiting:
            continue
        try:
            uid = int(_status(entry)["Uid"])
        except (OSError, KeyError, ValueError):
            continue
        if UID_BASE <= uid < UID_BASE + 2 * (1 << 23) and ((uids and uid in uids) or _descends_from_us(entry)):
            found.append(f"{entry} (uid {uid})")
    return found


def no_leftovers(executor: Any = None, timeout: float = 2.0, uids: set[int] | None = None) -> bool:
    """No sandbox process of ours but those ``executor`` keeps waiting for its next programs (none once closed)."""
    deadline = time.monotonic() + timeout
    while sandbox_processes(executor.waiting_processes() if executor is not None else frozenset(), uids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


# ------------------------------------------------------------------------------------------------ canaries


class Canaries:
    """Files outside the sandbox that programs will try to change; ``intact()`` compares content and mtime."""

    def __init__(self, *dirs: Path):
        self.files = []
        for i, d in enumerate(dirs):
            d.mkdir(parents=True, exist_ok=True)
            path = d / f"canary-{i}.txt"
            path.write_text(f"canary {i}\n")
            self.files.append(path)
        self.snapshot = self._state()

    def _state(self) -> list[tuple[str, str, int]]:
        return [(str(p), p.read_text() if p.exists() else "<gone>", p.stat().st_mtime_ns if p.exists() else 0)
                for p in self.files]

    def intact(self) -> bool:
        return self._state() == self.snapshot


# ------------------------------------------------------------------------------------------------ network


class Listener:
    """A loopback TCP listener and an abstract unix socket; counts connections made to either."""

    def __init__(self) -> None:
        self.connections = 0
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.bind(("127.0.0.1", 0))
        self.tcp.listen()
        self.port = self.tcp.getsockname()[1]
        self.abstract = f"\0giftgen-test-{os.getpid()}"
        self.unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.unix.bind(self.abstract)
        self.unix.listen()
        self._stop = False
        self._threads = [threading.Thread(target=self._accept, args=(s,), daemon=True) for s in (self.tcp, self.unix)]
        for t in self._threads:
            t.start()

    def _accept(self, sock: socket.socket) -> None:
        sock.settimeout(0.2)
        while not self._stop:
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop = True
        for t in self._threads:
            t.join()
        self.tcp.close()
        self.unix.close()
