"""The miniature: finetune's replay, the grid of arms x seeds that `giftgen run` builds from recipes/miniature.yaml,
its diagnostics and report, and (the end-to-end test at the bottom) the measured effect of one self-training round
over the same-steps control on the tiny toy model."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from giftgen.cli import load_plan
from giftgen.errors import ConfigError, InputError
from giftgen.finetune import FinetuneConfig, mix_replay, replay_rows
from giftgen.miniature import (
    ARMS,
    GridConfig,
    cell_diagnostics,
    cell_plan,
    grid_summary,
    markdown_table,
    spread,
)
from giftgen.records import RowWriter

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "recipes" / "miniature.yaml"


# --------------------------------------------------------------------------------------------------- replay


def _pairs(n: int, tag: str = "r") -> list[dict]:
    return [{"prompt": f"def f(x):\n    \"\"\"{tag}{i}\"\"\"\n", "completion": f"    return x + {i}\n"} for i in range(n)]


def test_replay_rows_are_deterministic_and_balanced():
    pool = _pairs(10)
    a, b = replay_rows(pool, 25, seed=3), replay_rows(pool, 25, seed=3)
    assert a == b and len(a) == 25
    assert replay_rows(pool, 25, seed=4) != a  # another seed, another draw
    counts = {}
    for row in a:
        counts[row["prompt"]] = counts.get(row["prompt"], 0) + 1
    assert set(counts) == {p["prompt"] for p in pool}  # two whole passes, then 5 of a third
    assert sorted(counts.values()) == [2] * 5 + [3] * 5
    assert replay_rows(pool, 0, seed=0) == []
    with pytest.raises(InputError):
        replay_rows([], 3, seed=0)


def test_mix_replay_makes_the_share_of_the_training_set(tmp_path):
    path = tmp_path / "replay.jsonl"
    with RowWriter(path) as w:
        w.write_many([{**p, "source": "toy"} for p in _pairs(100)])  # extra columns are ignored
    rows = _pairs(30, tag="self")
    mixed, count = mix_replay(rows, FinetuneConfig(replay=str(path), replay_share=0.75, seed=1))
    assert count == 90 and len(mixed) == 120 and mixed[:30] == rows
    assert all(set(r) == {"prompt", "completion"} for r in mixed)
    assert sum(r["prompt"].startswith('def f(x):\n    """r') for r in mixed) / len(mixed) == 0.75
    assert mix_replay(rows, FinetuneConfig(replay=str(path), replay_share=0.0)) == (rows, 0)
    assert mix_replay(rows, FinetuneConfig()) == (rows, 0)
    chat = [{"prompt": [{"role": "user", "content": "x"}], "completion": [{"role": "assistant", "content": "y"}]}]
    with pytest.raises(InputError, match="prompt styles"):
        mix_replay(chat, FinetuneConfig(replay=str(path)))
    with pytest.raises(ConfigError):
        FinetuneConfig(replay_share=1.0).validate()


# --------------------------------------------------------------------------------------------------- the grid


def test_recipe_and_grid_plan():
    plan = load_plan(RECIPE)
    run, grid = plan.run, plan.extras["grid"]
    assert grid.arms == ["gift", "rft", "rftrd", "control"] and len(grid.random_seeds) >= 3
    assert (run.train_source, run.train_split, run.eval_split, run.eval2_split) == ("toy", "seed", "test3", "test2")
    assert run.eval_samples > 0 and run.replay_split == "pretrain"
    assert plan.extras["pretrain"].output_dir == run.model  # the base model is trained where the run reads it
    assert plan.stages["finetune"].max_steps  # a fixed budget: every arm, the control included, trains as long
    seen = {}
    for arm in ARMS:
        cell = cell_plan(plan, arm, 2, Path("/r") / arm / "seed-2", Path("/r/seeds/replay.jsonl"))
        t = cell.stages
        assert "pretrain" not in t and not cell.extras and cell.run.run_dir == f"/r/{arm}/seed-2"
        assert t["chain"].seed == plan.stages["chain"].seed + 2 and t["select"].seed == plan.stages["select"].seed + 2
        assert t["finetune"].seed == plan.stages["finetune"].seed + 2 and t["eval"].seed == plan.stages["eval"].seed + 2
        assert t["finetune"].replay == "/r/seeds/replay.jsonl"
        assert t["finetune"].max_steps == plan.stages["finetune"].max_steps
        seen[arm] = (t["chain"].mode, t["select"].temperature)
    assert seen["gift"] == ("gibbs", plan.stages["select"].temperature) and seen["gift"][1] > 0
    assert seen["rft"] == ("rft", 0.0) and seen["rftrd"] == ("rewrite", 0.0)


