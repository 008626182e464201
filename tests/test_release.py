"""The release-exact profile: the GiFT release's prompt bytes, its exemplar pools, and the `prompt` column.

The reference functions below re-implement the release's prompt code as docs/method.md ("Exact prompt bytes of the
release") gives it (MBPP/_utils.py ``extract_code_head`` and ``construct_sum_prompt``), over the raw MBPP file.
"""

from __future__ import annotations

import json
import re
import tarfile
from concurrent.futures import Future
from pathlib import Path

import pytest

from giftgen.backends.fake import FakeBackend
from giftgen.chain import ChainConfig, load_exemplars, release_order, run_chain
from giftgen.config import resolve
from giftgen.errors import InputError
from giftgen.prompts import code_prompt, extract_code, extract_description, summary_prompt, training_pair

# giftgen's own exemplar pools in the release's format and layout (tests/data/README.md); the release's own pools
# are read in the `real` tier only (the `release_archive` fixture, tests/conftest.py)
OWN = Path(__file__).resolve().parent / "data" / "gift-release-format"
SEED_IDS = set(range(1, 11)) | set(range(511, 975))


# --------------------------------------------------------------------------------------------------- the release


def _release_head(code: str) -> str:
    """The lines of ``code`` up to its first ``def`` line, tabs as 4 spaces: both release utilities' first step."""
    code = code.replace("\t", "    ").replace("\r", "")
    head = []
    for item in code.split("\n"):
        head.append(item)
        if "def " in item:
            break
    return "\n".join(head)


def release_code_prompt(code: str, query: str, tests: list[str]) -> str:
    """MBPP/_utils.py ``extract_code_head``, as docs/method.md gives it."""
    import_and_head = _release_head(code)
    try:
        pairs = [(t.split("==")[0].split("assert")[-1].strip(), t.split("==")[1].strip()) for t in tests[:1]]
        test_string = "\n".join(f"    >>> {a}\n    {b}" for a, b in pairs)
    except IndexError:
        test_string = "\n".join(f"    >>> {a}\n    True" for a in [tests[0].split("assert")[-1].strip()])
    return f'{import_and_head}\n    """ {query}\n{test_string}\n    """\n'


def release_summary_prompt(exemplar_code: str, exemplar_desc: str, code: str) -> str:
    """MBPP/_utils.py ``construct_sum_prompt`` with one exemplar; ``code`` after the release's docstring regex."""
    for doc in re.findall('(    """.*?"""\n)', code, re.DOTALL | re.IGNORECASE):
        code = code.replace(doc, "")
    ex = exemplar_code.replace("\t", "    ").replace("\r", "")
    code = code.replace("\t", "    ").replace("\r", "")
    return (
        f"###Code:\n{ex}\n###Description of the given code:\n{exemplar_desc}\n\n"
        f"###Code:\n{code}\n###Description of the given code:\n"
    )


# --------------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def raw(data_dir) -> dict[str, dict]:
    items = json.loads((data_dir / "mbpp-sanitized.json").read_text())
    return {f"mbpp/{x['task_id']}": x for x in items if x["task_id"] in SEED_IDS}


@pytest.fixture(scope="module")
def seeds(data_dir) -> list[dict]:
    from giftgen.seeds import load_seeds

    return list(load_seeds("mbpp", str(data_dir / "mbpp-sanitized.json"), None))


@pytest.fixture(scope="module")
def rows(seeds) -> dict[str, dict]:
    return {r["problem_id"]: r for r in seeds}


@pytest.fixture(scope="module")
def raw_seeds(data_dir) -> list[dict]:
    """The seed rows as the release profile's runs write them: with the raw columns."""
    from giftgen.seeds import load_seeds

    return list(load_seeds("mbpp", str(data_dir / "mbpp-sanitized.json"), None, raw_columns=True))


class FailingExecutor:
    """Judges every program wrong without running it: these tests are about prompts, not verdicts."""

    def submit(self, code: str, plan: object) -> Future:
        from giftgen.sandbox import Verdict

        future: Future = Future()
        future.set_result(Verdict("failed", False))
        return future


def release_pool(archive: Path, tmp_path: Path, member: str) -> Path:
    """One of the release's own pools, extracted from its data (``archive``: the ``release_archive`` fixture)."""
    with tarfile.open(archive) as tar:
        data = tar.extractfile(member)
        assert data is not None
        out = tmp_path / Path(member).name
        out.write_bytes(data.read())
    return out


@pytest.fixture(params=["own", pytest.param("release", marks=pytest.mark.real)])
def pool_of(request, tmp_path):
    """``pool_of(member)``: giftgen's own pool at that place of the release's layout (default tier), or the
    release's own (``real`` tier)."""
    if request.param == "own":
        return lambda member: OWN / member
    archive = request.getfixturevalue("release_archive")
    return lambda member: release_pool(archive, tmp_path, member)


