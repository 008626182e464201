"""`giftgen chain` logic with the scripted fake backend and the real sandbox, on real MBPP seed rows.

The fake backend answers code prompts with known passing and failing bodies, so every rule of the chain
(choice of kept codes, fallback, burn-in and thinning, exemplars, lineage, budgets, resume) has a known answer.
Real models are in test_chain_model.py.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from giftgen.backends.fake import FakeBackend
from giftgen.chain import ChainConfig, draw_exemplar, exemplar_pool, marks_kept, prepare_resume, run_chain
from giftgen.config import resolve
from giftgen.errors import ConfigError, InputError
from giftgen.prompts import DESCRIPTION_HEADER, code_prompt
from giftgen.records import RowWriter, read_rows

SUMMARY = "###Description of the given code:"
FAIL = "    return None\n"
PASS_A = "    return n > 1 and any(n % i == 0 for i in range(2, int(math.sqrt(n)) + 1))\n"
PASS_B = "    return any(n % i == 0 for i in range(2, n))\n"
HEAP_PASS = "  return sorted(nums, reverse=True)[:n]\n"
HEAP_FAIL = "  return nums[:n]\n"
SQUARE_PASS = " return [x * x for x in nums]\n"
IDS = ["mbpp/3", "mbpp/4", "mbpp/8"]


@pytest.fixture(scope="module")
def mbpp(data_dir) -> dict[str, dict]:
    from giftgen.seeds import load_seeds

    return {r["problem_id"]: r for r in load_seeds("mbpp", str(data_dir / "mbpp-sanitized.json"), "all")}


@pytest.fixture(scope="module")
def problems(mbpp) -> list[dict]:
    return [mbpp[i] for i in IDS]


@pytest.fixture(scope="module")
def executor():
    from giftgen.sandbox import Executor, Limits

    with Executor(workers=2, limits=Limits()) as ex:
        yield ex


def opening(row: dict) -> str:
    """What only a code prompt of ``row`` contains: its def line followed by the docstring's quotes."""
    return code_prompt(row).split('"""')[0] + '"""'


def script(problems: list[dict], codes: dict[str, list[str]], summaries: list[str] | None = None) -> list:
    summaries = summaries or [f"Summary number {k}." for k in range(2000)]
    rules = [{"match": SUMMARY, "reply": summaries}, {"match": "###Rewritten description:", "reply": [
        f"Paraphrase number {k}." for k in range(2000)]}]
    for row in problems:
        rules.append({"match": opening(row), "reply": codes[row["problem_id"]]})
    return rules


def config(**kw) -> ChainConfig:
    return resolve(ChainConfig, None, {"model": "fake", "backend": "fake", **kw})


def chain(problems, backend, executor, **kw) -> list[dict]:
    return list(run_chain(problems, config(**kw), backend=backend, executor=executor))


def steps_of(rows: list[dict], pid: str) -> dict[int, list[dict]]:
    out: dict[int, list[dict]] = {}
    for r in rows:
        if r["problem_id"] == pid:
            out.setdefault(r["step"], []).append(r)
    return out


def summary_calls(backend: FakeBackend) -> list[str]:
    return [p for prompts, _ in backend.calls for p in prompts if p.rstrip().endswith(SUMMARY)]


# --------------------------------------------------------------------------------------------------- gibbs


def test_rows_lineage_and_one_call_per_step(problems, executor):
    codes = {"mbpp/3": [FAIL, PASS_A, PASS_B], "mbpp/4": [HEAP_FAIL], "mbpp/8": [SQUARE_PASS, FAIL, FAIL]}
    backend = FakeBackend(script(problems, codes))
    rows = chain(problems, backend, executor, steps=4, n=3)
    assert len(rows) == 3 * 4 * 3
    # step-major, problems in input order, samples in order
    assert [(r["step"], r["problem_id"], r["sample"]) for r in rows] == [
        (t, p, j) for t in range(1, 5) for p in IDS for j in range(3)]
    # two backend calls per step: every problem's code prompts, then every problem's summary
    assert len(backend.calls) == 8
    for k, (prompts, sampling) in enumerate(backend.calls):
        assert len(prompts) == 3
        assert sampling.n == (3 if k % 2 == 0 else 1)
    seeds = problems
    for row in rows:
        seed = next(s for s in seeds if s["problem_id"] == row["problem_id"])
        assert {k: row[k] for k in seed} == seed  # seed columns pass through
        assert row["code"].startswith(seed["prompt_head"])
        assert row["chain_model"] == "fake" and row["mode"] == "gibbs" and row["chain_id"].endswith(seed["problem_id"])
    by_step = steps_of(rows, "mbpp/3")
    assert [r["chain_passed"] for r in by_step[1]] == [False, True, True]
    assert [r["chain_status"] for r in by_step[1]] == ["wrong_answer", "pass", "pass"]
    for pid in IDS:
        by_step = steps_of(rows, pid)
        assert by_step[1][0]["gen_description"] == next(s for s in seeds if s["problem_id"] == pid)["description"]
        for t in range(1, 4):
            carriers = [r for r in by_step[t] if r["next_description"] is not None]
            assert len(carriers) == 1
            # lineage: the next step's codes were generated from this step's next description
            assert all(r["gen_description"] == carriers[0]["next_description"] for r in by_step[t + 1])
    # ... and the prompt of step 2 carried it
    step2 = backend.calls[2][0][0]
    assert steps_of(rows, "mbpp/3")[1][1]["next_description"] in step2 or \
        steps_of(rows, "mbpp/3")[1][2]["next_description"] in step2


