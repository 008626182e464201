"""Seed problems from public benchmarks and users' own files, all in one schema (see README, "Seed schema").

One module per source, imported only when chosen. Each module exposes
``load(path: str | None, split: str | None) -> Iterator[dict]``: ``path`` is a local file in the benchmark's
published format; ``None`` loads the benchmark from the Hugging Face Hub.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import Any

from giftgen.config import command_config, setting
from giftgen.errors import InputError
from giftgen.seeds.common import RAW_COLUMNS

SOURCES: dict[str, str] = {
    "mbpp": "giftgen.seeds.mbpp",
    "mbppplus": "giftgen.seeds.mbppplus",
    "humaneval": "giftgen.seeds.humaneval",
    "apps": "giftgen.seeds.apps",
    "codeinsight": "giftgen.seeds.codeinsight",
    "generic": "giftgen.seeds.generic",
    "toy": "giftgen.seeds.toy",
}


STDIO_COMPARE_HELP = ("How stdin/stdout problems' outputs are judged: tokens (line by line, tokens, floats within "
                      "1e-6) or release (the GiFT release's APPS fallbacks, e.g. lines in any order); default: "
                      "tokens.")
RAW_COLUMNS_HELP = ("Add the columns the release prompt style reads: raw_reference (the reference exactly as the "
                    "benchmark's file has it) and raw_first_test (MBPP+: its first assert as written); the "
                    "release profile's runs add them. Default: off (rows in giftgen's seed schema only).")


@command_config("seeds")
class SeedsConfig:
    path: str | None = setting(None, "Local file in the benchmark's published format (default: load from the Hub).")
    split: str | None = setting(None, "Split to load: a benchmark split name, or 'all'. Default: the source's seed split.")
    limit: int | None = setting(None, "Keep only the first N problems.")
    stdio_compare: str | None = setting(None, STDIO_COMPARE_HELP, choices=("tokens", "release"))
    raw_columns: bool = setting(False, RAW_COLUMNS_HELP)


def load_seeds(source: str, path: str | None = None, split: str | None = None,
               stdio_compare: str | None = None, raw_columns: bool = False) -> Iterator[dict[str, Any]]:
    """Yield seed rows of ``source`` in the common schema; ``stdio_compare`` sets the ``compare`` field of
    stdin/stdout tests (``tokens`` or ``release``, see ``giftgen.sandbox.judge``); ``raw_columns`` adds the
    columns ``RAW_COLUMNS`` to every row (null where the source has no raw bytes to keep), else they are left out
    (the generic source keeps whatever columns its file has)."""
    if source not in SOURCES:
        raise InputError(f"unknown seed source {source!r}; valid sources: {', '.join(SOURCES)}")
    module = importlib.import_module(SOURCES[source])
    rows = module.load(path, split)
    if raw_columns:
        rows = ({**row, **{c: row.get(c) for c in RAW_COLUMNS}} for row in rows)
    elif source != "generic":
        rows = ({k: v for k, v in row.items() if k not in RAW_COLUMNS} for row in rows)
    return rows if stdio_compare is None else (with_stdio_compare(row, stdio_compare) for row in rows)


def with_stdio_compare(row: dict[str, Any], compare: str) -> dict[str, Any]:
    """``row`` with ``compare`` set in its tests when they are stdin/stdout tests."""
    import json

    tests = json.loads(row["tests"]) if isinstance(row.get("tests"), str) else row.get("tests")
    if not isinstance(tests, dict) or tests.get("kind") != "stdio":
        return row
    return {**row, "tests": json.dumps({**tests, "compare": compare}, ensure_ascii=False)}
