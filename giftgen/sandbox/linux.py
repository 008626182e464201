"""Thin ctypes wrappers over the Linux interfaces the sandbox is built from (Python 3.11 has no ``os.unshare``).

Contract: every function raises ``OSError`` (with the errno and the call's name) when the kernel refuses, so a
protection is never silently skipped. Nothing here decides policy; ``zygote`` and ``child`` do. Covered: namespaces
(``unshare``, ``setns``), mounts, ``prctl``, ``fork`` without the interpreter's after-fork handlers, Landlock
(filesystem, TCP and scope rules) and a seccomp-BPF deny list.
Architectures: x86_64 and aarch64 (``ARCH`` is ``None`` elsewhere, and the sandbox refuses to start).
"""

from __future__ import annotations

import ctypes
import os
import platform
import stat
import struct

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long

# ------------------------------------------------------------------------------------------------ constants

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLONE_NEWTIME = 0x00000080
CLONE_THREAD = 0x00010000
_NAMESPACE_FLAGS = (
    CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET
    | CLONE_NEWTIME
)

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MNT_DETACH = 2

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_NO_NEW_PRIVS = 38
PR_GET_NO_NEW_PRIVS = 39
PR_GET_SECCOMP = 21

AF_UNIX = 1

# Syscall numbers per architecture: the generic ones first, then the deny list for seccomp.
_X86_64 = {
    "landlock_create_ruleset": 444, "landlock_add_rule": 445, "landlock_restrict_self": 446,
    "seccomp": 317, "clone": 56, "clone3": 435, "socket": 41, "setsockopt": 54, "pidfd_open": 434, "kill": 62,
    "fcntl": 72,
    "signal": {"tkill": (200, 1), "tgkill": (234, 2), "rt_sigqueueinfo": (129, 1), "rt_tgsigqueueinfo": (297, 2),
               "pidfd_send_signal": (424, 1)},  # (number, index of the signal argument)
    "fatal": {"fork": 57, "vfork": 58, "execve": 59, "execveat": 322},
    "deny": {
        "ptrace": 101, "process_vm_readv": 310,
        "process_vm_writev": 311, "kcmp": 312, "pidfd_getfd": 438, "process_madvise": 440, "mount": 165,
        "umount2": 166, "pivot_root": 155, "chroot": 161, "unshare": 272, "setns": 308, "open_tree": 428,
        "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433, "mount_setattr": 442,
        "bpf": 321, "perf_event_open": 298, "userfaultfd": 323, "keyctl": 250, "add_key": 248,
        "request_key": 249, "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
        "kexec_load": 246, "kexec_file_load": 320, "init_module": 175, "finit_module": 313,
        "delete_module": 176, "reboot": 169, "swapon": 167, "swapoff": 168, "acct": 163, "quotactl": 179,
        "syslog": 103, "iopl": 172, "ioperm": 173, "personality": 135, "name_to_handle_at": 303,
        "open_by_handle_at": 304, "lookup_dcookie": 212, "vhangup": 153, "uselib": 134,
        "settimeofday": 164, "clock_settime": 227, "clock_adjtime": 305, "adjtimex": 159,
        "sethostname": 170, "setdomainname": 171, "move_pages": 279, "migrate_pages": 256,
        # memory and state outside RLIMIT_AS, or that outlive the program (System V IPC, POSIX message queues)
        "memfd_create": 319, "memfd_secret": 447, "shmget": 29, "shmat": 30, "shmctl": 31, "shmdt": 67,
        "semget": 64, "semop": 65, "semctl": 66, "semtimedop": 220, "msgget": 68, "msgsnd": 69, "msgrcv": 70,
        "msgctl": 71, "mq_open": 240, "mq_unlink": 241, "mq_timedsend": 242, "mq_timedreceive": 243,
        "mq_notify": 244, "mq_getsetattr": 245,
        # channels to programs running at the same moment: locks and watches on the files every root holds
        "flock": 73, "inotify_init": 253, "inotify_init1": 294, "inotify_add_watch": 254, "fanotify_init": 300,
    },
}
_AARCH64 = {
    "landlock_create_ruleset": 444, "landlock_add_rule": 445, "landlock_restrict_self": 446,
    "seccomp": 277, "clone": 220, "clone3": 435, "socket": 198, "setsockopt": 208, "pidfd_open": 434, "kill": 129,
    "fcntl": 25,
    "signal": {"tkill": (130, 1), "tgkill": (131, 2), "rt_sigqueueinfo": (138, 1), "rt_tgsigqueueinfo": (240, 2),
               "pidfd_send_signal": (424, 1)},
    "fatal": {"execve": 221, "execveat": 281},
    "deny": {
        "ptrace": 117, "process_vm_readv": 270, "process_vm_writev": 271,
        "kcmp": 272, "pidfd_getfd": 438, "process_madvise": 440, "mount": 40, "umount2": 39,
        "pivot_root": 41, "chroot": 51, "unshare": 97, "setns": 268, "open_tree": 428, "move_mount": 429,
        "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433, "mount_setattr": 442, "bpf": 280,
        "perf_event_open": 241, "userfaultfd": 282, "keyctl": 219, "add_key": 217, "request_key": 218,
        "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427, "kexec_load": 104,
        "kexec_file_load": 294, "init_module": 105, "finit_module": 273, "delete_module": 106, "reboot": 142,
        "swapon": 224, "swapoff": 225, "acct": 89, "quotactl": 60, "syslog": 116, "personality": 92,
        "name_to_handle_at": 264, "open_by_handle_at": 265, "lookup_dcookie": 18, "vhangup": 58,
        "settimeofday": 170, "clock_settime": 112, "clock_adjtime": 266, "adjtimex": 171,
        "sethostname": 161, "setdomainname": 162, "move_pages": 239, "migrate_pages": 238,
        "memfd_create": 279, "memfd_secret": 447, "shmget": 194, "shmctl": 195, "shmat": 196, "shmdt": 197,
        "semget": 190, "semctl": 191, "semtimedop": 192, "semop": 193, "msgget": 186, "msgctl": 187,
        "msgrcv": 188, "msgsnd": 189, "mq_open": 180, "mq_unlink": 181, "mq_timedsend": 182,
        "mq_timedreceive": 183, "mq_notify": 184, "mq_getsetattr": 185,
        "flock": 32, "inotify_init1": 26, "inotify_add_watch": 27, "fanotify_init": 262,
    },
}
_AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
_TABLES = {"x86_64": _X86_64, "aarch64": _AARCH64}

