"""HumanEval (Chen et al. 2021): 164 hand-written problems, each a function signature with a docstring.

Reads ``HumanEval.jsonl.gz`` (or ``.jsonl``) as published by OpenAI, or the Hub dataset
``openai/openai_humaneval``. Fields: ``task_id`` ("HumanEval/0"), ``prompt``, ``canonical_solution``, ``test``
(defines ``check(candidate)``), ``entry_point``. The only split is ``test``.

Row: description = the entry point's docstring, dedented (it includes the examples HumanEval writes there);
prompt head = the prompt before that docstring (imports, helper functions, the ``def`` line; in HumanEval/115 also
an ``import`` inside the function, which comes before the docstring); reference = prompt + canonical solution, one
complete program; doctest = null (the examples are part of the description); tests = kind ``check``.
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Iterator, Mapping
from typing import Any

from giftgen.errors import InputError
from giftgen.seeds.common import (
    entry_def,
    hub_error,
    normalize_code,
    parse,
    parse_split,
    read_records,
    require_fields,
    seed_row,
)

HUB_ID = "openai/openai_humaneval"
SPLITS = ("test",)
FIELDS = ("task_id", "prompt", "canonical_solution", "test", "entry_point")


def load(path: str | None, split: str | None) -> Iterator[dict[str, Any]]:
    parse_split(split, SPLITS, "test", "humaneval")
    if path is None:
        try:
            from datasets import load_dataset

            items = list(load_dataset(HUB_ID, split="test"))
        except Exception as e:  # offline, missing repo, changed layout: all end the same way for the user
            raise hub_error(HUB_ID, e) from None
        for item in items:
            yield to_row(item, f"{HUB_ID} {item.get('task_id')}")
        return
    for number, item in read_records(path, "humaneval"):
        where = f"{path}, line {number}"
        require_fields(item, FIELDS, where, "HumanEval")
        yield to_row(item, where)


def to_row(item: Mapping[str, Any], where: str) -> dict[str, Any]:
    prompt = item["prompt"].replace("\r\n", "\n")
    entry_point = item["entry_point"]
    head, description = split_prompt(prompt, entry_point, where)
    return seed_row(
        problem_id=f"humaneval/{str(item['task_id']).split('/')[-1]}",
        source="humaneval",
        split="test",
        description=description,
        reference=normalize_code(prompt + item["canonical_solution"]),
        entry_point=entry_point,
        prompt_head=head,
        doctest=None,
        tests={"kind": "check", "code": item["test"], "entry_point": entry_point},
    )


def split_prompt(prompt: str, entry_point: str, where: str) -> tuple[str, str]:
    """(the prompt before the entry point's docstring, the docstring dedented)."""
    tree = parse(prompt)
    node = entry_def(tree, entry_point) if tree is not None else None
    if node is None:
        raise InputError(f"{where}: the prompt does not define {entry_point!r}")
    # The docstring is usually the first statement, but not always (HumanEval/115 imports first).
    doc = next(
        (
            stmt
            for stmt in node.body
            if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str)
        ),
        None,
    )
    if doc is None:
        raise InputError(f"{where}: {entry_point!r} has no docstring to take the description from")
    lines = prompt.splitlines(keepends=True)
    head = "".join(lines[: doc.lineno - 1])
    return head, inspect.cleandoc(doc.value.value).strip()  # type: ignore[union-attr]
