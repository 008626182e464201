"""The toy domain: determinism, no collapsed problems, disjoint splits, equivalent code styles, the corpus, the CLI.

The references and codes run in-process here: they are giftgen's own generated code, not a model's.
"""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path

import pytest
from click.testing import CliRunner

from giftgen.cli import main
from giftgen.errors import InputError
from giftgen.prompts import DESCRIPTION_HEADER, code_prompt, extract_code, summary_prompt, training_pair
from giftgen.seeds import load_seeds, toy
from giftgen.seeds.common import SEED_COLUMNS, parse_tests
from giftgen.seeds.generic import check_row

SMALL = {"n_seed": 20, "n_test3": 30, "n_test2": 25, "corpus_size": 400, "pretrain_three_op": 12}
OPS_BY_TAG = {op.tag: op for op in toy.OPS}


def outputs_of(code: str) -> tuple[int, ...]:
    namespace: dict = {}
    exec(compile(code, "<toy>", "exec"), namespace)
    return tuple(namespace["f"](x) for x in toy.TEST_INPUTS)


def intent_of(problem_id: str) -> tuple[toy.Op, ...]:
    """Read the operations back from a problem id: ``toy/add3.mul2`` -> (add 3, mul 2)."""
    return tuple(OPS_BY_TAG[tag] for tag in problem_id.removeprefix("toy/").split("."))


def composed(ops: tuple[toy.Op, ...], x: int) -> int:
    for op in ops:
        x = op.apply(x)
    return x


@pytest.fixture(scope="module")
def rows() -> dict[str, list[dict]]:
    return {split: list(load_seeds("toy", None, split)) for split in toy.SEED_SPLITS}


@pytest.fixture(scope="module")
def domain_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("toy") / "toy.yaml"
    path.write_text("".join(f"{k}: {v}\n" for k, v in SMALL.items()))
    return path


# --------------------------------------------------------------------------------------------------- operations


def test_operations_are_the_python_ones():
    x = -7
    assert [toy.Op(k, c).apply(x) for k, c in [("add", 3), ("sub", 3), ("mul", 3), ("square", None),
                                                 ("neg", None), ("abs", None), ("div", 2), ("mod", 3),
                                                 ("max", -2), ("min", -9)]] == [-4, -10, -21, 49, 7, 7, -4, 2, -2, -9]


def test_known_collapses_are_dropped():
    splits = toy.make_splits(toy.ToyDomain())
    kept = set(splits.one_op + splits.two_op + splits.test2)
    Op = toy.Op
    assert (Op("mod", 3), Op("mod", 5)) not in kept  # = mod 3
    assert (Op("max", 5), Op("min", 3)) not in kept  # the constant 3
    assert (Op("neg", None), Op("neg", None)) not in kept  # the identity
    assert (Op("square", None), Op("abs", None)) not in kept  # = square
    assert (Op("add", 2), Op("add", 3)) not in kept  # = add 5
    assert (Op("add", 3), Op("mul", 2)) in kept


# --------------------------------------------------------------------------------------------------- rows


def test_rows_are_in_the_seed_schema(rows):
    for split, items in rows.items():
        assert len(items) == getattr(toy.ToyDomain(), f"n_{split}")
        for row in items:
            assert tuple(row)[: len(SEED_COLUMNS)] == SEED_COLUMNS
            assert row["split"] == split and row["source"] == "toy" and row["problem_id"].startswith("toy/")
            assert row["entry_point"] == "f" and row["prompt_head"] == "def f(x):\n" and row["doctest"] is None
            tests = parse_tests(row["tests"])
            assert tests["kind"] == "call" and tests["fn_name"] == "f" and len(tests["inputs"]) >= 10
            assert check_row(row, row["problem_id"])["tests"] == row["tests"]  # the generic source accepts it


def test_deterministic_for_a_seed(domain_file):
    first = list(load_seeds("toy", str(domain_file), "all"))
    assert first == list(load_seeds("toy", str(domain_file), "all"))
    assert list(load_seeds("toy", str(domain_file), "pretrain")) == list(load_seeds("toy", str(domain_file), "pretrain"))
    other = domain_file.parent / "other.yaml"
    other.write_text(domain_file.read_text() + "seed: 1\n")
    assert [r["problem_id"] for r in load_seeds("toy", str(other), "all")] != [r["problem_id"] for r in first]