def test_kept_per_step(problems, executor):
    codes = {"mbpp/3": [FAIL, PASS_A, PASS_B], "mbpp/4": [HEAP_FAIL], "mbpp/8": [SQUARE_PASS]}
    for k, expected in ((1, 1), (2, 2), (0, 2)):
        rows = chain(problems, FakeBackend(script(problems, codes)), executor, steps=5, n=3, kept_per_step=k)
        for t, step in steps_of(rows, "mbpp/3").items():
            kept = [r for r in step if r["kept"]]
            assert len(kept) == expected, (k, t)
            assert all(r["chain_passed"] for r in kept)
            carrier = next(r for r in step if r["next_description"] is not None)
            assert carrier["kept"] and carrier["summary_source"] == "step"
        assert not any(r["kept"] for r in rows if r["problem_id"] == "mbpp/4")  # nothing passes there
        assert sum(r["kept"] for r in rows if r["problem_id"] == "mbpp/8") == 5 * min(3, k or 3)
    # the choice among passing codes is random, seeded: both passing samples get chosen over the steps
    rows = chain(problems, FakeBackend(script(problems, codes)), executor, steps=12, n=3)
    assert {r["sample"] for r in rows if r["problem_id"] == "mbpp/3" and r["kept"]} == {1, 2}


@pytest.mark.parametrize("policy", ["last-passing", "reference"])
def test_fallback(problems, executor, mbpp, policy):
    # mbpp/3: step 1 passes (PASS_A, sample 0), steps 2 and 3 fail; mbpp/4 never passes
    codes = {"mbpp/3": [PASS_A, FAIL, FAIL, FAIL, FAIL, FAIL, FAIL, FAIL, FAIL],
             "mbpp/4": [HEAP_FAIL], "mbpp/8": [SQUARE_PASS]}
    backend = FakeBackend(script(problems, codes))
    rows = chain(problems, backend, executor, steps=3, n=3, fallback=policy)
    sources = {t: next(r for r in step if r["next_description"] is not None)
               for t, step in steps_of(rows, "mbpp/3").items()}
    assert sources[1]["summary_source"] == "step" and sources[1]["sample"] == 0
    expected = "last-passing" if policy == "last-passing" else "reference"
    assert sources[2]["summary_source"] == sources[3]["summary_source"] == expected
    assert sources[2]["sample"] == 0  # no code kept: the next description sits on the step's first row
    # what was summarised: the summary prompts of mbpp/3 (the 1st of each summary call) end with that code
    prompts = [calls[0][0] for calls in backend.calls[1::2]]
    passing_code = sources[1]["code"]
    reference = mbpp["mbpp/3"]["reference"]
    target = [p.rsplit("###Code:\n", 1)[1] for p in prompts]
    assert target[0].startswith(passing_code.rstrip())
    for text in target[1:]:
        assert text.startswith((passing_code if policy == "last-passing" else reference).rstrip())
    # a chain that never passed falls back to the reference with either policy
    assert {r["summary_source"] for r in rows if r["problem_id"] == "mbpp/4" and r["next_description"]} == {
        "reference"}