_machine = platform.machine().lower()
ARCH: str | None = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}.get(_machine)
NR: dict = _TABLES.get(ARCH or "", {})


# ------------------------------------------------------------------------------------------------ calls


def _check(result: int, name: str) -> int:
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{name}: {os.strerror(err)}")
    return result


def syscall(name: str, *args: int | ctypes.c_void_p | None) -> int:
    if name not in NR:
        raise OSError(38, f"{name}: not supported on {_machine}")
    return _check(_libc.syscall(ctypes.c_long(NR[name]), *args), name)


def unshare(flags: int) -> None:
    _check(_libc.unshare(ctypes.c_int(flags)), "unshare")


def setns(fd: int, nstype: int) -> None:
    _check(_libc.setns(ctypes.c_int(fd), ctypes.c_int(nstype)), "setns")


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    def b(s: str | None) -> bytes | None:
        return None if s is None else os.fsencode(s)

    result = _libc.mount(b(source), b(target), b(fstype), ctypes.c_ulong(flags), b(data))
    _check(result, f"mount {target}")


def umount(target: str, flags: int = MNT_DETACH) -> None:
    _check(_libc.umount2(os.fsencode(target), ctypes.c_int(flags)), f"umount {target}")


_prctl = _libc.prctl
_prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
_prctl.restype = ctypes.c_int


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    return _check(_prctl(option, arg2, arg3, arg4, arg5), f"prctl({option})")


def pivot_root(new_root: str, put_old: str) -> None:
    nr = NR["deny"]["pivot_root"]
    _check(_libc.syscall(ctypes.c_long(nr), os.fsencode(new_root), os.fsencode(put_old)), "pivot_root")


# fork(2) itself, called with the GIL held (PyDLL): the child skips CPython's after-fork work (threading's and
# random's handlers, runtime locks re-made), which writes to some 170 shared pages, each a copy-on-write fault.
# Sound only in a process with a single thread, which holds no interpreter lock but the GIL (see ``zygote``).
_raw_fork = ctypes.PyDLL(None, use_errno=True).fork
_raw_fork.argtypes = []
_raw_fork.restype = ctypes.c_int


def fork() -> int:
    """``os.fork`` for a single-threaded caller, without the interpreter's after-fork handlers in the child."""
    return _check(_raw_fork(), "fork")


