"""The release's selection and scoring defaults as settings: the uniform draw of K distinct codes, and perplexity
under the model that sampled (self-training) or the student (distillation)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import yaml

from giftgen.config import resolve
from giftgen.run import load_run_recipe, round_configs
from giftgen.selection import SelectConfig, select_rows


def chain_rows(pid: str, codes: int) -> list[dict]:
    return [
        {"problem_id": pid, "description": "d", "passed": True, "kept": True, "code": f"x = {j}\n", "step": j}
        for j in range(codes)
    ]


def drawn(config: SelectConfig, rows: list[dict]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for row in select_rows(rows, config):
        if row["origin"] == "self":
            out.setdefault(row["problem_id"], []).append(row["completion"])
    return out


def test_uniform_draw_is_distinct_when_a_problem_has_k_codes():
    rows = chain_rows("many", 12) + chain_rows("few", 3)
    for seed in range(20):
        release = drawn(
            resolve(
                SelectConfig,
                None,
                {"temperature": 0, "uniform_distinct": True, "include_reference": False, "seed": seed},
            ),
            rows,
        )
        assert len(release["many"]) == 8 and len(set(release["many"])) == 8  # K distinct of 12
        assert len(release["few"]) == 8 and set(release["few"]) <= {"x = 0\n", "x = 1\n", "x = 2\n"}
    # giftgen's default draws with replacement: some seed repeats a code of the 12
    default = [
        drawn(resolve(SelectConfig, None, {"temperature": 0, "include_reference": False, "seed": s}), rows)[
            "many"
        ]
        for s in range(20)
    ]
    assert any(max(Counter(d).values()) > 1 for d in default)


def test_weighted_draws_stay_with_replacement():
    rows = [dict(r, ppl=1.0 + r["step"] / 10) for r in chain_rows("p", 12)]
    picks = []
    for seed in range(20):
        values = {"temperature": 2.0, "uniform_distinct": True, "include_reference": False, "seed": seed}
        picks.append(drawn(resolve(SelectConfig, None, values), rows)["p"])
    assert any(max(Counter(p).values()) > 1 for p in picks)


def recipe(tmp_path: Path, **run) -> Path:
    path = tmp_path / "r.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "run": {"model": "BASE", "rounds": 3, **run},
                "chain": {"backend": "transformers"},
                "score": {"backend": "transformers"},
                "eval": {"backend": "transformers"},
            }
        )
    )
    return path


def test_release_score_model_is_the_sampler_in_self_training(tmp_path):
    train = tmp_path / "train.jsonl"
    for policy in ("from-base", "continue"):
        plan = load_run_recipe(recipe(tmp_path, score_model="release", policy=policy))
        for r in (1, 2, 3):
            c = round_configs(plan, r, tmp_path, train)
            assert c["score"].model == c["chain"].model  # the model that sampled round r's codes
        assert round_configs(plan, 2, tmp_path, train)["score"].model == str(tmp_path / "round-1" / "model")
    # giftgen's default scores the student: the base model in round 2 (from-base)
    plan = load_run_recipe(recipe(tmp_path, policy="from-base"))
    assert round_configs(plan, 2, tmp_path, train)["score"].model == "BASE"


def test_release_score_model_is_the_student_in_distillation(tmp_path):
    plan = load_run_recipe(recipe(tmp_path, score_model="release", teacher="TEACHER"))
    for r in (1, 2):
        c = round_configs(plan, r, tmp_path, tmp_path / "train.jsonl")
        assert c["chain"].model == "TEACHER" and c["score"].model == c["finetune"].model == "BASE"


class PassingExecutor:
    """Judges a program correct when it holds the word PASS (no sandbox: these tests are about the chain)."""

    def submit(self, code: str, plan: object):
        from concurrent.futures import Future

        from giftgen.sandbox import Verdict

        future: Future = Future()
        future.set_result(Verdict("passed" if "PASS" in code else "failed", "PASS" in code))
        return future


def test_rewrite_from_one_gibbs_step(data_dir):
    """RFT+RD with descriptions from one Gibbs step: each step's description summarises a passing code sampled
    from d0, and the step's codes are sampled from that description."""
    from giftgen.backends.fake import FakeBackend
    from giftgen.chain import ChainConfig, run_chain
    from giftgen.prompts import code_prompt
    from giftgen.seeds import load_seeds

    rows = list(load_seeds("mbpp", str(data_dir / "mbpp-sanitized.json"), "prompt"))[:3]
    backend = FakeBackend(
        [
            {"match": "###Description of the given code:", "reply": [f"Summary {k}." for k in range(100)]},
            {"match": '"""', "reply": ["    return 1  # PASS\n", "    return 2\n"]},
        ]
    )
    config = resolve(
        ChainConfig,
        None,
        {"model": "fake", "backend": "fake", "mode": "rewrite", "rewrite_from": "code", "steps": 2, "n": 2},
    )
    out = list(run_chain(rows, config, backend=backend, executor=PassingExecutor()))
    assert len(out) == 2 * 3 * 2
    kinds = [(len(prompts), sampling.n) for prompts, sampling in backend.calls]
    assert kinds[:3] == [(3, 2), (3, 1), (3, 2)]  # codes from d0, their summaries, codes from the summaries
    summaries = [p for p in backend.calls[1][0]]
    assert all("# PASS" in p for p in summaries)  # the passing code of the d0 samples is what is summarised
    step1 = [r for r in out if r["step"] == 1]
    assert {r["gen_description"] for r in step1} == {"Summary 0.", "Summary 1.", "Summary 2."}
    assert all(r["prompt"] == code_prompt(r, r["gen_description"]) for r in out)
    assert all(r["mode"] == "rewrite" for r in out)


def test_a_run_verifies_with_the_chain_s_tests(tmp_path):
    import pytest

    from giftgen.errors import ConfigError

    path = tmp_path / "apps.yaml"
    data = {"run": {"model": "BASE"}, "chain": {"max_tests": 10}, "verify": {"tests": "all"}}
    path.write_text(yaml.safe_dump(data))
    verify = round_configs(load_run_recipe(path), 1, tmp_path, tmp_path / "t.jsonl")["verify"]
    assert (verify.tests, verify.max_tests) == ("base", 10)  # as the chain judged the codes
    data["run"]["verify_tests"] = "own"
    path.write_text(yaml.safe_dump(data))
    verify = round_configs(load_run_recipe(path), 1, tmp_path, tmp_path / "t.jsonl")["verify"]
    assert (verify.tests, verify.max_tests) == ("all", None)
    data["run"]["verify_tests"] = "chain"
    data["verify"]["max_tests"] = 5
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="verify.max_tests"):
        load_run_recipe(path)
