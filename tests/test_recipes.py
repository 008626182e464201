"""Every recipe in recipes/ loads strictly, carries the exact command that runs it, holds the paper's settings,
and the quickstart runs end to end with the tiny offline model in place of the Hub model."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from giftgen.cli import main
from giftgen.errors import ConfigError
from giftgen.records import read_rows
from giftgen.run import load_run_recipe, round_configs

REPO = Path(__file__).resolve().parents[1]
RECIPES = sorted((REPO / "recipes").glob("*.yaml"))
ACCELERATE = sorted((REPO / "recipes" / "accelerate").glob("*.yaml"))
PAPER = {("mbppplus", "gift"), ("mbppplus", "rft"), ("mbppplus", "rftrd"), ("apps-intro", "gift"),
         ("apps-intro", "rft"), ("apps-intro", "rftrd")}


def test_the_recipes_are_there():
    names = {p.stem for p in RECIPES}
    assert {f"{method}-{data}" for data, method in PAPER} <= names
    assert {"quickstart", "distill-mbppplus", "gift-mbppplus-lora"} <= names
    assert {p.name for p in ACCELERATE} == {"deepspeed_zero3.yaml", "fsdp.yaml"}


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_recipe_loads_strictly_and_names_its_command(path):
    plan = load_run_recipe(path)  # every section and key checked, every value validated
    assert plan.run.model
    command = f"giftgen run recipes/{path.name}"
    assert command in path.read_text(), f"{path.name} does not say how to run it"
    readme = (REPO / "recipes" / "README.md").read_text()
    assert f"`{command}`" in readme or command in readme, f"recipes/README.md lacks the command of {path.name}"
    # the file has no key that load_run_recipe would silently drop: every YAML key is a setting
    raw = yaml.safe_load(path.read_text())
    raw.pop("include", None)  # the included files are checked the same way when they are read
    resolved = plan.as_dict()
    for section, values in raw.items():
        for key, value in values.items():
            assert key in resolved[section]
            if not isinstance(value, list):
                assert resolved[section][key] == value


def test_a_misspelt_key_is_refused_with_the_valid_ones(tmp_path):
    text = (REPO / "recipes" / "common" / "paper.yaml").read_text().replace("  kept_per_step:", "  keep_per_step:")
    (tmp_path / "typo.yaml").write_text(text)
    with pytest.raises(ConfigError, match="unknown key 'keep_per_step' in section 'chain'; valid keys: .*kept_per"):
        load_run_recipe(tmp_path / "typo.yaml")


def test_paper_recipes_hold_the_release_settings():
    """METHOD.md's defaults, and the three methods differing only where the paper says they do."""
    for data, method in PAPER:
        plan = load_run_recipe(REPO / "recipes" / f"{method}-{data}.yaml")
        run, s = plan.run, plan.stages
        assert run.model == "deepseek-ai/deepseek-coder-6.7b-base" and run.teacher is None
        chain = s["chain"]
        assert (chain.steps, chain.n, chain.temperature, chain.top_k, chain.top_p, chain.max_new_tokens) == \
            (20, 3, 1.0, 50, 1.0, 512)
        assert (chain.desc_temperature, chain.desc_top_p, chain.desc_max_new_tokens) == (1.0, 0.95, 512)
        assert chain.mode == {"gift": "gibbs", "rft": "rft", "rftrd": "rewrite"}[method]
        if method == "gift":
            assert (chain.kept_per_step, chain.fallback, chain.burn_in, chain.thinning) == (1, "last-passing", 0, 1)
        select = s["select"]
        assert (select.temperature, select.k, select.replacement, select.dedup) == \
            ({"gift": 2.0, "rft": 0.0, "rftrd": 0.0}[method], 8, True, False)
        assert s["score"].condition == "generating"
        f = s["finetune"]
        assert (f.learning_rate, f.epochs, f.global_batch_size, f.max_length, f.weight_decay, f.warmup_steps,
                f.max_grad_norm, f.lora) == (2e-5, 2.0, 128, 1536, 0.05, 30, 1.0, False)
        e = s["eval"]
        assert (e.n, e.temperature) == (1, 0.0)
        if data == "mbppplus":
            assert (run.train_source, run.train_split, run.eval_source) == \
                ("mbpp", "train+prompt+validation", "mbppplus")
            assert chain.tests == "base" and e.tests == "all"  # the chain: MBPP asserts; eval: plus inputs too
        else:
            assert (run.train_source, run.train_split, run.eval_source, run.eval_split) == \
                ("apps", "introductory", "apps", "introductory")
            assert chain.max_tests == 10 and e.max_tests == 10
        assert "deepspeed_zero3.yaml" in run.finetune_launcher


