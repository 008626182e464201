"""Running one program under one plan: the conversations with sandboxed children, and the verdict.

Contract. ``ProgramSession(limits, fail_fast)`` has one method per plan mode (``calls``, ``oracle``, ``stdio``) and
``reference`` (expected outputs from a reference solution). Each takes a ``ZygoteHandle``, spawns fresh children,
talks to them with deadlines, kills and reaps them, and returns a ``Verdict`` built here, in the parent, from
plain data. Raises ``SandboxFailure`` when the infrastructure breaks and ``InputError`` when the problem itself is
broken (a reference that does not load, test code that fails on its own).

Deadlines: each test gets ``limits.timeout`` from the end of the previous one (calls are sent in one batch and
answered as they finish), the whole program ``limits.program_timeout``. A child killed at a deadline is a
``timeout``; one that dies on its own is judged by how it died (signal, CPU time, memory, output size).
"""

from __future__ import annotations

import math
import os
import signal
import socket
import time
from typing import Any

from giftgen.errors import InputError
from giftgen.sandbox import judge
from giftgen.sandbox.codec import ChannelClosed, ChannelTimeout, OversizeError, WireError, from_wire, short
from giftgen.sandbox.plan import FROM_REFERENCE, Call, Plan
from giftgen.sandbox.process import CHILD_MAX_FRAME, Child, SandboxFailure, ZygoteHandle
from giftgen.sandbox.verdict import ERROR_CAP, Limits, Verdict, format_error

SETUP_TIMEOUT = 20.0  # seconds for a fresh child to lock itself down and say "ready"
REFERENCE_FACTOR = 3.0  # a program may take this many times its reference solution's time (if over the limit)


