"""Inside the sandbox: lock the freshly forked process down, say "ready", then run one role.

Contract. ``main`` runs in a child the zygote has just forked as pid 1 of a new pid namespace (inside the
zygote's own mount, network, IPC and UTS namespaces and its minimal root); ``warm_main`` in one forked ahead of
time, which locks down first and then waits for its program's descriptors and limits. Neither returns. In
order, before any untrusted byte is read: own session; rlimits; an unprivileged uid and gid of its own, no
supplementary groups; parent-death signal; no_new_privs; Landlock (read-only system and Python paths,
read-write scratch for the candidate, no TCP, no signals or abstract sockets outside its domain); every inherited
descriptor closed; seccomp (no new processes, no exec, no signals to groups, no tracing, no mounts, no
namespaces, unix sockets only); then descriptors 0-3 only (/dev/null, the stdout and stderr memfds, the socket to
the parent). Only then does it send ``{"ready": true}``: a message the program cannot take back, so a child that
dies before it is a sandbox failure and one that dies after it is the program's doing.

Roles: ``candidate`` (load a program, then answer a batch of calls, or the oracle's calls on a socket pair of
their own; or run the program as ``__main__`` on a stdin), ``oracle`` (run a problem's test code with the
program's functions replaced by proxies that call the candidate: the test code and its expected values never
enter the candidate's process, and the candidate's code never runs in the oracle's), ``probe`` (report what the
protections let through, for the start-up check).

What the program can still do inside: use CPU, memory, threads and disk up to the limits, read the Python
installation and system libraries, write its scratch directory, print, and lie about its own results. Nothing it
says is trusted: its replies are decoded as plain data and judged outside its process.
"""

from __future__ import annotations

import _signal
import builtins
import os
import resource
import signal
import sys
import traceback
import types
from typing import Any, NoReturn

from giftgen.sandbox import linux, richwire  # noqa: F401  (richwire: imported here, before the zygote's pivot)
from giftgen.sandbox.codec import Channel, Opaque, from_wire, to_wire

SETUP_FAILED = 121  # exit status of a child whose sandbox could not be set up
SOCK_FD = 3
ERROR_CAP = 2000


def main(spec: dict[str, Any], fds: list[int]) -> NoReturn:
    """Enter the sandbox described by ``spec`` with ``fds`` = [socket, stdout memfd, stderr memfd], then run."""
    try:
        _lock_down(spec, keep=fds)
        _attach(fds)
    except BaseException as e:
        _setup_failed(e)
    _run(spec)


def warm_main(spec: dict[str, Any], job_fd: int) -> NoReturn:
    """A child forked ahead of time: lock down now, then wait on ``job_fd`` (a socket only the zygote holds) for
    the program's descriptors and limits, and run. The lock-down overlaps the previous program's run."""
    try:
        _lock_down(spec, keep=[job_fd])
    except BaseException:
        os._exit(SETUP_FAILED)  # the zygote notices at hand-over and forks a fresh child instead
    try:
        import marshal
        import socket

        job_socket = socket.socket(fileno=job_fd)
        data, fds, _, _ = socket.recv_fds(job_socket, 1 << 16, 3)
        if len(fds) != 3:
            os._exit(SETUP_FAILED)
        job = marshal.loads(data)  # from the zygote, before any program byte is read
        job_socket.close()
        for name, value in job["rlimits"].items():  # only ever lower: the hard limits were set at lock-down
            resource.setrlimit(getattr(resource, name), (value, value))
        spec = {**spec, "role": job["role"], "max_frame": job["max_frame"]}
        _attach(fds)
    except BaseException as e:
        _setup_failed(e)
    _run(spec)


def _setup_failed(e: BaseException) -> NoReturn:
    """Report what failed, through whatever still works, then die (before "ready": a sandbox failure)."""
    try:
        os.write(2, f"sandbox setup failed: {type(e).__name__}: {e}\n".encode())
        Channel(_socket(SOCK_FD)).send({"setup_error": f"{type(e).__name__}: {e}"[:ERROR_CAP]}, timeout=1)
    except BaseException:
        pass
    os._exit(SETUP_FAILED)


