"""`giftgen chain` end to end: the tiny transformers model on real MBPP seed rows, the CLI, pipes, and resume
after a real SIGKILL (subprocesses)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from giftgen.cli import main
from giftgen.records import read_rows

REPO = Path(__file__).resolve().parents[1]
IDS = ["mbpp/2", "mbpp/3", "mbpp/4", "mbpp/6", "mbpp/7", "mbpp/8"]


@pytest.fixture(scope="module")
def seeds_file(data_dir, tmp_path_factory) -> Path:
    from giftgen.seeds import load_seeds

    rows = [r for r in load_seeds("mbpp", str(data_dir / "mbpp-sanitized.json"), "all") if r["problem_id"] in IDS]
    rows = [{**r, "my_column": {"nested": [i, 2]}} for i, r in enumerate(rows)]  # unknown columns pass through
    path = tmp_path_factory.mktemp("seeds") / "seeds.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
            "TOKENIZERS_PARALLELISM": "false"}


def giftgen(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "giftgen.cli", *args], capture_output=True, env=env(),
                          cwd=REPO, **kw)


def tiny_args(model: Path, *extra: str) -> list[str]:
    return ["--model", str(model), "--device", "cpu", "--workers", "2", "--max-new-tokens", "24",
            "--desc-max-new-tokens", "16", *extra]


# --------------------------------------------------------------------------------------------------- tiny model


def test_tiny_model_chain_end_to_end_and_reproducible(tiny_model, seeds_file):
    runner = CliRunner()
    args = ["chain", str(seeds_file), *tiny_args(tiny_model, "-R", "2", "-n", "2", "--seed", "7")]
    first = runner.invoke(main, args)
    assert first.exit_code == 0, first.output
    rows = [json.loads(line) for line in first.stdout.splitlines()]
    assert len(rows) == len(IDS) * 2 * 2
    seeds = {r["problem_id"]: r for r in read_rows(seeds_file)}
    for row in rows:
        assert {k: row[k] for k in seeds[row["problem_id"]]} == seeds[row["problem_id"]]
        assert row["code"].startswith(row["prompt_head"]) and isinstance(row["raw"], str)
        assert row["chain_model"] == str(tiny_model) and row["gen_tokens"] <= 24
        assert isinstance(row["chain_passed"], bool) and isinstance(row["chain_status"], str)
    assert rows[0]["my_column"] == {"nested": [0, 2]}
    # a random model writes no passing code: every summary falls back to the reference
    carriers = [r for r in rows if r["next_description"] is not None]
    assert len(carriers) == len(IDS) * 2
    assert {r["summary_source"] for r in carriers} == {"reference"}
    step2 = {r["problem_id"]: r["gen_description"] for r in rows if r["step"] == 2}
    assert step2 == {r["problem_id"]: r["next_description"] for r in carriers if r["step"] == 1}
    # same inputs, model and seed: the same rows; another seed: other samples
    again = runner.invoke(main, args)
    assert again.stdout == first.stdout
    other = runner.invoke(main, args[:-1] + ["8"])
    assert [json.loads(x)["raw"] for x in other.stdout.splitlines()] != [r["raw"] for r in rows]


def test_tiny_model_batched_equals_one_problem_at_a_time(tiny_model, seeds_file):
    """A problem's rows do not depend on which problems share a backend call (the release looped per problem)."""
    from giftgen.backends.hf import TransformersBackend
    from giftgen.chain import ChainConfig, exemplar_pool, run_chain
    from giftgen.config import resolve
    from giftgen.sandbox import Executor, Limits

    problems = list(read_rows(seeds_file))
    config = resolve(ChainConfig, None, {"model": str(tiny_model), "steps": 2, "n": 2, "max_new_tokens": 24,
                                         "desc_max_new_tokens": 16, "mode": "gibbs"})
    backend = TransformersBackend(str(tiny_model), device="cpu", batch_size=4)
    pool = exemplar_pool(problems)
    with Executor(workers=2, limits=Limits()) as ex:
        batched = list(run_chain(problems, config, backend=backend, executor=ex))
        single = [row for p in problems for row in run_chain([p], config, backend=backend, executor=ex,
                                                             exemplars=pool)]
    key = lambda r: (r["problem_id"], r["step"], r["sample"])  # noqa: E731
    assert sorted(batched, key=key) == sorted(single, key=key)


