"""Seed sources on the real benchmark files and on small files written here; the `giftgen seeds` command."""

from __future__ import annotations

import ast
import json
import re
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from giftgen.cli import main
from giftgen.errors import InputError
from giftgen.seeds import load_seeds
from giftgen.seeds.common import (
    SEED_COLUMNS,
    check_reference,
    doctest_from_assert,
    head_of,
    parse,
    parse_tests,
)

KINDS = {"mbpp": "assert", "mbppplus": "call", "humaneval": "check"}


@pytest.fixture(scope="module")
def real(data_dir: Path) -> dict[str, list[dict]]:
    return {
        "mbpp": list(load_seeds("mbpp", str(data_dir / "mbpp-sanitized.json"), "all")),
        "mbppplus": list(load_seeds("mbppplus", str(data_dir / "mbppplus-v0.1.0.jsonl"))),
        "humaneval": list(load_seeds("humaneval", str(data_dir / "HumanEval.jsonl.gz"))),
    }


def by_id(rows: list[dict], problem_id: str) -> dict:
    return next(r for r in rows if r["problem_id"] == problem_id)


def check_schema(row: dict) -> dict:
    """Every seed row, whatever its source: the columns, their types, a decodable tests object."""
    assert tuple(row)[: len(SEED_COLUMNS)] == SEED_COLUMNS
    for column in ("problem_id", "source", "split", "description", "prompt_head", "tests"):
        assert isinstance(row[column], str), column
    for column in ("reference", "entry_point", "doctest"):
        assert row[column] is None or isinstance(row[column], str), column
    assert row["description"].strip() == row["description"] and row["description"]
    assert row["problem_id"].startswith(row["source"] + "/")
    assert row["prompt_head"] == "" or row["prompt_head"].endswith("\n")
    tests = parse_tests(row["tests"])
    if row["reference"] is not None:
        assert check_reference(row["reference"], row["entry_point"]) is None, row["problem_id"]
    return tests


# --------------------------------------------------------------------------------------------------- real files


def test_row_counts(real, data_dir):
    assert len(real["mbpp"]) == 427
    assert Counter(r["split"] for r in real["mbpp"]) == {"test": 257, "train": 120, "validation": 43, "prompt": 7}
    seeds = list(load_seeds("mbpp", str(data_dir / "mbpp-sanitized.json")))
    assert len(seeds) == 170 and {r["split"] for r in seeds} == {"train", "prompt", "validation"}
    assert len(list(load_seeds("mbpp", str(data_dir / "mbpp-sanitized.json"), "train+validation"))) == 163
    assert len(real["mbppplus"]) == 399
    assert len(real["humaneval"]) == 164


@pytest.mark.parametrize("source", ["mbpp", "mbppplus", "humaneval"])
def test_every_row_fits_the_schema(real, source):
    rows = real[source]
    assert len({r["problem_id"] for r in rows}) == len(rows)
    for row in rows:
        tests = check_schema(row)
        assert row["source"] == source
        assert tests["kind"] == KINDS[source]
        # the prompt is a prefix of the reference, and ends with the entry point's def line
        assert row["reference"].startswith(row["prompt_head"]), row["problem_id"]
        tree = parse(row["reference"])
        assert row["entry_point"] in [n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]
        assert re.search(rf"def\s+{row['entry_point']}\s*\(", row["prompt_head"].rstrip().splitlines()[-1]) or (
            source == "humaneval"  # HumanEval/115 has an import between the def line and the docstring
        ), row["problem_id"]