# --------------------------------------------------------------------------------------------------- literals


def test_literal_release_prompts_of_awkward_mbpp_rows(rows):
    # two-space reference: the release always writes 4 spaces
    assert code_prompt(rows["mbpp/2"], style="release") == (
        "def similar_elements(test_tup1, test_tup2):\n"
        '    """ Write a function to find the shared elements from the given two lists.\n'
        "    >>> set(similar_elements((3, 4, 5, 6),(5, 7, 4, 10)))\n"
        "    set((4, 5))\n"
        '    """\n'
    )
    # a helper before the entry point: the head stops at the first def line
    assert code_prompt(rows["mbpp/6"], style="release") == (
        "def is_Power_Of_Two (x): \n"
        '    """ Write a python function to check whether the two numbers differ at one bit position only or not.\n'
        "    >>> differ_At_One_Bit_Pos(13,9)\n"
        "    True\n"
        '    """\n'
    )
    # tab-indented reference
    assert code_prompt(rows["mbpp/603"], style="release") == (
        "def get_ludic(n):\n"
        '    """ Write a function to get all lucid numbers smaller than or equal to a given integer.\n'
        "    >>> get_ludic(10)\n"
        "    [1, 2, 3, 5, 7]\n"
        '    """\n'
    )
    # an assert without `==` (and a tab-indented body, imports and a constant before the def)
    assert code_prompt(rows["mbpp/737"], style="release") == (
        "import re \nregex = '^[aeiouAEIOU][A-Za-z0-9_]*'\ndef check_str(string): \n"
        '    """ Write a function to check whether the given string is starting with a vowel or not using regex.\n'
        '    >>> check_str("annie")\n'
        "    True\n"
        '    """\n'
    )
    # giftgen's own prompt stays the default and differs where the release's does
    assert code_prompt(rows["mbpp/2"]).startswith('def similar_elements(test_tup1, test_tup2):\n  """ ')


def test_release_prompt_of_every_seed_row_matches_the_release(rows, raw):
    assert len(rows) == 170
    for pid, row in rows.items():
        item = raw[pid]
        assert code_prompt(row, style="release") == release_code_prompt(
            item["code"], item["prompt"], item["test_list"]
        ), pid


def test_release_chain_prompt_column_is_the_release_s_on_all_170_seeds(seeds, raw):
    """Two Gibbs steps in the release profile: step 1 from d0, step 2 from summaries kept as the model wrote
    them (cut at the next ###, whitespace kept); the `prompt` column is the release's prompt, byte for byte."""
    summary = "  Checks it, twice.  \n\n###Code:\nwhatever"
    backend = FakeBackend(
        [
            {"match": "###Description of the given code:", "reply": summary},
            {"match": '    """ ', "reply": "    return None\n"},
        ]
    )
    config = resolve(
        ChainConfig,
        None,
        {"model": "fake", "backend": "fake", "steps": 2, "n": 1, "prompt_style": "release", "desc_top_k": 50},
    )
    out = list(run_chain(seeds, config, backend=backend, executor=FailingExecutor()))
    assert len(out) == 2 * 170
    for row in out:
        item = raw[row["problem_id"]]
        query = item["prompt"] if row["step"] == 1 else "  Checks it, twice.  \n"
        assert row["gen_description"] == query
        assert row["prompt"] == release_code_prompt(item["code"], query, item["test_list"]), row["problem_id"]
    assert backend.calls[1][1].top_k == 50  # the summaries sampled with the release's top-k


def test_release_summary_prompt_and_cut(rows):
    row = rows["mbpp/2"]
    program = extract_code(row, "  return set(test_tup1) & set(test_tup2)\n\nprint(1)", style="release")
    assert (
        program == "def similar_elements(test_tup1, test_tup2):\n  return set(test_tup1) & set(test_tup2)\n"
    )
    exemplar = rows["mbpp/603"]["reference"], "#This code is a function that returns ludic numbers."
    written = code_prompt(row, style="release") + "  return set(test_tup1) & set(test_tup2)\n"
    assert summary_prompt(program, exemplar, style="release") == release_summary_prompt(*exemplar, written)
    assert extract_description("\n#It returns x. \n\n###Code:", style="release") == "\n#It returns x. \n"
    assert extract_description("\n#It returns x. \n\n###Code:") == "#It returns x."


def test_release_extraction_keeps_functions_up_to_the_entry_point(rows):
    row = rows["mbpp/6"]  # the head is the helper's def; the tests call the function after it
    body = (
        "    return x and not (x & (x - 1))\ndef differ_At_One_Bit_Pos(a, b):\n    return is_Power_Of_Two(a ^ b)\n"
        "def unused():\n    pass\n"
    )
    assert extract_code(row, body, style="release") == (
        "def is_Power_Of_Two (x): \n    return x and not (x & (x - 1))\n\n"
        "def differ_At_One_Bit_Pos(a, b):\n    return is_Power_Of_Two(a ^ b)\n"
    )


