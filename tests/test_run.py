"""`giftgen run`: rounds, policies, the run directory, resume after a real SIGKILL, and the recipe checks.

The end-to-end runs use the tiny offline model as the student (score, finetune, eval) and, as the teacher that
runs the chain (distillation), the scripted fake backend, whose codes pass the real sandbox for some problems and
fail for others, so that every stage has rows to work on. Each rule of the script has one reply, so a prompt's
reply never depends on what came before it: a resumed run sees exactly the replies an uninterrupted one does.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from giftgen.cli import main
from giftgen.errors import ConfigError
from giftgen.records import read_rows
from giftgen.run import apply_overrides, load_run_recipe, round_configs

REPO = Path(__file__).resolve().parents[1]
TRAIN_IDS = ["mbpp/2", "mbpp/3", "mbpp/4", "mbpp/6"]


# --------------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def mbpp(data_dir) -> dict[str, dict]:
    from giftgen.seeds import load_seeds

    return {r["problem_id"]: r for r in load_seeds("mbpp", str(data_dir / "mbpp-sanitized.json"), "all")}


@pytest.fixture(scope="module")
def files(mbpp, tmp_path_factory) -> dict[str, Path]:
    """Train seeds (generic source), an eval seed file, and a teacher script for the fake backend."""
    from giftgen.prompts import code_prompt

    root = tmp_path_factory.mktemp("run-files")
    train = [mbpp[i] for i in TRAIN_IDS]
    (root / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in train))
    rules: list[dict] = [{"match": "###Description of the given code:", "reply": "Do what the tests ask."}]
    for k, row in enumerate(train):
        opening = code_prompt(row).split('"""')[0] + '"""'  # only the code prompts of this problem contain it
        body = row["reference"][len(row["prompt_head"]):] if k != 1 else "    return None\n"
        rules.append({"match": opening, "reply": body})
    (root / "teacher.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rules))
    return {"train": root / "train.jsonl", "teacher": root / "teacher.jsonl", "root": root}


def recipe(files: dict[str, Path], data_dir: Path, **run: object) -> dict:
    return {
        "run": {"model": "student-placeholder", "rounds": 2, "policy": "continue", "teacher": str(files["teacher"]), "train_source": "generic",
                "train_path": str(files["train"]), "eval_source": "mbpp",
                "eval_path": str(data_dir / "mbpp-sanitized.json"), "eval_split": "test", "eval_limit": 3,
                "isolate": False, **run},
        "chain": {"backend": "fake", "steps": 3, "n": 2, "workers": 2},
        "verify": {"workers": 2},
        "score": {"device": "cpu", "batch_size": 4},
        "select": {"k": 3},
        "finetune": {"device": "cpu", "max_steps": 2, "global_batch_size": 4, "per_device_batch_size": 4,
                     "logging_steps": 1},
        "eval": {"device": "cpu", "max_new_tokens": 12, "workers": 2},
    }


def write_recipe(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def recipe_file(files, data_dir) -> Path:
    return write_recipe(files["root"] / "recipe.yaml", recipe(files, data_dir))


@pytest.fixture(scope="module")
def reference(recipe_file, tiny_model, tmp_path_factory) -> tuple[Path, object]:
    """An uninterrupted 2-round run (policy continue), in this process."""
    run_dir = tmp_path_factory.mktemp("reference") / "run"
    result = CliRunner().invoke(main, ["run", str(recipe_file), "--model", str(tiny_model), "--run-dir",
                                       str(run_dir)])
    assert result.exit_code == 0, result.output
    return run_dir, result


# --------------------------------------------------------------------------------------------------- recipes


def test_recipe_sections_keys_and_flags(recipe_file, tiny_model):
    plan = load_run_recipe(recipe_file, ["chain.steps=5", "select.temperature=-2", "finetune.report_to=[a, b]"],
                           {"model": str(tiny_model), "rounds": 4})
    assert plan.run.rounds == 4 and plan.run.model == str(tiny_model)
    assert plan.stages["chain"].steps == 5 and plan.stages["chain"].n == 2  # --set beats the recipe, keeps the rest
    assert plan.stages["select"].temperature == -2.0 and plan.stages["finetune"].report_to == ["a", "b"]
    assert plan.stages["eval"].max_new_tokens == 12


@pytest.mark.parametrize("override, message", [
    ("chain.steps", "SECTION.KEY=VALUE"),
    ("steps=3", "SECTION.KEY=VALUE"),
    ("chains.steps=3", "unknown section 'chains'"),
    ("chain.step=3", "unknown key 'step'"),
    ("chain.steps=many", "steps must be int"),
    ("chain.mode=gibs", "mode must be one of"),
])
def test_bad_overrides_are_refused(recipe_file, override, message):
    with pytest.raises(ConfigError, match=message):
        load_run_recipe(recipe_file, [override], {"model": "m"})


@pytest.mark.parametrize("section, key, value, message", [
    ("chain", "model", "m", "chain.model is set by `giftgen run`"),
    ("finetune", "output_dir", "x", "finetune.output_dir is set by"),
    ("select", "seeds", "s.jsonl", "select.seeds is set by"),
    ("seeds", "limit", 3, "reads its seed sets from the run section"),
    ("chain", "stepz", 3, "unknown key 'stepz'"),
])
def test_recipe_keys_the_run_owns_are_refused(files, data_dir, tmp_path, section, key, value, message):
    data = recipe(files, data_dir)
    data.setdefault(section, {})[key] = value
    with pytest.raises(ConfigError, match=message):
        load_run_recipe(write_recipe(tmp_path / "r.yaml", data), (), {"model": "m"})


@pytest.mark.parametrize("changes, message", [
    ({"run": {"teacher": None}}, "cannot sample with round 1's model"),  # fake chain without a teacher, 2 rounds
    ({"eval": {"backend": "openai"}}, "cannot load each round's model"),
    ({"score": {"backend": "openai"}}, "cannot load each round's model"),  # policy continue: the student changes
    ({"finetune": {"lora": True}}, "merge_lora"),
    ({"run": {"model": None}}, "needs the student model"),
])
def test_settings_that_cannot_work_together(files, data_dir, tmp_path, changes, message):
    data = recipe(files, data_dir)
    for section, values in changes.items():
        data[section].update(values)
    with pytest.raises(ConfigError, match=message):
        load_run_recipe(write_recipe(tmp_path / "r.yaml", data))


def test_round_configs_follow_the_policy_and_teacher(recipe_file, tmp_path):
    train = tmp_path / "seeds" / "train.jsonl"
    for policy, teacher in (("from-base", None), ("continue", None), ("from-base", "T"), ("continue", "T")):
        plan = load_run_recipe(recipe_file, [f"run.policy={policy}", "chain.backend=transformers"],
                               {"model": "BASE", "teacher": teacher})
        for r in (1, 2, 3):
            c = round_configs(plan, r, tmp_path, train)
            previous = "BASE" if r == 1 else str(tmp_path / f"round-{r - 1}" / "model")
            student = "BASE" if policy == "from-base" else previous
            assert c["chain"].model == (teacher or previous)
            assert c["score"].model == c["finetune"].model == student
            assert c["finetune"].output_dir == c["eval"].model == str(tmp_path / f"round-{r}" / "model")
            assert c["select"].seeds == str(train)
            assert c["chain"].seed == r - 1 and c["select"].seed == r - 1  # fresh samples each round
    plan = load_run_recipe(recipe_file, ["run.score_model=sampler"], {"model": "BASE"})
    assert round_configs(plan, 2, tmp_path, train)["score"].model == str(plan.run.teacher)


def test_apply_overrides_reads_yaml_values():
    out = apply_overrides({"chain": {"n": 2}}, ["chain.steps=7", "chain.seed=3", "eval.k=[1, 5]",
                                                "chain.prompt_style=chat", "eval.max_tests="])
    assert out["chain"] == {"n": 2, "steps": 7, "seed": 3, "prompt_style": "chat"}
    assert out["eval"] == {"k": ["1", "5"], "max_tests": None}


# --------------------------------------------------------------------------------------------------- end to end


def markers(run_dir: Path) -> dict[str, dict]:
    return {str(p.relative_to(run_dir)): json.loads(p.read_text()) for p in sorted(run_dir.glob("round-*/*.json"))}


def test_run_end_to_end(reference, tiny_model, files):
    run_dir, result = reference
    assert (run_dir / "recipe.yaml").exists() and (run_dir / "seeds" / "train.jsonl").exists()
    saved = yaml.safe_load((run_dir / "recipe.yaml").read_text())
    assert set(saved) == {"run", "chain", "verify", "score", "select", "finetune", "eval"}
    assert saved["run"]["model"] == str(tiny_model) and saved["chain"]["steps"] == 3
    found = markers(run_dir)
    assert set(found) == {"round-0/eval.json"} | {f"round-{r}/{s}.json" for r in (1, 2) for s in
                                                    ("chain", "verify", "score", "select", "finetune", "eval")}
    assert not list(run_dir.rglob("*.partial.jsonl"))
    for r in (1, 2):
        rd = run_dir / f"round-{r}"
        chain = list(read_rows(rd / "chain.jsonl"))
        assert len(chain) == len(TRAIN_IDS) * 3 * 2
        assert {row["chain_model"] for row in chain} == {str(files["teacher"])}  # the teacher, both rounds
        kept = [row for row in chain if row["kept"]]
        solved = {row["problem_id"] for row in kept}
        assert solved == {"mbpp/2", "mbpp/4", "mbpp/6"}  # the script's wrong body fails mbpp/3
        verified = list(read_rows(rd / "verify.jsonl"))
        assert [(v["problem_id"], v["step"], v["sample"]) for v in verified] == \
            [(k["problem_id"], k["step"], k["sample"]) for k in kept]
        assert all(v["passed"] for v in verified)
        scored = list(read_rows(rd / "score.jsonl"))
        student = str(tiny_model) if r == 1 else str(run_dir / "round-1" / "model")  # policy continue
        assert {s["score_model"] for s in scored} == {student} and all(s["ppl"] > 1 for s in scored)
        selected = list(read_rows(rd / "select.jsonl"))
        assert sum(s["origin"] == "gold" for s in selected) == len(TRAIN_IDS)  # every seed pair
        assert sum(s["origin"] == "self" for s in selected) == 3 * len(solved)  # k per solved problem
        finetune = json.loads((rd / "finetune.json").read_text())
        assert finetune["config"]["model"] == student and finetune["result"]["steps"] == 2
        assert (rd / "model" / "config.json").exists()
        evaluation = list(read_rows(rd / "eval.jsonl"))
        assert {e["eval_model"] for e in evaluation} == {str(rd / "model")} and len(evaluation) == 3
        # the table's line is the files' counts
        line = json.loads((run_dir / "summary.json").read_text())["rounds"][r]
        assert line == {**line, "round": r, "problems": len(TRAIN_IDS), "solved": len(solved), "kept": len(kept),
                        "verified": len(verified), "selected": len(selected), "selected_self": 3 * len(solved),
                        "pass@1": sum(e["pass@1"] for e in evaluation) / 3, "model": f"round-{r}/model"}
    summary = json.loads((run_dir / "summary.json").read_text())
    assert [line["round"] for line in summary["rounds"]] == [0, 1, 2]
    from giftgen.versions import library_versions

    assert summary["versions"] == library_versions() and summary["versions"]["torch"]
    assert json.loads((run_dir / "round-1" / "chain.json").read_text())["versions"] == library_versions()
    assert summary["rounds"][0]["model"] == str(tiny_model) and summary["rounds"][0]["pass@1"] is not None
    # stdout is the summary, stderr has the table
    assert json.loads(result.stdout) == summary
    assert "giftgen run" in result.stderr and "selected (self)" in result.stderr


def test_rerun_skips_finished_stages_and_extends(reference, recipe_file, tiny_model, tmp_path):
    run_dir, _ = reference
    before = {p: p.stat().st_mtime_ns for p in run_dir.rglob("*") if p.is_file() and p.name != "summary.json"}
    result = CliRunner().invoke(main, ["run", str(recipe_file), "--model", str(tiny_model), "--run-dir",
                                       str(run_dir)])
    assert result.exit_code == 0, result.output
    assert result.stderr.count("finished earlier, skipped") == 13
    after = {p: p.stat().st_mtime_ns for p in run_dir.rglob("*") if p.is_file() and p.name != "summary.json"}
    assert after == before  # nothing was written again (the lock file is opened, not written)
    # more rounds extend the run: only round 3 runs
    extended = tmp_path / "extended"
    shutil.copytree(run_dir, extended)
    result = CliRunner().invoke(main, ["run", str(recipe_file), "--model", str(tiny_model), "--run-dir",
                                       str(extended), "--rounds", "3"])
    assert result.exit_code == 0, result.output
    assert result.stderr.count("finished earlier, skipped") == 13
    assert len(list((extended / "round-3").glob("*.json"))) == 6
    assert [line["round"] for line in json.loads(result.stdout)["rounds"]] == [0, 1, 2, 3]
    assert yaml.safe_load((extended / "recipe.yaml").read_text())["run"]["rounds"] == 3
    # another recipe in the same directory is refused, naming the difference
    result = CliRunner().invoke(main, ["run", str(recipe_file), "--model", str(tiny_model), "--run-dir",
                                       str(run_dir), "--set", "select.k=5"])
    assert result.exit_code == 2 and "select.k was 3, now 5" in result.output


def test_a_second_run_on_the_same_directory_is_refused(recipe_file, tiny_model, tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    with open(run_dir / ".lock", "w") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        result = CliRunner().invoke(main, ["run", str(recipe_file), "--model", str(tiny_model), "--run-dir",
                                           str(run_dir)])
    assert result.exit_code == 2 and "another `giftgen run` is using" in result.output


def test_print_config_prints_every_section(recipe_file, tiny_model):
    result = CliRunner().invoke(main, ["run", str(recipe_file), "--model", str(tiny_model), "--print-config",
                                       "--set", "chain.steps=9"])
    assert result.exit_code == 0, result.output
    printed = yaml.safe_load(result.stdout)
    assert set(printed) == {"run", "chain", "verify", "score", "select", "finetune", "eval"}
    assert printed["chain"]["steps"] == 9 and printed["run"]["model"] == str(tiny_model)


# --------------------------------------------------------------------------------------------------- kill -9


def env() -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
            "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


def session_processes(sid: int) -> list[int]:
    """Processes of session ``sid`` still alive (zombies excluded)."""
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":  # fields: state, ppid, pgrp, session, ...
            alive.append(int(stat.parent.name))
    return alive


def kill_when(command: list[str], ready, log: Path) -> int:
    """Start ``command`` in its own session (stderr to ``log``), SIGKILL its leader once ``ready()``; return the
    exit status. Asserts that nothing it started outlives it (stage processes die with the run, sandbox workers
    with theirs)."""
    with open(log, "wb") as err:
        proc = subprocess.Popen(command, env=env(), cwd=REPO, stdout=subprocess.DEVNULL, stderr=err,
                                start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while proc.poll() is None and not ready() and time.monotonic() < deadline:
            time.sleep(0.02)
        if proc.poll() is None:
            proc.kill()
        code = proc.wait()
        end = time.monotonic() + 10
        while session_processes(proc.pid) and time.monotonic() < end:
            time.sleep(0.1)
        left = session_processes(proc.pid)
        assert not left, f"processes outlived the killed run: {left}"
        return code
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in session_processes(proc.pid):  # never leave anything behind, even when the test fails
            os.kill(pid, signal.SIGKILL)


def comparable(run_dir: Path) -> dict[str, object]:
    """Every output of a run, without what legitimately differs between two runs: timings, its own path."""
    def clean(value: object) -> object:
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()
                    if k not in ("duration", "finished_at", "input") and not k.endswith("_s")}
        if isinstance(value, list):
            return [clean(v) for v in value]
        if isinstance(value, str):
            return value.replace(str(run_dir), "RUN")
        return value

    out: dict[str, object] = {}
    for path in sorted(run_dir.rglob("*")):
        name = str(path.relative_to(run_dir))
        if path.suffix == ".jsonl":
            out[name] = [clean(row) for row in read_rows(path)]
        elif path.suffix == ".json" and path.parent.name != "model":
            out[name] = clean(json.loads(path.read_text()))
        elif path.name == "model.safetensors":
            out[name] = path.read_bytes()
    return out


@pytest.mark.parametrize("isolate", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_kill_9_at_any_point_loses_nothing(reference, recipe_file, tiny_model, tmp_path, isolate):
    """SIGKILL a real `giftgen run` once the chain has written rows but not its marker, during finetune and (with
    isolation) during eval, start it again each time, and compare everything it wrote with the uninterrupted
    run's round 0 and 1 (this run stops at round 1). The scripted chain writes its steps within milliseconds, so
    the first kill usually lands after its last row: the mid-step case is the next test's."""
    run_dir = tmp_path / "run"
    command = [sys.executable, "-m", "giftgen.cli", "run", str(recipe_file), "--model", str(tiny_model),
               "--run-dir", str(run_dir), "--rounds", "1", "--isolate" if isolate else "--no-isolate"]
    rd = run_dir / "round-1"
    chain = rd / "chain.jsonl"
    points = [  # (stage that must be unfinished, condition that it has started)
        ("chain", lambda: chain.exists() and chain.stat().st_size > 0),
        ("finetune", lambda: (rd / "select.json").exists()),
        ("eval", lambda: (rd / "finetune.json").exists()),
    ]
    if not isolate:  # the default suite: two restarts (every restart pays the imports of torch and TRL again)
        points = points[:2]
    logs = []
    for stage, started in points:
        logs.append(tmp_path / f"kill-{stage}.log")
        code = kill_when(command, lambda s=stage, f=started: f() and not (rd / f"{s}.json").exists(), logs[-1])
        assert code == -signal.SIGKILL, logs[-1].read_text()[-3000:]
        if stage == "chain":
            rows_at_kill = len(chain.read_bytes().splitlines())
    assert not (rd / f"{points[-1][0]}.json").exists()
    final = subprocess.run(command, env=env(), cwd=REPO, capture_output=True, timeout=600)
    assert final.returncode == 0, final.stderr.decode()[-3000:]
    per_step = len(TRAIN_IDS) * 2
    if per_step <= rows_at_kill < per_step * 3:  # killed after a whole step: the next start continued it
        assert "chain: resuming" in logs[1].read_text()
    assert "finished earlier, skipped" in final.stderr.decode()
    expected = {k: v for k, v in comparable(reference[0]).items()
                if not k.startswith("round-2") and k != "summary.json"}
    got = comparable(run_dir)
    summary = got.pop("summary.json")
    assert got == expected
    assert summary["rounds"] == json.loads((reference[0] / "summary.json").read_text())["rounds"][:2]


