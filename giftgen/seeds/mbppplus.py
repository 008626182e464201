"""MBPP+ (EvalPlus, Liu et al. 2023): MBPP problems with many extra test inputs; GiFT evaluates on it.

Local file (``--path``): the EvalPlus release ``MbppPlus-v0.1.0.jsonl`` (399 problems). Fields: ``task_id``
("Mbpp/2"), ``prompt`` (a docstring holding the description and one example assert), ``entry_point``,
``canonical_solution``, ``base_input`` / ``plus_input`` (argument lists), ``atol``. Tests are kind ``call`` with
``outputs`` null: the expected values come from running the reference on the same inputs, as EvalPlus does.

JSON cannot hold tuples, sets or complex numbers, so EvalPlus restores them per task before calling a function
(``mbpp_deserialize_inputs`` in evalplus/data/mbpp.py). For the tasks where that matters, the tests also carry
``inputs_py`` / ``plus_inputs_py``: the restored argument lists as a Python literal (``ast.literal_eval``); a
verifier should prefer them to the JSON lists. Three tasks are scored by EvalPlus only on whether the result is
not None; their tests carry ``output_not_none: true``.

Hub (no ``--path``): ``evalplus/mbppplus`` is the later v0.2 (378 problems), in a different layout: a plain
description, the MBPP asserts and a ``test`` script that checks the entry point (called by name) on every input.
Those rows get tests of kind ``assert`` whose one "assert" is that script.

The only split is ``test``. Rows carry ``raw_first_test`` (kept by ``load_seeds(..., raw_columns=True)``): the
first assert as written (the prompt's assert line; on the Hub, ``test_list[0]``), which the release prompt style
splits at ``==`` where the doctest column holds giftgen's rendering of it.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from giftgen.errors import InputError
from giftgen.seeds.common import (
    doctest_from_assert,
    first_called_function,
    head_of,
    hub_error,
    normalize_code,
    parse,
    parse_split,
    read_records,
    require_fields,
    seed_row,
    top_level_functions,
)

HUB_ID = "evalplus/mbppplus"
SPLITS = ("test",)
FIELDS = ("task_id", "prompt", "entry_point", "canonical_solution", "base_input", "plus_input")
# EvalPlus compares only `result is not None` for these functions (they return match objects or similar).
OUTPUT_NOT_NONE = frozenset({"check_str", "text_match_three", "text_starta_endb"})


def load(path: str | None, split: str | None) -> Iterator[dict[str, Any]]:
    parse_split(split, SPLITS, "test", "mbppplus")
    if path is None:
        yield from _load_hub()
        return
    for number, item in read_records(path, "mbppplus"):
        where = f"{path}, line {number}"
        require_fields(item, FIELDS, where, "MBPP+ (EvalPlus)")
        yield to_row(item, where)


def to_row(item: Mapping[str, Any], where: str) -> dict[str, Any]:
    task_id = str(item["task_id"])
    number = task_id.split("/")[-1]
    entry_point = item["entry_point"]
    reference = normalize_code(item["canonical_solution"].lstrip("\n"))
    description, example = split_prompt(item["prompt"])
    if not description:
        raise InputError(f"{where}: the prompt holds no description")
    try:
        prompt_head = head_of(reference, entry_point)
    except ValueError as e:
        raise InputError(f"{where}: {e}") from None
    base = _as_inputs(item["base_input"], where, "base_input")
    plus = _as_inputs(item["plus_input"], where, "plus_input")
    tests: dict[str, Any] = {
        "kind": "call",
        "fn_name": entry_point,
        "inputs": base,
        "outputs": None,
        "plus_inputs": plus,
        "atol": item.get("atol") or 0,
    }
    restore = _RESTORE.get(int(number)) if number.isdigit() else None
    if restore is not None:
        base_py = _literal([restore(list(args)) for args in base])
        plus_py = _literal([restore(list(args)) for args in plus])
        if base_py is not None and plus_py is not None:
            tests["inputs_py"], tests["plus_inputs_py"] = base_py, plus_py
    if entry_point in OUTPUT_NOT_NONE:
        tests["output_not_none"] = True
    return seed_row(
        problem_id=f"mbppplus/{number}",
        source="mbppplus",
        split="test",
        description=description,
        reference=reference,
        entry_point=entry_point,
        prompt_head=prompt_head,
        doctest=doctest_from_assert(example) if example else None,
        tests=tests,
        raw_first_test=example,
    )


def split_prompt(prompt: str) -> tuple[str, str | None]:
    """The description and the example assert of an MBPP+ prompt (a docstring: description lines, then assert)."""
    text = prompt.strip()
    for quote in ('"""', "'''"):
        if text.startswith(quote) and text.endswith(quote) and len(text) >= 6:
            text = text[3:-3]
            break
    lines = text.strip("\n").splitlines()
    example = None
    while lines and (lines[-1].strip().startswith("assert") or not lines[-1].strip()):
        line = lines.pop().strip()
        if line and example is None:
            example = line
    return "\n".join(lines).strip(), example