def test_release_training_pair_is_the_prompt_then_the_body(rows):
    row = rows["mbpp/603"]
    pair = training_pair(row, row["reference"], style="release")
    assert pair["prompt"] == code_prompt(row, style="release")
    assert pair["completion"].startswith(
        "    ludics = []\n    for i in range(1, n + 1):\n        ludics.append(i)"
    )
    assert "\t" not in pair["completion"]


def test_apps_and_codeinsight_form_and_wrapped_stdin():
    call = {
        "problem_id": "apps/valid/1",
        "description": "Add them.",
        "entry_point": "add",
        "doctest": None,
        "reference": "import math\ndef add(a, b):\n    return a + b\n",
        "prompt_head": "def add(a, b):\n",
    }
    assert code_prompt(call, style="release") == 'import math\ndef add(a, b):\n    """ Add them."""\n'
    stdin = {
        "problem_id": "apps/valid/2",
        "description": "Echo.",
        "entry_point": None,
        "doctest": None,
        "reference": "def code():\n    print(input())\n\n\ncode()\n",
        "prompt_head": "",
    }
    assert code_prompt(stdin, style="release") == 'def code():\n    """ Echo."""\n'
    assert extract_code(stdin, "    print(input())\nif x:\n    pass", style="release") == (
        "def code():\n    print(input())\n\n\ncode()\n"
    )
    assert training_pair(stdin, stdin["reference"], style="release")["completion"] == "    print(input())\n"
    stdin["tests"] = '{"kind": "stdio", "inputs": ["1"], "outputs": ["1"]}'
    whole = {**stdin, "reference": "def helper():\n    pass\nprint(input())\n"}  # a whole program: no prompt
    assert code_prompt(whole, style="release") == code_prompt(whole)  # of the release's for it
    unit = {
        **call,
        "problem_id": "codeinsight/train/3",
        "entry_point": None,
        "tests": '{"kind": "unittest"}',
        "reference": "import pandas as pd\ndef test(df):\n    return df.sum()\n",
    }
    assert code_prompt(unit, style="release") == 'import pandas as pd\ndef test(df):\n    """ Add them."""\n'


# --------------------------------------------------------------------------------------------------- exemplars


def test_own_exemplar_pool_maps_the_release_s_indices(seeds, rows):
    # giftgen's own pool: each entry describes the problem its index names in the release's order (the train
    # split by task id, then prompt, then validation), so a wrong order pairs a description with another's code
    pool = load_exemplars(OWN / "MBPP/data/ict_data.json", seeds)
    assert [e[0] for e in pool] == ["mbpp/602", "mbpp/604", "mbpp/606", "mbpp/2", "mbpp/600"]
    assert all(ref == rows[pid]["reference"] for pid, ref, _ in pool)
    assert pool[1][2].startswith("#This code splits a string on whitespace") and "reverse" in pool[1][2]
    assert pool[3][2].startswith("#This code returns the elements that two tuples have in common")
    assert pool[4][2].startswith("\nThe code checks whether a number is even")  # kept unchanged, newlines too
    assert [r["problem_id"] for r in release_order(seeds)][:2] == ["mbpp/602", "mbpp/603"]


def test_own_codeinsight_pool_indexes_the_seed_files_order():
    from giftgen.seeds import load_seeds

    train = list(load_seeds("codeinsight", str(OWN), "train"))
    pool = load_exemplars(OWN / "CodeInsight/data/ict_data.json", train)
    assert [e[0] for e in pool] == ["codeinsight/train/0", "codeinsight/train/2", "codeinsight/train/3"]
    assert [e[1] for e in pool] == [train[i]["reference"] for i in (0, 2, 3)]
    assert "greater than a threshold" in pool[0][2] and "strptime" in pool[2][2]


@pytest.mark.real
def test_release_exemplar_pool_maps_the_release_s_indices(release_archive, tmp_path, seeds, rows):
    pool = load_exemplars(release_pool(release_archive, tmp_path, "MBPP/data/ict_data.json"), seeds)
    assert len(pool) == 147
    first = pool[0]  # [1, "#This code is a function that returns a list of all the ludic numbers ..."]
    assert first[0] == "mbpp/603" and first[1] == rows["mbpp/603"]["reference"]
    assert first[2].startswith("#This code is a function that returns a list of all the ludic numbers")
    assert [r["problem_id"] for r in release_order(seeds)][:2] == ["mbpp/602", "mbpp/603"]


