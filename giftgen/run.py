"""`giftgen run`: rounds of chain -> verify -> score -> select -> finetune -> eval from one recipe, into a run
directory that a ``kill -9`` at any point cannot corrupt.

Recipe. The sections are the commands' own (``chain``, ``verify``, ``score``, ``select``, ``finetune``, ``eval``,
each checked key by key as for ``giftgen --recipe``) plus ``run`` (``RunConfig``: rounds, policy, models, seed sets,
run directory). The run sets what depends on the round, so a recipe must not: every stage's ``model`` (from
``run.model``, the student, and ``run.teacher``), ``finetune.output_dir``, ``select.seeds`` and ``chain.resume``;
the seed sets come from ``run.train_*`` / ``run.eval_*`` rather than a ``seeds`` section. ``--set
section.key=value`` overrides any key (the value is read as YAML), after the recipe and before the run's flags.

Rounds (METHOD.md step 6). Round r's chain samples with round r-1's model (round 1: the base student), or with
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

Extras (the miniature, ``recipes/miniature.yaml``): ``eval_samples`` adds a sampled evaluation of every round
(``round-N/eval-sampled.*``), ``eval2_split`` a second evaluation split (``round-N/eval2.*``), ``replay_split``
writes ``seeds/replay.jsonl`` and points ``finetune.replay`` at it; ``arms`` (or a ``pretrain`` section) hands
the recipe to ``giftgen.miniature.run_grid``, which pretrains the base model into ``run.model`` (cached) and runs
one run per arm and seed in ``RUN_DIR/<arm>/seed-<s>``.

A stage is finished when its ``<stage>.json`` exists; a rerun skips finished stages, continues an unfinished
chain from its rows, and redoes any other unfinished stage from its inputs (``giftgen.stages`` explains why no
row is lost or duplicated). A rerun with a different recipe is refused, except for execution settings and a
larger ``rounds`` (which extends the run). One run at a time per directory (a lock).

Memory: no two models are loaded at once. Stages run one after the other; with ``isolate`` (default) each stage
that loads a model runs in its own process, which frees all its memory (GPU and vLLM's reservation included) when
it exits; without, the stage's backend is closed and the run collects garbage and empties the CUDA cache before
the next stage. ``finetune_launcher`` runs finetune under a launcher such as ``accelerate launch``.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from giftgen.config import command_config, setting
from giftgen.errors import ConfigError, GiftgenError
from giftgen.seeds import SOURCES, STDIO_COMPARE_HELP

STAGE_ORDER = ("chain", "verify", "score", "select", "finetune", "eval")
# Keys the run sets per round; a recipe that sets them would be silently overridden, so it is an error.
RUN_OWNED = {"chain": ("model", "resume"), "score": ("model",), "finetune": ("model", "output_dir"),
             "eval": ("model",), "select": ("seeds",)}
# Settings that change how a run executes, not what it computes: a rerun may change them.
EXECUTION_ONLY = ("rounds", "run_dir", "isolate", "finetune_launcher", "push_to_hub", "push_models_to", "arms",
                  "seeds")
_OUTPUTS = {"chain": "chain.jsonl", "verify": "verify.jsonl", "score": "score.jsonl", "select": "select.jsonl",
            "finetune": "model", "eval": "eval.jsonl"}


@command_config("run")
class RunConfig:
    model: str | None = setting(None, "The student: the base model that rounds fine-tune (a Hub id or a folder).",
                                flag="-m", envvar="GIFTGEN_MODEL")
    teacher: str | None = setting(None, "Distillation: a fixed model that runs the chain every round (the chain "
                                        "section's backend settings apply to it); default: the student.")
    rounds: int = setting(1, "Self-training rounds (0: evaluate the base student only).", flag="-R")
    policy: str = setting("from-base", "What each round fine-tunes: the base student (from-base) or the "
                                       "previous round's model (continue).", choices=("from-base", "continue"))
    score_model: str = setting("student", "Whose perplexity weights the selection: the student being trained, "
                                          "the model that sampled the codes, or release: the sampler in "
                                          "self-training, the student in distillation.",
                               choices=("student", "sampler", "release"))
    run_dir: str = setting("giftgen-run", "Run directory: every stage's output, resumable.", flag="-d")
    verify_tests: str = setting("chain", "Tests the verify stage runs: the chain's (chain.tests and chain.max_tests: "
                                         "kept codes are judged as the chain judged them, e.g. APPS's first 10), "
                                         "or the verify section's own.", choices=("chain", "own"))
    train_source: str = setting("mbpp", "Seed source of the problems the chain runs on.", choices=tuple(SOURCES))
    train_path: str | None = setting(None, "Local file of the train seeds (default: the Hub).")
    train_split: str | None = setting(None, "Split of the train seeds (default: the source's seed split).")
    train_limit: int | None = setting(None, "Keep only the first N train problems.")
    eval_source: str | None = setting(None, "Seed source of the held-out problems each round is evaluated on "
                                            "(none: no evaluation).", choices=tuple(SOURCES))
    eval_path: str | None = setting(None, "Local file of the eval seeds (default: the Hub).")
    eval_split: str | None = setting(None, "Split of the eval seeds (default: the source's default split).")
    eval_limit: int | None = setting(None, "Keep only the first N eval problems.")
    stdio_compare: str | None = setting(None, "Train and eval seeds: " + STDIO_COMPARE_HELP[0].lower() +
                                        STDIO_COMPARE_HELP[1:], choices=("tokens", "release"))
    base_eval: bool = setting(True, "Evaluate the base student before round 1 (round 0).")
    isolate: bool = setting(True, "Run each stage that loads a model in its own process (frees its memory, GPU "
                                  "included, when it ends).")
    finetune_launcher: str | None = setting(None, "Run finetune under this command, e.g. 'accelerate launch "
                                                  "--config_file recipes/accelerate/fsdp.yaml' (implies a process).")
    push_to_hub: str | None = setting(None, "Publish the run to this Hub dataset repo when it ends: one config "
                                            "per stage, one split per round, with a card (giftgen.publish).")
    push_models_to: str | None = setting(None, "Also push the fine-tuned model, its card linking the dataset "
                                               "commit; a name with {round} pushes every round's model.")
    eval_samples: int = setting(0, "Also evaluate every round sampled: this many samples per problem at T = 1 (no "
                                   "top-p/top-k), giving sampled pass@1 (RUN_DIR/round-N/eval-sampled.jsonl).")
    eval2_split: str | None = setting(None, "A second split of the eval source, evaluated as `eval` is "
                                            "(round-N/eval2.jsonl), e.g. to watch forgetting.")
    replay_split: str | None = setting(None, "Split of the train source whose prompt-completion rows finetune "
                                             "mixes back in (sets finetune.replay to RUN_DIR/seeds/replay.jsonl).")
    arms: list[str] = setting([], "A grid (giftgen.miniature): one run per arm (gift, rft, rftrd, control) and seed, "
                                  "into RUN_DIR/<arm>/seed-<s>; the base model is evaluated once in RUN_DIR/base.")
    seeds: list[int] = setting([0], "Seeds of the grid's runs: seed s adds s to every stage's seed.")

    def validate(self) -> None:
        if self.model is None:
            raise ConfigError("`giftgen run` needs the student model", hint="set run.model in the recipe or "
                                                                           "give --model")
        if self.rounds < 0:
            raise ConfigError(f"rounds must be >= 0, got {self.rounds}")
        for name in ("train_limit", "eval_limit"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.eval_samples < 0:
            raise ConfigError(f"eval_samples must be >= 0, got {self.eval_samples}")
        from giftgen.miniature import ARMS

        bad = [arm for arm in self.arms if arm not in ARMS]
        if bad:
            raise ConfigError(f"unknown arm(s) {', '.join(bad)}; arms: {', '.join(ARMS)}")
        if self.arms and (not self.seeds or len(set(self.seeds)) != len(self.seeds)):
            raise ConfigError(f"a grid needs distinct seeds, got {self.seeds}")


# --------------------------------------------------------------------------------------------------- the recipe


@dataclass
class RunRecipe:
    """A resolved recipe: the run settings and each stage's settings before the run's per-round changes."""

    run: RunConfig
    stages: dict[str, Any]

    def as_dict(self) -> dict[str, dict[str, Any]]:
        from giftgen.config import to_dict

        return {"run": to_dict(self.run), **{name: to_dict(cfg) for name, cfg in self.stages.items()}}


def stage_classes() -> dict[str, type]:
    from giftgen.chain import ChainConfig
    from giftgen.evaluate import EvalConfig
    from giftgen.finetune import FinetuneConfig
    from giftgen.score import ScoreConfig
    from giftgen.selection import SelectConfig
    from giftgen.verify import VerifyConfig

    return {"chain": ChainConfig, "verify": VerifyConfig, "score": ScoreConfig, "select": SelectConfig,
            "finetune": FinetuneConfig, "eval": EvalConfig}


def apply_overrides(recipe: dict[str, dict[str, Any]], overrides: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``section.key=value`` overrides (values read as YAML), checked like recipe keys."""
    import yaml

    from giftgen.config import CONFIGS, coerce

    out = {section: dict(values) for section, values in recipe.items()}
    for item in overrides:
        target, eq, text = item.partition("=")
        section, dot, key = target.strip().partition(".")
        if not eq or not dot or not key:
            raise ConfigError(f"--set takes SECTION.KEY=VALUE (e.g. chain.steps=3), got {item!r}")
        if section not in CONFIGS:
            raise ConfigError(f"--set {item}: unknown section {section!r}; valid sections: "
                              f"{', '.join(sorted(CONFIGS))}")
        cls = CONFIGS[section]
        valid = {f for f in cls.__dataclass_fields__}
        if key not in valid:
            raise ConfigError(f"--set {item}: unknown key {key!r} in section {section!r}; valid keys: "
                              f"{', '.join(sorted(valid))}")
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError:
            value = text
        out.setdefault(section, {})[key] = coerce(cls, key, value, f"--set {item}")
    return out


