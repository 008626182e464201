"""`giftgen run`: rounds of chain -> verify -> score -> select -> finetune -> eval from one recipe, into a run
directory that a ``kill -9`` at any point cannot corrupt.

Recipe. The sections are the commands' own (``chain``, ``verify``, ``score``, ``select``, ``finetune``, ``eval``,
each checked key by key as for ``giftgen --recipe``) plus ``run`` (``RunConfig``: rounds, policy, models, seed sets,
run directory). The run sets what depends on the round, so a recipe must not: every stage's ``model`` (from
``run.model``, the student, and ``run.teacher``), ``finetune.output_dir``, ``select.seeds`` and ``chain.resume``;
the seed sets come from ``run.train_*`` / ``run.eval_*`` rather than a ``seeds`` section. ``--set
section.key=value`` overrides any key (the value is read as YAML), after the recipe and before the run's flags.

Rounds (docs/method.md step 6). Round r's chain samples with round r-1's model (round 1: the base student), or with
the fixed ``teacher`` (distillation). The student being trained starts, each round, from the base model
(``policy: from-base``) or from round r-1's model (``continue``); it is the model ``score`` computes perplexities
under (``score_model: student``, the default) and the one ``finetune`` trains. Round r uses ``chain.seed + r - 1``
and ``select.seed + r - 1``, so a fixed teacher does not repeat its samples. Round 0 evaluates the base student.
``verify`` takes the chain's ``kept`` rows (at most ``kept_per_step`` passing codes per step), ``select`` pairs
the draws with the train seeds (every seed pair is in the training set, solved or not).

Run directory (``run_dir``)::

    recipe.yaml                     the resolved recipe: every section, every key (what was run)
    summary.json                    per round: problems solved, codes kept, verified, selected rows, pass@1, loss
    seeds/train.jsonl, eval.jsonl   the seed sets, as read once
    round-0/eval.jsonl              the base student's evaluation
    round-N/chain.jsonl  verify.jsonl  score.jsonl  select.jsonl  model/  eval.jsonl
    round-N/<stage>.json            written (atomically) when the stage is complete: its config, inputs,
                                    output, counts (``result``; for eval the pass@k summary) and timing

Extras: ``eval_samples`` adds a sampled evaluation of every round (``round-N/eval-sampled.*``), ``eval2_split`` a
second evaluation split (``round-N/eval2.*``), ``replay_split`` writes ``seeds/replay.jsonl`` and points
``finetune.replay`` at it. An experiment above the run (the miniature's grid, ``giftgen.miniature``) builds one
``RunRecipe`` per cell and runs each with ``Runner``; ``Runner(plan, codes=False)`` runs no chain, verify or score
(select pairs the train seeds alone: the grid's control arm).

A stage is finished when its ``<stage>.json`` exists; a rerun skips finished stages, continues an unfinished
chain from its rows, and redoes any other unfinished stage from its inputs (``giftgen.run.jobs`` explains why no
row is lost or duplicated). A rerun with a different recipe is refused, except for execution settings and a
larger ``rounds`` (which extends the run). One run at a time per directory (a lock).

Memory: no two models are loaded at once. Stages run one after the other; with ``isolate`` (default) each stage
that loads a model runs in its own process, which frees all its memory (GPU and vLLM's reservation included) when
it exits; without, the stage's backend is closed and the run collects garbage and empties the CUDA cache before
the next stage. ``finetune_launcher`` runs finetune under a launcher such as ``accelerate launch``.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Collection, Iterator, Mapping
from dataclasses import replace
from itertools import islice
from pathlib import Path
from typing import Any

import yaml

from giftgen.card import CardInfo
from giftgen.config import to_dict
from giftgen.errors import ConfigError, GiftgenError, InputError
from giftgen.progress import log
from giftgen.publish import publish_run
from giftgen.run.jobs import MODEL_STAGES, die_with_parent, execute, write_atomic, write_rows_atomic
from giftgen.run.recipe import EXECUTION_ONLY, STAGE_ORDER, RunConfig, RunRecipe, recipe_difference
from giftgen.run.summary import print_rounds, write_summary
from giftgen.seeds import load_seeds
from giftgen.versions import __version__, library_versions

_OUTPUTS = {"chain": "chain.jsonl", "verify": "verify.jsonl", "score": "score.jsonl", "select": "select.jsonl",
            "finetune": "model", "eval": "eval.jsonl"}


# --------------------------------------------------------------------------------------------------- rounds


def round_configs(plan: RunRecipe, r: int, run_dir: Path, train_seeds: Path,
                  replay: Path | None = None) -> dict[str, Any]:
    """Each stage's settings in round ``r`` (module docstring: models, seeds, paths)."""
    run, t = plan.run, plan.stages
    base = run.model
    previous = str(run_dir / f"round-{r - 1}" / "model") if r > 1 else base
    sampler = run.teacher or previous
    student = base if run.policy == "from-base" else previous
    return {
        "chain": replace(t["chain"], model=sampler, seed=t["chain"].seed + r - 1, resume=True),
        "verify": replace(t["verify"], tests=t["chain"].tests, max_tests=t["chain"].max_tests)
        if run.verify_tests == "chain" else t["verify"],
        "score": replace(t["score"], model=scorer(run, student, sampler)),
        "select": replace(t["select"], seeds=str(train_seeds), seed=t["select"].seed + r - 1),
        "finetune": replace(t["finetune"], model=student, output_dir=str(run_dir / f"round-{r}" / "model"),
                            **({"replay": str(replay)} if replay is not None else {})),
        "eval": replace(t["eval"], model=str(run_dir / f"round-{r}" / "model")),
    }


