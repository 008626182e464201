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


@command_config("seeds")
class SeedsConfig:
    path: str | None = setting(None, "Local file in the benchmark's published format (default: load from the Hub).")
    split: str | None = setting(None, "Split to load: a benchmark split name, or 'all'. Default: the source's seed split.")
    limit: int | None = setting(None, "Keep only the first N problems.")


def load_seeds(source: str, path: str | None = None, split: str | None = None) -> Iterator[dict[str, Any]]:
    """Yield seed rows of ``source`` in the common schema."""
    if source not in SOURCES:
        raise InputError(f"unknown seed source {source!r}; valid sources: {', '.join(SOURCES)}")
    module = importlib.import_module(SOURCES[source])
    return module.load(path, split)
