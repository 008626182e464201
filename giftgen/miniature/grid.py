"""The miniature's grid: one base model, then a `giftgen run` per arm and random seed.

Contract. ``load_grid_recipe(recipe, run_flags, grid_flags)`` resolves a recipe with a ``grid`` section (``arms``,
``random_seeds``) or a ``pretrain`` section into a ``RunRecipe`` whose ``extras`` hold both; ``run_grid(plan)``
runs it:

1. ``pretrain`` (when the recipe has the section): the tiny base model is trained into ``run.model`` by
   ``giftgen.miniature.pretrain`` (cached there: a second grid reuses it). ``RUN_DIR/pretrain.json`` records its
   wall time.
2. ``RUN_DIR/base``: round 0 only, the base model's evaluations (``eval``, ``eval-sampled``, ``eval2``), shared by
   every arm (all arms start from the same model).
3. ``RUN_DIR/<arm>/seed-<s>``: a full `giftgen run` (``run.rounds`` rounds, resumable like any run) where the arm
   sets the chain's mode and the selection temperature (``ARMS``), and the random seed ``s`` is added to the seed
   of the chain, select, finetune and eval. The ``control`` arm runs no chain: its finetune spends the same steps
   (``finetune.max_steps``) on the seed pairs and the replay rows only, so any gain of the other arms over it
   comes from their self-generated codes, not from more training on the seed problems.
4. ``RUN_DIR/summary.json``: ``giftgen.miniature.numbers.grid_summary`` and a table on stderr.

``run.replay_split`` is written once to ``RUN_DIR/seeds/replay.jsonl`` and every cell's finetune reads it. The grid
uses only the public face of ``giftgen.run``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from giftgen.config import command_config, resolve, setting
from giftgen.errors import ConfigError
from giftgen.miniature.numbers import ARMS, LABELS, grid_summary, print_grid
from giftgen.miniature.pretrain import PretrainConfig, pretrain
from giftgen.progress import format_duration, log
from giftgen.run import EXECUTION_ONLY, Runner, RunRecipe, locked, resolve_run_recipe, write_atomic

GRID_SECTIONS = ("grid", "pretrain")


@command_config("grid")
class GridConfig:
    arms: list[str] = setting([], "A grid (giftgen.miniature): one run per arm (gift, rft, rftrd, control) and random "
                                  "seed, into RUN_DIR/<arm>/seed-<s>; the base model is evaluated once in "
                                  "RUN_DIR/base.")
    random_seeds: list[int] = setting([0], "Random seeds of the grid's runs: seed s adds s to every stage's seed "
                                           "(not seed problems: those are run.train_*).")

    def validate(self) -> None:
        bad = [arm for arm in self.arms if arm not in ARMS]
        if bad:
            raise ConfigError(f"unknown arm(s) {', '.join(bad)}; arms: {', '.join(ARMS)}")
        if not self.random_seeds or len(set(self.random_seeds)) != len(self.random_seeds):
            raise ConfigError(f"a grid needs distinct random seeds, got {self.random_seeds}")


# A rerun of a grid may change which arms and seeds it runs: each cell is a run of its own.
GRID_EXECUTION_ONLY = {**EXECUTION_ONLY, "grid": ("arms", "random_seeds")}


def is_grid_recipe(recipe: Mapping[str, Any], grid_flags: Mapping[str, Any] | None = None) -> bool:
    """Whether a recipe (its sections, read) or the grid's flags ask for a grid rather than a single run."""
    return any(section in recipe for section in GRID_SECTIONS) or bool(grid_flags)


def load_grid_recipe(recipe: Mapping[str, Mapping[str, Any]], run_flags: Mapping[str, Any] | None = None,
                     grid_flags: Mapping[str, Any] | None = None, *, where: str | Path = "the recipe") -> RunRecipe:
    """The run recipe of the grid's cells, its ``extras`` holding the ``grid`` and (if any) ``pretrain`` sections."""
    if "output_dir" in recipe.get("pretrain", {}):
        raise ConfigError(f"{where}: pretrain.output_dir is set by `giftgen run`",
                          hint="the base model is trained into run.model (a folder), then cached there")
    plan = resolve_run_recipe(recipe, run_flags, where=where, extra_sections=GRID_SECTIONS)
    try:
        plan.extras["grid"] = resolve(GridConfig, recipe.get("grid"), grid_flags)
        if "pretrain" in recipe:  # the miniature: train the base student first (cached)
            plan.extras["pretrain"] = resolve(PretrainConfig, {**recipe["pretrain"], "output_dir": plan.run.model})
    except TypeError as e:
        raise ConfigError(str(e)) from None
    return plan


