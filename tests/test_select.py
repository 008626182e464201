"""`giftgen select`: weights, draws, grouping, the training pairs and the CLI. Pure Python; no model."""

from __future__ import annotations

import json
import random
from collections import Counter

import pytest
from click.testing import CliRunner

from giftgen.cli import main
from giftgen.errors import InputError
from giftgen.prompts import training_pair
from giftgen.selection import SelectConfig, draw, normalise_code, select_rows, selection_weights
from tests.rows import chain_rows, seed_rows, variants

# 3 degrees of freedom: P(chi2 > 16.27) = 0.001. With a fixed seed the test is deterministic; the bound is loose
# enough that any correct sampler passes for almost every seed, and a wrong weighting fails by far.
CHI2_3DOF_P001 = 16.27


def chi_square(counts: list[int], weights: list[float]) -> float:
    n = sum(counts)
    return sum((c - n * w) ** 2 / (n * w) for c, w in zip(counts, weights, strict=True))


# --------------------------------------------------------------------------------------------------- weights


def test_worked_example_of_method_md():
    ppl = [1.05, 1.2, 1.4, 1.6]
    assert selection_weights(ppl, 2.0) == pytest.approx([0.14, 0.18, 0.27, 0.41], abs=0.006)
    assert selection_weights(ppl, -2.0) == pytest.approx([0.39, 0.29, 0.19, 0.13], abs=0.006)
    assert sum(selection_weights(ppl, 2.0)) == pytest.approx(1.0)


def test_zero_temperature_is_uniform_and_needs_no_ppl():
    assert selection_weights(None, 0.0, n=4) == [0.25] * 4


def test_log_ppl_and_large_values():
    ppl = [2.0, 4.0]
    # softmax(T * log p) = p^T / sum p^T
    assert selection_weights(ppl, 2.0, log_ppl=True) == pytest.approx([4 / 20, 16 / 20])
    # huge perplexities do not overflow
    assert selection_weights([1000.0, 1001.0], 2.0) == pytest.approx([0.1192, 0.8808], abs=1e-4)


def test_draw_with_and_without_replacement():
    rng = random.Random(0)
    assert len(draw([0.5, 0.5], 8, rng)) == 8
    without = draw([0.1, 0.2, 0.3, 0.4], 8, rng, replacement=False)
    assert sorted(without) == [0, 1, 2, 3]
    assert len(set(draw([0.1, 0.2, 0.3, 0.4], 2, rng, replacement=False))) == 2
    assert draw([], 8, rng) == [] and draw([1.0], 0, rng) == []


def test_normalised_code_ignores_comments_and_layout():
    assert normalise_code("def f(x):\n    # add one\n    return x+1\n") == normalise_code("def f(x):\n\n    return (x + 1)")
    assert normalise_code("def f(x): return x+1") != normalise_code("def f(x): return x+2")
    assert normalise_code("def f(:\n  x") == "def f(:\n  x"  # unparsable: layout only


# --------------------------------------------------------------------------------------------------- selection


def test_draw_frequencies_follow_the_weights(data_dir):
    seed = seed_rows(data_dir, 1)[0]
    ppl = [1.05, 1.2, 1.4, 1.6]
    codes = variants(seed, 4)
    rows = []
    for p in range(1000):  # 1000 problems x K = 8: 8000 draws, each problem seeded by its own id
        rows += chain_rows({**seed, "problem_id": f"p{p}"}, codes, ppl)
    config = SelectConfig(include_reference=False)
    out = list(select_rows(rows, config))
    assert len(out) == 8000 and all(r["origin"] == "self" for r in out)
    counts = Counter(r["step"] for r in out)
    weights = selection_weights(ppl, 2.0)
    assert chi_square([counts[s] for s in (1, 2, 3, 4)], weights) < CHI2_3DOF_P001
    # the head-favouring temperature really reverses the order
    counts_neg = Counter(r["step"] for r in select_rows(rows, SelectConfig(include_reference=False, temperature=-2)))
    assert counts_neg[1] > counts_neg[2] > counts_neg[3] > counts_neg[4]
    assert chi_square([counts_neg[s] for s in (1, 2, 3, 4)], selection_weights(ppl, -2.0)) < CHI2_3DOF_P001