def test_burn_in_and_thinning(problems, executor):
    codes = {"mbpp/3": [PASS_A], "mbpp/4": [HEAP_PASS], "mbpp/8": [SQUARE_PASS]}
    rows = chain(problems, FakeBackend(script(problems, codes)), executor, steps=7, n=1, burn_in=2, thinning=2)
    for pid in IDS:
        assert [t for t, step in steps_of(rows, pid).items() if step[0]["kept"]] == [4, 6]
        # the chain itself runs through burn-in: every step summarises its passing code
        assert all(step[0]["summary_source"] == "step" for step in steps_of(rows, pid).values())
    cfg = config(burn_in=0, thinning=1)
    assert all(marks_kept(cfg, t) for t in range(1, 5))


def test_exemplar_never_the_problem_itself(problems, mbpp, executor):
    more = problems + [mbpp["mbpp/2"], mbpp["mbpp/7"]]
    codes = {"mbpp/3": [FAIL], "mbpp/4": [HEAP_FAIL], "mbpp/8": [FAIL], "mbpp/2": [FAIL], "mbpp/7": [FAIL]}
    backend = FakeBackend(script(more, codes))
    rows = chain(more, backend, executor, steps=12, n=1)
    descriptions = {r["problem_id"]: r["description"] for r in more}
    seen: dict[str, set] = {}
    for row in rows:
        assert row["exemplar_id"] != row["problem_id"]
        seen.setdefault(row["problem_id"], set()).add(row["exemplar_id"])
    # every other problem serves as an exemplar at some step (12 draws from 4)
    assert all(len(s) >= 3 for s in seen.values()), seen
    # the prompts: the one-shot block shows the exemplar's seed description, never the summarised problem's
    for prompts, _ in backend.calls[1::2]:
        for k, prompt in enumerate(prompts):
            shot = prompt.split(DESCRIPTION_HEADER)[1].split("\n\n###Code:")[0]
            assert shot != descriptions[more[k]["problem_id"]]
            assert shot in descriptions.values()


def test_draw_exemplar_uniform_and_alone(problems):
    pool = exemplar_pool(problems)
    assert draw_exemplar(pool[:1], pool[0][0], seed=0, step=1) is None  # only itself: zero-shot
    counts = Counter(draw_exemplar(pool, "mbpp/4", seed=0, step=t)[0] for t in range(600))
    assert set(counts) == {"mbpp/3", "mbpp/8"}
    assert 240 < counts["mbpp/3"] < 360
    assert draw_exemplar(pool, "mbpp/4", 0, 5) == draw_exemplar(pool, "mbpp/4", 0, 5)


# --------------------------------------------------------------------------------------------------- baselines


def test_rft_budget(problems, executor):
    codes = {"mbpp/3": [FAIL, PASS_A, PASS_B], "mbpp/4": [HEAP_FAIL], "mbpp/8": [SQUARE_PASS]}
    backend = FakeBackend(script(problems, codes))
    rows = chain(problems, backend, executor, mode="rft", steps=5, n=3)
    assert len(rows) == 3 * 5 * 3
    assert len(backend.calls) == 5 and not summary_calls(backend)
    for row in rows:
        assert row["gen_description"] == row["description"]
        assert row["kept"] == row["chain_passed"]  # every passing code is kept
        assert row["next_description"] is None and row["mode"] == "rft"
    assert sum(r["kept"] for r in rows) == 5 * 2 + 5 * 3


def test_rewrite_budget(problems, executor):
    codes = {"mbpp/3": [FAIL, PASS_A, PASS_B], "mbpp/4": [HEAP_FAIL], "mbpp/8": [SQUARE_PASS]}
    backend = FakeBackend(script(problems, codes))
    rows = chain(problems, backend, executor, mode="rewrite", steps=4, n=2, desc_top_p=0.9)
    assert len(rows) == 3 * 4 * 2
    assert len(backend.calls) == 8
    for t in range(4):
        rewrites, rsampling = backend.calls[2 * t]
        code_prompts, csampling = backend.calls[2 * t + 1]
        assert rsampling.n == 1 and rsampling.top_p == 0.9 and csampling.n == 2
        for k, row in enumerate(problems):
            assert row["description"] in rewrites[k]  # paraphrases of d0, every step
            step = [r for r in rows if r["step"] == t + 1 and r["problem_id"] == row["problem_id"]]
            assert step[0]["gen_description"].startswith("Paraphrase number")
            assert step[0]["gen_description"] in code_prompts[k]
    assert len({r["gen_description"] for r in rows}) == 12  # a new paraphrase per problem and step