def load_run_recipe(path: str | Path, overrides: Sequence[str] = (),
                    flags: Mapping[str, Any] | None = None) -> RunRecipe:
    """Read a run recipe strictly, apply ``--set`` overrides, then the run's flags; check it as a whole."""
    import giftgen.pretrain  # noqa: F401  (registers the pretrain section)
    from giftgen.config import load_recipe, resolve

    classes = stage_classes()  # imports the stage modules, which register their sections
    recipe = apply_overrides(load_recipe(path), overrides)
    if "seeds" in recipe:
        raise ConfigError(f"{path}: `giftgen run` reads its seed sets from the run section",
                          hint="move seeds.path/split/limit to run.train_path/train_split/train_limit "
                               "(and run.eval_* for the evaluation set)")
    for section, keys in RUN_OWNED.items():
        for key in keys:
            if key in recipe.get(section, {}):
                raise ConfigError(f"{path}: {section}.{key} is set by `giftgen run` each round",
                                  hint=_owned_hint(section, key))
    if "output_dir" in recipe.get("pretrain", {}):
        raise ConfigError(f"{path}: pretrain.output_dir is set by `giftgen run`",
                          hint="the base model is trained into run.model (a folder), then cached there")
    unknown = set(recipe) - set(STAGE_ORDER) - {"run", "pretrain"}
    if unknown:
        raise ConfigError(f"{path}: `giftgen run` has no use for section(s) {', '.join(sorted(unknown))}",
                          hint=f"its sections: run, {', '.join(STAGE_ORDER)}, pretrain")
    try:
        run = resolve(RunConfig, recipe.get("run"), flags)
        stages = {name: resolve(cls, recipe.get(name)) for name, cls in classes.items()}
        if "pretrain" in recipe:  # the miniature: train the base student first (cached)
            from giftgen.pretrain import PretrainConfig

            stages["pretrain"] = resolve(PretrainConfig, {**recipe["pretrain"], "output_dir": run.model})
    except TypeError as e:
        raise ConfigError(str(e)) from None
    plan = RunRecipe(run, stages)
    check_plan(plan)
    return plan