def test_mbpp_literals(real):
    row = by_id(real["mbpp"], "mbpp/2")
    assert row["split"] == "prompt"
    assert row["description"] == "Write a function to find the shared elements from the given two lists."
    assert row["entry_point"] == "similar_elements"
    assert row["prompt_head"] == "def similar_elements(test_tup1, test_tup2):\n"
    assert row["doctest"] == ">>> set(similar_elements((3, 4, 5, 6),(5, 7, 4, 10)))\nset((4, 5))"
    tests = json.loads(row["tests"])
    assert tests["setup"] == "" and tests["asserts"][0].startswith("assert set(similar_elements((3, 4, 5, 6)")
    # helper after the entry point: the entry point is what the first assert calls
    assert by_id(real["mbpp"], "mbpp/223")["entry_point"] == "is_majority"
    # helpers before the entry point stay in the head, so the head is a prefix of the reference
    row = by_id(real["mbpp"], "mbpp/18")
    assert row["entry_point"] == "remove_dirty_chars"
    assert row["prompt_head"].startswith("NO_OF_CHARS = 256\ndef str_to_list(string): \n")
    assert row["prompt_head"].endswith("def remove_dirty_chars(string, second_string): \n")
    row = by_id(real["mbpp"], "mbpp/82")
    assert row["prompt_head"] == "import math\ndef volume_sphere(r):\n"
    assert row["doctest"] == ">>> volume_sphere(10)\n4188.790204786391"
    assert json.loads(row["tests"])["setup"] == "import math"
    assert by_id(real["mbpp"], "mbpp/787")["doctest"] == '>>> text_match_three("ac")\nFalse'


def test_mbppplus_literals(real):
    row = by_id(real["mbppplus"], "mbppplus/2")
    assert row["description"] == "Write a function to find the shared elements from the given two lists."
    assert row["doctest"] == ">>> set(similar_elements((3, 4, 5, 6),(5, 7, 4, 10)))\nset((4, 5))"
    assert row["reference"] == "def similar_elements(test_tup1, test_tup2):\n  return tuple(set(test_tup1) & set(test_tup2))\n"
    tests = json.loads(row["tests"])
    assert tests["fn_name"] == "similar_elements" and tests["outputs"] is None and tests["atol"] == 0
    assert tests["inputs"][0] == [[3, 4, 5, 6], [5, 7, 4, 10]]
    assert len(tests["plus_inputs"]) > 10
    # JSON has no tuples: the restored arguments travel as a Python literal
    assert ast.literal_eval(tests["inputs_py"])[0] == [(3, 4, 5, 6), (5, 7, 4, 10)]
    restored = ast.literal_eval(json.loads(by_id(real["mbppplus"], "mbppplus/124")["tests"])["inputs_py"])
    assert restored[0] == [0.0, 1j] and isinstance(restored[0][1], complex)
    assert json.loads(by_id(real["mbppplus"], "mbppplus/793")["tests"])["plus_inputs"] == []
    assert json.loads(by_id(real["mbppplus"], "mbppplus/737")["tests"])["output_not_none"] is True
    assert sum("inputs_py" in json.loads(r["tests"]) for r in real["mbppplus"]) == 56
    assert any(json.loads(r["tests"])["atol"] > 0 for r in real["mbppplus"])


def test_humaneval_literals(real):
    row = real["humaneval"][0]
    assert row["problem_id"] == "humaneval/0"
    assert row["prompt_head"] == (
        "from typing import List\n\n\ndef has_close_elements(numbers: List[float], threshold: float) -> bool:\n"
    )
    assert row["description"].startswith("Check if in given list of numbers, are any two numbers closer")
    assert ">>> has_close_elements([1.0, 2.0, 3.0], 0.5)\nFalse" in row["description"]
    assert row["doctest"] is None
    assert row["reference"].endswith("return False\n")
    tests = json.loads(row["tests"])
    assert tests["entry_point"] == "has_close_elements" and "def check(candidate)" in tests["code"]
    # a helper with its body, then the entry point's def line
    row = by_id(real["humaneval"], "humaneval/38")
    assert "def encode_cyclic(s: str):" in row["prompt_head"]
    assert row["prompt_head"].endswith("def decode_cyclic(s: str):\n")
    # the import before the docstring belongs to the head
    assert by_id(real["humaneval"], "humaneval/115")["prompt_head"].endswith("    import math\n")


def test_unknown_split_and_missing_file(data_dir, tmp_path):
    with pytest.raises(InputError, match=r"no split 'dev'; valid: prompt, test, validation, train"):
        list(load_seeds("mbpp", str(data_dir / "mbpp-sanitized.json"), "dev"))
    with pytest.raises(InputError, match="no split 'train'"):
        list(load_seeds("humaneval", str(data_dir / "HumanEval.jsonl.gz"), "train"))
    with pytest.raises(InputError, match="no such file"):
        list(load_seeds("mbpp", str(tmp_path / "nope.json")))
    with pytest.raises(InputError, match="no field 'prompt'; is this a HumanEval file"):
        wrong = tmp_path / "wrong.jsonl"
        wrong.write_text(json.dumps({"task_id": "x", "entry_point": "f"}) + "\n")
        list(load_seeds("humaneval", str(wrong)))
    with pytest.raises(InputError, match="unknown seed source"):
        list(load_seeds("nope"))


