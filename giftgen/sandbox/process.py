"""The parent's handles on sandbox processes: a zygote (``ZygoteHandle``) and the children it forks (``Child``).

Contract. ``ZygoteHandle()`` starts a zygote (``python -I``, scrubbed environment, own session) and waits for it
to report ready, or raises ``SandboxUnavailable`` with what is missing. ``spawn`` creates, for each child, a socket
pair and two memfds (stdout, stderr), passes the child's ends to the zygote with ``SCM_RIGHTS`` and returns
``Child`` handles holding our ends and a pidfd. ``exits`` returns the zygote's report once all of them ended.
Any failure of this machinery raises ``SandboxFailure`` (a ``sandbox_error``), never a program verdict.
"""

from __future__ import annotations

import marshal
import os
import select
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from giftgen.errors import GiftgenError
from giftgen.sandbox.codec import Channel, ChannelClosed, ChannelTimeout, WireError

_ROOT = str(Path(__file__).resolve().parents[2])  # the directory holding the giftgen package
_BOOT = ("import sys; sys.path.insert(0, sys.argv[1]); from giftgen.sandbox.zygote import main; "
         "main(int(sys.argv[2]))")
_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": "/", "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
CHILD_MAX_FRAME = 1 << 30  # what a child accepts from us (we are trusted; its memory limit is the real cap)


class SandboxUnavailable(GiftgenError):
    """A protection the sandbox relies on is missing on this machine: refuse rather than run unprotected."""

    exit_code = 2


class SandboxFailure(Exception):
    """The infrastructure broke (not the program): reported as ``sandbox_error`` and retried."""


class ZygoteGone(SandboxFailure):
    """The zygote had ended before it took a program: nothing of that program ran, so it is not charged."""


@dataclass
class Child:
    """Our end of one sandboxed process."""

    role: str
    channel: Channel
    pidfd: int
    out: int
    err: int
    killed: bool = False
    timed_out: bool = False  # killed by us because it ran past a deadline
    names: list[str] = field(default_factory=list)  # the program's top-level callables, once loaded
    slot: Any = None  # the execution slot (a semaphore) this child's program holds while it runs

    def kill(self, timed_out: bool = False) -> None:
        self.timed_out = self.timed_out or timed_out
        if not self.killed:
            self.killed = True
            try:
                signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
            except OSError:
                pass

    def wait_exit(self, deadline: float) -> bool:
        """Wait for the process to end (its pidfd turns readable); False at the deadline."""
        poller = select.poll()
        poller.register(self.pidfd, select.POLLIN)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            if poller.poll(max(1, int(remaining * 1000))):
                return True

    def drain(self) -> list[dict[str, Any]]:
        """The messages an ended child left in its socket."""
        messages: list[dict[str, Any]] = []
        try:
            while len(messages) < 16:
                message = self.channel.recv(time.monotonic() + 1)
                if isinstance(message, dict):
                    messages.append(message)
        except (ChannelClosed, ChannelTimeout, WireError):
            pass
        return messages

    def output_size(self) -> int:
        return os.fstat(self.out).st_size

    def output(self, cap: int) -> bytes:
        return os.pread(self.out, min(self.output_size(), cap), 0)

    def stderr_tail(self, n: int = 800) -> str:
        size = os.fstat(self.err).st_size
        start = max(0, size - n)
        return os.pread(self.err, size - start, start).decode("utf-8", "replace")

    def close(self) -> None:
        self.channel.close()
        for fd in (self.pidfd, self.out, self.err):
            try:
                os.close(fd)
            except OSError:
                pass