def test_wrong_weights_would_fail_the_chi_square(data_dir):
    # the statistical test has power: uniform draws are far outside the bound for the T = 2 weights
    seed = seed_rows(data_dir, 1)[0]
    rows = []
    for p in range(1000):
        rows += chain_rows({**seed, "problem_id": f"p{p}"}, variants(seed, 4), [1.05, 1.2, 1.4, 1.6])
    counts = Counter(r["step"] for r in select_rows(rows, SelectConfig(include_reference=False, temperature=0)))
    assert chi_square([counts[s] for s in (1, 2, 3, 4)], selection_weights([1.05, 1.2, 1.4, 1.6], 2.0)) > 100


def test_training_pairs_use_the_seed_description_and_reference(data_dir):
    seeds = seed_rows(data_dir, 2)
    rows = chain_rows(seeds[0], variants(seeds[0], 3), [1.1, 1.3, 1.2]) + chain_rows(seeds[1], [], [])
    rows.append({**seeds[1], "code": "def broken(:", "passed": False, "ppl": None, "gen_description": "x"})
    out = list(select_rows(rows, SelectConfig()))
    gold = [r for r in out if r["origin"] == "gold"]
    self_ = [r for r in out if r["origin"] == "self"]
    # one seed pair per problem, even the one where nothing passed; K = 8 draws for the problem with candidates
    assert [r["problem_id"] for r in gold] == ["mbpp/2", "mbpp/3"]
    assert len(self_) == 8 and {r["problem_id"] for r in self_} == {"mbpp/2"}
    assert gold[0] == {**training_pair(seeds[0], seeds[0]["reference"]), "problem_id": "mbpp/2", "origin": "gold",
                       "weight": None, "ppl": None, "chain_id": None, "step": None, "sample": None}
    by_step = {r["step"]: r for r in rows if r["problem_id"] == "mbpp/2"}
    for r in self_:
        source = by_step[r["step"]]
        assert {k: r[k] for k in ("prompt", "completion")} == training_pair(seeds[0], source["code"])
        assert r["ppl"] == source["ppl"] and r["chain_id"] == "mbpp/2#0"
        assert r["weight"] == pytest.approx(selection_weights([1.1, 1.3, 1.2], 2.0)[r["step"] - 1])
        assert seeds[0]["description"] in r["prompt"] and "paraphrase" not in str(r["prompt"])
    assert out.index(gold[0]) == 0  # the seed pair comes before the draws of its problem


def test_draw_is_reproducible_and_independent_of_the_order_of_problems(data_dir):
    seeds = seed_rows(data_dir, 3)
    blocks = [chain_rows(s, variants(s, 5), [1.0, 1.5, 2.0, 1.2, 1.1]) for s in seeds]
    rows = [r for block in blocks for r in block]
    a = list(select_rows(rows, SelectConfig(seed=7)))
    b = list(select_rows([r for block in reversed(blocks) for r in block], SelectConfig(seed=7)))
    c = list(select_rows(rows, SelectConfig(seed=8)))
    key = lambda out: sorted((r["problem_id"], r["step"] or 0) for r in out)  # noqa: E731
    assert key(a) == key(b)
    assert key(a) != key(c)


def test_without_replacement_dedup_and_uniform(data_dir):
    seed = seed_rows(data_dir, 1)[0]
    same = seed["reference"]
    reformatted = same.replace("\n", "\n\n") + "# a comment\n"  # the same program once normalised
    codes = [same, reformatted] + variants(seed, 2)
    rows = chain_rows(seed, codes, [1.2, 1.9, 1.1, 1.3])
    config = SelectConfig(replacement=False, include_reference=False)
    out = list(select_rows(rows, config))
    assert sorted(r["step"] for r in out) == [1, 2, 3, 4]  # K = 8 > 4 candidates: each once
    dedup = list(select_rows(rows, SelectConfig(replacement=False, dedup=True, include_reference=False)))
    assert sorted(r["step"] for r in dedup) == [1, 3, 4]  # the reformatted copy is gone; the first one kept
    uniform = list(select_rows(chain_rows(seed, codes, [None] * 4), SelectConfig(temperature=0, k=3)))
    assert [r["weight"] for r in uniform if r["origin"] == "self"] == [0.25] * 3


