"""The versions of the libraries a run used, recorded in every run's summary, stage marker and card, so that a
result that differs elsewhere can be traced to its torch, transformers, tokenizers, trl or datasets, or to the
processor (float results of the same code differ between CPU models whose kernels round differently: the
miniature's pretraining gives other weights on the AVX2 code path than on AVX-512, and with 1 thread than with 2;
the machine's load does not change it, checked bit for bit). Reads package
metadata and /proc/cpuinfo only (nothing is imported), so it costs milliseconds. ``__version__`` is giftgen's own (``giftgen.__version__``)."""

from __future__ import annotations

import platform
from importlib import metadata

__version__ = "0.1.0"
LIBRARIES = ("giftgen", "torch", "transformers", "tokenizers", "trl", "datasets", "peft", "accelerate")


def library_versions() -> dict[str, str | None]:
    """{package: installed version, None when absent} for ``LIBRARIES``, and the Python version."""
    versions: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    versions["python"] = platform.python_version()
    versions["cpu"] = cpu_model()
    return versions


def cpu_model() -> str:
    """The processor's model name and architecture (``AMD EPYC, x86_64``), from /proc/cpuinfo where it exists."""
    name = platform.processor() or ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return ", ".join(part for part in (name, platform.machine()) if part)


def versions_line(versions: dict[str, str | None] | None) -> str:
    """``giftgen 0.1.0, torch 2.13.0, ...`` for a card; "not recorded" for output written before versions were."""
    if not versions:
        return "not recorded"
    return ", ".join(f"{name} {version or 'not installed'}" for name, version in versions.items())