# ------------------------------------------------------------------------------------------------ landlock

LANDLOCK_CREATE_RULESET_VERSION = 1
LANDLOCK_RULE_PATH_BENEATH = 1

FS_EXECUTE = 1 << 0
FS_WRITE_FILE = 1 << 1
FS_READ_FILE = 1 << 2
FS_READ_DIR = 1 << 3
FS_REMOVE_DIR = 1 << 4
FS_REMOVE_FILE = 1 << 5
FS_MAKE_CHAR = 1 << 6
FS_MAKE_DIR = 1 << 7
FS_MAKE_REG = 1 << 8
FS_MAKE_SOCK = 1 << 9
FS_MAKE_FIFO = 1 << 10
FS_MAKE_BLOCK = 1 << 11
FS_MAKE_SYM = 1 << 12
FS_REFER = 1 << 13  # ABI 2
FS_TRUNCATE = 1 << 14  # ABI 3
FS_IOCTL_DEV = 1 << 15  # ABI 5
NET_BIND_TCP = 1 << 0  # ABI 4
NET_CONNECT_TCP = 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0  # ABI 6
SCOPE_SIGNAL = 1 << 1

FILE_ACCESS = FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_TRUNCATE | FS_IOCTL_DEV
READ_ACCESS = FS_EXECUTE | FS_READ_FILE | FS_READ_DIR


def landlock_abi() -> int:
    """The Landlock ABI version of the running kernel, 0 when Landlock is unavailable."""
    try:
        return syscall("landlock_create_ruleset", None, ctypes.c_size_t(0),
                       ctypes.c_uint32(LANDLOCK_CREATE_RULESET_VERSION))
    except OSError:
        return 0


def landlock_fs_handled(abi: int) -> int:
    access = (1 << 13) - 1  # ABI 1: EXECUTE .. MAKE_SYM
    if abi >= 2:
        access |= FS_REFER
    if abi >= 3:
        access |= FS_TRUNCATE
    if abi >= 5:
        access |= FS_IOCTL_DEV
    return access


class Landlock:
    """Build a ruleset that handles every access the kernel knows, add path rules, then ``restrict_self``."""

    def __init__(self, abi: int):
        if abi < 1:
            raise OSError(95, "Landlock is not available")
        self.abi = abi
        self.fs = landlock_fs_handled(abi)
        net = (NET_BIND_TCP | NET_CONNECT_TCP) if abi >= 4 else 0
        scoped = (SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL) if abi >= 6 else 0
        if abi >= 6:
            attr = struct.pack("=QQQ", self.fs, net, scoped)
        elif abi >= 4:
            attr = struct.pack("=QQ", self.fs, net)
        else:
            attr = struct.pack("=Q", self.fs)
        buf = ctypes.create_string_buffer(attr, len(attr))
        self.fd = syscall("landlock_create_ruleset", buf, ctypes.c_size_t(len(attr)), ctypes.c_uint32(0))

    def allow(self, path: str, access: int, *, missing_ok: bool = True) -> None:
        try:
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except FileNotFoundError:
            if missing_ok:
                return
            raise
        try:
            if not stat.S_ISDIR(os.fstat(fd).st_mode):
                access &= FILE_ACCESS
            access &= self.fs
            rule = struct.pack("=Qi", access, fd)
            buf = ctypes.create_string_buffer(rule, len(rule))
            syscall("landlock_add_rule", ctypes.c_int(self.fd), ctypes.c_int(LANDLOCK_RULE_PATH_BENEATH), buf,
                    ctypes.c_uint32(0))
        finally:
            os.close(fd)

    def restrict_self(self) -> None:
        landlock_restrict_self(self.fd)
        os.close(self.fd)


def landlock_restrict_self(ruleset_fd: int) -> None:
    """Enforce a ruleset on the calling thread (no_new_privs must be set). The ruleset can be built once, in the
    zygote, and enforced by each child: rules refer to inodes, which are the same in every child."""
    syscall("landlock_restrict_self", ctypes.c_int(ruleset_fd), ctypes.c_uint32(0))


# ------------------------------------------------------------------------------------------------ seccomp

