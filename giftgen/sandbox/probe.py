"""The start-up check: run one child through the whole sandbox and confirm that every protection holds.

Contract. ``probe(zygote, runner)`` returns nothing when the probe child (a normal candidate child, same setup)
could not start a process, open a network socket, signal the parent or anything outside its pid namespace, list
the root directory (Landlock), write outside its scratch directory, create a memfd or System V shared memory, or
keep privileges, and could import the
standard library and write its scratch directory; otherwise it raises ``SandboxUnavailable`` naming what failed.
Further probe children must die of SIGSYS when they try to fork, exec, or signal -1 or their process group (with
signal 0, harmless even where unprotected). The executor refuses to run programs (fail closed) until all of this
holds on every zygote; so the tests that send real signals to -1 only ever run where the probe showed the
attempt is stopped.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

from giftgen.sandbox.codec import ChannelClosed, ChannelTimeout, WireError
from giftgen.sandbox.process import SandboxFailure, SandboxUnavailable, ZygoteHandle

ALLOWED_ENV = {"PATH", "HOME", "TMPDIR", "LANG", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"}


FATAL = {"fork": "programs can start processes", "exec": "programs can run other programs",
         "kill_all": "programs can call kill(-1)", "kill_group": "programs can signal their process group"}


def probe(z: ZygoteHandle, runner: Any) -> dict[str, Any]:
    """Run the probes on ``z``; return the report, or raise ``SandboxUnavailable`` naming what does not hold."""
    try:
        return _probe(z, runner)
    except SandboxFailure as e:  # the machinery broke while probing: fail closed, as for a missing protection
        raise SandboxUnavailable(f"the sandbox probe failed: {e}") from None


def _probe(z: ZygoteHandle, runner: Any) -> dict[str, Any]:
    report, _ = _run(z, runner, None)
    problems = check_report(report, z.info, runner.rlimits(10))
    for fatal, what in FATAL.items():
        _, exit = _run(z, runner, fatal)
        status = exit.get("status")
        if not (isinstance(status, int) and os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGSYS):
            problems.append(f"{what} (the seccomp filter did not stop it: wait status {status})")
    if problems:
        raise SandboxUnavailable("the sandbox does not hold on this machine: " + "; ".join(problems))
    return report


def _run(z: ZygoteHandle, runner: Any, fatal: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    children = runner.start(z, ["probe"], 10)
    c = children[0]
    exits = [{}]
    try:
        c.channel.send({"op": "probe", "parent_pid": os.getpid(), "outside_file": "/", "outside_dir": "/",
                        "fatal": fatal})
        message = c.channel.recv(time.monotonic() + 30)
        report = message.get("probe", {}) if isinstance(message, dict) else {}
        if fatal:
            c.wait_exit(time.monotonic() + 10)
    except (ChannelClosed, ChannelTimeout, WireError) as e:
        raise SandboxUnavailable(f"the sandbox probe did not report ({e}): {c.stderr_tail()}") from None
    finally:
        try:
            exits = runner.finish(z, children)
        except SandboxFailure as e:
            raise SandboxUnavailable(f"the sandbox probe failed: {e}") from None
        finally:
            c.close()
    return report, exits[0]


def check_report(report: dict[str, Any], info: dict[str, Any], rlimits: dict[str, int]) -> list[str]:
    """What the probe child could do that it must not (empty when every protection holds)."""
    problems = []

    def expect(key: str, allowed: tuple, what: str) -> None:
        if report.get(key) not in allowed:
            problems.append(f"{what} (got {report.get(key)!r})")

    if report.get("uid") != info["uids"][0] or not report.get("uid"):
        problems.append(f"programs do not run as an unprivileged uid of their own (uid {report.get('uid')})")
    status = report.get("status", {})
    if status.get("CapEff") != ["0000000000000000"]:
        problems.append(f"programs keep capabilities ({status.get('CapEff')})")
    if status.get("NoNewPrivs") != ["1"]:
        problems.append("no_new_privs is not set")
    if status.get("Seccomp") != ["2"]:
        problems.append("the seccomp filter is not active")
    if report.get("pid") != 1 or report.get("ppid") != 0:
        problems.append("programs do not get a pid namespace of their own")
    if report.get("interfaces") != ["lo"]:
        problems.append(f"programs are not in an empty network namespace ({report.get('interfaces')})")
    expect("inet", ("EACCES",), "programs can open network sockets")
    expect("kill_parent", ("ESRCH", "EPERM"), "programs can signal the parent")
    expect("read_outside", ("EACCES",), "Landlock does not restrict reading")
    expect("write_outside", ("EACCES", "EROFS"), "programs can write outside their scratch directory")
    expect("read_python", ("allowed",), "programs cannot import the standard library")
    expect("write_scratch", ("allowed",), "programs cannot write their scratch directory")
    expect("memfd", ("EPERM",), "programs can create memfds (memory outside RLIMIT_AS)")
    expect("sysv_shm", ("EPERM",), "programs can create System V shared memory (it outlives them)")
    for key, name in (("rlimit_as", "RLIMIT_AS"), ("rlimit_fsize", "RLIMIT_FSIZE"), ("rlimit_cpu", "RLIMIT_CPU")):
        if report.get(key) != rlimits[name]:
            problems.append(f"{name} is not applied")
    if not set(report.get("environ", ["?"])) <= ALLOWED_ENV:
        problems.append(f"the environment is not scrubbed ({sorted(set(report.get('environ', [])) - ALLOWED_ENV)})")
    return problems