def test_a_failing_stage_process_reports_its_error(recipe_file, tmp_path):
    """With isolation, the stage's own error message reaches the user, with the round and stage."""
    result = CliRunner().invoke(main, ["run", str(recipe_file), "--model", str(tmp_path / "no-such-model"),
                                       "--run-dir", str(tmp_path / "run"), "--rounds", "0", "--isolate"])
    assert result.exit_code != 0
    assert "round 0, eval:" in result.output and "no-such-model" in result.output
    assert not (tmp_path / "run" / "round-0" / "eval.json").exists()
    assert not list((tmp_path / "run" / ".jobs").glob("*"))  # the job and result files are cleaned up


def test_a_chain_killed_mid_step_continues_where_it_stopped(reference, recipe_file, tiny_model, tmp_path):
    """The state a kill -9 leaves mid-chain, made exactly: round 1's chain holds step 1, part of step 2 and half a
    line (the scripted chain is too fast for a kill to land there reliably). The rerun cuts the partial step,
    samples from step 2 on, and ends with the uninterrupted run's files."""
    ref = reference[0]
    run_dir = tmp_path / "run"
    shutil.copytree(ref / "seeds", run_dir / "seeds")
    shutil.copytree(ref / "round-0", run_dir / "round-0")
    shutil.copy(ref / "recipe.yaml", run_dir / "recipe.yaml")
    lines = (ref / "round-1" / "chain.jsonl").read_bytes().splitlines(keepends=True)
    per_step = len(TRAIN_IDS) * 2
    (run_dir / "round-1").mkdir()
    (run_dir / "round-1" / "chain.jsonl").write_bytes(b"".join(lines[:per_step + 3]) + lines[per_step + 3][:40])
    result = CliRunner().invoke(main, ["run", str(recipe_file), "--model", str(tiny_model), "--run-dir",
                                       str(run_dir), "--rounds", "1"])
    assert result.exit_code == 0, result.output
    assert "chain: resuming" in result.stderr and "after step 1" in result.stderr
    assert "round 0: eval finished earlier, skipped" in result.stderr
    expected = {k: v for k, v in comparable(ref).items() if not k.startswith("round-2") and k != "summary.json"}
    got = comparable(run_dir)
    got.pop("summary.json")
    assert got == expected