def test_hub_fails_clearly_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(InputError, match="could not load the Hub dataset 'google-research-datasets/mbpp"):
        list(load_seeds("mbpp"))
    with pytest.raises(InputError, match="could not load the Hub dataset 'codeparrot/apps"):
        list(load_seeds("apps", None, "test"))


def test_doctest_from_assert():
    assert doctest_from_assert("assert f('a==b') == 3") == ">>> f('a==b')\n3"
    assert doctest_from_assert("assert math.isclose(f(1), 2.5, rel_tol=0.001)") == ">>> f(1)\n2.5"
    assert doctest_from_assert("assert not f(1)") == ">>> f(1)\nFalse"
    assert doctest_from_assert("assert f(1)") == ">>> f(1)\nTrue"
    assert doctest_from_assert("x = 1") is None


def test_head_of_multiline_signature_and_methods():
    code = "import os\n\ndef f(a,\n      b: int = 2) -> int:\n    # why\n    return a\n"
    assert head_of(code, "f") == "import os\n\ndef f(a,\n      b: int = 2) -> int:\n"
    code = "class Solution:\n    def go(self, x):\n        return x\n"
    assert head_of(code, "go") == "class Solution:\n    def go(self, x):\n"
    with pytest.raises(ValueError, match="does not define 'g'"):
        head_of(code, "g")


# --------------------------------------------------------------------------------------------------- generic


GENERIC = [
    {
        "problem_id": "mine/add",
        "description": "Add two numbers.",
        "reference": "import math\n\ndef add(a, b):\n    return a + b\n",
        "entry_point": "add",
        "tests": {"kind": "assert", "setup": "", "asserts": ["assert add(1, 2) == 3"]},
        "doctest": ">>> add(1, 2)\n3",
        "difficulty": "easy",
    },
    {
        "problem_id": "mine/echo",
        "source": "mine",
        "split": "test",
        "description": "Print the input back.",
        "reference": "print(input())\n",
        "entry_point": None,
        "tests": json.dumps({"kind": "stdio", "inputs": ["hi\n"], "outputs": ["hi\n"]}),
    },
    {
        "problem_id": "mine/neg",
        "description": "Negate a number.",
        "reference": None,
        "entry_point": "neg",
        "prompt_head": "def neg(x)",
        "tests": {"kind": "call", "fn_name": "neg", "inputs": [[1], [2]], "outputs": [-1, -2]},
    },
]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_generic_rows(tmp_path):
    path = write_jsonl(tmp_path / "mine.jsonl", GENERIC)
    rows = list(load_seeds("generic", str(path)))
    assert [r["problem_id"] for r in rows] == ["mine/add", "mine/echo", "mine/neg"]
    add, echo, neg = rows
    for row in rows:
        check_schema({**row, "problem_id": "x/" + row["problem_id"], "source": "x"})
    assert add["source"] == "generic" and add["split"] == "train"
    assert add["prompt_head"] == "import math\n\ndef add(a, b):\n"  # derived from the reference
    assert add["difficulty"] == "easy"  # other columns pass through
    assert json.loads(add["tests"])["asserts"] == ["assert add(1, 2) == 3"]
    assert echo["source"] == "mine" and echo["prompt_head"] == "" and echo["split"] == "test"
    assert neg["prompt_head"] == "def neg(x)\n"
    assert [r["problem_id"] for r in load_seeds("generic", str(path), "test")] == ["mine/echo"]
    with pytest.raises(InputError, match=r"has no split 'valid'; it has test, train"):
        list(load_seeds("generic", str(path), "valid"))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"description": None}, r"line 2: column 'description' must be string, got NoneType"),
        ({"tests": {"kind": "exec", "code": ""}}, r"line 2, column 'tests': unknown kind 'exec'; valid kinds"),
        ({"tests": {"kind": "assert", "setup": ""}}, r"line 2, column 'tests': kind 'assert' needs the field 'asserts'"),
        ({"tests": "{not json"}, r"line 2, column 'tests': not valid JSON"),
        ({"reference": "def add(:\n"}, r"line 2: the reference does not compile"),
        ({"reference": "def plus(a, b):\n    return a + b\n"}, r"line 2: the reference does not define 'add'"),
        ({"problem_id": "mine/echo"}, r"line 2: problem_id 'mine/echo' already used at .*line 1"),
    ],
)
def test_generic_bad_rows(tmp_path, change, message):
    rows = [GENERIC[1], {**GENERIC[0], **change}]
    with pytest.raises(InputError, match=message):
        list(load_seeds("generic", str(write_jsonl(tmp_path / "bad.jsonl", rows))))