def test_only_codes_the_chain_kept_are_candidates(data_dir):
    seed = seed_rows(data_dir, 1)[0]
    # a Gibbs step keeps one of its passing codes; the other passed too but was not kept
    rows = chain_rows(seed, variants(seed, 3), [1.1, 1.2, 1.3], kept=[True, False, True])
    steps = {r["step"] for r in select_rows(rows, SelectConfig(include_reference=False, k=50))}
    assert steps == {1, 3}
    every = {r["step"] for r in select_rows(rows, SelectConfig(include_reference=False, k=50, candidates="passed"))}
    assert every == {1, 2, 3}
    no_mark = [{k: v for k, v in r.items() if k != "kept"} for r in rows]  # rows of another producer
    assert {r["step"] for r in select_rows(no_mark, SelectConfig(include_reference=False, k=50))} == {1, 2, 3}


def test_one_distinct_code_gives_k_copies(data_dir):
    seed = seed_rows(data_dir, 1)[0]
    out = list(select_rows(chain_rows(seed, [seed["reference"]], [1.3]), SelectConfig(include_reference=False)))
    assert len(out) == 8 and len({r["completion"] for r in out}) == 1 and out[0]["weight"] == 1.0


def test_seed_file_supplies_reference_pairs_for_problems_missing_from_input(data_dir):
    seeds = seed_rows(data_dir, 3)
    rows = chain_rows(seeds[1], variants(seeds[1], 2), [1.1, 1.2])
    out = list(select_rows(rows, SelectConfig(k=2), seeds=seeds))
    assert [(r["problem_id"], r["origin"]) for r in out] == [
        ("mbpp/2", "gold"), ("mbpp/3", "gold"), ("mbpp/3", "self"), ("mbpp/3", "self"), ("mbpp/4", "gold")]


def test_chat_style_pairs_are_messages(data_dir):
    seed = seed_rows(data_dir, 1)[0]
    out = list(select_rows(chain_rows(seed, [seed["reference"]], [1.3]), SelectConfig(k=1, prompt_style="chat")))
    for r in out:
        assert isinstance(r["prompt"], list) and r["prompt"][-1]["role"] == "user"
        assert isinstance(r["completion"], list) and r["completion"][0]["role"] == "assistant"
        assert {k: r[k] for k in ("prompt", "completion")} == training_pair(seed, seed["reference"], style="chat")


def test_errors_name_the_missing_stage(data_dir):
    seed = seed_rows(data_dir, 1)[0]
    rows = chain_rows(seed, [seed["reference"]], [None])
    with pytest.raises(InputError, match="giftgen score"):
        list(select_rows(rows, SelectConfig()))
    no_verdict = [{k: v for k, v in rows[0].items() if k != "passed"}]
    with pytest.raises(InputError, match="giftgen verify"):
        list(select_rows(no_verdict, SelectConfig()))


def test_cli_reads_stdin_and_writes_trl_rows(data_dir, tmp_path):
    seed = seed_rows(data_dir, 1)[0]
    rows = chain_rows(seed, variants(seed, 3), [1.1, 1.4, 1.2])
    text = "".join(json.dumps(r) + "\n" for r in rows)
    result = CliRunner().invoke(main, ["select", "-", "-k", "4", "-T", "2", "--seed", "3"], input=text)
    assert result.exit_code == 0, result.output
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["origin"] for r in out] == ["gold"] + ["self"] * 4
    assert all(set(r) >= {"prompt", "completion", "problem_id", "origin", "weight", "ppl"} for r in out)
    again = CliRunner().invoke(main, ["select", "-", "-k", "4", "-T", "2", "--seed", "3"], input=text)
    assert again.stdout == result.stdout
    bad = CliRunner().invoke(main, ["select", "-", "-k", "-1"], input=text)
    assert bad.exit_code == 2 and "k must be" in bad.output
