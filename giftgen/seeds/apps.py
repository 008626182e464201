"""APPS (Hendrycks et al. 2021) and APPS+ style rows: competitive-programming problems, stdin/stdout or call-based.

Local file (``--path``, ``.jsonl``, ``.jsonl.gz`` or a ``.json`` list) in the ``codeparrot/apps`` layout:
``problem_id``, ``question``, ``solutions`` (a JSON list of programs, as a string), ``input_output`` (a JSON
object with ``inputs``, ``outputs`` and, for call-based problems, ``fn_name``), ``difficulty``, ``starter_code``.
Rows in the APPS+ layout read by the GiFT release (``prompt`` holding the question in a docstring,
``canonical_solution``, ``fn_name``, ``inputs``, ``outputs``, ``input_type``, ``difficulty``) are accepted too.
Without ``--path`` the ``train.jsonl`` / ``test.jsonl`` files of the Hub dataset ``codeparrot/apps`` are streamed
(its loading script no longer runs under ``datasets`` 4 and later, its data files still do).

``--split``: ``train`` or ``test`` (Hub only; a file is one split, named by its rows' ``split`` field or by its file
name), a difficulty (``introductory``, ``interview``, ``competition``; several joined with ``+``), both as
``test:introductory``, or ``all``. Hub default: ``train``; file default: every row.

Rows:
- stdin/stdout problems: tests kind ``stdio`` (inputs and outputs as strings; APPS sometimes stores them as lists
  of lines, which are joined with newlines); entry point null, prompt head empty.
- call-based problems (``fn_name``): tests kind ``call`` with the outputs given; prompt head = the starter code up
  to and including the ``def`` line of ``fn_name`` (LeetCode problems: a method of ``class Solution``, as in the
  starter code). APPS stores most call outputs wrapped in an extra list (``[[3], [5]]`` for a function returning
  3, then 5). When every output is a one-element list, the wrapper is removed and the tests say
  ``wrapped_outputs: true``; a verifier that wants APPS's own leniency should then also accept ``[result] ==
  [expected]`` forms, i.e. compare against both the unwrapped and the wrapped value (APPS's checker accepts
  either).
- reference: the first solution that compiles under Python 3 and defines the entry point; null when none does.
- APPS solutions assume a block of imports that APPS's checker runs first; the tests carry it as ``setup``.
- Problems without tests are skipped (a note on stderr says how many): nothing could verify their codes.
- problem_id: ``apps/<split>/<problem_id>`` (APPS numbers train and test problems separately).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from giftgen.errors import InputError
from giftgen.progress import log
from giftgen.seeds.common import (
    check_reference,
    entry_def,
    header_end_line,
    hub_error,
    normalize_code,
    parse,
    read_records,
    seed_row,
)

HUB_ID = "codeparrot/apps"
HUB_SPLITS = ("train", "test")
DIFFICULTIES = ("introductory", "interview", "competition")

# The modules APPS's checker imports before running a solution (apps/eval/testing_util.py), minus numpy, which
# the sandbox need not have. Solutions and LeetCode starter code (`List[int]`) rely on them.
SETUP = (
    "import sys\nimport time\nimport itertools\nimport collections\nimport math\nimport fractions\n"
    "import random\nimport heapq\nimport bisect\nimport string\nimport re\n"
    "from itertools import accumulate, product, permutations, combinations\n"
    "from collections import Counter, OrderedDict, deque, defaultdict, ChainMap\n"
    "from functools import lru_cache\n"
    "from math import sqrt, sin, cos, tan, ceil, fabs, floor, gcd, exp, log, log2\n"
    "from typing import List, Tuple, Dict, Optional, Set\n"
    "from heapq import *\n"
)


def load(path: str | None, split: str | None) -> Iterator[dict[str, Any]]:
    splits, difficulties = parse_apps_split(split, hub=path is None)
    if path is None:
        items: Iterable[tuple[str, str, dict[str, Any]]] = _hub_items(splits or ["train"])
    else:
        items = _file_items(path, splits)
    yield from _rows(items, difficulties, split, path)


def parse_apps_split(split: str | None, hub: bool) -> tuple[list[str] | None, list[str] | None]:
    """``--split`` as (splits or None for any, difficulties or None for any)."""
    if split is None or split.strip() == "all":
        return None, None
    text = split.strip()
    split_part, _, difficulty_part = text.partition(":") if ":" in text else ("", "", text)
    names = [p.strip() for p in difficulty_part.split("+") if p.strip()]
    splits = [split_part] if split_part else []
    difficulties = []
    for name in names:
        if name in DIFFICULTIES:
            difficulties.append(name)
        elif not split_part:
            splits.append(name)
        else:
            raise _split_error(text, hub)
    if hub and any(s not in HUB_SPLITS for s in splits):
        raise _split_error(text, hub)
    if len(splits) > 1 and difficulties:
        raise _split_error(text, hub)
    return splits or None, difficulties or None


def _split_error(text: str, hub: bool) -> InputError:
    splits = "train, test" if hub else "the file's split"
    return InputError(
        f"apps has no split {text!r}; valid: {splits}, a difficulty ({', '.join(DIFFICULTIES)}, joined with '+'), "
        f"SPLIT:DIFFICULTY, or all"
    )


def _hub_items(splits: list[str]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for split in splits:
        dataset = f"{HUB_ID} ({split})"
        try:
            from datasets import load_dataset

            ds = load_dataset("json", data_files=f"hf://datasets/{HUB_ID}/{split}.jsonl", split="train", streaming=True)
            iterator = iter(ds)
        except Exception as e:  # offline, missing repo, changed layout: all end the same way for the user
            raise hub_error(dataset, e) from None
        number = 0
        while True:
            # only the dataset's own reads are guarded, so that our InputErrors keep their messages
            try:
                item = next(iterator)
            except StopIteration:
                break
            except Exception as e:
                raise hub_error(dataset, e) from None
            number += 1
            yield split, f"{dataset} row {number}", item


def _file_items(path: str, splits: list[str] | None) -> Iterator[tuple[str, str, dict[str, Any]]]:
    label = file_split_label(path)
    for number, item in read_records(path, "apps"):
        row_split = str(item.get("split") or label)
        if splits is None or row_split in splits:
            yield row_split, f"{path}, item {number}", item


def file_split_label(path: str) -> str:
    """The split a file holds, from its name: ``train``/``test``/``valid`` when the name says so, else the stem."""
    stem = Path(path).name.split(".")[0]
    for word in ("train", "test", "valid"):
        if re.search(rf"(^|[^a-z]){word}", stem.lower()):
            return word
    return stem


def _rows(
    items: Iterable[tuple[str, str, dict[str, Any]]],
    difficulties: list[str] | None,
    split: str | None,
    path: str | None,
) -> Iterator[dict[str, Any]]:
    seen_splits: set[str] = set()
    produced = skipped = 0
    for row_split, where, item in items:
        seen_splits.add(row_split)
        if difficulties is not None and item.get("difficulty") not in difficulties:
            continue
        row = to_row(item, row_split, where)
        if row is None:
            skipped += 1
            continue
        produced += 1
        yield row
    if skipped:
        log(f"apps: skipped {skipped} problem(s) without tests")
    if produced == 0 and skipped == 0 and split is not None and path is not None:
        raise InputError(
            f"{path}: no problems match split {split!r}; the file holds split(s) {', '.join(sorted(seen_splits))}"
        )


def to_row(item: Mapping[str, Any], split: str, where: str) -> dict[str, Any] | None:
    """One seed row, or None when the problem has no tests."""
    if "question" in item and ("input_output" in item or "solutions" in item):
        return _apps_row(item, split, where)
    if "canonical_solution" in item and "inputs" in item and "outputs" in item:
        return _apps_plus_row(item, split, where)
    if "query" in item and "code" in item and isinstance(item.get("test"), Mapping):
        return _release_row(item, split, where)
    raise InputError(
        f"{where}: neither an APPS row (question, solutions, input_output), an APPS+ row "
        f"(prompt, canonical_solution, fn_name, inputs, outputs) nor a GiFT release row (id, query, code, test, "
        f"std_based)"
    )


def _apps_row(item: Mapping[str, Any], split: str, where: str) -> dict[str, Any] | None:
    io = _json_field(item.get("input_output"), where, "input_output") or {}
    if not isinstance(io, Mapping):
        raise InputError(f"{where}: input_output must be a JSON object")
    inputs, outputs = io.get("inputs") or [], io.get("outputs") or []
    if not inputs or len(inputs) != len(outputs):
        return None
    solutions = _json_field(item.get("solutions"), where, "solutions") or []
    if not isinstance(solutions, list):
        raise InputError(f"{where}: solutions must be a JSON list of programs")
    fn_name = io.get("fn_name") or None
    starter = (item.get("starter_code") or "").replace("\r\n", "\n")
    return _row(
        problem_id=item.get("problem_id"),
        split=split,
        description=str(item["question"]).strip(),
        solutions=[s for s in solutions if isinstance(s, str)],
        fn_name=fn_name,
        starter=starter,
        inputs=inputs,
        outputs=outputs,
        where=where,
    )


def _apps_plus_row(item: Mapping[str, Any], split: str, where: str) -> dict[str, Any] | None:
    inputs, outputs = item.get("inputs") or [], item.get("outputs") or []
    if not inputs or len(inputs) != len(outputs):
        return None
    if "question" in item:
        description = str(item["question"]).strip()
    else:
        # the release's reading (APPS/utils.py): the docstring's text as it is, whitespace kept (base-style prompts
        # strip it; the release-style prompt inserts it unchanged)
        prompt = str(item.get("prompt") or "")
        found = re.search(r'    """(.*?)"""\n', prompt, re.DOTALL) or re.search(r'"""(.*?)"""', prompt, re.DOTALL)
        description = found.group(1) if found and found.group(1).strip() else prompt.strip()
    return _plus_row(item, split, where, description, str(item["canonical_solution"]), item.get("fn_name") or None,
                     item.get("input_type"), item.get("inputs") or [], item.get("outputs") or [])


def _release_row(item: Mapping[str, Any], split: str, where: str) -> dict[str, Any] | None:
    """A row of the GiFT release's APPS+ seed files (``apps+valid-*.json``): ``id``, ``query`` (the description,
    kept as it is), ``code``, ``test`` {``fn_name``, ``inputs``, ``outputs``} and ``std_based`` (stdin problems,
    whose code is a function ``fn_name()`` the release calls with stdin patched)."""
    test = item["test"]
    inputs, outputs = test.get("inputs") or [], test.get("outputs") or []
    if not inputs or len(inputs) != len(outputs):
        return None
    query = str(item["query"])
    if not query.strip():
        raise InputError(f"{where}: the problem has no description")
    return _plus_row({"problem_id": item.get("id"), **item}, split, where, query, str(item["code"]),
                     test.get("fn_name") or None, item.get("std_based"), inputs, outputs, raw=str(item["code"]))


def _plus_row(item: Mapping[str, Any], split: str, where: str, description: str, solution: str,
              fn_name: str | None, input_type: Any, inputs: list[Any], outputs: list[Any],
              raw: str | None = None) -> dict[str, Any] | None:
    solution = solution.replace("\r\n", "\n")
    if fn_name and _is_stdio(input_type):
        # APPS+ wraps stdin programs in a function that the checker calls with stdin patched; as a stdio seed
        # the reference must be a complete program, so it calls that function itself.
        solution = solution.rstrip() + f"\n\n\n{fn_name}()\n"
        fn_name = None
    starter = str(item.get("starter_code") or "")
    return _row(
        problem_id=next((item[k] for k in ("problem_id", "id", "task_id") if item.get(k) is not None), None),
        split=split,
        description=description,
        solutions=[solution],
        fn_name=fn_name,
        starter=starter,
        inputs=inputs,
        outputs=outputs,
        where=where,
        raw=raw,
    )


def _is_stdio(input_type: Any) -> bool:
    if isinstance(input_type, str):
        return input_type.strip().lower() in ("stdin", "std", "stdio", "standard_input", "standard input", "true")
    return bool(input_type)


def _row(
    *,
    problem_id: Any,
    split: str,
    description: str,
    solutions: list[str],
    fn_name: str | None,
    starter: str,
    inputs: list[Any],
    outputs: list[Any],
    where: str,
    raw: str | None = None,
) -> dict[str, Any]:
    if problem_id is None:
        raise InputError(f"{where}: no problem_id")
    if not description:
        raise InputError(f"{where}: the problem has no description")
    reference = None
    for solution in solutions:
        candidate = normalize_code(solution)
        if check_reference(candidate, fn_name) is None:
            reference = candidate
            break
    if fn_name:
        unwrapped, wrapped = unwrap_outputs(outputs)
        tests: dict[str, Any] = {
            "kind": "call",
            "fn_name": fn_name,
            "inputs": [args if isinstance(args, list) else [args] for args in inputs],
            "outputs": unwrapped,
            "atol": 0,
            "setup": SETUP,
        }
        if wrapped:
            tests["wrapped_outputs"] = True
        head = starter_head(starter, fn_name, reference)
    else:
        tests = {
            "kind": "stdio",
            "inputs": [_text(x) for x in inputs],
            "outputs": [_text(x) for x in outputs],
            "setup": SETUP,
        }
        head = ""
    return seed_row(
        problem_id=f"apps/{split}/{problem_id}",
        source="apps",
        split=split,
        description=description,
        reference=reference,
        entry_point=fn_name,
        prompt_head=head,
        doctest=None,
        tests=tests,
        raw_reference=raw if reference is not None else None,
    )


def unwrap_outputs(outputs: list[Any]) -> tuple[list[Any], bool]:
    """Remove APPS's extra list around each call output when every output has one; (outputs, whether removed)."""
    if outputs and all(isinstance(o, list) and len(o) == 1 for o in outputs):
        return [o[0] for o in outputs], True
    return list(outputs), False