def test_generic_missing_column_names_line(tmp_path):
    rows = [GENERIC[0], {k: v for k, v in GENERIC[1].items() if k != "entry_point"}]
    path = write_jsonl(tmp_path / "bad.jsonl", rows)
    with pytest.raises(InputError, match=r"bad\.jsonl, line 2: missing column 'entry_point'"):
        list(load_seeds("generic", str(path)))
    with pytest.raises(InputError, match="reads a local file"):
        list(load_seeds("generic"))


# --------------------------------------------------------------------------------------------------- APPS

APPS = [
    {  # stdin/stdout
        "problem_id": 7,
        "question": "Read two integers and print their sum.\n\n-----Input-----\nTwo integers a and b.\n",
        "solutions": json.dumps(["print sum(map(int, raw_input().split()))", "a, b = map(int, input().split())\nprint(a + b)\n"]),
        "input_output": json.dumps({"inputs": ["1 2\n", ["3 4"]], "outputs": ["3\n", ["7"]]}),
        "difficulty": "introductory",
        "url": "https://example.com/7",
        "starter_code": "",
    },
    {  # call-based, outputs wrapped in an extra list as APPS stores them
        "problem_id": 8,
        "question": "Return the largest element of a list.",
        "solutions": json.dumps(["def helper(x):\n    return x\n\ndef largest(xs):\n    return max(xs)\n"]),
        "input_output": json.dumps({"fn_name": "largest", "inputs": [[[1, 5, 2]], [[7]]], "outputs": [[5], [7]]}),
        "difficulty": "interview",
        "url": "https://example.com/8",
        "starter_code": "def largest(xs):\n\t",
    },
    {  # LeetCode style: a method of class Solution, outputs not wrapped
        "problem_id": 9,
        "question": "Return the pair reversed.",
        "solutions": json.dumps(["class Solution:\n    def flip(self, pair: List[int]) -> List[int]:\n        return pair[::-1]\n"]),
        "input_output": json.dumps({"fn_name": "flip", "inputs": [[[1, 2]], [[3, 4]]], "outputs": [[2, 1], [4, 3]]}),
        "difficulty": "introductory",
        "url": "https://example.com/9",
        "starter_code": "class Solution:\n    def flip(self, pair: List[int]) -> List[int]:\n        ",
    },
    {  # no tests: skipped
        "problem_id": 10,
        "question": "Anything.",
        "solutions": "",
        "input_output": "",
        "difficulty": "competition",
        "url": "",
        "starter_code": "",
    },
]


def test_apps_file(tmp_path, capsys):
    path = write_jsonl(tmp_path / "train.jsonl", APPS)
    rows = list(load_seeds("apps", str(path)))
    assert "skipped 1 problem(s) without tests" in capsys.readouterr().err
    assert [r["problem_id"] for r in rows] == ["apps/train/7", "apps/train/8", "apps/train/9"]
    stdio, call, method = rows
    for row in rows:
        check_schema(row)
    tests = json.loads(stdio["tests"])
    assert tests["kind"] == "stdio" and tests["inputs"] == ["1 2\n", "3 4"] and tests["outputs"] == ["3\n", "7"]
    assert "import math" in tests["setup"]
    assert stdio["entry_point"] is None and stdio["prompt_head"] == "" and stdio["split"] == "train"
    # the first solution is Python 2; the first one that compiles is kept
    assert stdio["reference"] == "a, b = map(int, input().split())\nprint(a + b)\n"
    tests = json.loads(call["tests"])
    assert tests["kind"] == "call" and tests["fn_name"] == "largest"
    assert tests["inputs"] == [[[1, 5, 2]], [[7]]]
    assert tests["outputs"] == [5, 7] and tests["wrapped_outputs"] is True
    assert call["prompt_head"] == "def largest(xs):\n" and call["entry_point"] == "largest"
    tests = json.loads(method["tests"])
    assert tests["outputs"] == [[2, 1], [4, 3]] and "wrapped_outputs" not in tests
    assert method["prompt_head"] == "class Solution:\n    def flip(self, pair: List[int]) -> List[int]:\n"