def _owned_hint(section: str, key: str) -> str:
    if key == "model":
        return "set run.model (the student) or run.teacher (the chain's model in distillation)"
    if key == "output_dir":
        return "round N's model is saved to RUN_DIR/round-N/model; set run.run_dir"
    if key == "seeds":
        return "select pairs draws with the train seeds (run.train_*)"
    return "remove it: the run always resumes its chain"


def check_plan(plan: RunRecipe) -> None:
    """Settings that are valid one by one but cannot work together in a run."""
    run, stages = plan.run, plan.stages
    fixed = ("openai", "fake")  # backends whose model is a server's or a script, not a folder a round writes
    if stages["chain"].backend in fixed and run.teacher is None and run.rounds > 1:
        raise ConfigError(f"chain.backend {stages['chain'].backend} cannot sample with round 1's model",
                          hint="use it for a fixed teacher (run.teacher), or chain.backend transformers/vllm")
    if stages["eval"].backend in fixed and run.eval_source is not None and (run.rounds > 0):
        raise ConfigError(f"eval.backend {stages['eval'].backend} cannot load each round's model",
                          hint="use eval.backend transformers or vllm")
    score_fixed = (run.score_model == "student" and run.policy == "from-base") or \
        (run.score_model == "sampler" and run.teacher is not None) or \
        (run.score_model == "release" and run.teacher is not None and run.policy == "from-base")
    if stages["score"].backend in fixed and not score_fixed:
        raise ConfigError(f"score.backend {stages['score'].backend} cannot load each round's model",
                          hint="use score.backend transformers or vllm")
    verify, chain = stages["verify"], stages["chain"]
    if run.verify_tests == "chain" and verify.max_tests is not None and verify.max_tests != chain.max_tests:
        raise ConfigError(f"verify.max_tests ({verify.max_tests}) differs from chain.max_tests ({chain.max_tests}), "
                          "but the run verifies with the chain's tests", hint="set run.verify_tests: own to keep it")
    finetune = stages["finetune"]
    if finetune.lora and not finetune.merge_lora and run.rounds > 0:
        raise ConfigError("finetune.lora without finetune.merge_lora: the next stages load each round's model "
                          "as a whole model", hint="set finetune.merge_lora: true")


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

    def __init__(self, plan: RunRecipe, arm: str | None = None):
        self.plan = plan
        # the miniature's control arm: no chain; finetune spends the same steps on the seed pairs (and replay)
        self.control = arm == "control"
        self.run = plan.run
        self.root = Path(plan.run.run_dir).resolve()

    # ----------------------------------------------------------------------------------------------- the loop

    def __call__(self) -> dict[str, Any]:
        from giftgen.progress import log

        self.root.mkdir(parents=True, exist_ok=True)
        with _locked(self.root):
            import shutil

            shutil.rmtree(self.root / ".jobs", ignore_errors=True)  # job files of a killed run's stages
            self._save_recipe()
            train = self._seeds("train", self.run.train_source, self.run.train_path, self.run.train_split,
                                self.run.train_limit)
            evals = evals2 = replay = None
            if self.run.eval_source is not None:
                evals = self._seeds("eval", self.run.eval_source, self.run.eval_path, self.run.eval_split,
                                    self.run.eval_limit)
                if self.run.eval2_split is not None:
                    evals2 = self._seeds("eval2", self.run.eval_source, self.run.eval_path, self.run.eval2_split,
                                         self.run.eval_limit)
            if self.run.replay_split is not None:
                replay = self._seeds("replay", self.run.train_source, self.run.train_path, self.run.replay_split,
                                     None)
            if evals is not None and self.run.base_eval:
                self._evals(0, replace(self.plan.stages["eval"], model=self.run.model), evals, evals2)
            for r in range(1, self.run.rounds + 1):
                if r > 1 or (evals is not None and self.run.base_eval):
                    print_table(self._summary())
                configs = round_configs(self.plan, r, self.root, train, replay)
                rd = self.root / f"round-{r}"
                inputs = {
                    "chain": {"seeds": train},
                    "verify": {"rows": rd / "chain.jsonl", "candidates": configs["select"].candidates},
                    "score": {"rows": rd / "verify.jsonl"},
                    "select": {"rows": rd / "score.jsonl"},
                    "finetune": {"rows": rd / "select.jsonl"},
                }
                if self.control:  # select over no codes: the seed pairs alone
                    from giftgen.stages import write_atomic

                    write_atomic(rd / "no-codes.jsonl", "")
                    inputs["select"] = {"rows": rd / "no-codes.jsonl"}
                for name in STAGE_ORDER:
                    if name == "eval":
                        if evals is not None:
                            self._evals(r, configs["eval"], evals, evals2)
                    elif not (self.control and name in ("chain", "verify", "score")):
                        self._stage(r, name, configs[name], inputs[name])
                log(f"run: round {r} of {self.run.rounds} done")
            summary = self._summary()
            print_table(summary)
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

    def _save_recipe(self) -> None:
        import yaml

        from giftgen.stages import write_atomic

        path = self.root / "recipe.yaml"
        new = self.plan.as_dict()
        if path.exists():
            old = yaml.safe_load(path.read_text()) or {}
            difference = _recipe_difference(old, new)
            if difference:
                raise ConfigError(f"{self.root} holds a run of another recipe ({difference})",
                                  hint="rerun with the recipe it was started with, or give another --run-dir")
        text = yaml.safe_dump(new, sort_keys=False)
        if not path.exists() or path.read_text() != text:  # e.g. more rounds: the file says what was run
            write_atomic(path, text)

    def _seeds(self, which: str, source: str, path: str | None, split: str | None, limit: int | None) -> Path:
        from itertools import islice

        from giftgen.progress import log
        from giftgen.seeds import load_seeds
        from giftgen.stages import write_atomic, write_rows_atomic

        out = self.root / "seeds" / f"{which}.jsonl"
        marker = out.with_suffix(".json")
        if marker.exists():
            return out
        rows = load_seeds(source, path, split, self.plan.run.stdio_compare)
        if limit is not None:
            rows = islice(rows, limit)
        write_rows_atomic(out, rows)
        count = sum(1 for _ in _lines(out))
        if count == 0:
            raise ConfigError(f"the {which} seed set ({source}, split {split or 'default'}) has no problems")
        write_atomic(marker, json.dumps({"source": source, "path": path, "split": split, "limit": limit,
                                         "rows": count}, indent=2))
        log(f"run: {which} seeds: {count} problems from {source}")
        return out

    def _stage(self, r: int, name: str, config: Any, inputs: dict[str, Any],
               label: str | None = None) -> dict[str, Any]:
        from giftgen import __version__
        from giftgen.config import to_dict
        from giftgen.progress import log
        from giftgen.stages import MODEL_STAGES, write_atomic
        from giftgen.versions import library_versions

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
               "inputs": {k: str(v) for k, v in inputs.items()}, "output": str(output)}
        start = time.perf_counter()
        launcher = self.run.finetune_launcher if name == "finetune" else None
        if launcher or (self.run.isolate and name in MODEL_STAGES):
            result = self._in_child(r, name, job, launcher)
        else:
            from giftgen.stages import execute

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
        import shlex
        import subprocess
        import tempfile

        jobs = self.root / ".jobs"
        jobs.mkdir(exist_ok=True)
        fd, job_path = tempfile.mkstemp(prefix=f"round-{r}-{name}-", suffix=".json", dir=jobs)
        result_path = Path(job_path).with_suffix(".result.json")
        job = {**job, "result": str(result_path)}
        with os.fdopen(fd, "w") as f:  # mkstemp: readable by this user only
            json.dump(job, f)
        command = shlex.split(launcher) if launcher else [sys.executable]
        command += ["-m", "giftgen.stages", job_path]
        from giftgen.stages import die_with_parent

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
        rounds = [entry for r in range(0, self.run.rounds + 1) if (entry := round_entry(self.root, r))]
        from giftgen.stages import write_atomic
        from giftgen.versions import library_versions

        summary = {"run_dir": str(self.root), "versions": library_versions(), "rounds": rounds}

        write_atomic(self.root / "summary.json", json.dumps(summary, indent=2) + "\n")
        return summary