def test_grid_settings_are_checked(tmp_path):
    with pytest.raises(ConfigError, match="unknown arm"):
        GridConfig(arms=["gift", "star"]).validate()
    with pytest.raises(ConfigError, match="distinct random seeds"):
        GridConfig(arms=["gift"], random_seeds=[1, 1]).validate()
    text, found = re.subn(r"^pretrain:.*$", r"\g<0>\n  output_dir: elsewhere", RECIPE.read_text(), flags=re.M)
    assert found == 1
    (tmp_path / "r.yaml").write_text(text)
    with pytest.raises(ConfigError, match="pretrain.output_dir is set by `giftgen run`"):
        load_plan(tmp_path / "r.yaml")
    for key, new in (("arms: [gift]", "run.arms is now grid.arms"), ("seeds: [0, 1]", "run.seeds is now grid.random_seeds")):
        (tmp_path / "old.yaml").write_text(f"run:\n  model: m\n  {key}\n")  # the grid's old keys, under run
        with pytest.raises(ConfigError, match=new):
            load_plan(tmp_path / "old.yaml")


def _chain_row(pid: str, step: int, sample: int, passed: bool, code: str = "def f(x):\n    return x\n") -> dict:
    return {"problem_id": pid, "step": step, "sample": sample, "chain_passed": passed, "kept": passed,
            "code": code}


def test_cell_diagnostics_from_rows(tmp_path):
    rows = [
        _chain_row("a", 1, 0, True), _chain_row("a", 1, 1, False),   # step passes
        _chain_row("a", 2, 0, False), _chain_row("a", 2, 1, False),  # step fails: drift
        _chain_row("b", 1, 0, False), _chain_row("b", 1, 1, False),  # fails
        _chain_row("b", 2, 0, False), _chain_row("b", 2, 1, True),   # passes
        _chain_row("c", 1, 0, False), _chain_row("c", 1, 1, False),
        _chain_row("c", 2, 0, False), _chain_row("c", 2, 1, False),
    ]
    with RowWriter(tmp_path / "chain.jsonl") as w:
        w.write_many(rows)
    verified = [  # a: two layouts of one program and one other program; b: one program
        {"problem_id": "a", "passed": True, "code": "def f(x):\n    return x * x\n"},
        {"problem_id": "a", "passed": True, "code": "def f(x):\n    # square\n    return x*x\n"},
        {"problem_id": "a", "passed": True, "code": "def f(x):\n    return x ** 2\n"},
        {"problem_id": "b", "passed": True, "code": "def f(x):\n    return -x\n"},
        {"problem_id": "c", "passed": False, "code": "def f(x):\n    return 0\n"},
    ]
    with RowWriter(tmp_path / "verify.jsonl") as w:
        w.write_many(verified)
    d = cell_diagnostics(tmp_path)
    assert d["sample_pass_rate"] == 2 / 12 and d["covered"] == 2 and d["problems"] == 3
    assert d["step_pass_rate"] == {"1": 1 / 6, "2": 1 / 6}
    assert d["drift"] == 4 / 6
    assert d["distinct_per_solved"] == (2 + 1) / 2
    assert cell_diagnostics(tmp_path / "nothing")["drift"] is None  # the control: no chain, no diagnostics


