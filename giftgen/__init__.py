"""giftgen: GiFT (Gibbs Fine-Tuning) for code LLMs.

Stages, each a CLI command over Hugging Face datasets: ``seeds`` -> ``chain`` -> ``verify`` -> ``score`` ->
``select`` -> ``finetune`` -> ``eval``; ``run`` chains them into self-training rounds. Each command calls one
library function, importable from here under one verb per stage:

    ==========  ===================  =========================================================
    command     function             module
    ==========  ===================  =========================================================
    seeds       ``load_seeds``       ``giftgen.seeds``
    chain       ``chain_into``       ``giftgen.chain`` (over ``run_chain``, the row generator)
    verify      ``verify_into``      ``giftgen.verify`` (over ``verify_rows``, the row generator)
    score       ``score_rows``       ``giftgen.score``
    select      ``select_rows``      ``giftgen.selection``
    finetune    ``finetune_model``   ``giftgen.finetune``
    eval        ``evaluate_into``    ``giftgen.evaluate``
    merge       ``merge_shards``     ``giftgen.merge``
    run         ``run_rounds``       ``giftgen.run`` (a grid: ``giftgen.miniature.run_grid``)
    pretrain    ``pretrain_model``   ``giftgen.miniature.pretrain``
    report      ``write_report``     ``giftgen.report`` (a grid: ``giftgen.miniature.write_grid_report``)
    ==========  ===================  =========================================================

Importing this package is cheap: the verbs load their modules on first use, and heavy libraries load inside
functions. Being the face of every layer, this module sits at the top, with the CLI: modules of giftgen import
``giftgen.versions.__version__``, never this package.
"""

from __future__ import annotations

import importlib
from typing import Any

from giftgen.versions import __version__

# verb -> (module, function): each is the function its command calls
VERBS = {
    "load_seeds": ("giftgen.seeds", "load_seeds"),
    "chain_into": ("giftgen.chain", "chain_into"),
    "verify_into": ("giftgen.verify", "verify_into"),
    "score_rows": ("giftgen.score", "score_rows"),
    "select_rows": ("giftgen.selection", "select_rows"),
    "finetune_model": ("giftgen.finetune", "finetune"),
    "evaluate_into": ("giftgen.evaluate", "evaluate_into"),
    "merge_shards": ("giftgen.merge", "merge_shards"),
    "run_rounds": ("giftgen.run", "run_rounds"),
    "pretrain_model": ("giftgen.miniature.pretrain", "pretrain"),
    "write_report": ("giftgen.report", "write_report"),
}

__all__ = ["__version__", *VERBS]


def __getattr__(name: str) -> Any:
    if name in VERBS:
        module, attr = VERBS[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'giftgen' has no attribute {name!r}")