def scorer(run: RunConfig, student: str | None, sampler: str | None) -> str | None:
    """The model whose perplexity weights a round's selection (``run.score_model``)."""
    if run.score_model == "student" or (run.score_model == "release" and run.teacher is not None):
        return student
    return sampler


class Runner:
    """One run over a run directory: seeds, round 0, then rounds 1..R, each stage once."""

    def __init__(self, plan: RunRecipe, codes: bool = True):
        self.plan = plan
        # codes=False (the miniature's control arm): no chain; finetune spends its steps on the seed pairs alone
        self.codes = codes
        self.run = plan.run
        self.root = Path(plan.run.run_dir).resolve()

    # ----------------------------------------------------------------------------------------------- the loop

    def __call__(self) -> dict[str, Any]:
        self.root.mkdir(parents=True, exist_ok=True)
        with locked(self.root):
            shutil.rmtree(self.root / ".jobs", ignore_errors=True)  # job files of a killed run's stages
            self.save_recipe()
            train = self.seed_set("train", self.run.train_source, self.run.train_path, self.run.train_split,
                                self.run.train_limit)
            evals = evals2 = replay = None
            if self.run.eval_source is not None:
                evals = self.seed_set("eval", self.run.eval_source, self.run.eval_path, self.run.eval_split,
                                    self.run.eval_limit)
                if self.run.eval2_split is not None:
                    evals2 = self.seed_set("eval2", self.run.eval_source, self.run.eval_path, self.run.eval2_split,
                                         self.run.eval_limit)
            if self.run.replay_split is not None:
                replay = self.seed_set("replay", self.run.train_source, self.run.train_path, self.run.replay_split,
                                     None)
            if evals is not None and self.run.base_eval:
                self._evals(0, replace(self.plan.stages["eval"], model=self.run.model), evals, evals2)
            for r in range(1, self.run.rounds + 1):
                if r > 1 or (evals is not None and self.run.base_eval):
                    print_rounds(self._summary())
                configs = round_configs(self.plan, r, self.root, train, replay)
                rd = self.root / f"round-{r}"
                inputs = {
                    "chain": {"seeds": train},
                    "verify": {"rows": rd / "chain.jsonl", "candidates": configs["select"].candidates},
                    "score": {"rows": rd / "verify.jsonl"},
                    "select": {"rows": rd / "score.jsonl"},
                    "finetune": {"rows": rd / "select.jsonl"},
                }
                if not self.codes:  # select over no codes: the seed pairs alone
                    write_atomic(rd / "no-codes.jsonl", "")
                    inputs["select"] = {"rows": rd / "no-codes.jsonl"}
                for name in STAGE_ORDER:
                    if name == "eval":
                        if evals is not None:
                            self._evals(r, configs["eval"], evals, evals2)
                    elif self.codes or name not in ("chain", "verify", "score"):
                        self._stage(r, name, configs[name], inputs[name])
                log(f"run: round {r} of {self.run.rounds} done")
            summary = self._summary()
            print_rounds(summary)
            return summary

    # ----------------------------------------------------------------------------------------------- pieces

    def _evals(self, r: int, config: Any, evals: Path, evals2: Path | None) -> None:
        """Round r's evaluations: ``eval``, then sampled pass@1 (``eval_samples``) and the second split."""
        self._stage(r, "eval", config, {"seeds": evals})
        if self.run.eval_samples:
            sampled = replace(config, n=self.run.eval_samples, temperature=1.0, top_p=1.0, top_k=0, k=["1"])
            self._stage(r, "eval", sampled, {"seeds": evals}, label="eval-sampled")
        if evals2 is not None:
            self._stage(r, "eval", config, {"seeds": evals2}, label="eval2")

    def save_recipe(self, execution_only: Mapping[str, Collection[str]] = EXECUTION_ONLY) -> None:
        """Write RUN_DIR/recipe.yaml; refuse a directory that holds a run of another recipe (settings outside
        ``execution_only`` differ)."""
        path = self.root / "recipe.yaml"
        new = self.plan.as_dict()
        if path.exists():
            old = yaml.safe_load(path.read_text()) or {}
            difference = recipe_difference(old, new, execution_only)
            if difference:
                raise ConfigError(f"{self.root} holds a run of another recipe ({difference})",
                                  hint="rerun with the recipe it was started with, or give another --run-dir")
        text = yaml.safe_dump(new, sort_keys=False)
        if not path.exists() or path.read_text() != text:  # e.g. more rounds: the file says what was run
            write_atomic(path, text)

    def seed_set(self, which: str, source: str, path: str | None, split: str | None, limit: int | None) -> Path:
        """RUN_DIR/seeds/WHICH.jsonl: the seed problems, read once (a marker says the file is complete)."""
        out = self.root / "seeds" / f"{which}.jsonl"
        marker = out.with_suffix(".json")
        if marker.exists():
            return out
        try:
            # the release prompt style reads the benchmark's raw bytes (seed columns RAW_COLUMNS); giftgen's does not
            raw = any(getattr(self.plan.stages.get(stage), "prompt_style", None) == "release"
                      for stage in ("chain", "eval"))
            rows = load_seeds(source, path, split, self.plan.run.stdio_compare, raw_columns=raw)
            write_rows_atomic(out, rows if limit is None else islice(rows, limit))
        except InputError as e:  # the seed sources speak of `giftgen seeds` flags; a run has keys of its own
            prefix = "train" if which in ("train", "replay") else "eval"
            hint = e.hint.replace("--path", f"run.{prefix}_path (--{prefix}-path)") if e.hint else e.hint
            if hint is not None:
                hint = hint.replace("--split", f"run.{prefix}_split (--{prefix}-split)")
            raise InputError(str(e.args[0]) if e.args else str(e), hint=hint) from None
        count = sum(1 for _ in _lines(out))
        if count == 0:
            raise ConfigError(f"the {which} seed set ({source}, split {split or 'default'}) has no problems")
        write_atomic(marker, json.dumps({"source": source, "path": path, "split": split, "limit": limit,
                                         "rows": count}, indent=2))
        log(f"run: {which} seeds: {count} problems from {source}")
        return out

    def _stage(self, r: int, name: str, config: Any, inputs: dict[str, Any],
               label: str | None = None) -> dict[str, Any]:
        rd = self.root / f"round-{r}"
        label = label or name  # a stage run twice in a round (evaluations) has a marker and output per label
        marker = rd / f"{label}.json"
        if marker.exists():
            log(f"run: round {r}: {label} finished earlier, skipped")
            return json.loads(marker.read_text())
        rd.mkdir(parents=True, exist_ok=True)
        output = rd / (_OUTPUTS[name] if label == name else f"{label}.jsonl")
        log(f"run: round {r}: {label}" + (f" with {config.model}" if getattr(config, "model", None) else ""))
        job = {"stage": name, "config": to_dict(config, reveal=True),
               "inputs": {k: str(v) for k, v in inputs.items()}, "output": str(output), "threads": self.run.threads}
        start = time.perf_counter()
        launcher = self.run.finetune_launcher if name == "finetune" else None
        if launcher or (self.run.isolate and name in MODEL_STAGES):
            result = self._in_child(r, name, job, launcher)
        else:
            try:
                result = execute(job)
            finally:
                release_memory()
        record = {
            "stage": name, "round": r, "output": _relative(output, self.root),
            "inputs": {k: _relative(v, self.root) if isinstance(v, Path) else v for k, v in inputs.items()},
            "config": to_dict(config), "result": result,
            "elapsed_s": round(time.perf_counter() - start, 3),
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "giftgen_version": __version__,
            "versions": library_versions(),
        }
        write_atomic(marker, json.dumps(record, indent=2, default=str) + "\n")
        return record

    def _in_child(self, r: int, name: str, job: dict[str, Any], launcher: str | None) -> dict[str, Any]:
        jobs = self.root / ".jobs"
        jobs.mkdir(exist_ok=True)
        fd, job_path = tempfile.mkstemp(prefix=f"round-{r}-{name}-", suffix=".json", dir=jobs)
        result_path = Path(job_path).with_suffix(".result.json")
        job = {**job, "result": str(result_path)}
        with os.fdopen(fd, "w") as f:  # mkstemp: readable by this user only
            json.dump(job, f)
        command = shlex.split(launcher) if launcher else [sys.executable]
        command += ["-m", "giftgen.run", job_path]  # giftgen/run/__main__.py
        parent = os.getpid()
        # Runs in the child between fork and exec: the kernel kills it if the run dies (even by kill -9).
        preexec = (lambda: die_with_parent(parent)) if sys.platform.startswith("linux") else None
        # The child's stdout is our stderr: whatever libraries print there must not reach the records.
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=2, preexec_fn=preexec)
        try:
            code = proc.wait()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        try:
            data = json.loads(result_path.read_text()) if result_path.exists() else {}
        finally:
            Path(job_path).unlink(missing_ok=True)
            result_path.unlink(missing_ok=True)
        if "error" in data:
            error = GiftgenError(f"round {r}, {name}: {data['error']}")
            error.exit_code = int(data.get("exit_code", 1))
            raise error
        if code != 0 or "result" not in data:
            raise GiftgenError(f"round {r}, {name}: the stage process ended with exit code {code}",
                               hint="its messages are above; rerun the same command to resume")
        return data["result"]

    def _summary(self) -> dict[str, Any]:
        return write_summary(self.root, self.run.rounds)