_BPF_LD_W_ABS = 0x20
_BPF_JEQ = 0x15
_BPF_JGE = 0x35
_BPF_JSET = 0x45
_BPF_RET = 0x06
_RET_ALLOW = 0x7FFF0000
_RET_KILL_PROCESS = 0x80000000
_RET_ERRNO = 0x00050000
SECCOMP_SET_MODE_FILTER = 1
EPERM, EACCES, ENOSYS = 1, 13, 38


def _ins(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k & 0xFFFFFFFF)


# Signals no handler takes back (SIGKILL, SIGSTOP) or that a fault would deliver (SIGILL, SIGTRAP, SIGBUS, SIGFPE,
# SIGSEGV, SIGSYS): a program is pid 1 of its pid namespace, where the kernel drops the ones it sends itself, so
# sending one (to itself: nothing else is in its namespace) is fatal here, as it would be anywhere else. SIGABRT
# is not among them: abort() ends the process with a fault of its own once its signal is dropped, and the child
# handles a SIGABRT sent to itself.
SELF_FATAL_SIGNALS = (4, 5, 7, 8, 9, 11, 19, 31)

# fcntl commands that lock (F_GETLK, F_SETLK, F_SETLKW and their OFD forms), lease (F_SETLEASE) or watch a
# directory (F_NOTIFY): a channel to programs running at the same moment on other workers; and F_SETPIPE_SZ (a
# pipe's buffer, kernel memory outside RLIMIT_AS: up to 1 MiB each, 64 MiB per uid).
_FCNTL_LOCKS = (5, 6, 7, 36, 37, 38, 1024, 1026, 1031)
# setsockopt(SOL_SOCKET, ...) options that size a socket's buffers: kernel memory outside RLIMIT_AS (a unix socket
# pair raised to the system's maximum held 8 MiB, so 120 of them 1 GB under a 1 GiB limit).
SOL_SOCKET = 1
_SOCKET_BUFFERS = (7, 8, 32, 33)  # SO_SNDBUF, SO_RCVBUF, SO_SNDBUFFORCE, SO_RCVBUFFORCE