def _as_inputs(value: Any, where: str, field: str) -> list[list[Any]]:
    if value in ({}, None):  # Mbpp/793 has `plus_input: {}`: no extra inputs
        return []
    if not isinstance(value, list) or not all(isinstance(args, list) for args in value):
        raise InputError(f"{where}: {field} must be a list of argument lists")
    return value


def _literal(value: Any) -> str | None:
    """``repr(value)`` when ``ast.literal_eval`` gives it back (not so for inf/nan): None otherwise."""
    text = repr(value)
    try:
        ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    return text


def _load_hub() -> Iterator[dict[str, Any]]:
    try:
        from datasets import load_dataset

        items = list(load_dataset(HUB_ID, split="test"))
    except Exception as e:  # offline, missing repo, changed layout: all end the same way for the user
        raise hub_error(HUB_ID, e) from None
    for item in items:
        where = f"{HUB_ID} task {item.get('task_id')}"
        require_fields(item, ("task_id", "prompt", "code", "test_list", "test"), where, "MBPP+ v0.2")
        reference = normalize_code(item["code"])
        tree = parse(reference)
        first = item["test_list"][0] if item["test_list"] else ""
        entry_point = first_called_function(first, top_level_functions(tree)) if tree is not None else None
        if entry_point is None:
            raise InputError(f"{where}: cannot tell the entry point from the first test")
        yield seed_row(
            problem_id=f"mbppplus/{item['task_id']}",
            source="mbppplus",
            split="test",
            description=item["prompt"].strip(),
            reference=reference,
            entry_point=entry_point,
            prompt_head=head_of(reference, entry_point),
            doctest=doctest_from_assert(first),
            tests={"kind": "assert", "setup": "\n".join(item.get("test_imports") or []), "asserts": [item["test"]]},
            raw_first_test=first or None,
        )


# --------------------------------------------------------------------------------------------------- types
# Which MBPP+ tasks take tuples, sets or complex numbers, and where in their arguments (read from EvalPlus's
# per-task table; each function below maps one argument list as stored in JSON to the one EvalPlus passes).


def _tuples(args: list) -> list:
    return [tuple(a) for a in args]


def _lists_of_tuples(args: list) -> list:
    return [[tuple(x) for x in a] for a in args]


def _tuples_of_tuples(args: list) -> list:
    return [tuple(tuple(x) for x in a) for a in args]


def _first_list_of_tuples(args: list) -> list:
    return [[tuple(x) for x in args[0]], *args[1:]]


def _first_tuple(args: list) -> list:
    return [tuple(args[0]), *args[1:]]


def _second_tuple(args: list) -> list:
    return [args[0], tuple(args[1]), *args[2:]]


def _sets(args: list) -> list:
    return [[set(x) if isinstance(x, list) and x else {} for x in args[0]]]


def _float_complex(args: list) -> list:
    return [float(args[0]), complex(args[1])]


def _complex(args: list) -> list:
    return [complex(args[0])]


def _mixed_tuple(args: list) -> list:
    return [tuple(tuple(x) if isinstance(x, list) else x for x in args[0])]


def _dict_of_tuples(args: list) -> list:
    return [{k: tuple(v) for k, v in args[0].items()}, *args[1:]]


def _all_tuples(args: list) -> list:
    def deep(x: Any) -> Any:
        return tuple(deep(i) for i in x) if isinstance(x, list) else x

    return [deep(a) for a in args]


_GROUPS: list[tuple[tuple[int, ...], Callable[[list], list]]] = [
    ((2, 116, 132, 143, 222, 261, 273, 394, 399, 421, 424, 429, 470, 560, 579, 596, 616, 630, 726, 740, 744, 809),
     _tuples),
    ((63, 64, 70, 94, 120, 237, 272, 299, 400, 409, 417, 438, 473, 614, 780), _lists_of_tuples),
    ((75, 413, 444, 753), _first_list_of_tuples),
    ((106, 750), _second_tuple),
    ((115,), _sets),
    ((124,), _float_complex),
    ((250, 405, 446, 617, 720, 763, 808), _first_tuple),
    ((259, 401, 445), _tuples_of_tuples),
    ((278,), _mixed_tuple),
    ((307,), _first_tuple),
    ((722,), _dict_of_tuples),
    ((252,), _complex),
    ((580, 615, 791), _all_tuples),
]
_RESTORE: dict[int, Callable[[list], list]] = {task: fn for tasks, fn in _GROUPS for task in tasks}
