"""`giftgen run`: the orchestration above the stage library; rounds of chain -> verify -> score -> select ->
finetune -> eval from one recipe, into a run directory that a ``kill -9`` at any point cannot corrupt.

The public face (what the CLI and experiments such as ``giftgen.miniature`` use; nothing else is called from
outside this package):

- the recipe (``giftgen.run.recipe``): ``RunConfig``, ``RunRecipe``, ``read_run_recipe``, ``resolve_run_recipe``,
  ``load_run_recipe``, ``apply_overrides``;
- the round loop (``giftgen.run.rounds``): ``round_configs``, ``Runner`` (one run over one directory), ``run_rounds`` (a run, then
  its publication), ``locked`` (a directory's lock);
- the jobs (``giftgen.run.jobs``): one function per stage from input files to an output that survives kill -9,
  run in-process or as ``python -m giftgen.run JOB.json``; ``write_atomic`` and ``write_rows_atomic``;
- the summary (``giftgen.run.summary``): ``round_entry``, ``write_summary``, ``print_rounds``.

Layers: this package imports the library (stages, config, records, seeds, publish) and nothing above it.
"""

from giftgen.run.jobs import MODEL_STAGES, execute, write_atomic, write_rows_atomic
from giftgen.run.recipe import (
    EXECUTION_ONLY,
    STAGE_ORDER,
    RunConfig,
    RunRecipe,
    apply_overrides,
    check_plan,
    load_run_recipe,
    read_run_recipe,
    resolve_run_recipe,
    stage_classes,
)
from giftgen.run.rounds import Runner, locked, release_memory, round_configs, run_rounds
from giftgen.run.summary import print_rounds, round_entry, write_summary

__all__ = [
    "EXECUTION_ONLY", "MODEL_STAGES", "STAGE_ORDER", "RunConfig", "RunRecipe", "Runner", "apply_overrides",
    "check_plan", "execute", "load_run_recipe", "locked", "print_rounds", "read_run_recipe", "release_memory",
    "resolve_run_recipe", "round_configs", "round_entry", "run_rounds", "stage_classes", "write_atomic",
    "write_rows_atomic", "write_summary",
]