def test_codeinsight_recipes():
    """GiFT, RFT and RFT+RD on CodeInsight: the MBPP+ recipes' settings, CodeInsight's splits, 5 s per script."""
    for method in ("gift", "rft", "rftrd"):
        plan = load_run_recipe(REPO / "recipes" / f"{method}-codeinsight.yaml")
        mbpp = load_run_recipe(REPO / "recipes" / f"{method}-mbppplus.yaml")
        run, s = plan.run, plan.stages
        assert (run.train_source, run.train_split, run.eval_source, run.eval_split) == \
            ("codeinsight", "train", "codeinsight", "test")
        assert s["chain"].timeout == s["verify"].timeout == s["eval"].timeout == 5.0
        assert s["chain"].tests == s["eval"].tests == "base"
        for stage in ("chain", "select", "score", "finetune"):
            ours, theirs = s[stage].__dict__, mbpp.stages[stage].__dict__
            assert {k: v for k, v in ours.items() if k not in ("timeout", "tests")} == \
                {k: v for k, v in theirs.items() if k not in ("timeout", "tests")}, stage


def test_distillation_and_lora_recipes():
    distill = load_run_recipe(REPO / "recipes" / "distill-mbppplus.yaml")
    assert distill.run.teacher == "deepseek-ai/deepseek-coder-33b-base"
    assert distill.run.model == "deepseek-ai/deepseek-coder-6.7b-base" and distill.run.score_model == "student"
    assert distill.stages["chain"].backend == "openai" and distill.stages["chain"].base_url
    assert distill.stages["score"].backend != "openai" and distill.stages["eval"].backend != "openai"
    lora = load_run_recipe(REPO / "recipes" / "gift-mbppplus-lora.yaml")
    assert lora.stages["finetune"].lora and lora.stages["finetune"].merge_lora
    assert lora.run.finetune_launcher is None


@pytest.mark.parametrize("path", ACCELERATE, ids=lambda p: p.stem)
def test_accelerate_configs_load(path):
    from accelerate.commands.config.config_args import ClusterConfig
    from accelerate.commands.launch import launch_command_parser

    config = ClusterConfig.from_yaml_file(str(path))  # refuses unknown top-level keys
    nested = {**config.deepspeed_config, **config.fsdp_config}
    assert nested
    options = {action.dest for action in launch_command_parser()._actions}
    assert set(nested) <= options, set(nested) - options  # accelerate launch passes these on as its options
    assert f"--config_file recipes/accelerate/{path.name}" in path.read_text()


