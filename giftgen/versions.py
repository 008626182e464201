"""The versions of the libraries a run used, recorded in every run's summary, stage marker and card, so that a
result that differs elsewhere can be traced to its torch, transformers, trl or datasets. Reads package metadata
only (nothing is imported), so it costs milliseconds. ``__version__`` is giftgen's own (``giftgen.__version__``)."""

from __future__ import annotations

import platform
from importlib import metadata

__version__ = "0.1.0"
LIBRARIES = ("giftgen", "torch", "transformers", "trl", "datasets", "peft", "accelerate")


def library_versions() -> dict[str, str | None]:
    """{package: installed version, None when absent} for ``LIBRARIES``, and the Python version."""
    versions: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    versions["python"] = platform.python_version()
    return versions


def versions_line(versions: dict[str, str | None] | None) -> str:
    """``giftgen 0.1.0, torch 2.13.0, ...`` for a card; "not recorded" for output written before versions were."""
    if not versions:
        return "not recorded"
    return ", ".join(f"{name} {version or 'not installed'}" for name, version in versions.items())
