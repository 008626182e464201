"""MBPP, sanitized subset (Austin et al. 2021): the GiFT seed set for MBPP+.

Reads ``mbpp-sanitized.json`` (a JSON list; ``.jsonl`` also works) or the Hub dataset
``google-research-datasets/mbpp``, config ``sanitized``. Fields: ``task_id``, ``prompt``, ``code``,
``test_imports``, ``test_list``.

Splits follow the task ids, as in the original release: prompt 1-10, test 11-510, validation 511-600,
train 601-974. The default is GiFT's seed set ``train+prompt+validation`` (170 problems); ``--split`` takes one
name, names joined with ``+``, or ``all``.

Row: description = ``prompt``; reference = ``code``; entry point = the function (defined in the reference) that
the first assert calls, since some references define helpers too; prompt head = the reference up to and
including the entry point's ``def`` line; doctest = the first assert as ``>>> call`` / expected; tests = kind
``assert`` with ``setup`` = the test imports and ``asserts`` = ``test_list``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
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

HUB_ID = "google-research-datasets/mbpp"
HUB_CONFIG = "sanitized"
SPLITS = ("prompt", "test", "validation", "train")
DEFAULT_SPLIT = "train+prompt+validation"
FIELDS = ("task_id", "prompt", "code", "test_list")
_RANGES = {"prompt": (1, 10), "test": (11, 510), "validation": (511, 600), "train": (601, 974)}


def split_of(task_id: int) -> str:
    for name, (low, high) in _RANGES.items():
        if low <= task_id <= high:
            return name
    raise InputError(f"MBPP task_id {task_id} is outside every split (1-974)")


def load(path: str | None, split: str | None) -> Iterator[dict[str, Any]]:
    splits = parse_split(split, SPLITS, DEFAULT_SPLIT, "mbpp")
    if path is None:
        yield from _load_hub(splits)
        return
    for number, item in read_records(path, "mbpp"):
        where = f"{path}, item {number}"
        require_fields(item, FIELDS, where, "MBPP (sanitized)")
        task_split = split_of(int(item["task_id"]))
        if task_split in splits:
            yield to_row(item, task_split, where)


def _load_hub(splits: list[str]) -> Iterator[dict[str, Any]]:
    try:
        from datasets import load_dataset

        items = []
        for name in splits:
            items.extend((item, name) for item in load_dataset(HUB_ID, HUB_CONFIG, split=name))
    except Exception as e:  # offline, missing repo, changed layout: all end the same way for the user
        raise hub_error(f"{HUB_ID} ({HUB_CONFIG})", e) from None
    # the file lists problems by task id; keep the Hub's output in the same order
    items.sort(key=lambda pair: int(pair[0]["task_id"]))
    for item, name in items:
        yield to_row(item, name, f"{HUB_ID} task {item['task_id']}")


def to_row(item: Mapping[str, Any], split: str, where: str) -> dict[str, Any]:
    reference = normalize_code(item["code"])
    tests = list(item["test_list"])
    if not tests:
        raise InputError(f"{where}: the problem has no tests")
    tree = parse(reference)
    if tree is None:
        raise InputError(f"{where}: the reference solution does not parse")
    entry_point = first_called_function(tests[0], top_level_functions(tree))
    if entry_point is None:
        raise InputError(f"{where}: the first test calls no function that the reference defines")
    return seed_row(
        problem_id=f"mbpp/{item['task_id']}",
        source="mbpp",
        split=split,
        description=item["prompt"].strip(),
        reference=reference,
        entry_point=entry_point,
        prompt_head=head_of(reference, entry_point),
        doctest=doctest_from_assert(tests[0]),
        tests={"kind": "assert", "setup": "\n".join(item.get("test_imports") or []), "asserts": tests},
        raw_reference=item["code"],
    )
