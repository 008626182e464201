"""The executor: run candidate programs against problems' tests in the sandbox, on every core, in order.

Contract. ``Executor(workers, limits)`` starts two zygotes per worker (see ``zygote``) and probes each (see
``probe``): if a protection is missing it raises ``SandboxUnavailable`` and runs nothing. At most ``workers``
programs run at a time (one per core by default); the second zygote of each worker forks, reaps and cleans up
while the first one's program runs. Then ``check`` (blocking),
``submit`` (a ``concurrent.futures.Future``) and ``map`` (streaming, in input order, a bounded number in flight)
return ``Verdict``s. A bad problem raises ``InputError`` from ``submit``, before anything runs.

Who decides: only this process. It holds the expected values, sends children code and inputs, reads back plain
data and judges it (``runs``, ``judge``). Outputs that must come from a reference solution are computed once per
problem, in the sandbox, and cached here (an LRU of ``reference_cache`` problems).

``sandbox_error`` (a child that never said it was locked down, a zygote that died, a bug on this side) is retried
``retries`` times on a fresh zygote, then returned as such, and counted in ``sandbox_errors``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
import traceback
from collections import OrderedDict, deque
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import Future
from typing import Any

from giftgen.config import check_workers
from giftgen.errors import InputError
from giftgen.sandbox.packages import DEFAULT as DEFAULT_PACKAGES
from giftgen.sandbox.packages import allowed_packages
from giftgen.sandbox.plan import Plan, make_plan
from giftgen.sandbox.probe import probe
from giftgen.sandbox.process import SandboxFailure, SandboxUnavailable, ZygoteGone, ZygoteHandle
from giftgen.sandbox.runs import Runner
from giftgen.sandbox.verdict import ERROR_CAP, MAX_PROGRAM_BYTES, Limits, Verdict


class Executor:
    """Run programs against tests in the sandbox. Use as a context manager.

    ``workers``: parallel zygotes (0: one per CPU core). ``limits``: see ``Limits``. ``tests``: ``base``, ``plus``
    or ``all``; ``max_tests``: keep the first N tests of each problem (APPS "first 10"). ``fail_fast``: stop a
    program at its first failing test (the rest are ``not_run``). ``retries``: extra attempts after a
    ``sandbox_error``. ``preload``: modules imported up front, so programs importing them start fast (numpy and
    pandas, when installed). The standard modules programs use most are preloaded in every zygote; ``preload`` only in
    zygotes started, on first need, for programs (or tests, or references) that name one of them: a larger zygote
    makes every fork dearer (numpy: about 10% more CPU per program). ``allow_import``: the packages outside the
    standard library that programs and tests may import (see ``packages.allowed_packages``: what they require
    comes with them; evaluation packages and caches never do); a preloaded module must be one of them.
    """

    def __init__(self, workers: int = 0, limits: Limits | None = None, *, tests: str = "all",
                 max_tests: int | None = None, fail_fast: bool = True, retries: int = 2,
                 preload: tuple[str, ...] = ("numpy", "pandas"), reference_cache: int = 4096,
                 allow_import: tuple[str, ...] | list[str] = DEFAULT_PACKAGES):
        limits = limits if limits is not None else Limits()
        limits.validate()
        self.packages = allowed_packages(allow_import)
        preload = tuple(m for m in preload if m.split(".")[0] in self.packages)
        check_workers(workers)
        self.workers = workers if workers > 0 else (os.cpu_count() or 1)
        # Two zygotes per worker: while one's program runs, the other's child is being reaped or forked ahead.
        # Programs themselves never run more than `workers` at a time (Runner's slots).
        self.pipelines = 2 * self.workers
        self.limits = limits
        self.tests = tests
        self.max_tests = max_tests
        self.retries = retries
        self.preload = tuple(preload)
        names = sorted({m.split(".")[0] for m in self.preload})
        self._preload_pattern = re.compile(r"\b(?:" + "|".join(map(re.escape, names)) + r")\b") if names else None
        self.runner = Runner(limits, fail_fast, slots=threading.BoundedSemaphore(self.workers))
        self.sandbox_errors = 0
        self._queue: deque[tuple[str, Plan, Future] | None] = deque()
        self._cv = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._zygotes: list[ZygoteHandle | None] = []  # per pipeline: the standard preload
        self._heavy: list[ZygoteHandle | None] = []  # per pipeline: with ``preload``, started on first need
        self._refs: OrderedDict[str, Future] = OrderedDict()
        self._plans: OrderedDict[str, Plan] = OrderedDict()
        self._cache_size = reference_cache
        self._lock = threading.Lock()
        self._started = self._closed = False

    # -------------------------------------------------------------------------------------------- lifecycle

    def __enter__(self) -> Executor:
        self.start()
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        self.close(cancel=exc_type is not None)

    def start(self) -> None:
        """Start and probe the zygotes (done by ``__enter__``, or by the first ``submit``)."""
        if self._started:
            return
        self._started = True
        zygotes: list[ZygoteHandle] = []
        try:
            for _ in range(self.pipelines):
                zygotes.append(ZygoteHandle((), self.limits.disk_mb, self.packages))
            for z in zygotes:
                probe(z, self.runner)
        except BaseException:
            for z in zygotes:
                z.close()
            self._closed = True
            raise
        self._zygotes = list(zygotes)
        self._heavy = [None] * self.pipelines
        for i in range(self.pipelines):
            t = threading.Thread(target=self._work, args=(i,), name=f"giftgen-sandbox-{i}", daemon=True)
            t.start()
            self._threads.append(t)

    def close(self, cancel: bool = False) -> None:
        """Stop the zygotes; no process of ours outlives this call. Queued programs run first, unless ``cancel``:
        then their futures are cancelled and running programs are killed (their verdicts are lost)."""
        if self._closed:
            return
        self._closed = True
        with self._cv:
            if cancel:
                for job in self._queue:
                    if job is not None:
                        job[2].cancel()
                self._queue.clear()
            self._queue.extend([None] * len(self._threads))
            self._cv.notify_all()
        if cancel:  # a zygote whose parent hangs up kills its children and exits
            for z in self._zygotes + self._heavy:
                if z is not None:
                    z.hang_up()
        for t in self._threads:
            t.join()
        for z in self._zygotes + self._heavy:
            if z is not None:
                z.close()

    # -------------------------------------------------------------------------------------------- public API

    def plan(self, problem: Mapping[str, Any]) -> Plan:
        """The test plan of ``problem`` under this executor's selection (``InputError`` on a bad problem)."""
        tests = problem.get("tests")
        raw = tests if isinstance(tests, str) else json.dumps(tests, sort_keys=True, default=str)
        key = hashlib.sha256("\0".join(
            [raw, str(problem.get("entry_point")), str(problem.get("reference")), str(problem.get("problem_id")),
         str(problem.get("prompt_head"))]
        ).encode()).hexdigest()
        with self._lock:
            plan = self._plans.get(key)
            if plan is not None:
                self._plans.move_to_end(key)
                return plan
        plan = make_plan(problem, self.tests, self.max_tests)
        with self._lock:
            self._plans[key] = plan
            while len(self._plans) > 256:
                self._plans.popitem(last=False)
        return plan

    def submit(self, code: str, problem: Mapping[str, Any] | Plan) -> Future:
        """Queue one program; the future's result is its ``Verdict``."""
        if self._closed:
            raise RuntimeError("the executor is closed")
        self.start()
        plan = problem if isinstance(problem, Plan) else self.plan(problem)
        if not isinstance(code, str):
            raise InputError(f"code must be a string, got {type(code).__name__}")
        future: Future = Future()
        with self._cv:
            self._queue.append((code, plan, future))
            self._cv.notify()
        return future

    def check(self, code: str, problem: Mapping[str, Any] | Plan) -> Verdict:
        """Run one program and wait for its verdict."""
        return self.submit(code, problem).result()

    def map(self, items: Iterable[tuple[str, Mapping[str, Any] | Plan]], ahead: int | None = None,
            buffer: int | None = None) -> Iterator[Verdict]:
        """Verdicts in input order. At most ``ahead`` programs (default 4 per worker) are queued or running at a
        time, and at most ``buffer`` (default 256 per worker) submitted programs wait to be yielded, so memory stays
        constant however long ``items`` is, and a slow program holds back only the order of the output, not the
        other workers. If ``items`` raises, the verdicts of the items before it are yielded first."""
        ahead = ahead or 4 * self.workers
        buffer = max(buffer or 256 * self.workers, ahead)
        source = iter(items)
        pending: deque[Future] = deque()
        cv = threading.Condition()
        running = 0
        failure: BaseException | None = None

        def finished(_: Future) -> None:
            nonlocal running
            with cv:
                running -= 1
                cv.notify()

        def room() -> bool:
            return failure is None and source is not None and running < ahead and len(pending) < buffer

        while True:
            while room():
                try:
                    code, problem = next(source)
                    future = self.submit(code, problem)
                except StopIteration:
                    source = None
                    break
                except BaseException as e:  # yield what came before, then raise
                    failure = e
                    break
                with cv:
                    running += 1
                future.add_done_callback(finished)  # runs at once if it is already done
                pending.append(future)
            if not pending:
                break
            with cv:
                cv.wait_for(lambda: pending[0].done() or room())
            if pending[0].done():
                yield pending.popleft().result()
        if failure is not None:
            raise failure

    def waiting_processes(self) -> set[int]:
        """Pids of the locked-down children the zygotes forked ahead for their next program (one per zygote at
        most; they run nothing yet). Any other process of a sandbox uid is a program's leftover."""
        return {z.waiting for z in self._zygotes + self._heavy if z is not None and z.waiting}

    # -------------------------------------------------------------------------------------------- workers

    def _work(self, index: int) -> None:
        while True:
            with self._cv:
                while not self._queue:
                    self._cv.wait()
                job = self._queue.popleft()
            if job is None:
                return
            code, plan, future = job
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(self._run_with_retries(index, code, plan))
            except BaseException as e:  # InputError (a broken reference or test code), SandboxUnavailable
                future.set_exception(e)

    def _needs_preload(self, code: str, plan: Plan) -> bool:
        """Whether the program, its setup, its reference or its test code names a ``preload`` module."""
        if self._preload_pattern is None:
            return False
        texts = [code, plan.setup, plan.reference or ""]
        if plan.oracle:
            texts += [v for v in plan.oracle.values() if isinstance(v, str)]
        return any(self._preload_pattern.search(t) for t in texts if t)

    def _zygote(self, index: int, heavy: bool) -> ZygoteHandle:
        pool = self._heavy if heavy else self._zygotes
        z = pool[index]
        if self._closed and (z is None or not z.alive):
            raise SandboxFailure("the executor is closing")
        if z is None or not z.alive:
            if z is not None:
                z.close()
            pool[index] = None
            z = ZygoteHandle(self.preload if heavy else (), self.limits.disk_mb, self.packages)
            try:
                probe(z, self.runner)
            except BaseException:
                z.close()
                raise
            pool[index] = z
        return z

    def _run_with_retries(self, index: int, code: str, plan: Plan) -> Verdict:
        start = time.monotonic()
        if len(code) > MAX_PROGRAM_BYTES // 4 and (size := len(code.encode("utf-8", "surrogatepass"))) > MAX_PROGRAM_BYTES:
            return self.runner.verdict(plan, [None] * plan.size, "memory_limit",
                                       f"the program is {size / 2**20:.1f} MiB of source: programs over "
                                       f"{MAX_PROGRAM_BYTES >> 20} MiB are not run (compiling one needs more "
                                       "memory and time than a program's limits)")
        verdict = Verdict("sandbox_error", False, error="not run")
        heavy = self._needs_preload(code, plan)
        pool = self._heavy if heavy else self._zygotes
        attempts = self.retries + 1
        replaced = False
        while attempts > 0:
            attempts -= 1
            try:
                verdict = self._run(self._zygote(index, heavy), code, plan)
            except ZygoteGone as e:  # gone before this program ran: replace it, once, without charging it
                verdict = Verdict("sandbox_error", False, error=str(e)[:ERROR_CAP])
                if not replaced and not self._closed:
                    replaced = True
                    attempts += 1
                    z, pool[index] = pool[index], None
                    if z is not None:
                        z.close()
                    continue
            except SandboxFailure as e:
                verdict = Verdict("sandbox_error", False, error=str(e)[:ERROR_CAP])
            except (InputError, SandboxUnavailable):
                raise
            except Exception as e:  # a bug on this side is an infrastructure failure, never the program's
                text = "".join(traceback.format_exception(e))[-ERROR_CAP:]
                verdict = Verdict("sandbox_error", False, error=f"internal error: {text}")
            if verdict.status != "sandbox_error" or self._closed:
                break
            with self._lock:
                self.sandbox_errors += 1
            z, pool[index] = pool[index], None  # start over on a fresh zygote
            if z is not None:
                z.close()
        verdict.duration = time.monotonic() - start
        return verdict

    def _run(self, z: ZygoteHandle, code: str, plan: Plan) -> Verdict:
        if plan.mode == "stdio":
            return self.runner.stdio(z, code, plan)
        if plan.mode == "oracle":
            return self.runner.oracle(z, code, plan)
        if plan.needs_reference:
            expected, seconds = self._reference_outputs(z, plan)
            return self.runner.calls(z, code, plan, expected, seconds)
        return self.runner.calls(z, code, plan)

    def _reference_outputs(self, z: ZygoteHandle, plan: Plan) -> tuple[list[tuple[str, Any]], float]:
        """Expected outputs of ``plan``'s calls: computed once per problem by the first worker that needs them;
        the others wait for that result."""
        with self._lock:
            future = self._refs.get(plan.reference_key)
            owner = future is None
            if owner:
                future = self._refs[plan.reference_key] = Future()
                while len(self._refs) > self._cache_size:
                    self._refs.popitem(last=False)
            else:
                self._refs.move_to_end(plan.reference_key)
        if not owner:
            return future.result()
        try:
            outputs = self.runner.reference(z, plan)
        except BaseException as e:
            with self._lock:
                self._refs.pop(plan.reference_key, None)  # a later attempt computes them again
            future.set_exception(e)
            raise
        future.set_result(outputs)
        return outputs