class ProgramSession:
    """``slots`` (a semaphore, optional) bounds how many programs run at once: a program holds one from its
    spawn to its last reply, so forking ahead, killing and reaping overlap other programs' runs without ever
    making them share a core beyond the bound (its deadlines are wall-clock)."""

    def __init__(self, limits: Limits, fail_fast: bool = True, slots: Any = None):
        self.limits = limits
        self.fail_fast = fail_fast
        self.slots = slots

    # -------------------------------------------------------------------------------------------- children

    def rlimits(self, cpu_seconds: float) -> dict[str, int]:
        lim = self.limits
        return {
            "RLIMIT_AS": lim.memory_mb << 20,
            "RLIMIT_CPU": int(math.ceil(cpu_seconds)) + 1,
            "RLIMIT_FSIZE": lim.output_mb << 20,
            "RLIMIT_NOFILE": lim.max_files,
            "RLIMIT_NPROC": lim.max_threads,
            "RLIMIT_STACK": lim.stack_mb << 20,
            "RLIMIT_CORE": 0,
            "RLIMIT_MEMLOCK": 0,
            "RLIMIT_MSGQUEUE": 0,
        }

    def start(self, z: ZygoteHandle, roles: list[str], wall: float, first: list[list[dict]] | None = None
              ) -> list[Child]:
        """Spawn children (CPU limit from ``wall``) and wait until each says it is locked down. ``first``: messages
        for each child, sent at once (it reads them only once locked down), to save a round trip."""
        specs = [{"role": r, "rlimits": self.rlimits(wall), "max_frame": CHILD_MAX_FRAME} for r in roles]
        max_frame = (self.limits.output_mb << 20) + (1 << 20)
        if self.slots is not None:
            self.slots.acquire()
        try:
            children = z.spawn(specs, wall + SETUP_TIMEOUT + 5, max_frame)
        except BaseException:
            if self.slots is not None:
                self.slots.release()
            raise
        children[0].slot = self.slots
        # The child reads what follows its first message only once that has run (a program's load): what does
        # not fit in the socket's buffer is written while we wait for its replies, under their deadlines.
        for c, messages in zip(children, first or [], strict=False):
            for message in messages:
                c.channel.post(message)
        deadline = time.monotonic() + SETUP_TIMEOUT
        for c in children:
            try:
                message = c.channel.recv(deadline)
            except (ChannelClosed, ChannelTimeout, WireError) as e:
                message = {"setup_error": f"{type(e).__name__}: {e}; {c.stderr_tail()}"}
            if not isinstance(message, dict) or message.get("ready") is not True:
                self.finish(z, children)
                for child in children:
                    child.close()
                error = message.get("setup_error", message) if isinstance(message, dict) else message
                raise SandboxFailure(f"a {c.role} process could not be set up: {short(error, ERROR_CAP)}")
        return children

    def finish(self, z: ZygoteHandle, children: list[Child]) -> list[dict[str, Any]]:
        """Give back the execution slot, kill what is left and collect the exit reports."""
        for c in children:
            if c.slot is not None:
                c.slot, slot = None, c.slot
                slot.release()
        for c in children:
            c.kill()
        return z.exits(timeout=60)

    # -------------------------------------------------------------------------------------------- calls

    def calls(self, z: ZygoteHandle, code: str, plan: Plan, expected: list | None = None,
              reference_seconds: float = 0.0) -> Verdict:
        """Load ``code`` once, call its function for every test, judge each returned value here. The program
        gets ``program_timeout`` in all, or three times what the reference solution took, if that is more."""
        lim = self.limits
        program_timeout = max(lim.program_timeout, REFERENCE_FACTOR * reference_seconds)
        results: list[dict[str, str] | None] = [None] * len(plan.calls)
        todo: list[tuple[int, Call, Any]] = []
        for i, call in enumerate(plan.calls):
            if call.expected is FROM_REFERENCE:
                kind, value = expected[i] if expected is not None else ("error", "no reference outputs")
                if kind != "ok":
                    results[i] = {"status": "not_run", "detail": f"{call.label}: reference failed: {value}"}
                    continue
                todo.append((i, call, value))
            else:
                todo.append((i, call, call.expected))
        messages = [self._load_message(code, plan)]
        if todo:  # sent with the program: if it does not load, the child never reads them
            messages.append(self._calls_message([call for _, call, _ in todo]))
        children = self.start(z, ["candidate"], program_timeout, first=[messages])
        c = children[0]
        program_deadline = time.monotonic() + program_timeout
        status = error = death = None
        pending = None
        try:
            outcome = self._loaded(c, program_deadline)
            if outcome is not None:
                status, error, death = outcome
            elif todo:
                for i, call, want in todo:
                    reply, death = self._reply(c, program_deadline)
                    if death is not None:
                        pending = i
                        break
                    results[i] = self._judge_reply(call, want, reply)
                    if self.fail_fast and results[i]["status"] != "pass":
                        break
        finally:
            exits = self.finish(z, children)
            out_size, stderr = c.output_size(), c.stderr_tail()
            c.close()
        if death is not None:
            st, detail = self._death(exits[0], c.timed_out, death, program_timeout)
            if pending is not None:
                results[pending] = {"status": st, "detail": f"{plan.calls[pending].label}: {detail}"}
            status, error = status or st, error or _with_stderr(detail, stderr)
        if out_size >= lim.output_mb << 20:
            status, error = "output_limit", f"the program wrote {lim.output_mb} MiB or more"
        return self.verdict(plan, results, status, error)

    @staticmethod
    def _load_message(code: str, plan: Plan) -> dict[str, Any]:
        """The program and the setup that runs before it; ``own``: the names of the functions under test, which
        the program must bind itself (a setup's `from math import gcd` is not the program's gcd)."""
        own = {call.fn for call in plan.calls}
        if plan.oracle and plan.oracle.get("entry_point"):
            own.add(plan.oracle["entry_point"])
        return {"op": "load", "code": code, "setup": plan.setup, "own": sorted(own)}

    @staticmethod
    def _calls_message(calls: list[Call]) -> dict[str, Any]:
        return {"op": "calls", "calls": [call.wire for call in calls]}

    def _loaded(self, c: Child, program_deadline: float) -> tuple | None:
        """Wait for the program (already sent) to load; None once it did, else (status, error, death)."""
        try:
            reply = c.channel.recv(min(time.monotonic() + self.limits.timeout, program_deadline))
        except ChannelTimeout:
            c.kill(timed_out=True)
            return "timeout", f"loading the program took longer than {self.limits.timeout:g} s", "timeout"
        except ChannelClosed:
            return None, None, "died"
        except WireError as e:
            return None, None, _wire_death(e)
        if not isinstance(reply, dict):
            return "runtime_error", "the program broke the protocol while loading", None
        if "loaded" in reply:
            names = reply["loaded"][:5000] if isinstance(reply["loaded"], list) else []  # capped first
            c.names = [n for n in names if isinstance(n, str)]
            return None
        if "syntax_error" in reply:
            return "syntax_error", str(reply["syntax_error"])[:ERROR_CAP], None
        if "load_error" in reply:
            info = reply["load_error"]
            st = "memory_limit" if isinstance(info, dict) and info.get("type") == "MemoryError" else "runtime_error"
            return st, format_error(info, "loading the program raised"), None
        return "runtime_error", "the program broke the protocol while loading", None

    def _reply(self, c: Child, program_deadline: float) -> tuple[Any, str | None]:
        """The next reply, or (None, "timeout" | "died")."""
        try:
            return c.channel.recv(min(time.monotonic() + self.limits.timeout, program_deadline)), None
        except ChannelTimeout:
            c.kill(timed_out=True)
            return None, "timeout"
        except ChannelClosed:
            return None, "died"
        except WireError as e:
            return None, _wire_death(e)

    def _judge_reply(self, call: Call, expected: Any, reply: Any) -> dict[str, str]:
        if not isinstance(reply, dict):
            return {"status": "runtime_error", "detail": f"{call.label}: the program broke the protocol"}
        if "raised" in reply:
            info = reply["raised"] if isinstance(reply["raised"], dict) else {}
            st = "memory_limit" if info.get("type") == "MemoryError" else "runtime_error"
            return {"status": st, "detail": format_error(info, f"{call.label} raised")}
        if "ok" not in reply:
            return {"status": "runtime_error", "detail": f"{call.label}: the program broke the protocol"}
        try:
            actual = from_wire(reply["ok"])
        except (WireError, RecursionError) as e:
            return {"status": "wrong_answer", "detail": f"{call.label}: the result is not plain data ({e})"}
        truth = reply.get("truth") if isinstance(reply.get("truth"), bool) else None
        singleton = reply.get("singleton") if isinstance(reply.get("singleton"), bool) else None
        if judge.check_value(call.rule, actual, expected, atol=call.atol, rel_tol=call.rel_tol,
                             abs_tol=call.abs_tol, truth=truth, singleton=singleton):
            return {"status": "pass", "detail": ""}
        return {"status": "wrong_answer",
                "detail": f"{call.label} {judge.describe_mismatch(call.rule, actual, expected)}"}

    # -------------------------------------------------------------------------------------------- reference

    def reference(self, z: ZygoteHandle, plan: Plan) -> tuple[list[tuple[str, Any]], float]:
        """(``ok``, value) or (``error``, why) for each call of ``plan``, from running its reference solution, and
        the seconds the calls took. A crash or a timeout costs that one test: the rest run in a fresh child."""
        lim = self.limits
        outputs: list[tuple[str, Any]] = []
        seconds = 0.0
        while len(outputs) < len(plan.calls):
            remaining = plan.calls[len(outputs):]
            wall = max(lim.program_timeout, 2 * lim.timeout * len(remaining))
            messages = [self._load_message(plan.reference or "", plan), self._calls_message(list(remaining))]
            children = self.start(z, ["candidate"], wall, first=[messages])
            c = children[0]
            deadline = time.monotonic() + wall
            try:
                outcome = self._loaded(c, deadline)
                if outcome is not None:
                    raise InputError(f"the reference solution does not load: {outcome[1] or outcome[2]}")
                started = time.monotonic()
                for call in remaining:
                    try:
                        reply = c.channel.recv(min(time.monotonic() + 2 * lim.timeout, deadline))
                    except (ChannelTimeout, ChannelClosed, WireError) as e:
                        outputs.append(("error", f"{type(e).__name__} on {call.label}"))
                        break
                    if isinstance(reply, dict) and "ok" in reply:
                        try:
                            outputs.append(("ok", from_wire(reply["ok"])))
                        except (WireError, RecursionError) as e:
                            outputs.append(("error", f"not plain data: {e}"))
                    else:
                        raised = reply.get("raised") if isinstance(reply, dict) else None
                        outputs.append(("error", format_error(raised, "raised")))
                seconds += time.monotonic() - started
            finally:
                self.finish(z, children)
                c.close()
        if outputs and all(kind != "ok" for kind, _ in outputs):
            raise InputError(f"the reference solution fails on every test ({outputs[0][1]})")
        return outputs, seconds

    # -------------------------------------------------------------------------------------------- oracle

    def oracle(self, z: ZygoteHandle, code: str, plan: Plan) -> Verdict:
        """Run the problem's test code in an oracle process; relay its calls to the program."""
        lim = self.limits
        children = self.start(z, ["candidate", "oracle"], lim.program_timeout,
                              first=[[self._load_message(code, plan)], []])
        cand, oracle = children
        program_deadline = time.monotonic() + lim.program_timeout
        results: list[dict[str, str] | None] = [None] * plan.size
        status = error = death = None
        pending = None
        try:
            outcome = self._loaded(cand, program_deadline)
            if outcome is not None:
                status, error, death = outcome
            else:
                death, pending = self._converse(cand, oracle, plan, results, program_deadline)
        finally:
            exits = self.finish(z, children)
            out_size, stderr = cand.output_size(), cand.stderr_tail()
            for c in children:
                c.close()
        if death is not None:
            st, detail = self._death(exits[0], cand.timed_out, death)
            if pending is not None:
                results[pending] = {"status": st, "detail": f"{plan.labels[pending]}: {detail}"}
            status, error = status or st, error or _with_stderr(detail, stderr)
        if out_size >= lim.output_mb << 20:
            status, error = "output_limit", f"the program wrote {lim.output_mb} MiB or more"
        return self.verdict(plan, results, status, error)

    def _converse(self, cand: Child, oracle: Child, plan: Plan, results: list, program_deadline: float
                  ) -> tuple[str | None, int | None]:
        """Connect the oracle to the program and collect per-test results; (death, index of the test it happened
        in), or (None, None) when the oracle finished."""
        assert plan.oracle is not None
        # The two talk over a socket pair of their own (no relay through here): the program only ever receives
        # calls, and its replies reach the test code as plain data; the verdicts come to us on the oracle's socket.
        theirs, ours = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        job = {**plan.oracle, "op": "oracle", "names": cand.names, "max_reply": self.limits.output_mb << 20}
        try:
            cand.channel.send({"op": "serve"}, fd=theirs.fileno())
        except (ChannelClosed, ChannelTimeout):
            return "died", 0
        finally:
            theirs.close()
        try:
            oracle.channel.send(job, fd=ours.fileno())
        except (ChannelClosed, ChannelTimeout) as e:
            raise SandboxFailure(f"the test process went away: {e}") from None
        finally:
            ours.close()
        current = 0
        test_deadline = min(time.monotonic() + self.limits.timeout, program_deadline)
        while True:
            try:
                message = oracle.channel.recv(test_deadline)
            except ChannelTimeout:
                cand.kill(timed_out=True)
                return "timeout", current
            except (ChannelClosed, WireError) as e:
                raise SandboxFailure(f"the test process stopped: {e}; {oracle.stderr_tail()}") from None
            op = message.get("op") if isinstance(message, dict) else None
            if op == "start":
                current = min(int(message["test"]), plan.size - 1)
                test_deadline = min(time.monotonic() + self.limits.timeout, program_deadline)
            elif op == "result":
                results[current] = self._oracle_result(plan.labels[current], message)
                if self.fail_fast and results[current]["status"] != "pass":
                    return None, None
            elif op == "gone":  # the program died during a call: judged by how it died
                cand.wait_exit(time.monotonic() + 1)
                return "died", current
            elif op == "test_error":
                raise InputError("the problem's test code fails on its own: "
                                 + format_error(message.get("error"), "raised"))
            elif op == "done":
                return None, None
            else:
                raise SandboxFailure(f"unexpected message from the test process: {short(message)}")

    @staticmethod
    def _oracle_result(label: str, message: dict[str, Any]) -> dict[str, str]:
        info = message.get("error") if isinstance(message.get("error"), dict) else {}
        if message.get("status") == "pass":
            return {"status": "pass", "detail": ""}
        if message.get("status") == "raised":  # the program raised inside a call the test made
            st = "memory_limit" if info.get("type") == "MemoryError" else "runtime_error"
            return {"status": st, "detail": format_error(info, f"{label}: the program raised")}
        what = "failed" if message.get("status") == "failed" else f"the test raised {info.get('type')}"
        detail = f"{label}: {what}" + (f" ({short(info.get('msg'), 300)})" if info.get("msg") else "")
        return {"status": "wrong_answer", "detail": detail}

    # -------------------------------------------------------------------------------------------- stdio

    def stdio(self, z: ZygoteHandle, code: str, plan: Plan) -> Verdict:
        """One fresh process per standard-input case; judged by exit status and output."""
        lim = self.limits
        cap = lim.output_mb << 20
        results: list[dict[str, str] | None] = [None] * len(plan.stdio)
        program_deadline = time.monotonic() + lim.program_timeout
        status = error = None
        for index, (stdin, expected) in enumerate(plan.stdio):
            if time.monotonic() > program_deadline:
                results[index] = {"status": "timeout", "detail": f"the program used its {lim.program_timeout:g} s"}
                break
            job = {"op": "stdio", "code": code, "stdin": stdin, "setup": plan.setup}
            children = self.start(z, ["candidate"], lim.timeout, first=[[job]])
            c = children[0]
            try:
                # The verdict rests on the exit status (from the zygote) and the output (our memfd); the child's
                # own messages only add detail. So wait on the process, not on its socket (once it has its job).
                deadline = min(time.monotonic() + lim.timeout, program_deadline)
                try:
                    c.channel.flush(deadline)
                except ChannelTimeout:
                    pass
                if not c.wait_exit(deadline):
                    c.kill(timed_out=True)
            finally:
                exits = self.finish(z, children)
                messages = c.drain()
                output, size, stderr = c.output(cap), c.output_size(), c.stderr_tail()
                c.close()
            # Only the first message is the harness's own (sent before the program runs; a program can write
            # frames on the socket too): a syntax error, or "compiled"; what follows is detail at most.
            first = messages[0] if messages else {}
            syntax = first.get("syntax_error")
            if syntax is not None:
                status, error = "syntax_error", str(syntax)[:ERROR_CAP]
                break
            done = next((m["done"] for m in reversed(messages) if isinstance(m.get("done"), dict)), {})
            raised = done.get("raised") if isinstance(done.get("raised"), dict) else {}
            results[index] = self._stdio_result(exits[0], c.timed_out, size, cap, raised, stderr, output, expected,
                                                plan.compare)
            if self.fail_fast and results[index]["status"] != "pass":
                break
        return self.verdict(plan, results, status, error)

    def _stdio_result(self, exit: dict[str, Any], timed_out: bool, size: int, cap: int, raised: dict,
                      stderr: str, output: bytes, expected: str, compare: str = "tokens") -> dict[str, str]:
        wait_status = exit.get("status", 0)
        if size >= cap:
            return {"status": "output_limit", "detail": f"{self.limits.output_mb} MiB of output or more"}
        if timed_out or exit.get("deadline"):
            return {"status": "timeout", "detail": f"no exit within {self.limits.timeout:g} s"}
        if os.WIFSIGNALED(wait_status):
            st, detail = self._death(exit, False, "died")
            return {"status": st, "detail": detail}
        if os.WEXITSTATUS(wait_status) != 0:
            st = "memory_limit" if raised.get("type") == "MemoryError" else "runtime_error"
            detail = (format_error(raised, "raised") if raised
                      else f"exit status {os.WEXITSTATUS(wait_status)}" + (f": {stderr[-300:]}" if stderr else ""))
            return {"status": st, "detail": detail}
        match = judge.release_stdio_match if compare == "release" else judge.stdio_match
        ok, detail = match(output.decode("utf-8", "replace"), expected)
        return {"status": "pass" if ok else "wrong_answer", "detail": detail}

    # -------------------------------------------------------------------------------------------- verdicts

    def _death(self, exit: dict[str, Any], timed_out: bool, why: str, program_timeout: float | None = None
               ) -> tuple[str, str]:
        """Status and detail of a child that stopped answering."""
        lim = self.limits
        program_timeout = program_timeout or lim.program_timeout
        if why == "oversize":
            return "output_limit", (f"a reply larger than {lim.output_mb} MiB, or with more containers or items than "
                                    "that size allows")
        if why == "protocol":
            return "runtime_error", "the program wrote something that is not a reply on the harness's socket"
        if timed_out or why == "timeout" or exit.get("deadline"):
            return "timeout", f"no answer within {lim.timeout:g} s per test ({program_timeout:g} s in all)"
        wait_status = exit.get("status")
        if wait_status is None:
            return "runtime_error", "the program stopped answering"
        if os.WIFSIGNALED(wait_status):
            sig = os.WTERMSIG(wait_status)
            try:
                name = signal.Signals(sig).name
            except ValueError:
                name = str(sig)
            cpu_limit = self.rlimits(program_timeout)["RLIMIT_CPU"]
            if sig in (signal.SIGKILL, signal.SIGXCPU) and exit.get("cpu", 0) >= cpu_limit - 1.5:
                return "timeout", "CPU time limit exceeded"
            if sig == signal.SIGXFSZ:
                return "output_limit", "file size limit exceeded"
            if sig == signal.SIGSYS:
                return "runtime_error", ("killed by SIGSYS: a forbidden system call (starting a process, running "
                                         "a program, signalling a process group, or sending itself a fatal signal)")
            if exit.get("maxrss_kb", 0) >= 0.9 * (lim.memory_mb << 10):
                return "memory_limit", f"killed by {name} near the memory limit"
            return "runtime_error", f"killed by signal {name}"
        return "runtime_error", f"the program exited (status {os.WEXITSTATUS(wait_status)}) before its tests ended"

    @staticmethod
    def verdict(plan: Plan, results: list[dict[str, str] | None], status: str | None,
                 error: str | None) -> Verdict:
        tests = [r if r is not None else {"status": "not_run", "detail": label}
                 for r, label in zip(results, plan.labels, strict=True)]
        if status is None:
            failed = next((t for t in tests if t["status"] not in ("pass", "not_run")), None)
            excluded = sum(1 for t in tests if "reference failed" in t["detail"] and t["status"] == "not_run")
            ran = sum(1 for t in tests if t["status"] == "pass")
            if failed is not None:
                status, error = failed["status"], failed["detail"]
            elif ran == 0 or ran + excluded < len(tests):
                status, error = "runtime_error", "not every test ran"
            else:
                status = "pass"
        return Verdict(status, status == "pass", tests, str(error)[:ERROR_CAP] if error else None)


def _wire_death(error: WireError) -> str:
    """Why a reply could not be read: too large (the output limit) or not a reply at all."""
    return "oversize" if isinstance(error, OversizeError) else "protocol"


def _with_stderr(detail: str, stderr: str) -> str:
    return detail + (f"\n{stderr.strip()[-600:]}" if stderr.strip() else "")