def test_sampling_settings_reach_the_backend_and_rows(problems, executor):
    codes = {"mbpp/3": [PASS_A], "mbpp/4": [HEAP_PASS], "mbpp/8": [SQUARE_PASS]}
    backend = FakeBackend(script(problems, codes))
    rows = chain(problems, backend, executor, steps=2, n=1, temperature=0.7, top_p=0.9, top_k=10,
                 max_new_tokens=99, desc_temperature=0.5, desc_max_new_tokens=77, seed=5)
    code, summary = backend.calls[0][1], backend.calls[1][1]
    assert (code.temperature, code.top_p, code.top_k, code.max_new_tokens) == (0.7, 0.9, 10, 99)
    assert code.stop == ["\nclass", "\nif", "\n#", "\nprint", "\ndef", "\nassert"]
    assert (summary.temperature, summary.top_p, summary.top_k, summary.max_new_tokens) == (0.5, 0.95, 0, 77)
    assert summary.stop == ["\n###"]
    assert backend.calls[2][1].seed != code.seed  # each step samples with its own seed
    row = rows[0]
    assert (row["temperature"], row["top_p"], row["top_k"], row["max_new_tokens"], row["seed"]) == (
        0.7, 0.9, 10, 99, 5)
    assert json.loads(row["chain_settings"])["desc_temperature"] == 0.5
    defaults = ChainConfig()
    assert (defaults.steps, defaults.n, defaults.temperature, defaults.top_k, defaults.top_p) == (20, 3, 1.0, 50, 1.0)
    assert (defaults.desc_temperature, defaults.desc_top_p, defaults.max_new_tokens) == (1.0, 0.95, 512)


def test_chat_style_and_ast_extraction(problems, executor):
    chat = "Here it is:\n```python\nimport math\ndef is_not_prime(n):\n" + PASS_A + "print(is_not_prime(4))\n```\n"
    rules = [{"match": "Here is a Python program", "reply": "A chat summary."},
             {"match": "is_not_prime", "reply": chat}, {"match": "heap_queue_largest", "reply": "no code"},
             {"match": "square_nums", "reply": "```python\ndef square_nums(nums):\n" + SQUARE_PASS + "```"}]
    backend = FakeBackend(rules)
    rows = chain(problems, backend, executor, steps=2, n=1, prompt_style="chat")
    assert isinstance(backend.calls[0][0][0], list) and backend.calls[0][1].stop == []
    first = steps_of(rows, "mbpp/3")[1][0]
    assert first["chain_passed"] and "print(" not in first["code"] and first["raw"] == chat
    assert first["next_description"] == "A chat summary."
    # AST extraction keeps a helper defined after the target; the stop strings would cut it
    helper = "    return helper(n)\ndef helper(n):\n    return any(n % i == 0 for i in range(2, n))\n"
    codes = {"mbpp/3": [helper], "mbpp/4": [HEAP_PASS], "mbpp/8": [SQUARE_PASS]}
    for method, passed in (("stop", False), ("ast", True)):
        backend = FakeBackend(script(problems, codes))
        rows = chain(problems, backend, executor, steps=1, n=1, extraction=method)
        assert rows[0]["chain_passed"] is passed, method
        assert ("\ndef" in backend.calls[0][1].stop) is (method == "stop")


def test_stdio_problems_get_their_own_stops(problems, executor):
    from giftgen.prompts import STDIO_STOP_STRINGS, STOP_STRINGS

    stdio = {"problem_id": "toy/sum", "source": "toy", "split": "train", "prompt_head": "", "doctest": None,
             "description": "Read two integers and print their sum.", "entry_point": None,
             "reference": "a, b = map(int, input().split())\nprint(a + b)\n",
             "tests": json.dumps({"kind": "stdio", "inputs": ["1 2\n", "5 7\n"], "outputs": ["3\n", "12\n"]})}
    rules = script(problems, {"mbpp/3": [PASS_A], "mbpp/4": [HEAP_PASS], "mbpp/8": [SQUARE_PASS]})
    # the module docstring with no indentation: only the stdio problem's code prompt has it
    rules.append({"match": '\n"""\n', "reply": "a, b = map(int, input().split())\nprint(a + b)\n"
                                                           "\n```\nmore chatter"})
    backend = FakeBackend(rules)
    rows = chain(problems + [stdio], backend, executor, steps=2, n=1)
    # step 1: one code call per stop list, then one summary call for all four problems
    (first, s1), (second, s2), (summaries, _) = backend.calls[:3]
    assert (len(first), s1.stop, len(second), s2.stop) == (3, STOP_STRINGS, 1, STDIO_STOP_STRINGS)
    assert len(summaries) == 4
    toy = steps_of(rows, "toy/sum")
    assert toy[1][0]["code"] == "a, b = map(int, input().split())\nprint(a + b)\n"
    assert toy[1][0]["chain_passed"] and toy[1][0]["summary_source"] == "step"
    assert [r["problem_id"] for r in rows[:4]] == IDS + ["toy/sum"]  # input order, whatever the calls