@pytest.mark.parametrize("mode", ["rft", "rewrite"])
def test_tiny_model_baselines(tiny_model, seeds_file, mode):
    result = CliRunner().invoke(main, ["chain", str(seeds_file), *tiny_args(tiny_model, "-R", "2", "-n", "2",
                                                                             "--mode", mode)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == len(IDS) * 2 * 2 and {r["mode"] for r in rows} == {mode}
    same = [r["gen_description"] == r["description"] for r in rows]
    assert all(same) if mode == "rft" else not any(same)


def test_tiny_model_chat_style(tiny_model, seeds_file):
    result = CliRunner().invoke(main, ["chain", str(seeds_file), *tiny_args(tiny_model, "-R", "1", "-n", "1",
                                                                             "--prompt-style", "chat")])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == len(IDS) and all(r["code"].endswith("\n") for r in rows)


# --------------------------------------------------------------------------------------------------- CLI


def fake_script(path: Path, seeds_file: Path) -> Path:
    from giftgen.prompts import code_prompt

    rules = [{"match": "###Description of the given code:", "reply": "A summary."},
             {"match": "###Rewritten description:", "reply": [f"Paraphrase {k}." for k in range(len(IDS))]}]
    for row in read_rows(seeds_file):
        opening = code_prompt(row).split('"""')[0] + '"""'
        indent = opening.splitlines()[-1][: len(opening.splitlines()[-1]) - len(opening.splitlines()[-1].lstrip())]
        # three replies: a step of n=3 uses each once, so a resumed fake answers as the killed one would have
        rules.append({"match": opening, "reply": [f"{indent}return None\n", f"{indent}pass\n",
                                                  f"{indent}return 0\n"]})
    path.write_text(json.dumps(rules))
    return path


def test_cli_fake_backend_file_output_and_errors(tmp_path, seeds_file):
    script = fake_script(tmp_path / "script.json", seeds_file)
    runner = CliRunner()
    out = tmp_path / "chain.jsonl"
    result = runner.invoke(main, ["chain", str(seeds_file), "--backend", "fake", "--model", str(script), "-R", "3",
                                  "-n", "2", "--workers", "2", "-o", str(out)])
    assert result.exit_code == 0, result.output
    rows = list(read_rows(out))
    assert len(rows) == len(IDS) * 3 * 2 and result.stdout == ""
    # running again resumes a finished file: nothing to do, nothing written twice
    before = out.read_bytes()
    again = runner.invoke(main, ["chain", str(seeds_file), "--backend", "fake", "--model", str(script), "-R", "3",
                                 "-n", "2", "-o", str(out)])
    assert again.exit_code == 0 and out.read_bytes() == before
    refused = runner.invoke(main, ["chain", str(seeds_file), "--backend", "fake", "--model", str(script), "-R", "3",
                                   "-n", "2", "--seed", "1", "-o", str(out)])
    assert refused.exit_code == 2 and "rows of another run (seed is 0, this run: 1)" in refused.output
    assert "--no-resume" in refused.output and out.read_bytes() == before
    fresh = runner.invoke(main, ["chain", str(seeds_file), "--backend", "fake", "--model", str(script), "-R", "1",
                                 "-n", "2", "--seed", "1", "--no-resume", "-o", str(out)])
    assert fresh.exit_code == 0 and len(list(read_rows(out))) == len(IDS) * 2
    missing = runner.invoke(main, ["chain", str(seeds_file)])
    assert missing.exit_code == 2 and "needs a model" in missing.output
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"problem_id": "x", "description": "d"}) + "\n")
    result = runner.invoke(main, ["chain", str(bad), "--backend", "fake", "--model", str(script)])
    assert result.exit_code == 2 and "no column" in result.output and "giftgen seeds" in result.output


def test_teacher_behind_an_openai_server(tmp_path, seeds_file):
    """Distillation: the chain runs on whatever model a server holds; its name is discovered and recorded."""
    from tests.test_backends_openai import ScriptedServer

    out = tmp_path / "chain.jsonl"
    with ScriptedServer("teacher", honour_n=True, model="teacher-33b") as server:
        args = ["chain", str(seeds_file), "--backend", "openai", "--base-url", server.url, "-R", "2", "-n", "2",
                "--workers", "2", "-o", str(out)]
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
        requests = len(server.requests)
        rows = list(read_rows(out))
        assert len(rows) == len(IDS) * 2 * 2 and {r["chain_model"] for r in rows} == {"teacher-33b"}
        codes = [r["body"] for r in server.requests if r["body"].get("n") == 2]
        assert len(codes) == len(IDS) * 2 and {b["model"] for b in codes} == {"teacher-33b"}
        again = CliRunner().invoke(main, args)  # a finished file: resumed, nothing left to generate
        assert again.exit_code == 0 and len(server.requests) == requests and len(list(read_rows(out))) == len(rows)


