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