def test_spread_and_summary_of_a_layout(tmp_path):
    assert spread([0.5, None, 0.7])["mean"] == pytest.approx(0.6)
    assert spread([0.5, 0.7])["sd"] == pytest.approx(0.1414, abs=1e-4)
    assert spread([None])["mean"] is None
    for arm, values in (("gift", (0.5, 0.6)), ("control", (0.3, 0.3))):
        for seed, value in enumerate(values):
            rd = tmp_path / arm / f"seed-{seed}" / "round-1"
            rd.mkdir(parents=True)
            for label, v in (("eval", value), ("eval-sampled", value / 2), ("eval2", 0.9)):
                (rd / f"{label}.json").write_text(json.dumps({"result": {"pass@1": v}, "elapsed_s": 2.0}))
    summary = grid_summary(tmp_path)
    assert list(summary["arms"]) == ["gift", "control"]
    from giftgen.versions import library_versions

    assert summary["versions"] == library_versions()
    gift = summary["arms"]["gift"]["last_round"]
    assert gift["greedy"]["mean"] == pytest.approx(0.55) and gift["sampled"]["mean"] == pytest.approx(0.275)
    assert summary["arms"]["control"]["last_round"]["greedy"]["sd"] == 0.0
    assert summary["arms"]["gift"]["seconds"] == {"eval": 2.0, "eval-sampled": 2.0, "eval2": 2.0}
    table = markdown_table(summary)
    assert "| GiFT | 2 | 55.0 ± 7.1 | 27.5 ± 3.5 | 90.0 ± 0.0 |" in table


def test_control_arm_has_no_chain_in_its_plan():
    plan = load_plan(RECIPE)
    control = cell_plan(plan, "control", 0, Path("/r/control/seed-0"), None)
    # same fine-tuning budget and settings as the self-training arms; only its rows differ (Runner(plan, codes=False))
    gift = cell_plan(plan, "gift", 0, Path("/r/gift/seed-0"), None)
    assert replace(control.stages["finetune"]) == gift.stages["finetune"]


# --------------------------------------------------------------------------------------------------- end to end

SMALL_DOMAIN = "n_seed: 6\nn_test3: 6\nn_test2: 6\ncorpus_size: 1500\npretrain_three_op: 10\n"