@pytest.mark.parametrize("mode", ["gibbs", "rft"])
def test_cli_rows_are_arrow_friendly(tmp_path, seeds_file, mode):
    """Parquet needs one type per column: nulls and strings mix, nested values do not vary in type."""
    import pyarrow.parquet as pq

    script = fake_script(tmp_path / "script.json", seeds_file)
    out = tmp_path / "chain.parquet"
    result = CliRunner().invoke(main, ["chain", str(seeds_file), "--backend", "fake", "--model", str(script),
                                       "-R", "2", "-n", "3", "--workers", "2", "--mode", mode, "-o", str(out)])
    assert result.exit_code == 0, result.output
    table = pq.read_table(out)
    assert table.num_rows == len(IDS) * 2 * 3
    types = {f.name: str(f.type) for f in table.schema}
    assert types["step"] == types["sample"] == "int64" and types["kept"] == types["chain_passed"] == "bool"
    assert types["chain_settings"] == "string" and types["temperature"] == "double"
    assert table.column("my_column").to_pylist()[0] == {"nested": [0, 2]}


def test_cli_pipe_into_verify(tmp_path, seeds_file):
    script = fake_script(tmp_path / "script.json", seeds_file)
    chain = subprocess.Popen([sys.executable, "-m", "giftgen.cli", "chain", str(seeds_file), "--backend", "fake",
                              "--model", str(script), "-R", "2", "-n", "2", "--workers", "2"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env(), cwd=REPO)
    verify = giftgen("verify", "-", "--workers", "2", stdin=chain.stdout)
    chain.stdout.close()
    assert chain.wait(timeout=120) == 0, chain.stderr.read().decode()
    assert verify.returncode == 0, verify.stderr.decode()
    rows = [json.loads(line) for line in verify.stdout.splitlines()]
    assert len(rows) == len(IDS) * 2 * 2
    assert all(r["passed"] == r["chain_passed"] for r in rows)  # the in-loop verdict agrees with verify's


# --------------------------------------------------------------------------------------------------- resume after kill -9


SLOW_FAKE = textwrap.dedent("""
    import sys, time
    from giftgen.backends import fake
    real = fake.FakeBackend.generate
    def slow(self, prompts, sampling):  # a model takes time: long enough to be killed mid-run
        time.sleep(0.15)
        return real(self, prompts, sampling)
    fake.FakeBackend.generate = slow
    from giftgen.cli import main
    main(sys.argv[1:])
""")


def kill_midway(args: list[str], out: Path, rows_per_step: int, timeout: float = 120) -> int:
    """Start ``giftgen chain ... -o out``; SIGKILL it once a step or more is written, before it ends.

    The rows go to ``out.partial`` until the chain ends: a killed chain leaves no ``out`` for a later stage."""
    out = out.with_name(out.name + ".partial")
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env(), cwd=REPO)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if out.exists() and out.read_bytes().count(b"\n") >= rows_per_step:
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.005)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()  # killed, not finished
    return out.read_bytes().count(b"\n")


def test_kill_9_and_resume_fake(tmp_path, seeds_file):
    script = fake_script(tmp_path / "script.json", seeds_file)
    common = ["chain", str(seeds_file), "--backend", "fake", "--model", str(script), "-R", "6", "-n", "3",
              "--workers", "2"]
    full, killed = tmp_path / "full.jsonl", tmp_path / "killed.jsonl"
    assert giftgen(*common, "-o", str(full)).returncode == 0
    written = kill_midway([sys.executable, "-c", SLOW_FAKE, *common, "-o", str(killed)], killed, len(IDS) * 3)
    assert 0 < written < len(IDS) * 3 * 6 and not killed.exists()
    resumed = giftgen(*common, "-o", str(killed))
    assert resumed.returncode == 0, resumed.stderr.decode()
    assert b"resuming" in resumed.stderr
    assert killed.read_bytes() == full.read_bytes() and not killed.with_name(killed.name + ".partial").exists()


@pytest.mark.slow
def test_kill_9_and_resume_tiny_model(tmp_path, tiny_model, seeds_file):
    common = ["chain", str(seeds_file), *tiny_args(tiny_model, "-R", "5", "-n", "2", "--seed", "3")]
    full, killed = tmp_path / "full.jsonl", tmp_path / "killed.jsonl"
    done = giftgen(*common, "-o", str(full))
    assert done.returncode == 0, done.stderr.decode()
    written = kill_midway([sys.executable, "-m", "giftgen.cli", *common, "-o", str(killed)], killed, len(IDS) * 2)
    assert 0 < written < len(IDS) * 2 * 5
    resumed = giftgen(*common, "-o", str(killed))
    assert resumed.returncode == 0, resumed.stderr.decode()
    assert killed.read_bytes() == full.read_bytes()
