"""Correctness of the verifier on real benchmarks: every reference solution passes, simple mutants fail exactly
when an independent (unsandboxed) harness says they fail, and APPS-style stdin/stdout problems are judged like
competitive-programming judges do.

The MBPP+ run executes about 42k calls twice (once for the expected outputs, once as the candidate): about a
minute on two cores, most of it inside a few reference solutions that are slow in CPython (Mbpp/599 sums ranges
of 10^8). It stays in the default run on purpose: it is the test that shows no correct program is refused.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from giftgen.sandbox import Executor, Limits, SandboxUnavailable
from tests.sandbox_support import humaneval_rows, mbpp_rows, mbppplus_rows, no_leftovers

# Generous limits: a loaded CI machine must not turn a slow reference into a failure.
LIMITS = Limits(timeout=20.0, program_timeout=120.0)


@pytest.fixture(scope="module")
def ex():
    try:
        executor = Executor(limits=LIMITS)
        executor.start()
    except SandboxUnavailable as e:
        pytest.skip(f"sandbox unavailable on this machine: {e}")
    yield executor
    executor.close()
    assert no_leftovers()


def _failures(ex, items):
    verdicts = list(ex.map(items, ahead=256))
    assert len(verdicts) == len(items)
    return [(p["problem_id"], v.status, (v.error or "")[:200]) for (_, p), v in zip(items, verdicts, strict=True)
            if not v.passed]


# ------------------------------------------------------------------------------------------------ references


def test_every_mbpp_reference_passes(ex, data_dir):
    items = list(mbpp_rows(data_dir))
    assert len(items) == 427
    assert _failures(ex, items) == []


def test_every_humaneval_reference_passes(ex, data_dir):
    items = list(humaneval_rows(data_dir))
    assert len(items) == 164
    modes = {ex.plan(p).mode for _, p in items}
    assert modes == {"calls", "oracle"}  # both paths are exercised
    assert _failures(ex, items) == []


def test_a_quarter_of_the_mbppplus_references_pass_on_base_and_plus_inputs(ex, data_dir):
    """Every fourth problem (100 of 399, about 11,000 inputs): the default tier's share of the test below, which
    takes four minutes on a busy 2-core machine."""
    items = list(mbppplus_rows(data_dir))[::4]
    assert len(items) == 100
    assert sum(ex.plan(p).size for _, p in items) > 10_000  # the plus inputs are in
    assert _failures(ex, items) == []


@pytest.mark.slow
def test_every_mbppplus_reference_passes_on_base_and_plus_inputs(ex, data_dir):
    items = list(mbppplus_rows(data_dir))
    assert len(items) == 399
    assert sum(ex.plan(p).size for _, p in items) > 40_000  # the plus inputs are in
    assert _failures(ex, items) == []


# ------------------------------------------------------------------------------------------------ mutants


class _FirstInt(ast.NodeTransformer):
    def __init__(self) -> None:
        self.done = False

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        if not self.done and type(node.value) is int:
            self.done = True
            return ast.copy_location(ast.Constant(node.value + 1), node)
        return node


def mutate(code: str, entry: str, kind: str) -> str | None:
    """The reference with its entry function returning a constant, its first integer literal off by one, or its
    first two parameters swapped; None when the mutation does not apply."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # old escape sequences in the benchmark code
        tree = ast.parse(code)
    fns = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == entry]
    if not fns:
        return None
    fn = fns[-1]
    if kind == "constant":
        fn.body = [ast.Return(ast.Constant("giftgen-mutant"))]
    elif kind == "off_by_one":
        bump = _FirstInt()
        for stmt in fn.body:
            bump.visit(stmt)
        if not bump.done:
            return None
    elif kind == "swapped":
        if len(fn.args.args) < 2:
            return None
        fn.args.args[0], fn.args.args[1] = fn.args.args[1], fn.args.args[0]
    return ast.unparse(ast.fix_missing_locations(tree))


NAIVE = Path(__file__).with_name("naive_harness.py")


def naive_verdicts(items) -> list[bool]:
    """What an independent, unsandboxed harness says: exec(program + tests) in a fork, pass = exit 0."""

    def test_code(problem):
        t = json.loads(problem["tests"])
        if t["kind"] == "assert":
            return t["setup"] + "\n" + "\n".join(t["asserts"])
        return t["code"] + f"\ncheck({t['entry_point']})\n"

    lines = "".join(json.dumps({"program": m, "tests": test_code(p)}) + "\n" for m, p in items)
    out = subprocess.run([sys.executable, str(NAIVE)], input=lines, capture_output=True, text=True, check=True)
    return [x == "1" for x in out.stdout.split()]