def test_release_exemplars_reach_the_summary_prompt(pool_of, seeds, rows):
    path = pool_of("MBPP/data/ict_data.json")
    pool = {pid: desc for pid, _, desc in load_exemplars(path, seeds)}
    backend = FakeBackend(
        [
            {"match": "###Description of the given code:", "reply": "Desc."},
            {"match": '    """ ', "reply": "    return None\n"},
        ]
    )
    config = resolve(
        ChainConfig,
        None,
        {
            "model": "fake",
            "backend": "fake",
            "steps": 1,
            "n": 1,
            "prompt_style": "release",
            "exemplars": str(path),
        },
    )
    out = list(run_chain(seeds, config, backend=backend, executor=FailingExecutor()))
    summaries = [p for prompts, _ in backend.calls[1:] for p in prompts]
    assert len(summaries) == 170
    for row, prompt in zip([r for r in out if r.get("exemplar_id")], summaries, strict=True):
        ex = row["exemplar_id"]
        assert ex != row["problem_id"] and ex in pool
        ref = rows[ex]["reference"].replace("\t", "    ")
        assert prompt.startswith(
            f"###Code:\n{ref}\n###Description of the given code:\n{pool[ex]}\n\n###Code:\n"
        )


def test_release_summary_prompts_of_every_seed_show_the_raw_references(tmp_path, raw_seeds, raw, pool_of):
    """A pool (giftgen's own, or the release's in the real tier), one Gibbs step, every code failing: each of the 170
    summary prompts shows its exemplar's
    reference and, as the fallback target, the problem's own reference, both as the MBPP file has them (168 of
    the 170 end without a newline or with trailing spaces, which the `reference` column normalises)."""
    path = pool_of("MBPP/data/ict_data.json")
    pool = {pid: desc for pid, _, desc in load_exemplars(path, raw_seeds, "release")}
    backend = FakeBackend([{"match": "###Description of the given code:", "reply": "Desc."},
                           {"match": '    """ ', "reply": "    return None\n"}])
    config = resolve(ChainConfig, None, {"model": "fake", "backend": "fake", "steps": 1, "n": 1,
                                         "prompt_style": "release", "exemplars": str(path)})
    out = list(run_chain(raw_seeds, config, backend=backend, executor=FailingExecutor()))
    summaries = [p for prompts, _ in backend.calls[1:] for p in prompts]
    carriers = [r for r in out if r.get("exemplar_id")]
    assert len(summaries) == len(carriers) == 170
    assert sum(r["reference"] != raw[r["problem_id"]]["code"] for r in carriers) == 168
    for row, prompt in zip(carriers, summaries, strict=True):
        assert row["summary_source"] == "reference"
        ex = row["exemplar_id"]
        expected = release_summary_prompt(raw[ex]["code"], pool[ex], raw[row["problem_id"]]["code"])
        assert prompt == expected, row["problem_id"]


def test_literal_release_summary_prompt_with_raw_references(tmp_path, raw_seeds):
    """Literal bytes: mbpp/2's reference ends in "return (res) " (a space, no newline) and is the exemplar;
    mbpp/6's ends without a newline and is the fallback target. giftgen's own prompt style is unchanged."""
    pool = tmp_path / "pool.json"
    pool.write_text(json.dumps([["mbpp/2", "#This code is a function that returns the shared elements."]]))
    two = [r for r in raw_seeds if r["problem_id"] in ("mbpp/2", "mbpp/6")]
    prompts = {}
    for style in ("release", "base"):
        backend = FakeBackend([{"match": "###Description of the given code:", "reply": "Desc."},
                               {"match": '"""', "reply": "    return None\n"}])
        config = resolve(ChainConfig, None, {"model": "fake", "backend": "fake", "steps": 1, "n": 1,
                                             "prompt_style": style, "exemplars": str(pool)})
        list(run_chain(two, config, backend=backend, executor=FailingExecutor()))
        prompts[style] = [p for p in backend.calls[1][0] if "differ_At_One_Bit_Pos" in p]
    assert prompts["release"] == [
        "###Code:\n"
        "def similar_elements(test_tup1, test_tup2):\n"
        "  res = tuple(set(test_tup1) & set(test_tup2))\n"
        "  return (res) \n"
        "###Description of the given code:\n"
        "#This code is a function that returns the shared elements.\n"
        "\n"
        "###Code:\n"
        "def is_Power_Of_Two (x): \n"
        "    return x and (not(x & (x - 1))) \n"
        "def differ_At_One_Bit_Pos(a,b): \n"
        "    return is_Power_Of_Two(a ^ b)\n"
        "###Description of the given code:\n"
    ]
    assert prompts["base"] == [  # giftgen's style: the normalised references, trailing whitespace stripped
        "###Code:\n"
        "def similar_elements(test_tup1, test_tup2):\n"
        "  res = tuple(set(test_tup1) & set(test_tup2))\n"
        "  return (res)\n"
        "###Description of the given code:\n"
        "#This code is a function that returns the shared elements.\n"
        "\n"
        "###Code:\n"
        "def is_Power_Of_Two (x): \n"
        "    return x and (not(x & (x - 1))) \n"
        "def differ_At_One_Bit_Pos(a,b): \n"
        "    return is_Power_Of_Two(a ^ b)\n"
        "###Description of the given code:\n"
    ]


