"""Shared fixtures: offline Hub, one thread for tiny models, the benchmark data, the GiFT release's data (the
``real`` tier only), a tiny model."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("OMP_NUM_THREADS", "1")

DATA = Path(__file__).resolve().parent / "data"  # the benchmark files the repository carries (README there)
# tests/data holds data, not tests: the unit-test scripts of giftgen's own CodeInsight problems are named test_*.py
collect_ignore_glob = ["data/*"]


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not DATA.exists():
        pytest.skip(f"benchmark data not found at {DATA}")
    return DATA


REPO = Path(__file__).resolve().parents[1]
RELEASE_ARCHIVE = "gift-release-data.tar.gz"


def release_candidates() -> list[Path]:
    """Where the GiFT release's data may be: ``$GIFTGEN_SHARED_DATA``, else ``shared/data`` beside the checkout
    (or one level further up, for a worktree one level deeper)."""
    given = os.environ.get("GIFTGEN_SHARED_DATA")
    if given:
        return [Path(given) / RELEASE_ARCHIVE]
    return [REPO.parent / "shared" / "data" / RELEASE_ARCHIVE, REPO.parent.parent / "shared" / "data" / RELEASE_ARCHIVE]


@pytest.fixture
def release_archive(request) -> Path:
    """The GiFT release's data (``gift-release-data.tar.gz``), which has no license to copy into the repository.
    Only tests marked ``real`` or ``slow`` may use it: the default tier runs from the repository alone."""
    if request.node.get_closest_marker("real") is None and request.node.get_closest_marker("slow") is None:
        pytest.fail(f"{request.node.nodeid} reads the GiFT release's data but is not marked real or slow")
    found = next((p for p in release_candidates() if p.is_file()), None)
    if found is None:
        pytest.skip(f"the GiFT release's data is not at {' or '.join(map(str, release_candidates()))} (set "
                    "$GIFTGEN_SHARED_DATA to the folder holding it)")
    return found


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """Path to a tiny random-init Llama with its tokenizer (built once per session, offline)."""
    import torch

    from tests.tiny import build_tiny_model

    torch.set_num_threads(1)
    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"))