def test_quickstart_end_to_end_with_the_tiny_model(tiny_model, data_dir, tmp_path):
    """The quickstart recipe as a user runs it, with the tiny model for Qwen, local benchmark files for the Hub
    and small numbers: one round, LoRA merged, every stage through."""
    run_dir = tmp_path / "quickstart"
    args = ["run", str(REPO / "recipes" / "quickstart.yaml"), "--model", str(tiny_model), "--run-dir",
            str(run_dir), "--no-isolate",
            "--set", f"run.train_path={data_dir / 'mbpp-sanitized.json'}", "--set", "run.train_limit=3",
            "--set", f"run.eval_path={data_dir / 'mbppplus-v0.1.0.jsonl'}", "--set", "run.eval_limit=2",
            "--set", "chain.steps=2", "--set", "chain.max_new_tokens=16", "--set", "chain.desc_max_new_tokens=8",
            "--set", "chain.device=cpu", "--set", "score.device=cpu", "--set", "finetune.device=cpu",
            "--set", "finetune.max_steps=1", "--set", "eval.max_new_tokens=16", "--set", "eval.device=cpu"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert [line["round"] for line in summary["rounds"]] == [0, 1]
    line = summary["rounds"][1]
    assert line["problems"] == 3 and line["selected"] >= 3 and line["pass@1"] is not None
    assert len(list(read_rows(run_dir / "round-1" / "chain.jsonl"))) == 3 * 2 * 2
    finetune = json.loads((run_dir / "round-1" / "finetune.json").read_text())
    assert finetune["config"]["lora"] and finetune["config"]["merge_lora"]
    assert (run_dir / "round-1" / "model" / "config.json").exists()  # merged: a whole model, not an adapter
    assert not (run_dir / "round-1" / "model" / "adapter_config.json").exists()
    evaluated = list(read_rows(run_dir / "round-1" / "eval.jsonl"))
    assert {r["problem_id"] for r in evaluated} == {"mbppplus/2", "mbppplus/3"}
    assert re.search(r"pass@1", result.stderr)


# --------------------------------------------------------------------------------------------------- the paper


PAPER_RECIPES = sorted((REPO / "recipes" / "paper").glob("*.yaml"))
MODELS = {"deepseek": "deepseek-ai/deepseek-coder-6.7b-base", "codellama": "codellama/CodeLlama-7b-hf"}
DATASETS = {"mbppplus": ("mbpp", "mbppplus"), "codeinsight": ("codeinsight", "codeinsight"),
            "apps-intro": ("apps", "apps"), "apps-interview": ("apps", "apps")}


def test_every_experiment_of_the_paper_has_a_recipe():
    """{GiFT, RFT, RFT+RD} x four datasets x two models, the T = -2 ablation, GiFT without PPL and RFT+RD from
    one Gibbs step; written by scripts/paper_recipes.py and committed as it writes them."""
    import subprocess
    import sys

    names = {p.stem for p in PAPER_RECIPES}
    for data in DATASETS:
        for model in MODELS:
            assert {f"{m}-{data}-{model}" for m in ("gift", "rft", "rftrd")} <= names
        assert {f"{a}-{data}-deepseek" for a in ("gift-head", "gift-noppl", "rftrd-onestep")} <= names
    assert "distill-mbppplus" in {p.stem for p in RECIPES} and "distill-mbppplus-deepseek" in names
    check = subprocess.run([sys.executable, str(REPO / "scripts" / "paper_recipes.py"), "--check"],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stderr


@pytest.mark.parametrize("path", PAPER_RECIPES, ids=lambda p: p.stem)
def test_paper_recipe_loads_strictly_in_the_release_profile(path):
    from giftgen.seeds import SOURCES

    name = path.stem
    data = next(d for d in DATASETS if f"-{d}-" in f"-{name}-")
    if DATASETS[data][0] not in SOURCES:
        pytest.skip(f"the {DATASETS[data][0]} seed source is not in this build")
    plan = load_run_recipe(path)
    command = f"giftgen run recipes/paper/{path.name}"
    assert command in path.read_text() and f"`{command}`" in (REPO / "recipes" / "README.md").read_text()
    run, s = plan.run, plan.stages
    assert run.model == MODELS[name.rsplit("-", 1)[1]] and run.run_dir == f"runs/paper/{name}"
    assert (run.train_source, run.eval_source) == DATASETS[data]
    method = name.split("-")[0]
    mode = {"gift": "gibbs", "rft": "rft", "rftrd": "rewrite", "distill": "gibbs"}[method]
    temperature = {"gift": 2.0, "rft": 0.0, "rftrd": 0.0, "distill": 2.0}[method]
    if method == "distill":  # the teacher samples; the student is scored (release: the student in distillation)
        assert run.teacher == "deepseek-ai/deepseek-coder-33b-base" and s["chain"].backend == "openai"
        plan_round = round_configs(plan, 2, Path("/runs"), Path("/t.jsonl"))
        assert plan_round["score"].model == plan_round["finetune"].model == run.model
    if name.startswith("gift-head-"):
        temperature = -2.0
    elif name.startswith("gift-noppl-"):
        temperature = 0.0
    assert s["chain"].mode == mode and s["select"].temperature == temperature
    assert s["chain"].rewrite_from == ("code" if name.startswith("rftrd-onestep-") else "paraphrase")
    # the release profile, every stage
    assert {s[k].prompt_style for k in ("chain", "score", "select", "eval")} == {"release"}
    assert s["chain"].desc_top_k == 50 and s["select"].uniform_distinct and run.score_model == "release"
    assert run.stdio_compare == "release"
    f = s["finetune"]
    assert (f.adam_epsilon, f.min_learning_rate, f.learning_rate, f.decay_all_parameters, f.loss_average,
            f.per_device_batch_size, f.global_batch_size) == (1e-6, 5e-6, 2e-5, True, "example", 1, 128)
    assert (s["chain"].steps, s["chain"].n, s["select"].k) == (20, 3, 8)
    if data.startswith("apps"):
        assert s["chain"].max_tests == 10 and run.verify_tests == "chain" and s["eval"].max_tests == 10
    pools = {"mbppplus": "MBPP/data/ict_data.json", "codeinsight": "CodeInsight/data/ict_data.json",
             "apps-interview": "APPS/data/ict_data_interview.json", "apps-intro": None}
    pool = s["chain"].exemplars
    assert (pool is None) if pools[data] is None else pool.endswith(pools[data])