@pytest.mark.real
def test_codeinsight_pool_exemplars_show_code_txt_as_it_is(tmp_path, release_archive):
    """The release's CodeInsight pool (597 train problems): every exemplar's code in a release summary prompt is
    that problem's code.txt, byte for byte; 233 of them differ from the normalised `reference`."""
    from giftgen.seeds import load_seeds

    pool = release_pool(release_archive, tmp_path, "CodeInsight/data/ict_data.json")
    with tarfile.open(release_archive) as tar:
        members = [m for m in tar.getmembers() if m.name.startswith("CodeInsight/data/CodeInsight/train/")]
        tar.extractall(tmp_path, members=members, filter="data")
    folder = tmp_path / "CodeInsight" / "data" / "CodeInsight"
    seeds = {r["problem_id"]: r for r in load_seeds("codeinsight", str(folder), "train", raw_columns=True)}
    exemplars = load_exemplars(pool, list(seeds.values()), "release")
    assert len(exemplars) == 597
    target = "def test(x):\n    return x\n"
    for pid, code, description in exemplars:
        raw_code = (folder / "train" / pid.rsplit("/", 1)[1] / "code.txt").read_text()
        assert code == raw_code, pid
        assert summary_prompt(target, (code, description), style="release") == release_summary_prompt(
            raw_code, description, target)
    assert sum(code != seeds[pid]["reference"] for pid, code, _ in exemplars) == 233


def test_raw_columns_only_when_asked(data_dir, seeds, raw_seeds, raw):
    """giftgen's own seed rows keep exactly the seed schema; the release profile's add the raw columns after it."""
    from giftgen.seeds.common import RAW_COLUMNS, SEED_COLUMNS

    assert all(tuple(r) == SEED_COLUMNS for r in seeds)
    assert all(tuple(r) == SEED_COLUMNS + RAW_COLUMNS for r in raw_seeds)
    assert [{k: r[k] for k in SEED_COLUMNS} for r in raw_seeds] == seeds
    assert all(r["raw_reference"] == raw[r["problem_id"]]["code"] and r["raw_first_test"] is None
               for r in raw_seeds)


def test_cli_seeds_raw_columns(tmp_path, data_dir):
    from click.testing import CliRunner

    from giftgen.cli import main

    path = str(data_dir / "mbpp-sanitized.json")
    plain = CliRunner().invoke(main, ["seeds", "mbpp", "--path", path, "--limit", "2"])
    raw = CliRunner().invoke(main, ["seeds", "mbpp", "--path", path, "--limit", "2", "--raw-columns"])
    assert plain.exit_code == 0 and raw.exit_code == 0, (plain.output, raw.output)
    plain_rows = [json.loads(line) for line in plain.stdout.splitlines()]
    raw_rows = [json.loads(line) for line in raw.stdout.splitlines()]
    assert [r["problem_id"] for r in raw_rows] == ["mbpp/2", "mbpp/3"]
    assert "raw_reference" not in plain_rows[0]
    assert raw_rows[0]["raw_reference"].endswith("return (res) ")


def test_malformed_pool_gets_one_clear_line(tmp_path, seeds):
    bad = tmp_path / "ict.json"
    bad.write_text(json.dumps(["The code is a solution ...", "Another ..."]))
    with pytest.raises(InputError, match="entry 1 is a bare string"):
        load_exemplars(bad, seeds)
    out = tmp_path / "far.json"
    out.write_text(json.dumps([[999, "x"]]))
    with pytest.raises(InputError, match="seed set has 170 problems"):
        load_exemplars(out, seeds)


def test_release_introductory_pool_is_refused(pool_of, seeds):
    # the release's introductory APPS pool holds bare descriptions (giftgen's own pool is malformed the same way)
    path = pool_of("APPS/data/ict_data_introductory.json")
    with pytest.raises(InputError) as e:
        load_exemplars(path, seeds)
    assert "\n" not in str(e.value) and "bare string" in str(e.value)


