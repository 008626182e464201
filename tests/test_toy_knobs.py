"""The toy domain's laboratory knobs: phrasing-style coupling (a), a register gap (b), summary noise (c).
At 0 they leave the calibrated domain's rows as they were (the miniature's table depends on it)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from giftgen.errors import InputError
from giftgen.seeds import toy

SMALL = toy.ToyDomain(pretrain_three_op=20, n_seed=64, n_test3=40, n_test2=40, corpus_size=600)
SHAPE_OPENINGS = ("Given an integer x", "Take an integer x", "Start from x", "f(x): ", "Compute the following",
                  "Write a function")
GAP_OPENINGS = ("Return what you get if you", "Return x once you", "Working back from the result")


def shape_of(description: str) -> int:
    return next(i for i, opening in enumerate(SHAPE_OPENINGS) if description.startswith(opening))


def style_of(code: str) -> str:
    style = toy.code_style(code)
    assert style is not None
    return style


def test_at_zero_the_knobs_leave_the_rows_as_they_were():
    knobs = replace(SMALL, style_coupling=0.0, register_gap=0.0, summary_noise=0.0)
    assert list(toy.seed_rows(knobs, "seed")) == list(toy.seed_rows(SMALL, "seed"))
    assert list(toy.corpus(knobs)) == list(toy.corpus(SMALL))


def test_style_coupling_makes_the_phrasing_decide_the_code_style():
    free = [(shape_of(r["description"]), style_of(r["reference"])) for r in toy.seed_rows(SMALL, "seed")]
    coupled = [(shape_of(r["description"]), style_of(r["reference"]))
               for r in toy.seed_rows(replace(SMALL, style_coupling=1.0), "seed")]
    assert all(style == toy.coupled_style(shape) for shape, style in coupled)
    assert sum(style != toy.coupled_style(shape) for shape, style in free) > len(free) // 3  # independent at 0
    # the corpus too: every code-from-description pair is coupled
    rows = [r for r in toy.corpus(replace(SMALL, style_coupling=1.0)) if r["direction"] == "code"
            and r["problem_id"].count(".") == 2]
    assert rows
    for r in rows:
        description = r["prompt"].split('"""')[1].strip()
        assert style_of("def f(x):\n" + r["completion"]) == toy.coupled_style(shape_of(description))


def test_register_gap_rewrites_a_share_of_seed_and_test3_descriptions_only():
    base = {s: list(toy.seed_rows(SMALL, s)) for s in toy.SEED_SPLITS}
    gapped = {s: list(toy.seed_rows(replace(SMALL, register_gap=1.0), s)) for s in toy.SEED_SPLITS}
    for split in ("seed", "test3"):
        assert all(r["description"].startswith(GAP_OPENINGS) for r in gapped[split])
        assert [r["reference"] for r in gapped[split]] == [r["reference"] for r in base[split]]
    assert gapped["test2"] == base["test2"]
    half = list(toy.seed_rows(replace(SMALL, register_gap=0.5), "seed"))
    share = sum(r["description"].startswith(GAP_OPENINGS) for r in half) / len(half)
    assert 0.3 < share < 0.7
    # the pretraining corpus never uses these registers
    assert not any(r["completion"].startswith(GAP_OPENINGS) or any(o in r["prompt"] for o in GAP_OPENINGS)
                   for r in toy.corpus(SMALL))


def test_a_gap_description_lists_the_operations_last_to_first():
    intent = (toy.Op("add", 3), toy.Op("square"), toy.Op("neg"))
    import random

    text = toy._shape_backwards(["add 3", "square it", "negate it"])
    assert text == "Return what you get if you negate it; before that, square it; before that, add 3; starting from x."
    assert toy.describe_in_gap_register(intent, random.Random(0)).startswith(GAP_OPENINGS)


def test_summary_noise_makes_summaries_unfaithful_and_leaves_code_rows_alone():
    clean = list(toy.corpus(SMALL))
    noisy = list(toy.corpus(replace(SMALL, summary_noise=1.0)))
    assert [r for r in clean if r["direction"] == "code"] == [r for r in noisy if r["direction"] == "code"]
    pairs = [(a, b) for a, b in zip(clean, noisy, strict=True) if a["direction"] == "description"]
    assert pairs and all(a["prompt"] == b["prompt"] for a, b in pairs)  # the same code is summarised
    assert sum(a["completion"] != b["completion"] for a, b in pairs) > 0.8 * len(pairs)


def test_corrupt_changes_the_intent():
    import random

    rng = random.Random(1)
    intent = (toy.Op("add", 3), toy.Op("square"), toy.Op("neg"))
    assert all(toy.corrupt(intent, rng) != intent for _ in range(50))


@pytest.mark.parametrize("knob", ["style_coupling", "register_gap", "summary_noise"])
def test_knobs_are_shares(knob):
    with pytest.raises(InputError, match=f"{knob} must be between 0 and 1"):
        toy.ToyDomain(**{knob: 1.5})


def test_code_style_reads_back_the_style_of_every_three_operation_program():
    import random

    rng = random.Random(0)
    for _ in range(500):
        intent = tuple(rng.choice(toy.OPS) for _ in range(3))
        for style in toy.CODE_STYLES:
            assert toy.code_style(toy.write_code(intent, rng, style=style)) == style
    assert toy.code_style("print(1)\n") is None