def test_apps_splits(tmp_path):
    path = write_jsonl(tmp_path / "train.jsonl", APPS)
    assert [r["problem_id"] for r in load_seeds("apps", str(path), "introductory")] == ["apps/train/7", "apps/train/9"]
    assert [r["problem_id"] for r in load_seeds("apps", str(path), "train:interview")] == ["apps/train/8"]
    assert len(list(load_seeds("apps", str(path), "introductory+interview"))) == 3
    with pytest.raises(InputError, match="holds split"):
        list(load_seeds("apps", str(path), "test"))
    with pytest.raises(InputError, match="apps has no split 'test:easy'"):
        list(load_seeds("apps", str(path), "test:easy"))
    with pytest.raises(InputError, match="apps has no split 'valid'; valid: train, test"):
        list(load_seeds("apps", None, "valid"))
    with pytest.raises(InputError, match="neither an APPS row"):
        list(load_seeds("apps", str(write_jsonl(tmp_path / "x.jsonl", [{"problem_id": 1}]))))


def test_apps_plus_rows(tmp_path):
    rows = [
        {
            "problem_id": 3,
            "prompt": 'def solve():\n    """Print the sum of two integers read from stdin."""\n',
            "canonical_solution": "def solve():\n    a, b = map(int, input().split())\n    print(a + b)\n",
            "fn_name": "solve",
            "inputs": ["1 2\n"],
            "outputs": ["3\n"],
            "input_type": "stdin",
            "difficulty": "introductory",
        },
        {
            "problem_id": 4,
            "prompt": 'def double(x):\n    """Double x."""\n',
            "canonical_solution": "def double(x):\n    return 2 * x\n",
            "fn_name": "double",
            "inputs": [[1], [2]],
            "outputs": [2, 4],
            "input_type": "call",
            "difficulty": "introductory",
        },
    ]
    stdio, call = load_seeds("apps", str(write_jsonl(tmp_path / "apps+valid-introductory.jsonl", rows)))
    assert stdio["split"] == "valid" and stdio["problem_id"] == "apps/valid/3"
    assert stdio["description"] == "Print the sum of two integers read from stdin."
    assert stdio["entry_point"] is None and stdio["reference"].endswith("\n\n\nsolve()\n")
    assert json.loads(stdio["tests"])["kind"] == "stdio"
    assert call["entry_point"] == "double" and call["prompt_head"] == "def double(x):\n"
    assert json.loads(call["tests"])["outputs"] == [2, 4]


# --------------------------------------------------------------------------------------------------- CLI


def test_cli_seeds_all(data_dir):
    result = CliRunner().invoke(main, ["seeds", "mbpp", "--path", str(data_dir / "mbpp-sanitized.json"), "--split", "all"])
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 427
    assert json.loads(lines[0])["problem_id"] == "mbpp/2"


def test_cli_seeds_limit_and_output(data_dir, tmp_path):
    out = tmp_path / "he.jsonl"
    result = CliRunner().invoke(
        main, ["seeds", "humaneval", "--path", str(data_dir / "HumanEval.jsonl.gz"), "--limit", "5", "-o", str(out)]
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert [json.loads(line)["problem_id"] for line in out.read_text().splitlines()] == [
        f"humaneval/{i}" for i in range(5)
    ]


def test_cli_bad_split_is_one_line(data_dir):
    result = CliRunner().invoke(main, ["seeds", "mbpp", "--path", str(data_dir / "mbpp-sanitized.json"), "--split", "dev"])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1
    assert "no split 'dev'" in result.stderr and "train" in result.stderr