def test_finetune_under_a_launcher(recipe_file, tiny_model, tmp_path):
    """`run.finetune_launcher` runs finetune as `LAUNCHER -m giftgen.run.jobs JOB.json`: here accelerate itself, on
    CPU with one process (the multi-GPU configs in recipes/accelerate/ use the same path)."""
    pytest.importorskip("accelerate")
    launcher = (f"{sys.executable} -m accelerate.commands.launch --cpu --num_processes 1 --num_machines 1 "
                "--mixed_precision no --dynamo_backend no")
    run_dir = tmp_path / "run"
    result = CliRunner().invoke(main, ["run", str(recipe_file), "--model", str(tiny_model), "--run-dir",
                                       str(run_dir), "--rounds", "1", "--finetune-launcher", launcher,
                                       "--set", "run.eval_source="])
    assert result.exit_code == 0, result.output
    finetune = json.loads((run_dir / "round-1" / "finetune.json").read_text())
    assert finetune["result"]["steps"] == 2 and (run_dir / "round-1" / "model" / "model.safetensors").exists()
    assert not (run_dir / "round-1" / "eval.json").exists()
    assert json.loads(result.stdout)["rounds"][0]["pass@1"] is None


def test_a_missing_seed_file_names_the_run_s_own_keys(recipe_file, tmp_path):
    """Inside `giftgen run`, a seed source's hint names run.train_path, not `giftgen seeds`' --path."""
    result = CliRunner().invoke(main, ["run", str(recipe_file), "--run-dir", str(tmp_path / "run"),
                                       "--train-path", str(tmp_path / "missing.json")])
    assert result.exit_code == 2, result.output
    assert "missing.json" in result.output and "run.train_path (--train-path)" in result.output
    assert "--path FILE" not in result.output


