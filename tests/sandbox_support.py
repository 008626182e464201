"""Helpers for the sandbox tests: problems built from the benchmark files, canaries, a loopback listener, and the
process-table check for leftovers. (Built here rather than with giftgen.seeds so the sandbox tests do not depend
on the seed loaders.)"""

from __future__ import annotations

import ast
import builtins
import gzip
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from giftgen.sandbox.zygote import UID_BASE

# ------------------------------------------------------------------------------------------------ benchmark rows


def mbpp_rows(data: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """(reference code, seed-like row) for each sanitized MBPP problem."""
    for r in json.loads((data / "mbpp-sanitized.json").read_text()):
        test = ast.parse(r["test_list"][0]).body[0].test
        called = [n.func.id for n in ast.walk(test) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)]
        entry = next((c for c in called if not hasattr(builtins, c)), called[0])  # task 126 defines `sum`
        tests = {"kind": "assert", "setup": "\n".join(r["test_imports"]), "asserts": r["test_list"]}
        yield r["code"], {"problem_id": f"mbpp/{r['task_id']}", "entry_point": entry, "reference": r["code"],
                          "tests": json.dumps(tests)}


def humaneval_rows(data: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    with gzip.open(data / "HumanEval.jsonl.gz", "rt") as f:
        for line in f:
            r = json.loads(line)
            code = r["prompt"] + r["canonical_solution"]
            tests = {"kind": "check", "code": r["test"], "entry_point": r["entry_point"]}
            yield code, {"problem_id": r["task_id"], "entry_point": r["entry_point"], "reference": code,
                         "tests": json.dumps(tests)}


# EvalPlus stores MBPP+ inputs as JSON, which has no tuples, sets or complex numbers; its loader restores them
# per task (evalplus/data/mbpp.py, mbpp_deserialize_inputs). The same restoration, as a table of shapes.
def _tup(x: Any) -> Any:
    return tuple(_tup(i) for i in x) if isinstance(x, list) else x


_SHAPES: dict[int, Any] = {}
for _ids, _fn in [
    ((2, 116, 132, 143, 222, 261, 273, 394, 399, 421, 424, 429, 470, 560, 579, 596, 616, 630, 726, 740, 744, 809),
     lambda a: [tuple(x) for x in a]),
    ((63, 64, 70, 94, 120, 237, 272, 299, 400, 409, 417, 438, 473, 614, 780),
     lambda a: [[tuple(y) for y in x] for x in a]),
    ((75, 413, 444, 753), lambda a: [[tuple(y) for y in a[0]], a[1]]),
    ((106, 750), lambda a: [a[0], tuple(a[1])]),
    ((115,), lambda a: [[set(i) if isinstance(i, list) and i else {} for i in a[0]]]),
    ((124,), lambda a: [float(a[0]), complex(a[1])]),
    ((250, 405, 446, 617, 720, 763, 808), lambda a: [tuple(a[0]), a[1]]),
    ((259, 401, 445), lambda a: [tuple(tuple(y) for y in x) for x in a]),
    ((278,), lambda a: [tuple(tuple(i) if isinstance(i, list) else i for i in a[0])]),
    ((307,), lambda a: [tuple(a[0]), a[1], a[2]]),
    ((722,), lambda a: [{k: tuple(v) for k, v in a[0].items()}, *a[1:]]),
    ((252,), lambda a: [complex(a[0])]),
    ((580, 615, 791), _tup),
]:
    for _id in _ids:
        _SHAPES[_id] = _fn

# EvalPlus judges these by None-ness only (they return re.Match objects).
MBPP_NOT_NONE = {"check_str", "text_match_three", "text_starta_endb"}


def mbppplus_rows(data: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """(reference, row) for each MBPP+ problem: base and plus inputs, expected outputs from the reference."""
    with open(data / "mbppplus-v0.1.0.jsonl") as f:
        for line in f:
            r = json.loads(line)
            shape = _SHAPES.get(int(r["task_id"].split("/")[-1]), lambda a: a)
            # repr() keeps tuples, sets and complex numbers: the seed schema accepts a Python literal per input
            base = [repr(shape(a)) for a in r["base_input"]]
            plus = [repr(shape(a)) for a in (r["plus_input"] or [])]
            tests = {"kind": "call", "fn_name": r["entry_point"], "inputs": base, "outputs": None,
                     "plus_inputs": plus, "atol": r["atol"],
                     "compare": "not_none" if r["entry_point"] in MBPP_NOT_NONE else "exact"}
            yield r["canonical_solution"], {"problem_id": r["task_id"], "entry_point": r["entry_point"],
                                            "reference": r["canonical_solution"], "tests": json.dumps(tests)}


# ------------------------------------------------------------------------------------------------ process table


def sandbox_processes() -> list[str]:
    """Processes running as a sandbox uid (children of any zygote): there must be none between programs."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        uid = int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])
        if UID_BASE <= uid < UID_BASE + 2 * (1 << 23):
            found.append(f"{entry} (uid {uid})")
    return found


def no_leftovers(timeout: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout
    while sandbox_processes():
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
