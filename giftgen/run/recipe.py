"""The recipe of `giftgen run`: the ``run`` section (``RunConfig``), each stage's section, and their checks.

Contract. ``read_run_recipe(path, overrides)`` reads a recipe strictly and applies ``--set SECTION.KEY=VALUE``
overrides (values read as YAML, checked like recipe keys); ``resolve_run_recipe(recipe, flags)`` resolves the
``run`` section (then the run's flags) and every stage's section into a ``RunRecipe`` and checks it as a whole;
``load_run_recipe`` does both. The run sets what depends on the round, so a recipe must not (``RUN_OWNED``); the
seed sets come from ``run.train_*`` / ``run.eval_*`` rather than a ``seeds`` section. Sections the run has no use
for are an error unless the caller takes them (``extra_sections``: an experiment above the run, such as the
miniature's ``grid`` and ``pretrain``, resolves its own and keeps them in ``RunRecipe.extras``).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from giftgen.chain import ChainConfig
from giftgen.config import (
    CONFIGS,
    coerce,
    command_config,
    load_recipe,
    resolve,
    setting,
    to_dict,
    unknown_key,
)
from giftgen.errors import ConfigError
from giftgen.evaluate import EvalConfig
from giftgen.finetune import FinetuneConfig
from giftgen.score import ScoreConfig
from giftgen.seeds import SOURCES, STDIO_COMPARE_HELP
from giftgen.selection import SelectConfig
from giftgen.verify import VerifyConfig

STAGE_ORDER = ("chain", "verify", "score", "select", "finetune", "eval")
STAGE_CONFIGS: dict[str, type] = {"chain": ChainConfig, "verify": VerifyConfig, "score": ScoreConfig,
                                  "select": SelectConfig, "finetune": FinetuneConfig, "eval": EvalConfig}
# Keys the run sets per round; a recipe that sets them would be silently overridden, so it is an error.
RUN_OWNED = {"chain": ("model", "resume"), "score": ("model",), "finetune": ("model", "output_dir"),
             "eval": ("model",), "select": ("seeds",)}
# Settings that change how a run executes, not what it computes: a rerun may change them. (``arms`` and
# ``seeds`` are the grid's, kept in run sections of recipe.yaml files written before the ``grid`` section.)
EXECUTION_ONLY = {"run": ("rounds", "run_dir", "isolate", "finetune_launcher", "push_to_hub", "push_models_to",
                          "arms", "seeds")}


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
    threads: int = setting(0, "CPU threads of torch in every stage (0: torch's default, the cores or "
                              "OMP_NUM_THREADS). On a CPU the results depend on it (1 thread fine-tunes other "
                              "weights than 2): pin it to reproduce a run on another machine.")
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

    def validate(self) -> None:
        if self.model is None:
            raise ConfigError("`giftgen run` needs the student model", hint="set run.model in the recipe or "
                                                                           "give --model")
        if self.rounds < 0:
            raise ConfigError(f"rounds must be >= 0, got {self.rounds}")
        for name in ("train_limit", "eval_limit"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.threads < 0:
            raise ConfigError(f"threads must be >= 0, got {self.threads}")
        if self.eval_samples < 0:
            raise ConfigError(f"eval_samples must be >= 0, got {self.eval_samples}")


@dataclass
class RunRecipe:
    """A resolved recipe: the run settings and each stage's settings before the run's per-round changes."""

    run: RunConfig
    stages: dict[str, Any]
    extras: dict[str, Any] = field(default_factory=dict)  # sections a caller resolved (e.g. the grid's)

    def as_dict(self) -> dict[str, dict[str, Any]]:
        sections = {"run": self.run, **self.stages, **self.extras}
        return {name: to_dict(cfg) for name, cfg in sections.items()}


def stage_classes() -> dict[str, type]:
    """Each stage's config class, by section name."""
    return dict(STAGE_CONFIGS)


def apply_overrides(recipe: dict[str, dict[str, Any]], overrides: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``section.key=value`` overrides (values read as YAML), checked like recipe keys."""
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
            raise unknown_key(f"--set {item}", section, key, valid)
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError:
            value = text
        out.setdefault(section, {})[key] = coerce(cls, key, value, f"--set {item}")
    return out


def read_run_recipe(path: str | Path, overrides: Sequence[str] = ()) -> dict[str, dict[str, Any]]:
    """The recipe's sections, read strictly, with the ``--set`` overrides applied."""
    return apply_overrides(load_recipe(path), overrides)


def resolve_run_recipe(recipe: Mapping[str, Mapping[str, Any]], flags: Mapping[str, Any] | None = None, *,
                       where: str | Path = "the recipe", extra_sections: Collection[str] = ()) -> RunRecipe:
    """Resolve the run section (then ``flags``) and every stage's section; check them as a whole.

    Sections in ``extra_sections`` are left to the caller (they are not in the result)."""
    if "seeds" in recipe:
        raise ConfigError(f"{where}: `giftgen run` reads its seed sets from the run section",
                          hint="move seeds.path/split/limit to run.train_path/train_split/train_limit "
                               "(and run.eval_* for the evaluation set)")
    for section, keys in RUN_OWNED.items():
        for key in keys:
            if key in recipe.get(section, {}):
                raise ConfigError(f"{where}: {section}.{key} is set by `giftgen run` each round",
                                  hint=_owned_hint(section, key))
    unknown = set(recipe) - set(STAGE_ORDER) - {"run"} - set(extra_sections)
    if unknown:
        raise ConfigError(f"{where}: `giftgen run` has no use for section(s) {', '.join(sorted(unknown))}",
                          hint=f"its sections: run, {', '.join([*STAGE_ORDER, *extra_sections])}")
    try:
        run = resolve(RunConfig, recipe.get("run"), flags)
        stages = {name: resolve(cls, recipe.get(name)) for name, cls in STAGE_CONFIGS.items()}
    except TypeError as e:
        raise ConfigError(str(e)) from None
    plan = RunRecipe(run, stages)
    check_plan(plan)
    return plan


def load_run_recipe(path: str | Path, overrides: Sequence[str] = (),
                    flags: Mapping[str, Any] | None = None) -> RunRecipe:
    """Read a run recipe strictly, apply ``--set`` overrides, then the run's flags; check it as a whole."""
    return resolve_run_recipe(read_run_recipe(path, overrides), flags, where=path)


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


def recipe_difference(old: Mapping[str, Any], new: Mapping[str, Any],
                      execution_only: Mapping[str, Collection[str]] = EXECUTION_ONLY) -> str | None:
    """The first setting (outside ``execution_only``) where two resolved recipes differ, as text."""
    for section in sorted(set(old) | set(new)):
        a, b = old.get(section) or {}, new.get(section) or {}
        for key in sorted(set(a) | set(b)):
            if key in execution_only.get(section, ()):
                continue
            if a.get(key) != b.get(key):
                return f"{section}.{key} was {a.get(key)!r}, now {b.get(key)!r}"
    return None

