"""Your own problems: a file of rows already in the seed schema (README, "Seed schema"), checked row by row.

Reads ``.jsonl``, ``.jsonl.gz``, ``.json`` (a list) or ``.parquet``. Required columns: ``problem_id`` (string),
``description`` (string), ``reference`` (string or null), ``entry_point`` (string or null), ``tests`` (an object or
its JSON string, of a valid kind). Optional: ``source`` (default ``generic``), ``split`` (default ``train``),
``prompt_head`` (default: derived from the reference as for MBPP, or empty for stdin/stdout problems),
``doctest``. Other columns pass through unchanged. A bad row is an error naming its line and the column.

``--split`` keeps the rows of one split (or several joined with ``+``); default: every row.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from giftgen.errors import InputError
from giftgen.records import read_rows
from giftgen.seeds.common import (
    SEED_COLUMNS,
    check_reference,
    head_of,
    parse_tests,
    read_records,
    require_file,
)

REQUIRED: dict[str, tuple[type, ...]] = {
    "problem_id": (str,),
    "description": (str,),
    "reference": (str, type(None)),
    "entry_point": (str, type(None)),
    "tests": (str, dict),
}
OPTIONAL: dict[str, tuple[type, ...]] = {
    "source": (str,),
    "split": (str,),
    "prompt_head": (str,),
    "doctest": (str, type(None)),
}


def load(path: str | None, split: str | None) -> Iterator[dict[str, Any]]:
    if path is None:
        raise InputError("the generic source reads a local file", hint="give it with --path FILE")
    rows = []
    seen: dict[str, str] = {}
    for where, item in _items(path):
        row = check_row(item, where)
        if row["problem_id"] in seen:
            raise InputError(f"{where}: problem_id {row['problem_id']!r} already used at {seen[row['problem_id']]}")
        seen[row["problem_id"]] = where
        rows.append(row)
    if split is None or split.strip() == "all":
        yield from rows
        return
    present = sorted({row["split"] for row in rows})
    wanted = [s.strip() for s in split.split("+") if s.strip()]
    missing = [s for s in wanted if s not in present]
    if missing or not wanted:
        raise InputError(f"{path} has no split {split!r}; it has {', '.join(present) or 'no rows'} (or all)")
    yield from (row for row in rows if row["split"] in wanted)


def _items(path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    if Path(path).name.lower().endswith(".parquet"):
        require_file(path, "generic")
        for number, item in enumerate(read_rows(path), start=1):
            yield f"{path}, row {number}", item
        return
    unit = "item" if Path(path).name.lower().endswith((".json", ".json.gz")) else "line"
    for number, item in read_records(path, "generic"):
        yield f"{path}, {unit} {number}", item


def check_row(item: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Validate one generic row and fill in the optional columns; columns outside the schema pass through."""
    for column, types in REQUIRED.items():
        if column not in item:
            raise InputError(f"{where}: missing column {column!r}")
        _check_type(item, column, types, where)
    for column, types in OPTIONAL.items():
        if column in item and item[column] is not None:
            _check_type(item, column, types, where)
    if not item["problem_id"].strip():
        raise InputError(f"{where}: problem_id is empty")
    if not item["description"].strip():
        raise InputError(f"{where}: description is empty")
    tests = parse_tests(item["tests"], f"{where}, column 'tests'")
    entry_point, reference = item["entry_point"], item["reference"]
    if tests["kind"] in ("check", "call") and not entry_point:
        raise InputError(f"{where}: tests of kind {tests['kind']!r} need an entry_point")
    if reference is not None:
        problem = check_reference(reference, entry_point)
        if problem is not None:
            raise InputError(f"{where}: the reference {problem}")
    prompt_head = item.get("prompt_head")
    if prompt_head is None:
        if entry_point and reference is not None:
            prompt_head = head_of(reference, entry_point)
        elif entry_point:
            raise InputError(f"{where}: give a prompt_head, or a reference that defines {entry_point!r}")
        else:
            prompt_head = ""
    elif prompt_head and not prompt_head.endswith("\n"):
        prompt_head += "\n"
    row = {
        "problem_id": item["problem_id"],
        "source": item.get("source") or "generic",
        "split": item.get("split") or "train",
        "description": item["description"].strip(),
        "reference": reference,
        "entry_point": entry_point,
        "prompt_head": prompt_head,
        "doctest": item.get("doctest"),
        "tests": item["tests"] if isinstance(item["tests"], str) else _dumps(tests),
    }
    row.update({k: v for k, v in item.items() if k not in SEED_COLUMNS})
    return row


def _check_type(item: Mapping[str, Any], column: str, types: tuple[type, ...], where: str) -> None:
    value = item[column]
    if not isinstance(value, types) or isinstance(value, bool):
        expected = " or ".join("null" if t is type(None) else {str: "string", dict: "object"}[t] for t in types)
        raise InputError(f"{where}: column {column!r} must be {expected}, got {type(value).__name__}")


def _dumps(tests: Mapping[str, Any]) -> str:
    return json.dumps(tests, ensure_ascii=False)