def run_rounds(plan: RunRecipe) -> dict[str, Any]:
    """Run (or resume) the rounds of ``plan``; return the summary also written to ``RUN_DIR/summary.json``.

    With ``run.push_to_hub`` the finished run is then published (``giftgen.publish.publish_run``); a rerun of a
    finished run publishes it again, so a failed push is retried by rerunning the same command.
    """
    if plan.run.arms or "pretrain" in plan.stages:
        from giftgen.miniature import run_grid

        return run_grid(plan)
    summary = Runner(plan)()
    if plan.run.push_to_hub:
        from giftgen.card import CardInfo
        from giftgen.publish import publish_run

        summary["published"] = publish_run(plan.run.run_dir, plan.run.push_to_hub,
                                           model_repo=plan.run.push_models_to,
                                           info=CardInfo(recipe=plan.as_dict()))
    return summary


# --------------------------------------------------------------------------------------------------- summary


def round_entry(root: Path, r: int) -> dict[str, Any] | None:
    """Round ``r``'s line of the table, from the stage markers found (None when the round has none)."""
    rd = root / f"round-{r}"
    markers = {}
    for name in STAGE_ORDER:
        path = rd / f"{name}.json"
        if path.exists():
            markers[name] = json.loads(path.read_text())
    if not markers:
        return None

    def get(stage: str, key: str) -> Any:
        return (markers.get(stage) or {}).get("result", {}).get(key)

    if "finetune" in markers:
        model = markers["finetune"]["output"]  # relative to the run directory
    else:
        model = (markers.get("eval") or {}).get("config", {}).get("model")
    return {
        "round": r,
        "model": model,
        "problems": get("chain", "problems"),
        "solved": get("chain", "solved"),
        "kept": get("chain", "kept"),
        "verified": get("verify", "passed"),
        "selected": get("select", "rows"),
        "selected_self": get("select", "self"),
        "train_loss": get("finetune", "train_loss"),
        "pass@1": get("eval", "pass@1"),
        "eval_problems": get("eval", "problems"),
        **{f"pass@1 {label}": json.loads((rd / f"{label}.json").read_text())["result"].get("pass@1")
           for label in ("eval-sampled", "eval2") if (rd / f"{label}.json").exists()},
    }