def run_rounds(plan: RunRecipe) -> dict[str, Any]:
    """Run (or resume) the rounds of ``plan``; return the summary also written to ``RUN_DIR/summary.json``.

    With ``run.push_to_hub`` the finished run is then published (``giftgen.publish.publish_run``); a rerun of a
    finished run publishes it again, so a failed push is retried by rerunning the same command.
    """
    summary = Runner(plan)()
    if plan.run.push_to_hub:
        summary["published"] = publish_run(plan.run.run_dir, plan.run.push_to_hub,
                                           model_repo=plan.run.push_models_to,
                                           info=CardInfo(recipe=plan.as_dict()))
    return summary



# --------------------------------------------------------------------------------------------------- helpers


def _relative(path: Path, root: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(root))
    except ValueError:
        return str(path)


def _lines(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as f:
        for line in f:
            if line.strip():
                yield line



def release_memory() -> None:
    """Collect garbage and give cached CUDA memory back, so the next stage's model has the GPU to itself."""
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


@contextlib.contextmanager
def locked(root: Path) -> Iterator[None]:
    """Hold RUN_DIR/.lock for the run; a second run on the same directory is refused. The kernel drops the lock
    when the process dies, kill -9 included."""
    try:
        import fcntl
    except ImportError:  # Windows: no lock
        yield
        return
    with open(root / ".lock", "a") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(f"another `giftgen run` is using {root}",
                              hint="wait for it to finish, or give another --run-dir") from None
        yield