def _run(spec: dict[str, Any]) -> NoReturn:
    status = 0
    try:
        channel = Channel(_socket(SOCK_FD), max_frame=spec["max_frame"], accept_fds=True)
        channel.send({"ready": True})
        job = channel.recv()
        role = spec["role"]
        if role == "candidate":
            status = _candidate(channel, job)
        elif role == "oracle":
            status = _oracle(channel, job)
        elif role == "probe":
            _probe(channel, job)
    except BaseException:
        status = 1
    finally:
        _flush()
        os._exit(status)


def _socket(fd: int) -> Any:
    import socket

    return socket.socket(fileno=fd)


# ------------------------------------------------------------------------------------------------ setup


def _lock_down(spec: dict[str, Any], keep: list[int]) -> None:
    """Everything but the program's descriptors: session, limits, uid, no_new_privs, Landlock, seccomp. Closes
    every inherited descriptor except ``keep`` (and 0-2, which ``_attach`` replaces)."""
    os.setsid()  # our own process group and session: kill(0, ...) reaches only us
    for name, value in spec["rlimits"].items():
        resource.setrlimit(getattr(resource, name), (value, value))
    uid = spec["uid"]
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    if os.getresuid() != (uid, uid, uid) or os.getresgid() != (uid, uid, uid):
        raise OSError("could not drop privileges")
    linux.prctl(linux.PR_SET_PDEATHSIG, signal.SIGKILL)  # after the uid change, which resets it
    linux.prctl(linux.PR_SET_DUMPABLE, 1)  # own /proc/self stays ours (for /dev/stdin); the uid is unique
    linux.prctl(linux.PR_SET_NO_NEW_PRIVS, 1)
    linux.landlock_restrict_self(spec["ruleset"])  # built once by the zygote (zygote.Zygote._ruleset)
    low = 3
    for fd in sorted(keep):  # the zygote's control socket, the rulesets, other children's descriptors: gone
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, 1 << 20)
    os.chdir(spec["scratch"] or "/")
    if spec["env"]:
        os.environ.update(spec["env"])  # the rest is inherited from the zygote (zygote.ENV)
    import tempfile

    tempfile.tempdir = None  # the zygote may have cached one; the child's is TMPDIR
    spec["seccomp"].install()
    sys.argv = [""]
    sys.setrecursionlimit(1000)
    import gc

    gc.enable()