def print_table(summary: Mapping[str, Any], file: Any = None) -> None:
    """The rounds as a table on stderr: chain-solved problems, kept codes, selected rows, pass@1."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"giftgen run: {summary['run_dir']}")
    for column in ("round", "solved", "kept", "verified", "selected (self)", "train loss", "pass@1"):
        table.add_column(column, justify="right")
    for e in summary["rounds"]:
        solved = "-" if e["solved"] is None else f"{e['solved']}/{e['problems']}"
        selected = "-" if e["selected"] is None else f"{e['selected']} ({e['selected_self']})"
        loss = "-" if e["train_loss"] is None else f"{e['train_loss']:.4f}"
        p1 = "-" if e["pass@1"] is None else f"{100 * e['pass@1']:.2f}%"
        table.add_row(str(e["round"]), solved, _dash(e["kept"]), _dash(e["verified"]), selected, loss, p1)
    Console(file=file if file is not None else sys.stderr).print(table)


def _dash(value: Any) -> str:
    return "-" if value is None else str(value)


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


def _recipe_difference(old: Mapping[str, Any], new: Mapping[str, Any]) -> str | None:
    """The first setting (outside EXECUTION_ONLY) where two resolved recipes differ, as text."""
    for section in sorted(set(old) | set(new)):
        a, b = old.get(section) or {}, new.get(section) or {}
        for key in sorted(set(a) | set(b)):
            if section == "run" and key in EXECUTION_ONLY:
                continue
            if a.get(key) != b.get(key):
                return f"{section}.{key} was {a.get(key)!r}, now {b.get(key)!r}"
    return None


def release_memory() -> None:
    """Collect garbage and give cached CUDA memory back, so the next stage's model has the GPU to itself."""
    import gc

    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
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