@pytest.mark.parametrize("kind", ["constant", "off_by_one", "swapped"])
def test_mutants_fail_exactly_when_an_independent_harness_fails_them(ex, data_dir, kind):
    rows = list(mbpp_rows(data_dir)) + list(humaneval_rows(data_dir))
    items = [(m, p) for c, p in rows if (m := mutate(c, p["entry_point"], kind))]
    verdicts = list(ex.map(items, ahead=256))
    naive = naive_verdicts(items)
    disagree = [(p["problem_id"], v.status) for (_, p), v, n in zip(items, verdicts, naive, strict=True)
                if v.passed != n]
    assert disagree == []
    killed = sum(not v.passed for v in verdicts)
    if kind == "constant":
        assert killed == len(items) == len(rows)
    else:  # equivalent mutants (a symmetric function, a literal that does not matter) survive, in both harnesses
        assert len(items) > 150 and killed > 0.6 * len(items)


@pytest.mark.parametrize("every", [4, pytest.param(1, marks=pytest.mark.slow)], ids=["a quarter", "all"])
def test_mbppplus_constant_mutants_fail(ex, data_dir, every):
    """Each reference made to return a constant fails: every fourth problem in the default tier (a minute for all
    399 on a quiet 2-core machine), all of them in the slow one."""
    items = [(mutate(c, p["entry_point"], "constant"), p) for c, p in list(mbppplus_rows(data_dir))[::every]]
    assert len(items) == -(-399 // every) and all(m for m, _ in items)
    assert len(_failures(ex, items)) == len(items)


# ------------------------------------------------------------------------------------------------ stdio problems

PAIRS = {"problem_id": "apps/pairs", "tests": json.dumps({"kind": "stdio", "inputs": [
    "3\n1 2\n10 20\n-5 5\n", "1\n7 8\n", "2\n1000000000 1000000000\n0 0\n"],
    "outputs": ["3\n30\n0\n", "15\n", "2000000000\n0\n"]})}
MEAN = {"problem_id": "apps/mean", "tests": json.dumps({"kind": "stdio", "inputs": ["4\n1 2 3 4\n", "3\n1 1 2\n"],
                                                       "outputs": ["2.5\n", "1.3333333333\n"]})}
BIG = {"problem_id": "apps/big", "tests": json.dumps({"kind": "stdio",
                                                     "inputs": ["200000\n" + " ".join(["7"] * 200000) + "\n"],
                                                     "outputs": ["1400000\n"]})}
READ_PAIRS = "t = int(input())\nrows = [tuple(map(int, input().split())) for _ in range(t)]\n"

STDIO_CASES = [
    ("correct", PAIRS, READ_PAIRS + "for a, b in rows:\n    print(a + b)\n", "pass"),
    ("wrong", PAIRS, READ_PAIRS + "for a, b in rows:\n    print(a - b)\n", "wrong_answer"),
    ("partial_output", PAIRS, READ_PAIRS + "for a, b in rows[:-1]:\n    print(a + b)\n", "wrong_answer"),
    ("one_line_for_all", PAIRS, READ_PAIRS + "print(*[a + b for a, b in rows])\n", "wrong_answer"),
    ("extra_line", PAIRS, READ_PAIRS + "for a, b in rows:\n    print(a + b)\nprint('done')\n", "wrong_answer"),
    ("spaces_and_blank_lines", PAIRS, READ_PAIRS + "for a, b in rows:\n    print('  ', a + b, ' ')\nprint()\n",
     "pass"),
    ("no_final_newline", PAIRS, READ_PAIRS + "import sys\nsys.stdout.write('\\n'.join(str(a + b) for a, b in rows))\n",
     "pass"),
    ("crlf", PAIRS, READ_PAIRS + "import sys\nsys.stdout.write(''.join(f'{a + b}\\r\\n' for a, b in rows))\n", "pass"),
    ("crash_after_output", PAIRS, READ_PAIRS + "for a, b in rows:\n    print(a + b)\nraise ValueError('late')\n",
     "runtime_error"),
    ("nonzero_exit", PAIRS, READ_PAIRS + "for a, b in rows:\n    print(a + b)\nexit(3)\n", "runtime_error"),
    ("float_precision", MEAN, "input()\nv = list(map(int, input().split()))\nprint(f'{sum(v) / len(v):.9f}')\n",
     "pass"),
    ("float_wrong", MEAN, "input()\nv = list(map(int, input().split()))\nprint(f'{sum(v) / len(v):.2f}')\n",
     "wrong_answer"),
    ("large_input", BIG, "import sys\ndata = sys.stdin.buffer.read().split()\nprint(sum(map(int, data[1:])))\n",
     "pass"),
]


@pytest.mark.parametrize("name, problem, code, status", STDIO_CASES, ids=[c[0] for c in STDIO_CASES])
def test_stdio_problems(ex, name, problem, code, status):
    verdict = ex.check(code, problem)
    assert verdict.status == status, verdict


def test_stdio_first_n_tests(data_dir):
    problem = {"problem_id": "apps/first", "tests": json.dumps(
        {"kind": "stdio", "inputs": ["1\n", "2\n", "3\n"], "outputs": ["1\n", "2\n", "999\n"]})}
    with Executor(workers=1, limits=LIMITS, max_tests=2) as first_two:
        verdict = first_two.check("print(input())\n", problem)
    assert verdict.passed and len(verdict.tests) == 2


def test_leetcode_style_and_json_outputs(ex):
    problem = {"problem_id": "apps/two-sum", "tests": json.dumps({
        "kind": "call", "fn_name": "twoSum", "inputs": [[[2, 7, 11, 15], 9], [[3, 2, 4], 6]],
        "outputs": [[0, 1], [1, 2]]})}
    solution = ("class Solution:\n    def twoSum(self, nums, target):\n        seen = {}\n"
                "        for i, n in enumerate(nums):\n            if target - n in seen:\n"
                "                return (seen[target - n], i)\n            seen[n] = i\n")
    assert ex.check(solution, problem).passed  # a tuple matches the JSON list
    assert ex.check(solution.replace("(seen[target - n], i)", "(i, seen[target - n])"), problem).status \
        == "wrong_answer"


# ------------------------------------------------------------------------------------------------ APPS through the seed loader

APPS_FILE = [  # the codeparrot/apps layout, read by giftgen.seeds.apps
    {"problem_id": 1, "question": "Add two numbers.", "difficulty": "introductory", "url": "", "starter_code": "",
     "solutions": json.dumps(["a, b = map(int, input().split())\nprint(a + b)\n"]),
     "input_output": json.dumps({"inputs": ["1 2\n", "10 -3\n"], "outputs": ["3\n", "7\n"]})},
    {"problem_id": 2, "question": "The largest element.", "difficulty": "interview", "url": "",
     "starter_code": "def largest(xs):\n\t",
     "solutions": json.dumps(["def largest(xs):\n    return max(xs)\n"]),
     "input_output": json.dumps({"fn_name": "largest", "inputs": [[[1, 5, 2]], [[7]]], "outputs": [[5], [7]]})},
    {"problem_id": 3, "question": "Sort, using the starter's imports.", "difficulty": "interview", "url": "",
     "starter_code": "class Solution:\n    def order(self, xs: List[int]) -> List[int]:\n        ",
     "solutions": json.dumps(["class Solution:\n    def order(self, xs: List[int]) -> List[int]:\n"
                              "        return sorted(xs, key=lambda v: (v % 2, v))\n"]),
     "input_output": json.dumps({"fn_name": "order", "inputs": [[[3, 2, 1, 4]]], "outputs": [[[2, 4, 1, 3]]]})},
]


def test_apps_rows_from_the_seed_loader(ex, tmp_path):
    from giftgen.seeds import load_seeds

    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(item) + "\n" for item in APPS_FILE))
    rows = list(load_seeds("apps", str(path), None))
    assert [json.loads(r["tests"])["kind"] for r in rows] == ["stdio", "call", "call"]
    assert [ex.check(r["reference"], r).status for r in rows] == ["pass", "pass", "pass"]  # `List` from the setup
    wrong = ["a, b = map(int, input().split())\nprint(a - b)\n", "def largest(xs):\n    return [max(xs)]\n",
             "class Solution:\n    def order(self, xs):\n        return sorted(xs)\n"]
    # APPS's own checker accepts `[result]` for wrapped outputs: so does this one
    assert [ex.check(code, r).status for code, r in zip(wrong, rows, strict=True)] == ["wrong_answer", "pass",
                                                                                      "wrong_answer"]
