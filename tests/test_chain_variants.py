"""The chain's variants (off by default): acceptance (a description that yields no passing code is rejected) and
best-of-k summaries. Scripted fake backend, real sandbox, real MBPP rows (fixtures of test_chain.py)."""

from __future__ import annotations

import json

import pytest

from giftgen.backends.fake import FakeBackend
from giftgen.chain import prepare_resume, run_chain
from giftgen.records import RowWriter
from tests.test_chain import FAIL, PASS_A, PASS_B, SUMMARY, config, executor, mbpp, opening, steps_of  # noqa: F401

PID = "mbpp/3"


@pytest.fixture(scope="module")
def one(mbpp):  # noqa: F811
    return [mbpp[PID]]


def drifting(row: dict, summaries: list[str]) -> FakeBackend:
    """Codes from a description that says "Drifted" fail; codes from any other description pass."""
    return FakeBackend([{"match": SUMMARY, "reply": summaries}, {"match": "Drifted", "reply": FAIL},
                        {"match": opening(row), "reply": PASS_A}])


def carriers(rows: list[dict]) -> dict[int, dict]:
    return {t: next(r for r in step if r["next_description"] is not None) for t, step in steps_of(rows, PID).items()}


def test_the_paper_chain_builds_on_a_drifted_description(one, executor):  # noqa: F811
    rows = list(run_chain(one, config(steps=3, n=1), backend=drifting(one[0], ["Drifted one.", "Fine two."]),
                          executor=executor))
    c = carriers(rows)
    assert c[1]["next_description"] == "Drifted one."
    assert c[2]["summary_source"] == "last-passing"  # no code passed from the drifted description
    assert c[2]["next_description"] == "Fine two."  # ... and the chain moves on from a summary anyway
    assert "accept" not in json.loads(rows[0]["chain_settings"])  # the default chain's rows are as they were


def test_acceptance_returns_to_the_last_description_with_a_passing_code(one, executor):  # noqa: F811
    d0 = one[0]["description"]
    backend = drifting(one[0], ["Drifted one.", "Fine two."])
    rows = list(run_chain(one, config(steps=4, n=1, accept=True), backend=backend, executor=executor))
    c = carriers(rows)
    assert c[1]["summary_source"] == "step" and c[1]["next_description"] == "Drifted one."
    assert not steps_of(rows, PID)[2][0]["chain_passed"]
    assert c[2]["summary_source"] == "rejected" and c[2]["next_description"] == d0
    assert steps_of(rows, PID)[3][0]["gen_description"] == d0 and steps_of(rows, PID)[3][0]["chain_passed"]
    assert c[3]["next_description"] == "Fine two."
    # a rejected step summarises nothing: 3 summary calls in 4 steps
    assert sum(1 for prompts, _ in backend.calls for p in prompts if p.rstrip().endswith(SUMMARY)) == 3
    assert json.loads(rows[0]["chain_settings"])["accept"] is True


def test_best_of_k_summaries_continue_from_the_first_that_yields_a_passing_code(one, executor):  # noqa: F811
    backend = drifting(one[0], ["Drifted A.", "Drifted B.", "Fine C."])
    rows = list(run_chain(one, config(steps=2, n=1, summary_candidates=3), backend=backend, executor=executor))
    c = carriers(rows)
    assert c[1]["next_description"] == "Fine C." and c[1]["summary_rank"] == 2
    assert steps_of(rows, PID)[2][0]["gen_description"] == "Fine C." and steps_of(rows, PID)[2][0]["chain_passed"]
    summary_samplings = [s for prompts, s in backend.calls if prompts[0].rstrip().endswith(SUMMARY)]
    assert {s.n for s in summary_samplings} == {3}
    assert all(r["summary_rank"] is None for r in rows if r["next_description"] is None)
    # when no candidate yields a passing code, the first one is kept
    backend = drifting(one[0], ["Drifted A.", "Drifted B."])
    rows = list(run_chain(one, config(steps=1, n=1, summary_candidates=2), backend=backend, executor=executor))
    assert carriers(rows)[1]["next_description"] == "Drifted A." and carriers(rows)[1]["summary_rank"] == 0


def stepwise(row: dict) -> FakeBackend:
    """Replies that depend on the step only (as a seeded model's do): a fresh backend resumes exactly. Code A's
    summary drifts, code B's does not; which passing code the chain summarises is its seeded choice."""
    return FakeBackend([
        {"match": "math.sqrt(n)", "reply": "Drifted."},  # a summary prompt of code A
        {"match": SUMMARY, "reply": "Faithful."},
        {"match": "Drifted", "reply": FAIL},
        {"match": opening(row), "reply": [PASS_A, PASS_B]},
    ])


def test_acceptance_resumes_to_the_uninterrupted_rows(tmp_path, one, executor):  # noqa: F811
    settings = {"steps": 6, "n": 2, "accept": True}
    full = tmp_path / "full.jsonl"
    with RowWriter(full) as w:
        w.write_many(run_chain(one, config(**settings), backend=stepwise(one[0]), executor=executor))
    rows = [json.loads(line) for line in full.read_text().splitlines()]
    assert "rejected" in {r["summary_source"] for r in rows}, "the script must exercise a rejection"
    lines = full.read_bytes().splitlines(keepends=True)
    for steps_done in (1, 2, 3, 5):
        path = tmp_path / f"cut{steps_done}.jsonl"
        path.write_bytes(b"".join(lines[: 2 * steps_done]))
        done = prepare_resume(path, one, config(**settings))
        with RowWriter(path, append=True) as w:
            w.write_many(run_chain(one, config(**settings), backend=stepwise(one[0]), executor=executor, done=done))
        assert path.read_bytes() == full.read_bytes(), steps_done


def test_variant_settings_are_checked(one, executor):  # noqa: F811
    from giftgen.errors import ConfigError

    with pytest.raises(ConfigError, match="summary_candidates must be at least 1"):
        config(summary_candidates=0).validate()