def test_every_reference_passes_its_tests_and_tests_follow_the_intent(rows):
    for row in itertools.chain(*rows.values()):
        tests = parse_tests(row["tests"])
        ops = intent_of(row["problem_id"])
        expected = [composed(ops, args[0]) for args in tests["inputs"]]
        assert tests["outputs"] == expected, row["problem_id"]
        assert list(outputs_of(row["reference"])) == expected, row["problem_id"]


def test_no_problem_collapses_to_a_shorter_composition(rows):
    inputs = toy.TEST_INPUTS
    shorter = {tuple(inputs)}  # the identity
    one = {tuple(op.apply(x) for x in inputs) for op in toy.OPS}
    two = {tuple(b.apply(a.apply(x)) for x in inputs) for a, b in itertools.product(toy.OPS, repeat=2)}
    for row in itertools.chain(*rows.values()):
        outputs = tuple(parse_tests(row["tests"])["outputs"])
        length = len(intent_of(row["problem_id"]))
        assert len(set(outputs)) > 1, row["problem_id"]
        forbidden = shorter | one | (two if length == 3 else set())
        assert outputs not in forbidden, row["problem_id"]


def test_splits_are_disjoint_functions(rows):
    splits = toy.make_splits(toy.ToyDomain())
    seen = {tuple(composed(i, x) for x in toy.TEST_INPUTS) for i in splits.pretrain}
    by_split = {s: {tuple(parse_tests(r["tests"])["outputs"]) for r in items} for s, items in rows.items()}
    assert not by_split["seed"] & seen and not by_split["test3"] & seen and not by_split["test2"] & seen
    assert not by_split["seed"] & by_split["test3"]
    assert all(len(intent_of(r["problem_id"])) == 3 for r in rows["seed"] + rows["test3"])
    assert all(len(intent_of(r["problem_id"])) == 2 for r in rows["test2"])


def test_pretraining_mix():
    domain = toy.ToyDomain()
    splits = toy.make_splits(domain)
    identity = tuple(toy.TEST_INPUTS)
    every_one_op = {(op,) for op in toy.OPS if tuple(op.apply(x) for x in toy.TEST_INPUTS) != identity}
    assert set(splits.one_op) == every_one_op
    assert 10 <= len(splits.three_op) == domain.pretrain_three_op < 100  # tens
    # every 2-op function that does not collapse, enumerated here
    shorter = {identity} | {tuple(op.apply(x) for x in toy.TEST_INPUTS) for op in toy.OPS}
    functions = {tuple(composed((a, b), x) for x in toy.TEST_INPUTS) for a, b in itertools.product(toy.OPS, repeat=2)}
    functions = {f for f in functions if f not in shorter and len(set(f)) > 1}
    pretrained = {tuple(composed(i, x) for x in toy.TEST_INPUTS) for i in splits.two_op}
    assert pretrained <= functions
    assert len(pretrained) / len(functions) == pytest.approx(1 - domain.two_op_holdout, abs=0.01)  # most


# --------------------------------------------------------------------------------------------------- variety


def test_every_code_style_computes_the_intent():
    splits = toy.make_splits(toy.ToyDomain())
    rng = random.Random(0)
    intents = list(splits.test3[:60]) + rng.sample(splits.pretrain, 100)
    for intent in intents:
        expected = tuple(composed(intent, x) for x in toy.TEST_INPUTS)
        for style in toy.CODE_STYLES:
            for _ in range(4):
                code = toy.write_code(intent, rng, style)
                assert code.startswith("def f(x):\n")
                assert outputs_of(code) == expected, (intent, code)


def test_descriptions_and_codes_vary():
    intent = (toy.Op("add", 3), toy.Op("mul", 2), toy.Op("abs"))
    rng = random.Random(0)
    descriptions = {toy.describe(intent, rng) for _ in range(200)}
    codes = {toy.write_code(intent, rng) for _ in range(200)}
    assert len(descriptions) >= 30 and len(codes) >= 15
    assert len({d.split(" ")[0] for d in descriptions}) >= 4  # several sentence shapes
    assert all("3" in d for d in descriptions)
    assert any("x ** 2" in toy.write_code((toy.Op("square"),), rng, "nested") for _ in range(50))
    assert any("x * x" in toy.write_code((toy.Op("square"),), rng, "nested") for _ in range(50))