def seccomp_program() -> bytes:
    """The BPF filter. Fatal (the process dies of SIGSYS, so a program cannot shrug the attempt off and still
    pass): starting a process (fork, vfork, clone without CLONE_THREAD or with namespace flags), exec, kill()
    aimed at a process group or at every process (pid <= 0), and sending itself a signal of ``SELF_FATAL_SIGNALS``
    (kill, tkill, tgkill, rt_(tg)sigqueueinfo, pidfd_send_signal), which the kernel would drop for a pid 1.
    Refused with EPERM: tracing, mounts, namespaces, kernel-wide knobs and the like (``NR["deny"]``); with EACCES:
    sockets other than unix ones; clone3 answers ENOSYS so that libc creates threads with clone. Memory a program
    could hold outside its address space (and so outside RLIMIT_AS) or leave behind for the next program is refused
    with EPERM too: memfd_create, System V shared memory, semaphores and message queues, POSIX message queues (POSIX
    shared memory needs /dev/shm, which the root does not have), and raising a socket's or a pipe's buffers
    (setsockopt SO_SNDBUF/SO_RCVBUF and their FORCE forms, fcntl F_SETPIPE_SZ). So are channels to programs
    running at the same moment: flock, fcntl record locks, leases and directory notifications (other fcntl
    commands are allowed), inotify and fanotify. Everything else is allowed: Landlock, the namespaces and the
    unprivileged uid carry the rest."""
    if ARCH is None:
        raise OSError(95, f"seccomp filter: unsupported architecture {_machine}")
    kill, allow = _ins(_BPF_RET, _RET_KILL_PROCESS), _ins(_BPF_RET, _RET_ALLOW)
    prog = [
        _ins(_BPF_LD_W_ABS, 4),  # seccomp_data.arch
        _ins(_BPF_JEQ, _AUDIT_ARCH[ARCH], 1, 0),
        kill,
        _ins(_BPF_LD_W_ABS, 0),  # seccomp_data.nr
    ]
    if ARCH == "x86_64":  # the x32 ABI shares the arch value: refuse all of it
        prog += [_ins(_BPF_JGE, 0x40000000, 0, 1), _ins(_BPF_RET, _RET_ERRNO | EPERM)]
    for nr in sorted(NR["fatal"].values()):
        prog += [_ins(_BPF_JEQ, nr, 0, 1), kill]
    for nr in sorted(NR["deny"].values()):
        prog += [_ins(_BPF_JEQ, nr, 0, 1), _ins(_BPF_RET, _RET_ERRNO | EPERM)]
    prog += [_ins(_BPF_JEQ, NR["clone3"], 0, 1), _ins(_BPF_RET, _RET_ERRNO | ENOSYS)]
    # Each block below starts with "not this syscall: jump past the block" and returns on every path inside.
    prog += [  # clone: a thread (CLONE_THREAD, no namespace flags) is fine, anything else is a new process
        _ins(_BPF_JEQ, NR["clone"], 0, 5),
        _ins(_BPF_LD_W_ABS, 16),  # args[0], low 32 bits (little endian)
        _ins(_BPF_JSET, CLONE_THREAD, 0, 2),
        _ins(_BPF_JSET, _NAMESPACE_FLAGS, 1, 0),
        allow,
        kill,
    ]
    fatal = len(SELF_FATAL_SIGNALS)
    prog += [  # kill(pid, sig): pid 0 (our group) or negative (a group, or -1: everyone) is fatal, as is a signal
        # of SELF_FATAL_SIGNALS (any pid it can name is its own, or one of its threads)
        _ins(_BPF_JEQ, NR["kill"], 0, fatal + 6),
        _ins(_BPF_LD_W_ABS, 16),
        _ins(_BPF_JEQ, 0, fatal + 3, 0),
        _ins(_BPF_JSET, 0x80000000, fatal + 2, 0),
        _ins(_BPF_LD_W_ABS, 24),  # args[1], the signal
        *[_ins(_BPF_JEQ, sig, fatal - k, 0) for k, sig in enumerate(SELF_FATAL_SIGNALS)],
        allow,
        kill,
    ]
    for nr, arg in sorted(NR["signal"].values()):  # the other ways to send a signal: to itself (or its threads)
        prog += [
            _ins(_BPF_JEQ, nr, 0, fatal + 3),
            _ins(_BPF_LD_W_ABS, 16 + 8 * arg),
            *[_ins(_BPF_JEQ, sig, fatal - k, 0) for k, sig in enumerate(SELF_FATAL_SIGNALS)],
            allow,
            kill,
        ]
    lock = len(_FCNTL_LOCKS)
    prog += [  # fcntl(fd, cmd, ...): record locks, leases and directory notifications are EPERM, the rest allowed
        _ins(_BPF_JEQ, NR["fcntl"], 0, lock + 3),
        _ins(_BPF_LD_W_ABS, 24),  # args[1], low 32 bits
        *[_ins(_BPF_JEQ, cmd, lock - k, 0) for k, cmd in enumerate(_FCNTL_LOCKS)],
        allow,
        _ins(_BPF_RET, _RET_ERRNO | EPERM),
    ]
    buffers = len(_SOCKET_BUFFERS)
    prog += [  # setsockopt(fd, level, optname, ...): socket buffer sizes are EPERM, other options allowed
        _ins(_BPF_JEQ, NR["setsockopt"], 0, buffers + 5),
        _ins(_BPF_LD_W_ABS, 24),  # args[1], low 32 bits: the level
        _ins(_BPF_JEQ, SOL_SOCKET, 0, buffers + 1),
        _ins(_BPF_LD_W_ABS, 32),  # args[2], low 32 bits: the option
        *[_ins(_BPF_JEQ, opt, buffers - k, 0) for k, opt in enumerate(_SOCKET_BUFFERS)],
        allow,
        _ins(_BPF_RET, _RET_ERRNO | EPERM),
    ]
    prog += [  # socket(domain, ...): unix sockets only
        _ins(_BPF_JEQ, NR["socket"], 0, 4),
        _ins(_BPF_LD_W_ABS, 16),
        _ins(_BPF_JEQ, AF_UNIX, 0, 1),
        allow,
        _ins(_BPF_RET, _RET_ERRNO | EACCES),
    ]
    prog.append(allow)
    return b"".join(prog)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


class SeccompFilter:
    """A BPF program ready to install: built once (in the zygote), installed by each child in one system call."""

    def __init__(self, program: bytes):
        self._buffer = ctypes.create_string_buffer(program, len(program))
        self._fprog = _SockFprog(len(program) // 8, ctypes.cast(self._buffer, ctypes.c_void_p))

    def install(self) -> None:
        """Install on the calling thread (no_new_privs must be set)."""
        syscall("seccomp", ctypes.c_uint(SECCOMP_SET_MODE_FILTER), ctypes.c_uint(0), ctypes.byref(self._fprog))