def test_eval_rows_record_their_prompt(rows):
    from giftgen.evaluate import EvalConfig, evaluate_rows

    backend = FakeBackend([{"match": '"""', "reply": "    return None\n"}])
    config = resolve(EvalConfig, None, {"model": "fake", "backend": "fake", "prompt_style": "release"})
    some = [dict(rows["mbpp/2"], extra_column=1), rows["mbpp/6"]]
    out = list(evaluate_rows(some, config, backend=backend, executor=_PlanningExecutor()))
    assert [r["prompt"] for r in out] == [code_prompt(r, style="release") for r in some]
    assert out[0]["extra_column"] == 1


class _PlanningExecutor(FailingExecutor):
    def plan(self, row: dict) -> None:
        return None


# --------------------------------------------------------------------------------------------------- MBPP+ eval


@pytest.fixture(scope="module")
def plus(data_dir) -> dict[str, list[dict]]:
    from giftgen.seeds import load_seeds

    path = str(data_dir / "mbppplus-v0.1.0.jsonl")
    return {"raw": list(load_seeds("mbppplus", path, None, raw_columns=True)),
            "plain": list(load_seeds("mbppplus", path, None))}


def test_literal_release_eval_prompts_of_mbppplus(plus):
    """The release splits the written first assert at `==`: an isclose call, `assert not`, a parenthesised
    expected value stay as written (the doctest giftgen renders for its own style would change all three)."""
    rows = {r["problem_id"]: r for r in plus["raw"]}
    assert code_prompt(rows["mbppplus/82"], style="release") == (
        "import math\ndef volume_sphere(r):\n"
        '    """ Write a function to find the volume of a sphere.\n'
        "    >>> math.isclose(volume_sphere(10), 4188.790204786391, rel_tol=0.001)\n"
        "    True\n"
        '    """\n'
    )
    assert code_prompt(rows["mbppplus/787"], style="release") == (
        "import re\ndef text_match_three(text):\n"
        "    \"\"\" Write a function that matches a string that has an a followed by three 'b'.\n"
        '    >>> not text_match_three("ac")\n'
        "    True\n"
        '    """\n'
    )
    assert code_prompt(rows["mbppplus/16"], style="release") == (
        "import re\ndef text_lowercase_underscore(text):\n"
        '    """ Write a function to that returns true if the input string contains sequences of lowercase letters'
        " joined with an underscore and false otherwise.\n"
        '    >>> text_lowercase_underscore("aab_cbbbc")\n'
        "    (True)\n"
        '    """\n'
    )


def test_release_eval_prompts_of_mbppplus_against_the_sanitized_asserts(plus, data_dir):
    """Every MBPP+ v0.1.0 task is in sanitized MBPP, whose first assert is the one its prompt shows: the release's
    doctest of the raw assert is the sanitized one's for all 399; rebuilt from giftgen's doctest (rows without
    the raw columns) it differs for 27. docs/commands.md gives these numbers."""
    from giftgen.prompts import release_doctest

    sanitized = {x["task_id"]: x for x in json.loads((data_dir / "mbpp-sanitized.json").read_text())}
    assert len(plus["raw"]) == 399
    differ = 0
    for raw_row, plain_row in zip(plus["raw"], plus["plain"], strict=True):
        first = sanitized[int(raw_row["problem_id"].split("/")[1])]["test_list"][0]
        expected = f"\n{release_doctest(first)}\n"
        assert expected in code_prompt(raw_row, style="release"), raw_row["problem_id"]
        differ += expected not in code_prompt(plain_row, style="release")
        assert code_prompt(raw_row) == code_prompt(plain_row)  # giftgen's own style ignores the raw column
    assert differ == 27


# --------------------------------------------------------------------------------------------------- APPS+


def release_apps_prompt(code: str, query: str) -> str:
    """APPS/_utils.py ``extract_code_head``, as docs/method.md gives it."""
    return _release_head(code) + f'\n    """ {query}"""\n'


RELEASE_APPS = [
    {
        "id": 0,
        "query": "\nGiven n, print n squared.\n\n-----Input-----\nOne integer n.\n",
        "code": "import sys\ndef code():\n\tn = int(input())\n\tprint(n * n)\n",
        "test": {"fn_name": "code", "inputs": ["3\n", "4\n"], "outputs": ["9\n", "16\n"]},
        "std_based": True,
    },
    {
        "id": 1,
        "query": " Return the sum of a list.",
        "code": "class Solution:\n    def total(self, xs):\n        return sum(xs)\n",
        "test": {"fn_name": "total", "inputs": [[[1, 2]], [[5]]], "outputs": [[3], [5]]},
        "std_based": False,
    },
]