class ZygoteHandle:
    """The parent's side of one zygote process."""

    def __init__(self, preload: tuple[str, ...] = (), disk_mb: int = 32, packages: tuple[str, ...] = ("numpy",)):
        """``packages``: the top-level names of site-packages to mount in the programs' root (checked by
        ``packages.allowed_packages``); nothing else of site-packages is there."""
        self.ctl, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-I", "-c", _BOOT, _ROOT, str(theirs.fileno())],
                pass_fds=[theirs.fileno()], env=_ENV, cwd="/", stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, start_new_session=True,
            )
        finally:
            theirs.close()
        self.ctl.settimeout(120)
        try:
            config = {"preload": list(preload), "packages": list(packages), "exclude": [_ROOT],
                      "disk_kb": disk_mb << 10, "inodes": 4096}
            self.ctl.send(marshal.dumps(config))
            reply = _load(self.ctl.recv(1 << 20))
        except (OSError, ValueError) as e:
            self.close()
            raise SandboxUnavailable(f"the sandbox process did not start ({e})") from None
        if "ready" not in reply:
            self.close()
            raise SandboxUnavailable(explain(reply.get("error", "the sandbox process exited")))
        self.info: dict[str, Any] = reply["ready"]
        self.waiting: int | None = None  # pid of the child forked ahead for the next program

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def spawn(self, specs: list[dict[str, Any]], deadline: float, max_frame: int) -> list[Child]:
        """Start one child per spec; ``deadline`` (seconds) is the zygote's backstop for all of them."""
        ours: list[tuple[socket.socket, int, int]] = []
        theirs: list[socket.socket] = []
        try:
            fds: list[int] = []
            for spec in specs:
                a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
                out = os.memfd_create(f"{spec['role']}-stdout", os.MFD_CLOEXEC)
                err = os.memfd_create(f"{spec['role']}-stderr", os.MFD_CLOEXEC)
                ours.append((a, out, err))
                theirs.append(b)
                fds += [b.fileno(), out, err]
            request = {"op": "spawn", "children": specs, "deadline": deadline}
            self.ctl.settimeout(30)
            try:
                socket.send_fds(self.ctl, [marshal.dumps(request)], fds)
                data, pidfds, _, _ = socket.recv_fds(self.ctl, 1 << 16, len(specs))
            except (BrokenPipeError, ConnectionResetError):
                data, pidfds = b"", []
            if not data:  # it had ended (say, after a scratch directory it could not empty) before this program
                self._close_ours(ours)
                raise ZygoteGone("the sandbox process had gone away")
            reply = _load(data)
        except ZygoteGone:
            raise
        except (OSError, ValueError) as e:
            self._close_ours(ours)
            raise SandboxFailure(f"the sandbox process did not answer: {e}") from None
        finally:
            for b in theirs:
                b.close()
        if "pids" not in reply or len(pidfds) != len(specs):
            self._close_ours(ours)
            for fd in pidfds:
                os.close(fd)
            raise SandboxFailure(reply.get("error", "the sandbox process could not start a program"))
        return [Child(spec["role"], Channel(a, max_frame=max_frame, item_budget=True), pidfd, out, err)
                for spec, (a, out, err), pidfd in zip(specs, ours, pidfds, strict=True)]

    @staticmethod
    def _close_ours(ours: list[tuple[socket.socket, int, int]]) -> None:
        for a, out, err in ours:
            a.close()
            os.close(out)
            os.close(err)

    def exits(self, timeout: float) -> list[dict[str, Any]]:
        """The zygote's report on the children of the last spawn: status, CPU seconds, max RSS, deadline hit."""
        self.ctl.settimeout(timeout)
        try:
            reply = _load(self.ctl.recv(1 << 20))
        except (OSError, ValueError) as e:
            raise SandboxFailure(f"the sandbox process did not report exits: {e}") from None
        if "exits" not in reply:
            raise SandboxFailure("the sandbox process went away")
        self.waiting = reply.get("waiting")
        return reply["exits"]

    def hang_up(self) -> None:
        """Tell the zygote we are gone (it kills its children and exits); ``close`` still waits for it."""
        try:
            self.ctl.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def close(self) -> None:
        try:
            self.ctl.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _load(data: bytes) -> dict[str, Any]:
    """A message from the zygote (``marshal`` data: the zygote is ours, and no program can reach its socket)."""
    try:
        message = marshal.loads(data) if data else {}
    except (EOFError, TypeError) as e:
        raise ValueError(f"not a message ({e})") from None
    if not isinstance(message, dict):
        raise ValueError("not a message")
    return message


def explain(error: str) -> str:
    """A zygote start-up error as what is missing and how to get it."""
    hints = {
        "needs root": "run giftgen as root (CI containers usually are), e.g. `sudo -E giftgen verify ...`",
        "Landlock": "it needs Linux >= 5.13 built with CONFIG_SECURITY_LANDLOCK=y and `landlock` in the lsm= boot "
                    "parameter (see /sys/kernel/security/lsm)",
        "unshare": "it needs mount, network, IPC, UTS and pid namespaces (CONFIG_NAMESPACES; in a container, "
                   "CAP_SYS_ADMIN)",
        "mount": "it needs to mount tmpfs and proc in a private mount namespace (CAP_SYS_ADMIN; Linux >= 5.8 for "
                 "proc's hidepid=invisible,subset=pid)",
        "seccomp": "it needs seccomp filters (CONFIG_SECCOMP_FILTER)",
        "architecture": "only x86_64 and aarch64 are supported",
    }
    for key, hint in hints.items():
        if key in error:
            return f"the sandbox cannot start: {error}; {hint}"
    return f"the sandbox cannot start: {error}"