def cell_plan(plan: RunRecipe, arm: str, seed: int, run_dir: Path, replay: Path | None) -> RunRecipe:
    """The `giftgen run` plan of one arm and random seed (module docstring, step 3)."""
    t = plan.stages
    run = replace(plan.run, run_dir=str(run_dir), base_eval=False, replay_split=None, push_to_hub=None,
                  push_models_to=None)
    spec = ARMS[arm]
    chain, select = t["chain"], t["select"]
    if spec is not None:
        mode, temperature, settings = spec
        chain = replace(chain, mode=mode, **settings)
        select = replace(select, temperature=select.temperature if temperature is None else temperature)
    stages = {
        "chain": replace(chain, seed=chain.seed + seed),
        "verify": t["verify"],
        "score": t["score"],
        "select": replace(select, seed=select.seed + seed),
        "finetune": replace(t["finetune"], seed=t["finetune"].seed + seed,
                            replay=str(replay) if replay is not None else t["finetune"].replay),
        "eval": replace(t["eval"], seed=t["eval"].seed + seed),
    }
    return RunRecipe(run, stages)


def run_grid(plan: RunRecipe) -> dict[str, Any]:
    """Pretrain (cached), evaluate the base model, run every arm and seed; return (and write) the grid summary."""
    grid: GridConfig = plan.extras.get("grid") or GridConfig()
    root = Path(plan.run.run_dir).resolve()
    root.mkdir(parents=True, exist_ok=True)
    top = Runner(plan)
    with locked(root):
        top.save_recipe(GRID_EXECUTION_ONLY)  # a rerun with another recipe is refused, as for a run
        if "pretrain" in plan.extras:
            _pretrain(plan.extras["pretrain"], root)
        replay = None
        if plan.run.replay_split is not None:
            replay = top.seed_set("replay", plan.run.train_source, plan.run.train_path, plan.run.replay_split, None)
        if plan.run.eval_source is not None and plan.run.base_eval:
            base = replace(plan.run, run_dir=str(root / "base"), rounds=0, replay_split=None, push_to_hub=None,
                           push_models_to=None)
            Runner(RunRecipe(base, plan.stages))()
        arms = grid.arms or ["gift"]
        cells = [(arm, seed) for arm in arms for seed in grid.random_seeds]
        started, ran = time.perf_counter(), 0
        for k, (arm, seed) in enumerate(cells, start=1):
            cell_dir = root / arm / f"seed-{seed}"
            fresh = not (cell_dir / "summary.json").exists()
            left = ""
            if ran:  # the one estimate: the mean wall time of the cells this process ran
                per_cell = (time.perf_counter() - started) / ran
                left = f"; {ran} cell(s) run, about {format_duration(per_cell * (len(cells) - k + 1))} left"
            log(f"grid: cell {k} of {len(cells)}: {LABELS[arm]}, seed {seed}{left}")
            Runner(cell_plan(plan, arm, seed, cell_dir, replay), codes=ARMS[arm] is not None)()
            ran += fresh
        summary = grid_summary(root, arms, grid.random_seeds)
        summary["eval_names"] = [plan.run.eval_split or plan.run.eval_source or "eval", plan.run.eval2_split or "eval2"]
        write_atomic(root / "summary.json", json.dumps(summary, indent=2) + "\n")
    print_grid(summary)
    return summary


def _pretrain(config: PretrainConfig, root: Path) -> None:
    marker = root / "pretrain.json"
    start = time.perf_counter()
    result = pretrain(config)
    if result.cached and marker.exists():
        return  # the marker holds the wall time of the training that made the model
    elapsed = result.seconds if result.cached else round(time.perf_counter() - start, 3)
    write_atomic(marker, json.dumps({"stage": "pretrain", "result": asdict(result), "elapsed_s": elapsed},
                                    indent=2) + "\n")