def test_apps_reader_takes_the_release_layout(tmp_path):
    from giftgen.seeds import load_seeds
    from giftgen.seeds.common import parse_tests

    path = tmp_path / "apps+valid-introductory.json"
    path.write_text(json.dumps(RELEASE_APPS))
    stdin, call = load_seeds("apps", str(path), None)
    assert stdin["problem_id"] == "apps/valid/0" and call["problem_id"] == "apps/valid/1"
    assert stdin["description"] == RELEASE_APPS[0]["query"]  # as the release reads it: whitespace kept
    assert stdin["entry_point"] is None and parse_tests(stdin["tests"])["kind"] == "stdio"
    assert stdin["reference"].endswith("\n\n\ncode()\n")  # the wrapped program calls its function
    assert call["entry_point"] == "total" and parse_tests(call["tests"])["outputs"] == [3, 5]
    for row, item in zip((stdin, call), RELEASE_APPS, strict=True):
        assert code_prompt(row, style="release") == release_apps_prompt(item["code"], item["query"])
    # giftgen's own (whole-program) prompt for the stdin problem stays the default
    assert code_prompt(stdin).startswith('"""\nGiven n, print n squared.')


def test_apps_raw_reference_is_the_release_s_code(tmp_path):
    """The release's APPS+ exemplar code is its `code` field: a stdin program is the bare function (giftgen's
    reference calls it at the end), tabs and all."""
    from giftgen.chain import exemplar_pool
    from giftgen.seeds import load_seeds

    path = tmp_path / "apps+valid-introductory.json"
    path.write_text(json.dumps(RELEASE_APPS))
    stdin, call = load_seeds("apps", str(path), None, raw_columns=True)
    assert [stdin["raw_reference"], call["raw_reference"]] == [item["code"] for item in RELEASE_APPS]
    assert stdin["reference"].endswith("\n\n\ncode()\n")
    (_, code, description), _ = exemplar_pool([stdin, call], "release")
    assert summary_prompt(call["reference"], (code, description), style="release").startswith(
        "###Code:\nimport sys\ndef code():\n    n = int(input())\n    print(n * n)\n\n"
        "###Description of the given code:\n\nGiven n, print n squared.\n"
    )


def test_wrapped_stdin_reference_passes_in_the_sandbox(tmp_path):
    from giftgen.sandbox import Executor, Limits
    from giftgen.sandbox.plan import make_plan
    from giftgen.seeds import load_seeds

    path = tmp_path / "apps+valid-introductory.json"
    path.write_text(json.dumps(RELEASE_APPS))
    stdin, call = load_seeds("apps", str(path), None)
    program = extract_code(stdin, "    n = int(input())\n    print(n * n)\n", style="release")
    wrong = extract_code(stdin, "    n = int(input())\n    print(n + n)\n", style="release")
    with Executor(workers=1, limits=Limits()) as ex:
        verdicts = [
            ex.submit(code, make_plan(row)).result()
            for code, row in (
                (stdin["reference"], stdin),
                (program, stdin),
                (wrong, stdin),
                (call["reference"], call),
            )
        ]
    assert [v.passed for v in verdicts] == [True, True, False, True]


def test_cli_refuses_a_malformed_pool_in_one_line(tmp_path, seeds):
    from click.testing import CliRunner

    from giftgen.cli import main

    seed_file = tmp_path / "seeds.jsonl"
    seed_file.write_text("".join(json.dumps(r) + "\n" for r in seeds))

    bad = tmp_path / "ict_data_introductory.json"
    bad.write_text(json.dumps(["\nThe code is a solution to a problem ..."]))
    script = tmp_path / "fake.json"
    script.write_text(json.dumps([{"match": '"""', "reply": "    return None\n"}]))
    result = CliRunner().invoke(
        main,
        [
            "chain",
            str(seed_file),
            "--model",
            str(script),
            "--backend",
            "fake",
            "--exemplars",
            str(bad),
            "-o",
            str(tmp_path / "c.jsonl"),
        ],
    )
    assert result.exit_code == 2
    assert "entry 1 is a bare string" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "c.jsonl").exists()


