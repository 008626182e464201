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


@command_config("seeds")
class SeedsConfig:
    path: str | None = setting(None, "Local file in the benchmark's published format (default: load from the Hub).")
    split: str | None = setting(None, "Split to load: a benchmark split name, or 'all'. Default: the source's seed split.")
    limit: int | None = setting(None, "Keep only the first N problems.")
    stdio_compare: str | None = setting(None, STDIO_COMPARE_HELP, choices=("tokens", "release"))


def load_seeds(source: str, path: str | None = None, split: str | None = None,
               stdio_compare: str | None = None) -> Iterator[dict[str, Any]]:
    """Yield seed rows of ``source`` in the common schema; ``stdio_compare`` sets the ``compare`` field of
    stdin/stdout tests (``tokens`` or ``release``, see ``giftgen.sandbox.judge``)."""
    if source not in SOURCES:
        raise InputError(f"unknown seed source {source!r}; valid sources: {', '.join(SOURCES)}")
    module = importlib.import_module(SOURCES[source])
    rows = module.load(path, split)
    return rows if stdio_compare is None else (with_stdio_compare(row, stdio_compare) for row in rows)


def with_stdio_compare(row: dict[str, Any], compare: str) -> dict[str, Any]:
    """``row`` with ``compare`` set in its tests when they are stdin/stdout tests."""
    import json

    tests = json.loads(row["tests"]) if isinstance(row.get("tests"), str) else row.get("tests")
    if not isinstance(tests, dict) or tests.get("kind") != "stdio":
        return row
    return {**row, "tests": json.dumps({**tests, "compare": compare}, ensure_ascii=False)}
