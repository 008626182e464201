"""`giftgen merge`: join the outputs of a stage run on N shards (``--shard I/N``) back into one dataset.

Contract. The inputs must be the N shards of one partition (``records.shard_of``): each input's problems all
belong to one shard, no two inputs are the same shard, and none is missing (an input with no rows stands for
whichever shard is otherwise missing: a shard can be empty). Anything else is an ``InputError`` that names the
inputs at fault, raised before a row is written.

Order. Stage outputs are step-major (``chain``: all problems' step 1, then step 2, ...; ``verify`` and ``score``
keep their input's order), so rows are merged by ``(step, problem rank)``, rows without a ``step`` column counting
as step 0 and rows of one problem and step keeping their order. The problem rank is the problem's position in
``order`` (e.g. the seed file the shards were cut from: the merge is then exactly the unsharded output), else the
shard number: the same result whatever order the inputs are given in.

Memory: inputs are read twice (a check pass that keeps only problem ids, then a streaming k-way merge), so the
merge runs in memory proportional to the number of problems, not rows; stdin (``-``) cannot be an input.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from giftgen.errors import InputError
from giftgen.records import read_rows, require, shard_of


@dataclass
class ShardInput:
    """One input of the merge, as the check pass found it."""

    path: str
    problems: set[str] = field(default_factory=set)
    rows: int = 0
    shard: int | None = None


def problem_order(rows: Iterable[dict[str, Any]]) -> dict[str, int]:
    """Each problem's rank: the position of its first row in ``rows``."""
    order: dict[str, int] = {}
    for index, row in enumerate(rows, start=1):
        require(row, {"problem_id": str}, index, "merge --order")
        order.setdefault(row["problem_id"], len(order))
    return order


def _step(row: dict[str, Any], where: str) -> int:
    step = row.get("step")
    if step is None:
        return 0
    if not isinstance(step, int) or isinstance(step, bool):
        raise InputError(f"`giftgen merge`: {where}: column 'step' must be an integer, got {step!r}")
    return step


def check_shards(paths: Sequence[str], *, shards: int | None = None, order: dict[str, int] | None = None,
                 split: str | None = None) -> list[ShardInput]:
    """Read every input once and check that together they are the ``shards`` (default: one per input) shards."""
    if not paths:
        raise InputError("`giftgen merge` needs the shard outputs to join")
    if "-" in paths:
        raise InputError("`giftgen merge` reads each input twice, so it cannot read stdin (-)",
                         hint="save each shard's output to a file first")
    count = shards if shards is not None else _recorded_count(paths, split) or len(paths)
    if count < 1:
        raise InputError(f"--shards must be at least 1, got {count}")
    if len(paths) != count:
        raise InputError(f"`giftgen merge` got {len(paths)} inputs for {count} shards",
                         hint="give one output per shard, an empty file for an empty shard")
    inputs = [ShardInput(path) for path in paths]
    owner: dict[str, str] = {}
    for item in inputs:
        last: tuple[int, int] | None = None
        for index, row in enumerate(read_rows(item.path, split), start=1):
            require(row, {"problem_id": str}, index, "merge")
            pid = row["problem_id"]
            where = f"{item.path}, row {index}"
            recorded = row.get("shard")
            if recorded is not None and recorded != f"{shard_of(pid, count)}/{count}":
                raise InputError(f"`giftgen merge`: {where} says shard {recorded}, but its problem {pid!r} is in "
                                 f"shard {shard_of(pid, count)} of {count}",
                                 hint="merge exactly the outputs of one `--shard I/N` run")
            if pid not in item.problems:
                if pid in owner:
                    raise InputError(f"`giftgen merge`: problem {pid!r} is in {owner[pid]} and in {item.path}",
                                     hint="an input was given twice, or two inputs are the same shard")
                owner[pid] = item.path
                item.problems.add(pid)
                shard = shard_of(pid, count)
                if item.shard is None:
                    item.shard = shard
                elif shard != item.shard:
                    raise InputError(
                        f"`giftgen merge`: {item.path} holds problems of shards {item.shard} and {shard} of {count}",
                        hint=f"merge exactly the {count} outputs of one `--shard I/{count}` run, or give --shards")
            if order is not None and pid not in order:
                raise InputError(f"`giftgen merge`: {where}: problem {pid!r} is not in the --order file")
            key = (_step(row, where), order[pid] if order is not None else 0)
            if last is not None and key < last:
                raise InputError(f"`giftgen merge`: {where} comes before an earlier row in step/problem order",
                                 hint="merge the outputs of `giftgen chain`, `verify` or `score` as they were written")
            last = key
            item.rows += 1
    by_shard: dict[int, ShardInput] = {}
    for item in inputs:
        if item.shard is None:
            continue
        if item.shard in by_shard:
            raise InputError(f"`giftgen merge`: {by_shard[item.shard].path} and {item.path} are both shard "
                             f"{item.shard} of {count}")
        by_shard[item.shard] = item
    free = iter(sorted(set(range(count)) - set(by_shard)))
    for item in inputs:  # empty inputs stand for the shards no other input holds
        if item.shard is None:
            item.shard = next(free)
    return inputs


def merge_shards(paths: Sequence[str], *, shards: int | None = None, order: Iterable[dict[str, Any]] | None = None,
                 split: str | None = None) -> Iterator[dict[str, Any]]:
    """Check the inputs (``check_shards``), then yield their rows merged in step, problem order (module docstring).

    ``order``: rows (e.g. the seeds) whose problem order the merge restores; default: shard order.
    """
    ranks = problem_order(order) if order is not None else None
    inputs = check_shards(paths, shards=shards, order=ranks, split=split)

    def keyed(item: ShardInput) -> Iterator[tuple[tuple[int, int], dict[str, Any]]]:
        for row in read_rows(item.path, split):
            rank = ranks[row["problem_id"]] if ranks is not None else item.shard
            yield (_step(row, item.path), rank), row

    streams = [keyed(item) for item in sorted(inputs, key=lambda i: i.shard)]
    # heapq.merge is stable: equal keys (one problem's rows of one step) keep their input order.
    for _, row in heapq.merge(*streams, key=lambda pair: pair[0]):
        row.pop("shard", None)  # the merged rows are the unsharded output
        yield row


def _recorded_count(paths: Sequence[str], split: str | None) -> int | None:
    """N of the first row's ``shard: "I/N"`` column among ``paths`` (None when the rows do not record it)."""
    for path in paths:
        for row in read_rows(path, split):
            recorded = row.get("shard")
            if isinstance(recorded, str) and "/" in recorded:
                try:
                    return int(recorded.split("/")[1])
                except ValueError:
                    raise InputError(f"`giftgen merge`: {path}: column 'shard' must be I/N, got {recorded!r}") \
                        from None
            break
    return None