def test_a_run_in_the_release_profile_end_to_end(tiny_model, data_dir, tmp_path):
    """The quickstart with recipes/common/release.yaml included, the tiny model, local files: every stage runs in
    the release profile, and the chain, select and eval rows hold the release's prompts."""
    from click.testing import CliRunner

    from giftgen.cli import main
    from giftgen.records import read_rows

    repo = Path(__file__).resolve().parents[1]
    recipe = tmp_path / "release-quickstart.yaml"
    recipe.write_text(
        f"include: [{repo / 'recipes' / 'quickstart.yaml'}, {repo / 'recipes/common/release.yaml'}]\n"
    )
    run_dir = tmp_path / "run"
    sets = {
        "run.train_path": data_dir / "mbpp-sanitized.json",
        "run.train_limit": 3,
        "run.base_eval": "false",
        "run.eval_path": data_dir / "mbppplus-v0.1.0.jsonl",
        "run.eval_limit": 2,
        "chain.steps": 2,
        "chain.max_new_tokens": 16,
        "chain.desc_max_new_tokens": 8,
        "chain.device": "cpu",
        "score.device": "cpu",
        "finetune.device": "cpu",
        "finetune.max_steps": 1,
        "eval.max_new_tokens": 16,
        "eval.device": "cpu",
    }
    args = ["run", str(recipe), "--model", str(tiny_model), "--run-dir", str(run_dir), "--no-isolate"]
    for key, value in sets.items():
        args += ["--set", f"{key}={value}"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    seeds = {r["problem_id"]: r for r in read_rows(run_dir / "seeds" / "train.jsonl")}
    # the release profile's seed sets carry the raw bytes its prompts read
    assert all(s["raw_reference"].rstrip() == s["reference"].rstrip() for s in seeds.values())
    assert all(r["raw_first_test"].startswith("assert ") for r in read_rows(run_dir / "seeds" / "eval.jsonl"))
    chain = list(read_rows(run_dir / "round-1" / "chain.jsonl"))
    assert len(chain) == 3 * 2 * 2
    for row in chain:
        assert row["prompt"] == code_prompt(seeds[row["problem_id"]], row["gen_description"], style="release")
        assert '\n    """ ' in row["prompt"] and row["prompt"].endswith('    """\n')
    gold = [r for r in read_rows(run_dir / "round-1" / "select.jsonl") if r["origin"] == "gold"]
    assert {r["prompt"] for r in gold} == {code_prompt(s, style="release") for s in seeds.values()}
    evaluated = list(read_rows(run_dir / "round-1" / "eval.jsonl"))
    assert [r["prompt"] for r in evaluated] == [code_prompt(r, style="release") for r in evaluated]
    finetune = json.loads((run_dir / "round-1" / "finetune.json").read_text())["config"]
    assert (finetune["adam_epsilon"], finetune["min_learning_rate"], finetune["loss_average"]) == (
        1e-6,
        5e-6,
        "example",
    )


# --------------------------------------------------------------------------------------------------- stdin judging


def test_release_stdio_comparison_fallbacks():
    from giftgen.sandbox.judge import release_stdio_match, stdio_match

    cases = [  # (output, expected, giftgen's tokens, the release)
        ("1 2\n3\n", "1 2\n3", True, True),
        ("3\n1 2\n", "1 2\n3\n", False, True),  # lines in another order: the release's last fallback
        ("2 1\n", "1 2\n", False, True),  # tokens in another order
        ("1\n\n2\n", "1\n2\n", False, True),  # a blank line in the middle
        ("0.3333333\n", "0.33333334\n", True, True),
        ("0.3334\n", "0.3333\n", False, True),  # numbers rounded to 3 decimals: the release's last resort
        ("0.3344\n", "0.3333\n", False, False),
        ("1\n", "1\n2\n", False, False),  # a missing line always fails
        ("YES\n", "NO\n", False, False),
        ("", "1\n", False, False),
    ]
    for output, expected, tokens, release in cases:
        assert stdio_match(output, expected)[0] is tokens, (output, expected)
        assert release_stdio_match(output, expected)[0] is release, (output, expected)


def test_stdio_compare_setting_reaches_the_sandbox(tmp_path):
    from giftgen.errors import InputError
    from giftgen.sandbox import Executor, Limits
    from giftgen.sandbox.plan import make_plan
    from giftgen.seeds import load_seeds

    path = tmp_path / "apps+valid-introductory.json"
    path.write_text(json.dumps(RELEASE_APPS))
    plain = list(load_seeds("apps", str(path), None))
    release = list(load_seeds("apps", str(path), None, stdio_compare="release"))
    assert json.loads(release[0]["tests"])["compare"] == "release" and "compare" not in json.loads(
        plain[0]["tests"]
    )
    assert release[1] == plain[1]  # call-based tests are left alone
    reversed_lines = "def code():\n    n = int(input())\n    print(n * n)\n    print('done')\n\n\ncode()\n"
    out_of_order = "def code():\n    n = int(input())\n    print('done')\n    print(n * n)\n\n\ncode()\n"
    for row in (plain[0], release[0]):
        tests = json.loads(row["tests"])
        row["tests"] = json.dumps({**tests, "outputs": [o + "done\n" for o in tests["outputs"]]})
    with Executor(workers=1, limits=Limits()) as ex:
        verdicts = [
            ex.submit(code, make_plan(row)).result()
            for row in (plain[0], release[0])
            for code in (reversed_lines, out_of_order)
        ]
    assert [v.passed for v in verdicts] == [True, False, True, True]
    bad = {**plain[0], "tests": json.dumps({**json.loads(plain[0]["tests"]), "compare": "loose"})}
    with pytest.raises(InputError, match="compare"):
        make_plan(bad)