def starter_head(starter: str, fn_name: str, reference: str | None = None) -> str:
    """The starter code up to and including the ``def`` line of ``fn_name``.

    Without a starter ``def``: the reference's own ``def`` line (only that line: the code before it may hold
    helpers that would give the solution away), else a bare ``def fn_name(*args):``.
    """
    lines = starter.replace("\t", "    ").splitlines()
    pattern = re.compile(rf"^\s*def\s+{re.escape(fn_name)}\s*\(")
    for i, line in enumerate(lines):
        if pattern.match(line):
            end = i
            # a signature may span lines: go on to the line that ends the header
            while end < len(lines) - 1 and not lines[end].rstrip().endswith(":"):
                end += 1
            return "\n".join(line.rstrip() for line in lines[: end + 1]) + "\n"
    tree = parse(reference) if reference else None
    node = entry_def(tree, fn_name) if tree is not None else None
    if node is not None and node.col_offset == 0 and reference is not None:
        header = reference.splitlines()[node.lineno - 1 : header_end_line(reference, node)]
        return "\n".join(header) + "\n"
    return f"def {fn_name}(*args):\n"


def _json_field(value: Any, where: str, field: str) -> Any:
    if isinstance(value, str):
        if not value.strip():
            return None
        try:
            return json.loads(value)
        except json.JSONDecodeError as e:
            raise InputError(f"{where}: {field} is not valid JSON ({e})") from None
    return value


def _text(value: Any) -> str:
    if isinstance(value, list):
        return "\n".join(str(v) for v in value)
    return str(value)