def test_every_stage_runs_on_the_runs_cpu_threads(monkeypatch, tmp_path):
    """run.threads reaches each job (in this process or a child's): the stage runs with torch on that many threads."""
    import torch

    from giftgen.run import jobs

    seen: list[int] = []
    monkeypatch.setitem(jobs.STAGES, "select", lambda config, inputs, output: seen.append(torch.get_num_threads())
                        or {})
    before = torch.get_num_threads()
    try:
        for threads in (1, 2):
            jobs.execute({"stage": "select", "config": {}, "inputs": {}, "output": str(tmp_path / "x"),
                          "threads": threads})
        torch.set_num_threads(1)
        jobs.execute({"stage": "select", "config": {}, "inputs": {}, "output": str(tmp_path / "x"), "threads": 0})
    finally:
        torch.set_num_threads(before)
    assert seen == [1, 2, 1]  # 0 leaves the process's setting alone
    from giftgen.miniature import load_grid_recipe
    from giftgen.run import read_run_recipe

    miniature = "recipes/miniature.yaml"
    plan = load_grid_recipe(read_run_recipe(miniature, ()), where=miniature)
    assert plan.run.threads == 2 and plan.extras["pretrain"].threads == 2  # the miniature's numbers: 2 threads
    with pytest.raises(ConfigError, match="threads must be >= 0"):
        load_grid_recipe(read_run_recipe(miniature, ("run.threads=-1",)), where=miniature)


def test_the_stage_process_starts_without_warnings(tmp_path):
    """The command an isolated stage runs: its usage error is the only thing it prints (no runpy warning)."""
    env = {**os.environ, "PYTHONWARNINGS": "default"}
    done = subprocess.run([sys.executable, "-m", "giftgen.run"], capture_output=True, text=True, env=env,
                          timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip() == "usage: python -m giftgen.run JOB.json"