def test_bad_input_and_settings(problems, executor):
    backend = FakeBackend([])
    broken = dict(problems[0])
    del broken["tests"]
    with pytest.raises(InputError, match="no column 'tests'.*giftgen seeds"):
        chain([broken], backend, executor, steps=1)
    with pytest.raises(InputError, match="repeats problem_id"):
        chain([problems[0], problems[0]], backend, executor, steps=1)
    for bad in ({"steps": 0}, {"thinning": 0}, {"n": 0}, {"desc_top_p": 0.0}, {"temperature": -1.0}):
        with pytest.raises(ConfigError):
            config(**bad)
    with pytest.raises(ConfigError, match="needs a model"):
        list(run_chain(problems, resolve(ChainConfig), executor=executor))
    assert chain([], backend, executor) == [] and backend.calls == []


# --------------------------------------------------------------------------------------------------- resume


RESUME_CODES = {"mbpp/3": [FAIL, PASS_A, PASS_B], "mbpp/4": [HEAP_FAIL, HEAP_PASS, HEAP_FAIL],
                "mbpp/8": [FAIL, FAIL, FAIL]}


def write_run(path: Path, problems, executor, done=(), **kw) -> None:
    # three summary replies cycle once per step, so the fake's replies depend on the step only (as a seeded
    # model's do) and a fresh backend resumes exactly where the killed one was
    backend = FakeBackend(script(problems, RESUME_CODES, ["First summary.", "Second summary.", "Third summary."]))
    with RowWriter(path, append=bool(done)) as writer:
        writer.write_many(run_chain(problems, config(**kw), backend=backend, executor=executor, done=done))


@pytest.mark.parametrize("mode", ["gibbs", "rft"])
def test_resume_from_any_cut_gives_the_uninterrupted_rows(tmp_path, problems, executor, mode):
    full = tmp_path / "full.jsonl"
    write_run(full, problems, executor, steps=4, mode=mode)
    data = full.read_bytes()
    lines = data.splitlines(keepends=True)
    block = 3 * 3
    line_ends = [sum(len(x) for x in lines[:k]) for k in range(len(lines) + 1)]
    # cut at step boundaries, mid-step, and mid-line (a kill -9 while writing a row)
    cuts = {0, line_ends[block], line_ends[block + 4], line_ends[2 * block] + 17, line_ends[-1] - 5, len(data)}
    for cut in sorted(cuts):
        path = tmp_path / f"cut{cut}.jsonl"
        path.write_bytes(data[:cut])
        done = prepare_resume(path, problems, config(steps=4, mode=mode))
        assert len(done) % block == 0
        write_run(path, problems, executor, done=done, steps=4, mode=mode)
        assert path.read_bytes() == data, cut


def test_resume_extends_and_refuses_another_run(tmp_path, problems, executor):
    short, long = tmp_path / "short.jsonl", tmp_path / "long.jsonl"
    write_run(short, problems, executor, steps=2)
    write_run(long, problems, executor, steps=4)
    done = prepare_resume(short, problems, config(steps=4))
    write_run(short, problems, executor, done=done, steps=4)
    assert short.read_bytes() == long.read_bytes()  # --steps 4 on a 2-step file extends the chain
    before = long.read_bytes()
    for kw, key in (({"seed": 1}, "seed"), ({"temperature": 0.5}, "temperature"), ({"n": 2}, "n"),
                    ({"kept_per_step": 2}, "kept_per_step"), ({"fallback": "reference"}, "fallback")):
        with pytest.raises(ConfigError, match=f"another run \\({key}"):
            prepare_resume(long, problems, config(steps=4, **kw))
    with pytest.raises(ConfigError, match="another run \\(problem_id"):
        prepare_resume(long, problems[::-1], config(steps=4))
    with pytest.raises(ConfigError, match="more rows than 3 steps"):
        prepare_resume(long, problems, config(steps=3))
    assert long.read_bytes() == before  # a refused resume leaves the file alone
    assert list(read_rows(long))[0]["step"] == 1