def _attach(fds: list[int]) -> None:
    """Put the program's descriptors in place: 0 /dev/null, 1 and 2 the output memfds, 3 the parent's socket."""
    import fcntl

    high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in fds]  # out of 0-3, which dup2 overwrites
    for fd in fds:
        os.close(fd)
    sock, out, err = high
    devnull = os.open("/dev/null", os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(out, 1)
    os.dup2(err, 2)
    os.dup2(sock, SOCK_FD)
    for fd in high + [devnull]:
        if fd > SOCK_FD:
            os.close(fd)


def _flush() -> None:
    for stream in (sys.__stdout__, sys.__stderr__, sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            pass


def _error(e: BaseException, filename: str = "<program>") -> dict[str, str]:
    """Exception type, message and the program's part of the traceback, capped."""
    try:
        message = str(e)
    except BaseException:
        message = "<unprintable>"
    try:
        frames = [f for f in traceback.extract_tb(e.__traceback__) if f.filename == filename][-5:]
        tb = "".join(traceback.format_list(frames))
    except BaseException:
        tb = ""
    return {"type": type(e).__name__[:100], "msg": message[:ERROR_CAP], "tb": tb[-ERROR_CAP:]}


# ------------------------------------------------------------------------------------------------ candidate


def _module(name: str) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__dict__["__builtins__"] = builtins
    sys.modules[name] = module
    return module


def _compile(channel: Channel, code: str) -> types.CodeType | None:
    try:
        return compile(code, "<program>", "exec")
    except (SyntaxError, ValueError, OverflowError, MemoryError, RecursionError) as e:
        if isinstance(e, SyntaxError):
            where = f" (line {e.lineno})" if e.lineno else ""
            channel.send({"syntax_error": f"{type(e).__name__}: {e.msg}{where}"[:ERROR_CAP]})
        else:
            channel.send({"syntax_error": f"{type(e).__name__}: {e}"[:ERROR_CAP]})
        return None


# Signals whose default action ends (or stops) a process and that Python leaves at that default. The program is
# pid 1 of its pid namespace, where the kernel drops such a signal rather than apply the default: a handler ends
# the program (an exit status of 128 + the signal; a stopped one would never answer), unless the program installs
# its own. SIGXCPU stays with the CPU limit.
_TERMINATING = tuple(getattr(signal, name) for name in (
    "SIGTERM", "SIGHUP", "SIGALRM", "SIGUSR1", "SIGUSR2", "SIGQUIT", "SIGVTALRM", "SIGPROF", "SIGIO", "SIGPWR",
    "SIGSTKFLT", "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGABRT") if hasattr(signal, name))


def _terminated(signum: int, frame: Any) -> None:
    os._exit(128 + signum)


_SET_HANDLER, _GET_HANDLER = _signal.signal, _signal.getsignal


def _program_set_handler(signalnum: Any, handler: Any) -> Any:
    """``_signal.signal`` as the program sees it (``signal.signal`` calls it, a reloaded ``signal`` module too): a
    signal of ``_TERMINATING`` put back to its default gets ``_terminated``, the default's effect for a pid 1."""
    if type(handler) is int and handler == 0 and type(signalnum) is int and signalnum in _TERMINATING:
        return _program_handler(_SET_HANDLER(signalnum, _terminated))
    return _program_handler(_SET_HANDLER(signalnum, handler))


def _program_get_handler(signalnum: Any) -> Any:
    return _program_handler(_GET_HANDLER(signalnum))


def _program_handler(handler: Any) -> Any:
    return 0 if handler is _terminated else handler  # shown as the default it stands for (SIG_DFL)


def _candidate(channel: Channel, job: dict[str, Any]) -> int:
    for sig in _TERMINATING:
        signal.signal(sig, _terminated)
    _signal.signal, _signal.getsignal = _program_set_handler, _program_get_handler
    if job.get("op") == "stdio":
        return _stdio(channel, job)
    compiled = _compile(channel, job["code"])
    if compiled is None:
        return 0
    module = _module("__candidate__")
    namespace = module.__dict__
    try:
        if job.get("setup"):
            exec(compile(job["setup"], "<setup>", "exec"), namespace)
            for name in job.get("own") or ():  # the functions under test are the program's, never the setup's
                namespace.pop(name, None)
        exec(compiled, namespace)
    except BaseException as e:
        channel.send({"load_error": _error(e)})
        return 0
    names = [k for k, v in list(namespace.items())[:5000] if not k.startswith("__") and callable(v)]
    channel.send({"loaded": names})
    while True:
        message = channel.recv()
        op = message.get("op")
        if op == "calls":  # a batch: answered one reply per call, as each finishes
            for call in message["calls"]:
                channel.send(_call(namespace, call), timeout=None)
        elif op == "serve" and channel.fds:  # answer the oracle's calls, one at a time, on the socket it came with
            oracle = Channel(_socket(channel.fds.pop(0)), max_frame=1 << 30)
            richwire.CALL_BACK = _caller(oracle)  # the test's functions among the arguments: called over there
            while True:
                try:
                    call = oracle.recv()
                except EOFError:
                    return 0
                oracle.send(_call(namespace, call, rich=True), timeout=None)
        else:
            return 0


def _call(namespace: dict[str, Any], message: dict[str, Any], rich: bool = False) -> dict[str, Any]:
    """One call; ``rich`` (the oracle's calls): numpy and pandas results keep their types (see ``richwire``)."""
    try:
        fn = _resolve(namespace, message["fn"])
        args = from_wire(message["args"], rich=True)
        kwargs = from_wire(message["kwargs"], rich=True)
        result = fn(*args, **kwargs)
    except BaseException as e:
        return {"raised": _error(e)}
    try:
        reply = {"ok": to_wire(result, rich=rich)}
    except BaseException as e:  # a value whose conversion fails is not plain data
        reply = {"ok": {"x": f"unencodable ({type(e).__name__})"}}
    # For `assert f(x)`: the truth of a value that is not plain data (a re.Match), and for `assert f(x) is True`
    # whether the value is the singleton itself (numpy's True_ arrives as true, and is not True). The program
    # could return True just as well, so believing either grants nothing the test did not. A value whose bool()
    # raises has no truth: both `assert f(x)` and `assert not f(x)` fail on it, as in Python.
    reply["singleton"] = result is None or result is True or result is False
    try:
        reply["truth"] = bool(result)
    except BaseException:
        pass
    return reply


# Exceptions a test's function raised, rebuilt by type name for the program (pandas retries on some of them)
_REBUILT = {e.__name__: e for e in (ValueError, TypeError, KeyError, IndexError, AttributeError, ZeroDivisionError,
                                    ArithmeticError, LookupError, OverflowError, NotImplementedError)}


def _caller(oracle: Channel) -> Any:
    """The program's side of a call back into a function of the test (``df.apply(func)``): the oracle runs it."""

    def call_back(index: int, args: tuple, kwargs: dict) -> Any:
        oracle.send({"cb": index, "args": to_wire(list(args), rich=True), "kwargs": to_wire(kwargs, rich=True)},
                    timeout=None)
        reply = oracle.recv()
        if isinstance(reply, dict) and "ok" in reply:
            return from_wire(reply["ok"], rich=True)
        info = reply.get("raised") if isinstance(reply, dict) and isinstance(reply.get("raised"), dict) else {}
        raise _REBUILT.get(str(info.get("type")), RuntimeError)(str(info.get("msg", "the test's function raised")))

    return call_back


def _resolve(namespace: dict[str, Any], name: str) -> Any:
    """The function under test: a module-level callable, or LeetCode's ``Solution().name``."""
    fn = namespace.get(name)
    if fn is not None and callable(fn):
        return fn
    solution = namespace.get("Solution")
    if isinstance(solution, type) and hasattr(solution, name):
        return getattr(solution(), name)
    raise NameError(f"name {name!r} is not defined")


def _stdio(channel: Channel, job: dict[str, Any]) -> int:
    # stdin is a file in the scratch directory, unlinked once open: sys.stdin, sys.stdin.buffer, open(0) and
    # /dev/stdin (a link through /proc/self/fd) all read it, and it is seekable like a judge's input file.
    fd = os.open(".stdin", os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    data = job["stdin"].encode("utf-8", "surrogateescape")
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    os.lseek(fd, 0, os.SEEK_SET)
    os.dup2(fd, 0)
    os.close(fd)
    os.unlink(".stdin")
    compiled = _compile(channel, job["code"])
    if compiled is None:
        return 1
    channel.send({"compiled": True})  # the last message the parent believes: the program can write fd 3 too
    import atexit

    atexit._clear()  # the program's exit hooks run when it ends, as the interpreter runs them; none of the zygote's
    module = _module("__main__")
    stdout, stderr = sys.stdout, sys.stderr
    status = 0
    raised = None
    try:
        if job.get("setup"):
            exec(compile(job["setup"], "<setup>", "exec"), module.__dict__)
        exec(compiled, module.__dict__)
    except SystemExit as e:
        code = e.code
        if code is None:
            status = 0
        elif issubclass(type(code), int):  # as the interpreter exits: the value as a C long (-1 past it), & 0xFF
            value = int.__index__(code)
            status = (value if -(1 << 63) <= value < 1 << 63 else -1) & 0xFF
        else:
            try:
                print(code, file=sys.stderr)
            except BaseException:
                pass
            status = 1
    except BaseException as e:
        raised = _error(e)
        status = 1
    try:
        # Python's exit: the atexit hooks (fast-output idioms write the buffered output there), then the streams
        # are flushed; an exception in a hook is reported and does not change the exit status.
        atexit._run_exitfuncs()
    except BaseException:
        pass
    for stream in (stdout, stderr):
        try:
            stream.flush()
        except BaseException:
            pass
    try:
        channel.send({"done": {"status": status, "raised": raised}}, timeout=1)
    except BaseException:
        pass
    return status


# ------------------------------------------------------------------------------------------------ oracle


class CandidateRaised(BaseException):
    """Raised in the test code where a proxied call into the program raised. A BaseException of its own, so
    that no test construct mistakes it for its own control flow (a StopIteration ends ``map``'s iteration)."""


def _candidate_info(info: Any) -> dict[str, str]:
    info = info if isinstance(info, dict) else {}
    # what the program sent, capped: it goes on to the parent in our result
    return {"type": str(info.get("type"))[:100], "msg": str(info.get("msg", ""))[:ERROR_CAP],
            "tb": str(info.get("tb", ""))[:ERROR_CAP]}


def _importable(name: str) -> bool:
    try:
        __import__(name)
        return True
    except ImportError:
        return False


def _oracle(channel: Channel, job: dict[str, Any]) -> int:
    import ast

    # The program answers on a socket of its own (passed with the job): it never sees the test code, and what it
    # sends is decoded here as plain data; our verdicts go to the parent on our socket, which it cannot reach.
    candidate = Channel(_socket(channel.fds.pop(0)), max_frame=job.get("max_reply", 16 << 20))

    class CandidateGone(BaseException):
        pass

    # Any exception out of a call into the program fails the test that made the call, whatever the test code
    # does with it (catch it, or end an iteration on it): the first is kept here until the test ends.
    raised: list[dict[str, str]] = []
    gone: list[str] = []

    def proxy(name: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            # the test's functions among the arguments stay here; the program calls them back by number
            outer, richwire.CALLBACKS = richwire.CALLBACKS, []
            try:
                candidate.send({"fn": name, "args": to_wire(list(args), rich=True), "kwargs": to_wire(kwargs, rich=True)},
                               timeout=None)
                while True:
                    reply = candidate.recv()
                    if not (isinstance(reply, dict) and "cb" in reply):
                        break
                    candidate.send(_call_back(reply), timeout=None)
            except (EOFError, OSError) as e:  # it died (or broke the frames): the parent judges how
                gone.append(str(e))
                raise CandidateGone(str(e)) from None
            except ValueError:
                return Opaque("reply that is not plain data")
            finally:
                richwire.CALLBACKS = outer
            if not isinstance(reply, dict):
                return Opaque("reply that is not plain data")
            if "ok" in reply:
                try:
                    return from_wire(reply["ok"], rich=True)
                except (ValueError, RecursionError, MemoryError):
                    return Opaque("reply that is not plain data")
            info = _candidate_info(reply.get("raised"))
            raised.append(info)
            raise CandidateRaised(f"{info['type']}: {info['msg']}")

        call.__name__ = call.__qualname__ = name
        return call

    def _call_back(request: dict[str, Any]) -> dict[str, Any]:
        """Run the test's function the program called back, on the arguments it sent (decoded as data)."""
        callbacks = richwire.CALLBACKS or []
        index = request.get("cb")
        try:
            if type(index) is not int or not 0 <= index < len(callbacks):
                raise LookupError(f"no function number {index!r}")
            args, kwargs = from_wire(request.get("args"), rich=True), from_wire(request.get("kwargs"), rich=True)
            if type(args) is not list or type(kwargs) is not dict or not all(type(k) is str for k in kwargs):
                raise TypeError("malformed arguments")
            return {"ok": to_wire(callbacks[index](*args, **kwargs), rich=True)}
        except (CandidateRaised, CandidateGone):
            raise
        except BaseException as e:
            return {"raised": _error(e, "<test>")}

    namespace = _module("__test__").__dict__
    kind = job["kind"]
    sources = [job.get("setup") or ""] + (job["asserts"] if kind == "assert" else [job["code"]])
    helpers = job.get("helpers") or ""  # the prompt's own code (HumanEval/32's poly): the test's, not the program's
    entry = job.get("entry_point")
    candidates = set(job.get("names") or [])
    try:
        exec(compile(helpers, "<test>", "exec"), namespace)
        exec(compile(sources[0], "<test>", "exec"), namespace)
        if entry:  # the setup and the prompt's code run before the program, whose own definition then wins
            namespace.pop(entry, None)  # (a setup's `from math import gcd` is not the program's gcd)
        if kind == "check":
            exec(compile(sources[1], "<test>", "exec"), namespace)
    except BaseException as e:
        channel.send({"op": "test_error", "error": _error(e, "<test>")})
        return 0
    # Names the test code uses but does not define: the entry point and the program's other functions become
    # proxies (as if the test ran in the program's namespace), standard modules are imported (MBPP asserts use
    # `math` without importing it).
    used: set[str] = set()
    for source in sources:
        try:
            used |= {n.id for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Name)}
        except SyntaxError:
            pass
    if entry:
        used.add(entry)
    # The test's own names come first: its definitions, builtins, then standard modules (a program's top-level
    # `def sys()` is not the `sys` an MBPP assert means); only the entry point is always the program's.
    proxies: dict[str, Any] = {}
    for name in sorted(used):
        if name in namespace:
            continue
        if name == entry:
            namespace[name] = proxies[name] = proxy(name)
        elif hasattr(builtins, name):
            continue
        elif name in sys.stdlib_module_names and _importable(name):
            namespace[name] = __import__(name)
        elif name in candidates:
            namespace[name] = proxies[name] = proxy(name)
    tests = job["asserts"] if kind == "assert" else ["check(candidate)"]
    for index, source in enumerate(tests):
        channel.send({"op": "start", "test": index})
        raised.clear()
        namespace.update(proxies)  # a test that rebound `test` (`train, test = test(df)`) does not spoil the next
        try:
            if kind == "assert":
                exec(compile(source, "<test>", "exec"), namespace)
            else:
                namespace["check"](namespace.get(entry) if entry else None)
            result: dict[str, Any] = {"status": "pass"}
        except BaseException as e:
            if isinstance(e, AssertionError) and not raised:
                result = {"status": "failed", "error": _error(e, "<test>")}
            else:
                result = {"status": "test_raised", "error": _error(e, "<test>")}
        if gone:
            channel.send({"op": "gone", "test": index, "error": gone[0][:ERROR_CAP]})
            return 0
        if raised:
            result = {"status": "raised", "error": raised[0]}
        channel.send({"op": "result", "test": index, **result})
    channel.send({"op": "done"})
    return 0


# ------------------------------------------------------------------------------------------------ probe


def _probe(channel: Channel, job: dict[str, Any]) -> None:
    """Try what must fail; report what happened (the parent decides whether the sandbox holds)."""
    import errno
    import socket

    def attempt(fn: Any) -> str:
        try:
            fn()
            return "allowed"
        except OSError as e:
            return errno.errorcode.get(e.errno, str(e.errno)) if e.errno else str(e)
        except BaseException as e:
            return type(e).__name__

    def shmget() -> None:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        if libc.shmget(0, 4096, 0o1600) == -1:  # IPC_PRIVATE, IPC_CREAT
            raise OSError(ctypes.get_errno(), "shmget")

    def fork() -> None:
        pid = os.fork()
        if pid == 0:
            os._exit(0)

    status = {}
    try:
        for line in open("/proc/self/status"):
            key, _, value = line.partition(":")
            if key in ("NoNewPrivs", "Seccomp", "Uid", "CapEff"):
                status[key] = value.split()
    except OSError as e:
        status["error"] = [str(e)]
    try:
        with open("/proc/self/net/dev") as f:
            interfaces = sorted(line.split(":")[0].strip() for line in f.readlines()[2:])
    except OSError as e:
        interfaces = [f"error: {e}"]
    report = {
        "uid": os.getuid(),
        "pid": os.getpid(),
        "ppid": os.getppid(),
        "status": status,
        "interfaces": interfaces,
        "inet": attempt(lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM)),
        "kill_parent": attempt(lambda: os.kill(job["parent_pid"], 0)),
        "read_outside": attempt(lambda: os.listdir(job["outside_file"])),
        "write_outside": attempt(lambda: open(os.path.join(job["outside_dir"], "probe"), "wb").close()),
        "read_python": attempt(lambda: __import__("colorsys")),
        "write_scratch": attempt(lambda: open("probe.txt", "w").close()),
        "memfd": attempt(lambda: os.memfd_create("probe")),
        "sysv_shm": attempt(shmget),
        "rlimit_as": resource.getrlimit(resource.RLIMIT_AS)[1],
        "rlimit_fsize": resource.getrlimit(resource.RLIMIT_FSIZE)[1],
        "rlimit_cpu": resource.getrlimit(resource.RLIMIT_CPU)[1],
        "environ": sorted(os.environ),
    }
    channel.send({"probe": report})
    # The attempts the seccomp filter answers with SIGSYS: the parent expects this process to die of it. Signal 0
    # delivers nothing, so even an unprotected kill(-1, 0) is harmless.
    fatal = job.get("fatal")
    if fatal == "fork":
        fork()
    elif fatal == "kill_all":
        os.kill(-1, 0)
    elif fatal == "kill_group":
        os.kill(0, 0)
    elif fatal == "exec":
        os.execv("/bin/true", ["true"])
    if fatal:
        channel.send({"survived": fatal})