def test_grid_end_to_end_small(tmp_path):
    """The whole grid through `giftgen run` on a toy domain and base model small enough for seconds: pretrain
    (then cached), base evaluations, two arms x two seeds, resume, the report. Mechanics, not the effect."""
    from click.testing import CliRunner

    from giftgen.cli import main
    from giftgen.miniature import is_grid, write_grid_report

    domain = tmp_path / "domain.yaml"
    domain.write_text(SMALL_DOMAIN)
    run_dir, model = tmp_path / "grid", tmp_path / "base"
    args = ["run", str(RECIPE), "--model", str(model), "--run-dir", str(run_dir),
            "--set", f"pretrain.domain={domain}", "--set", "pretrain.steps=4", "--set", "pretrain.batch_size=8",
            "--set", "pretrain.warmup_steps=1", "--set", "pretrain.vocab_size=320",
            "--set", f"run.train_path={domain}", "--set", f"run.eval_path={domain}",
            "--set", "grid.arms=[gift,gift-accept,control]", "--set", "grid.random_seeds=[0,1]", "--set", "run.eval_samples=2",
            "--set", "chain.steps=2", "--set", "chain.n=2", "--set", "chain.max_new_tokens=8",
            "--set", "chain.desc_max_new_tokens=8", "--set", "eval.max_new_tokens=8",
            "--set", "finetune.max_steps=2", "--set", "finetune.global_batch_size=4",
            "--set", "finetune.per_device_batch_size=4"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert set(summary["arms"]) == {"gift", "gift-accept", "control"}
    assert "grid: cell 1 of 6: GiFT, seed 0\n" in result.stderr
    assert "grid: cell 6 of 6: control, seed 1; 5 cell(s) run, about " in result.stderr  # the one estimate
    assert summary["eval_names"] == ["test3", "test2"]
    accept = json.loads((run_dir / "gift-accept" / "seed-0" / "round-1" / "chain.json").read_text())["config"]
    assert accept["mode"] == "gibbs" and accept["accept"] is True
    cell = summary["arms"]["gift"]["cells"]["seed-0"]["1"] if "1" in summary["arms"]["gift"]["cells"]["seed-0"] \
        else summary["arms"]["gift"]["cells"]["seed-0"][1]
    assert set(cell) >= {"kept_ppl", "kept_styles", "correct_styles"}
    assert (model / "giftgen-pretrain.json").exists() and (run_dir / "pretrain.json").exists()
    for label in ("eval", "eval-sampled", "eval2"):
        marker = json.loads((run_dir / "base" / "round-0" / f"{label}.json").read_text())
        assert marker["result"]["problems"] == 6
    sampled = json.loads((run_dir / "base" / "round-0" / "eval-sampled.json").read_text())
    assert (sampled["config"]["n"], sampled["config"]["temperature"]) == (2, 1.0)
    for seed in (0, 1):
        gift, control = run_dir / "gift" / f"seed-{seed}" / "round-1", run_dir / "control" / f"seed-{seed}" / "round-1"
        assert (gift / "chain.json").exists() and not (control / "chain.json").exists()
        chain = json.loads((gift / "chain.json").read_text())["config"]
        assert (chain["mode"], chain["seed"]) == ("gibbs", seed)
        tuned = {arm: json.loads((rd / "finetune.json").read_text()) for arm, rd in (("gift", gift), ("control",
                                                                                                          control))}
        for arm, marker in tuned.items():  # the same step budget, replay mixed in
            assert marker["result"]["steps"] == 2, arm
            assert marker["config"]["replay"] == str(run_dir.resolve() / "seeds" / "replay.jsonl")
            result = marker["result"]  # replay is half of the rows; rows over max_length are dropped, and counted
            assert result["replayed"] * 2 == result["examples"] + result["dropped"]
        select = [json.loads(line) for line in (control / "select.jsonl").read_text().splitlines()]
        assert len(select) == 6 and {r["origin"] for r in select} == {"gold"}  # the control: seed pairs only
    assert summary["arms"]["gift"]["last_round"]["greedy"]["n"] == 2

    again = CliRunner().invoke(main, args)  # resume: every stage finished, nothing runs again
    assert again.exit_code == 0, again.output
    assert "pretrain: " in again.stderr and "already holds a model" in again.stderr
    assert "chain finished earlier, skipped" in again.stderr and "run: round 1: chain with" not in again.stderr
    assert json.loads(again.stdout)["arms"]["gift"]["last_round"] == summary["arms"]["gift"]["last_round"]

    assert is_grid(run_dir) and not is_grid(run_dir / "gift" / "seed-0")
    markdown, plots = write_grid_report(run_dir, run_dir / "report")
    assert "| GiFT | 2 |" in markdown and "| control | 2 |" in markdown and "| GiFT+accept | 2 |" in markdown
    assert "test3 greedy" in markdown
    assert {p.name for p in plots} == {"grid_pass_at_1.png", "grid_diagnostics.png", "grid_distinct.png"}
    shown = CliRunner().invoke(main, ["report", str(run_dir)])  # the CLI picks the grid's report
    assert shown.exit_code == 0 and shown.stdout == markdown
    # one cell's report: labelled by its arm, the grid's shared base evaluation as its round 0
    cell = CliRunner().invoke(main, ["report", str(run_dir / "control" / "seed-1")])
    assert cell.exit_code == 0, cell.output
    base = json.loads((run_dir / "base" / "round-0" / "eval.json").read_text())["result"]["pass@1"]
    assert "| round | control (seed 1) |" in cell.stdout and f"| 0 | {100 * base:.2f}% |" in cell.stdout
    assert f"the grid's shared evaluation of the base model, `{run_dir / 'base' / 'round-0'}`" in cell.stdout
    assert (run_dir / "control" / "seed-1" / "report" / "pass_at_1.png").exists()


def _grid(pytestconfig, tmp_path, arms: str, seeds: str = "[0]") -> dict:
    """`giftgen run recipes/miniature.yaml` for ``arms`` x ``seeds``, on the recipe's base model (pretrained once,
    then cached in pytest's cache folder); the run's summary."""
    from click.testing import CliRunner

    from giftgen.cli import main

    model = pytestconfig.cache.mkdir("giftgen-miniature-base")
    args = ["run", str(RECIPE), "--model", str(model), "--run-dir", str(tmp_path / "grid"),
            "--set", f"grid.arms={arms}", "--set", f"grid.random_seeds={seeds}"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


MARGIN = 0.04  # sampled pass@1 over the control, asserted (measured: 8.5 points for seed 0, 3.5 at least)


@pytest.mark.slow  # pretrains the recipe's base model (about 7.5 minutes on 2 cores): a measured result
def test_one_round_of_self_training_beats_the_same_steps_control(pytestconfig, tmp_path):
    """The miniature's effect, measured: recipes/miniature.yaml as it is (its base model: the default pretraining,
    7.5 minutes on 2 cores, then cached), one round of RFT and of the control that spends the same fine-tuning steps
    on the seed pairs, seed 0 (40 s), each evaluated on 100 unseen 3-operation problems (sampled pass@1, T = 1).

    Measured (docs/experiments.md, "The miniature"), seeds 0 / 1 / 2: base model 39.75%; control 41.0 / 42.0 / 42.75%; RFT
    49.5 / 47.5 / 46.25%; GiFT 50.25 / 44.25 / 49.25%. RFT's margin over the control: 8.5 points for seed 0, 3.5 at
    least over the seeds; the seed-to-seed spread (max - min) is 1.75 points for the control and 3.25 for RFT. The
    asserted margin, 4 points, is above both spreads and half the measured one.
    """
    summary = _grid(pytestconfig, tmp_path, "[rft,control]")
    base = summary["base"]
    assert 0.4 <= base["greedy"] <= 0.7 and 0.25 <= base["sampled"] <= 0.55, base  # in the difficulty window
    rft, control = (summary["arms"][arm]["last_round"] for arm in ("rft", "control"))
    assert rft["sampled"]["mean"] >= control["sampled"]["mean"] + MARGIN, (rft["sampled"], control["sampled"])
    assert rft["covered"]["mean"] >= 64  # the chain found verified codes for most of the 128 seed problems
    assert rft["test2"]["mean"] >= 0.9  # with replay, the 2-operation skill stays


@pytest.mark.slow
def test_gift_and_rft_beat_the_control_on_every_seed(pytestconfig, tmp_path):
    """The table of docs/experiments.md, re-measured: GiFT, RFT and the control over seeds 0, 1 and 2 (5 minutes once the base
    model is cached). Both self-training arms beat the control's sampled pass@1 on every seed (measured margins:
    RFT +3.5 to +8.5 points, GiFT +2.25 to +9.25); GiFT's chain drifts more than RFT's (75% of steps without a
    passing code against 38%)."""
    summary = _grid(pytestconfig, tmp_path, "[gift,rft,control]", "[0,1,2]")
    cells = {arm: summary["arms"][arm]["cells"] for arm in ("gift", "rft", "control")}
    for seed, control in cells["control"].items():
        for arm in ("gift", "rft"):
            assert cells[arm][seed]["1"]["sampled"] > control["1"]["sampled"] + 0.01, (arm, seed)
    drift = {arm: summary["arms"][arm]["last_round"]["drift"]["mean"] for arm in ("gift", "rft")}
    assert drift["gift"] > drift["rft"]