def test_prompt_round_trip(rows):
    for row in rows["seed"][:50]:
        prompt = code_prompt(row)
        pair = training_pair(row, row["reference"])
        assert pair["prompt"] == prompt and prompt.endswith('"""\n')
        assert "def f(x):\n" + pair["completion"] == row["reference"]
        # what the model writes after the prompt, up to a stop string, gives the reference back
        assert extract_code(row, pair["completion"] + "\nprint(f(3))\n") == row["reference"]


# --------------------------------------------------------------------------------------------------- corpus


def test_corpus_rows_use_the_stage_prompts(domain_file):
    domain = toy.load_domain(str(domain_file))
    corpus = list(toy.corpus(domain))
    assert len(corpus) == SMALL["corpus_size"]
    directions = {r["direction"] for r in corpus}
    assert directions == {"code", "description"}
    tests_functions = {tuple(composed(i, x) for x in toy.TEST_INPUTS)
                       for s in ("seed", "test3", "test2") for i in getattr(toy.make_splits(domain), s)}
    for row in corpus:
        intent = intent_of(row["problem_id"])
        expected = tuple(composed(intent, x) for x in toy.TEST_INPUTS)
        assert expected not in tests_functions
        if row["direction"] == "code":
            description = row["prompt"].split('"""')[1].strip()
            problem = toy.problem_row(intent, "pretrain", description, "def f(x):\n" + row["completion"])
            assert row["prompt"] == code_prompt(problem)
            assert outputs_of(row["prompt"] + row["completion"]) == expected
        else:
            blocks = row["prompt"].split("###Code:\n")
            assert len(blocks) == 3 and row["prompt"].endswith(DESCRIPTION_HEADER)
            example_code, example_description = blocks[1].split(DESCRIPTION_HEADER)
            target = blocks[2].removesuffix(DESCRIPTION_HEADER)
            assert row["prompt"] == summary_prompt(target, (example_code, example_description.strip()))
            assert outputs_of(target) == expected
            assert outputs_of(example_code) != expected  # the exemplar is another problem
            assert row["completion"] and "\n" not in row["completion"]


def test_corpus_mix_follows_the_shares(domain_file):
    domain = toy.load_domain(str(domain_file))
    corpus = list(toy.corpus(domain))
    lengths = [len(intent_of(r["problem_id"])) for r in corpus]
    share = {k: lengths.count(k) / len(lengths) for k in (1, 2, 3)}
    assert abs(share[1] - domain.one_op_share) < 0.05 and abs(share[3] - domain.three_op_share) < 0.05
    code = sum(r["direction"] == "code" for r in corpus) / len(corpus)
    assert abs(code - domain.code_share) < 0.07


# --------------------------------------------------------------------------------------------------- settings and CLI


def test_domain_file_is_strict(tmp_path):
    path = tmp_path / "toy.json"
    path.write_text(json.dumps({"n_seed": 5, "code_share": 1}))
    assert toy.load_domain(str(path)) == toy.ToyDomain(n_seed=5, code_share=1.0)
    path.write_text(json.dumps({"n_seeds": 5}))
    with pytest.raises(InputError, match="unknown toy-domain setting 'n_seeds'"):
        toy.load_domain(str(path))
    path.write_text(json.dumps({"n_seed": "five"}))
    with pytest.raises(InputError, match="n_seed must be int"):
        toy.load_domain(str(path))
    path.write_text(json.dumps({"code_share": 2}))
    with pytest.raises(InputError, match="between 0 and 1"):
        toy.load_domain(str(path))


def test_cli_seeds_toy(domain_file):
    runner = CliRunner()
    result = runner.invoke(main, ["seeds", "toy", "--split", "test3", "--limit", "3"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 3 and all(r["split"] == "test3" for r in lines)

    result = runner.invoke(main, ["seeds", "toy", "--path", str(domain_file), "--split", "all"])
    assert result.exit_code == 0, result.output
    splits = [json.loads(line)["split"] for line in result.stdout.splitlines()]
    assert splits == ["seed"] * 20 + ["test3"] * 30 + ["test2"] * 25

    result = runner.invoke(main, ["seeds", "toy", "--path", str(domain_file), "--split", "pretrain"])
    assert result.exit_code == 0, result.output
    corpus = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(corpus) == 400 and set(corpus[0]) >= {"prompt", "completion", "direction", "problem_id"}

    result = runner.invoke(main, ["seeds", "toy", "--split", "train"])
    assert result.exit_code == 2 and "toy has no split 'train'" in result.output
    result = runner.invoke(main, ["seeds", "toy", "--split", "seed+pretrain"])
    assert result.exit_code == 2 and "pretrain split" in result.output
