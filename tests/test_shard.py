"""Scale-out: `--shard I/N` partitions rows by problem (disjoint, complete, deterministic) and `giftgen merge`
joins shard outputs back, with missing, repeated and foreign shards refused.

The stage tests run the real `chain` (fake backend, real sandbox), `verify` and `score` (tiny model) on shards
and check that the merged shards equal the unsharded output row for row.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from click.testing import CliRunner

from giftgen.cli import main
from giftgen.errors import InputError
from giftgen.merge import merge_shards
from giftgen.records import RowWriter, parse_shard, read_rows, shard_filter, shard_of


@pytest.fixture(scope="module")
def seeds(data_dir) -> list[dict]:
    from giftgen.seeds import load_seeds

    return list(load_seeds("mbpp", str(data_dir / "mbpp-sanitized.json"), None))


def chain_like(seeds: list[dict], steps: int = 3, n: int = 2) -> list[dict]:
    """Rows in the chain's layout: step-major, problems in seed order, n samples each."""
    return [{"problem_id": s["problem_id"], "step": t, "sample": j, "code": f"# {s['problem_id']} {t} {j}"}
            for t in range(1, steps + 1) for s in seeds for j in range(n)]


def write(path: Path, rows: list[dict]) -> str:
    with RowWriter(path) as writer:
        writer.write_many(rows)
    return str(path)


def shard_files(tmp_path: Path, rows: list[dict], n: int, name: str = "part") -> list[str]:
    return [write(tmp_path / f"{name}-{i}.jsonl", list(shard_filter(rows, f"{i}/{n}"))) for i in range(n)]


# --------------------------------------------------------------------------------------------------- partition


@pytest.mark.parametrize("spec", ["1", "2/2", "-1/3", "a/b", "0/0", "1/0", "", "0/2/3"])
def test_parse_shard_refuses_bad_specs(spec):
    with pytest.raises(InputError, match="I/N"):
        parse_shard(spec)


def test_parse_shard():
    assert parse_shard("0/1") == (0, 1)
    assert parse_shard("3/8") == (3, 8)


@pytest.mark.parametrize("n", [1, 2, 3, 7])
def test_shards_partition_the_rows_by_problem(seeds, n):
    rows = chain_like(seeds)
    parts = [list(shard_filter(rows, f"{i}/{n}")) for i in range(n)]
    # complete and disjoint: every row lands in exactly one shard
    assert sorted(json.dumps(r, sort_keys=True) for p in parts for r in p) == \
        sorted(json.dumps(r, sort_keys=True) for r in rows)
    owners: dict[str, set[int]] = {}
    for i, part in enumerate(parts):
        for row in part:
            owners.setdefault(row["problem_id"], set()).add(i)
    assert all(len(s) == 1 for s in owners.values())  # all rows of a problem in one shard
    assert len(owners) == len(seeds)
    if n > 1:  # a hash, so every shard of 170 problems gets some
        assert all(parts)


def test_shard_membership_does_not_depend_on_order_or_company(seeds):
    rows = chain_like(seeds, steps=1, n=1)
    shuffled = rows[:]
    random.Random(1).shuffle(shuffled)
    first = {r["problem_id"] for r in shard_filter(rows, "1/4")}
    assert first == {r["problem_id"] for r in shard_filter(shuffled, "1/4")}
    # a problem's shard is a function of its id alone
    assert first == {s["problem_id"] for s in seeds if shard_of(s["problem_id"], 4) == 1}
    assert {r["problem_id"] for r in shard_filter(rows[:10], "1/4")} == first & {r["problem_id"] for r in rows[:10]}


def test_shard_filter_needs_problem_id():
    with pytest.raises(InputError, match="problem_id"):
        list(shard_filter([{"code": "x"}], "0/2"))


# --------------------------------------------------------------------------------------------------- merge


def test_merge_with_order_restores_the_unsharded_rows(seeds, tmp_path):
    rows = chain_like(seeds)
    files = shard_files(tmp_path, rows, 3)
    for perm in (files, files[::-1], [files[1], files[2], files[0]]):
        assert list(merge_shards(perm, order=seeds)) == rows


def test_merge_without_order_is_step_major_in_shard_order(seeds, tmp_path):
    rows = chain_like(seeds)
    files = shard_files(tmp_path, rows, 3)
    merged = list(merge_shards(files))
    assert list(merge_shards(files[::-1])) == merged  # the argument order does not matter
    expected = [r for t in (1, 2, 3) for i in range(3) for r in rows if r["step"] == t
                and shard_of(r["problem_id"], 3) == i]
    assert merged == expected


def test_merge_rows_without_step_keep_problem_order(seeds, tmp_path):
    rows = [{"problem_id": s["problem_id"], "x": k} for k, s in enumerate(seeds)]
    files = shard_files(tmp_path, rows, 4)
    assert list(merge_shards(files, order=seeds)) == rows


def test_merge_refuses_a_missing_shard(seeds, tmp_path):
    files = shard_files(tmp_path, chain_like(seeds), 3)
    with pytest.raises(InputError, match="2 inputs for 3 shards"):
        list(merge_shards(files[:2], shards=3))
    # without --shards, two of three shards do not form a partition in two
    with pytest.raises(InputError, match="shards"):
        list(merge_shards(files[:2]))


def test_merge_refuses_a_repeated_shard(seeds, tmp_path):
    files = shard_files(tmp_path, chain_like(seeds), 3)
    with pytest.raises(InputError, match="given twice|both shard"):
        list(merge_shards([files[0], files[0], files[1]]))
    copy = write(tmp_path / "copy.jsonl", list(read_rows(files[1])))
    with pytest.raises(InputError, match=r"is in .*part-1\.jsonl and in .*copy\.jsonl"):
        list(merge_shards([files[0], files[1], copy]))


def test_merge_refuses_duplicate_rows_across_shards(seeds, tmp_path):
    files = shard_files(tmp_path, chain_like(seeds), 2)
    # the unsharded output given as a shard: its problems overlap the others'
    whole = write(tmp_path / "whole.jsonl", chain_like(seeds))
    with pytest.raises(InputError):
        list(merge_shards([files[0], whole]))


def test_merge_refuses_shards_of_another_partition(seeds, tmp_path):
    rows = chain_like(seeds)
    files = shard_files(tmp_path, rows, 4)
    with pytest.raises(InputError, match="holds problems of shards"):
        list(merge_shards(files[:3]))  # three of four are not the three shards of three


def test_merge_accepts_an_empty_shard(seeds, tmp_path):
    few = [s for s in seeds if shard_of(s["problem_id"], 3) != 2][:5]
    rows = chain_like(few)
    files = shard_files(tmp_path, rows, 3)
    assert Path(files[2]).read_text() == ""
    assert list(merge_shards([files[2], files[0], files[1]], order=few)) == rows


def test_merge_refuses_rows_out_of_step_order(seeds, tmp_path):
    rows = chain_like(seeds[:4])
    files = shard_files(tmp_path, rows[::-1], 2)
    with pytest.raises(InputError, match="step/problem order"):
        list(merge_shards(files))


def test_merge_problem_missing_from_order(seeds, tmp_path):
    files = shard_files(tmp_path, chain_like(seeds[:6]), 2)
    with pytest.raises(InputError, match="not in the --order file"):
        list(merge_shards(files, order=seeds[:3]))


def test_merge_command(seeds, tmp_path):
    rows = chain_like(seeds)
    files = shard_files(tmp_path, rows, 3)
    order = write(tmp_path / "seeds.jsonl", seeds)
    out = tmp_path / "merged.jsonl"
    result = CliRunner().invoke(main, ["merge", *files[::-1], "--order", order, "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert list(read_rows(out)) == rows
    result = CliRunner().invoke(main, ["merge", files[0], files[1], "-o", str(tmp_path / "bad.jsonl")])
    assert result.exit_code == 2
    assert "Error:" in result.output and "shards" in result.output
    result = CliRunner().invoke(main, ["merge", "-", files[0]])
    assert result.exit_code == 2 and "stdin" in result.output


# --------------------------------------------------------------------------------------------------- real stages

SHARD_IDS = ["mbpp/2", "mbpp/3", "mbpp/4", "mbpp/6", "mbpp/7", "mbpp/8", "mbpp/9", "mbpp/11"]


@pytest.fixture(scope="module")
def stage_seeds(seeds, data_dir, tmp_path_factory) -> Path:
    from giftgen.seeds import load_seeds

    rows = {r["problem_id"]: r for r in load_seeds("mbpp", str(data_dir / "mbpp-sanitized.json"), "all")}
    path = tmp_path_factory.mktemp("shard-seeds") / "seeds.jsonl"
    write(path, [rows[i] for i in SHARD_IDS])
    return path


def fake_teacher(seeds_path: Path, path: Path) -> Path:
    """A script answering every code prompt with the problem's reference body (even problems) or a wrong one:
    one reply per rule, so a prompt's reply does not depend on which other prompts share a call."""
    from giftgen.prompts import code_prompt

    rules = [{"match": "###Description of the given code:", "reply": "Solve the task."}]
    for k, row in enumerate(read_rows(seeds_path)):
        opening = code_prompt(row).split('"""')[0] + '"""'
        body = row["reference"][len(row["prompt_head"]):] if k % 2 == 0 else "    return None\n"
        rules.append({"match": opening, "reply": body})
    path.write_text("".join(json.dumps(r) + "\n" for r in rules))
    return path


def run_cli(*args: str) -> None:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output


def test_chain_verify_and_score_shards_merge_to_the_unsharded_output(stage_seeds, tiny_model, tmp_path):
    script = fake_teacher(stage_seeds, tmp_path / "teacher.jsonl")
    chain = ["chain", str(stage_seeds), "--backend", "fake", "--model", str(script), "-R", "3", "-n", "2",
             "--workers", "2"]
    run_cli(*chain, "-o", str(tmp_path / "chain.jsonl"))
    parts = []
    for i in range(3):
        parts.append(str(tmp_path / f"chain-{i}.jsonl"))
        run_cli(*chain, "--shard", f"{i}/3", "-o", parts[-1])
    whole = list(read_rows(tmp_path / "chain.jsonl"))
    assert {r["chain_passed"] for r in whole} == {True, False}
    shards = [list(read_rows(p)) for p in parts]
    assert all(shards) and sum(len(s) for s in shards) == len(whole)
    assert not set.intersection(*({r["problem_id"] for r in s} for s in shards))
    # each shard file records which shard of how many it is, so one of them alone is not taken for the whole
    assert [{r["shard"] for r in s} for s in shards] == [{"0/3"}, {"1/3"}, {"2/3"}]
    refused = CliRunner().invoke(main, ["merge", parts[0], parts[2], "-o", str(tmp_path / "two.jsonl")])
    assert refused.exit_code == 2 and "got 2 inputs for 3 shards" in refused.output
    assert not (tmp_path / "two.jsonl").exists()
    run_cli("merge", *parts, "--order", str(stage_seeds), "-o", str(tmp_path / "merged.jsonl"))
    assert list(read_rows(tmp_path / "merged.jsonl")) == whole  # exemplars and choices as unsharded

    # verify on shards
    verify = ["verify", str(tmp_path / "chain.jsonl"), "--workers", "2"]
    run_cli(*verify, "-o", str(tmp_path / "verified.jsonl"))
    parts = []
    for i in range(2):
        parts.append(str(tmp_path / f"verify-{i}.jsonl"))
        run_cli(*verify, "--shard", f"{i}/2", "-o", parts[-1])
    run_cli("merge", *parts, "--order", str(stage_seeds), "-o", str(tmp_path / "verify-merged.jsonl"))

    def timeless(rows):  # the time a program took is the one thing that differs between two runs
        return [{k: v for k, v in r.items() if k != "duration"} for r in rows]

    verified = list(read_rows(tmp_path / "verified.jsonl"))
    assert {r["passed"] for r in verified} == {True, False}
    assert timeless(read_rows(tmp_path / "verify-merged.jsonl")) == timeless(verified)

    # score on shards
    score = ["score", str(tmp_path / "verified.jsonl"), "--model", str(tiny_model), "--device", "cpu"]
    run_cli(*score, "-o", str(tmp_path / "score.jsonl"))
    parts = []
    for i in range(2):
        parts.append(str(tmp_path / f"score-{i}.jsonl"))
        run_cli(*score, "--shard", f"{i}/2", "-o", parts[-1])
    run_cli("merge", *parts[::-1], "--order", str(stage_seeds), "-o", str(tmp_path / "score-merged.jsonl"))
    expected = list(read_rows(tmp_path / "score.jsonl"))
    merged = list(read_rows(tmp_path / "score-merged.jsonl"))
    assert [r["ppl"] is None for r in merged] == [r["ppl"] is None for r in expected]
    assert any(r["ppl"] is not None for r in merged)
    for got, want in zip(merged, expected, strict=True):
        # batches differ between shards, so float sums may differ in the last bits
        assert {k: v for k, v in got.items() if k not in ("nll", "ppl")} == \
            {k: v for k, v in want.items() if k not in ("nll", "ppl")}
        if want["ppl"] is not None:
            assert got["ppl"] == pytest.approx(want["ppl"], rel=1e-5)


def test_shard_option_refuses_a_bad_spec(stage_seeds, tiny_model):
    result = CliRunner().invoke(main, ["score", str(stage_seeds), "--model", str(tiny_model), "--shard", "2/2"])
    assert result.exit_code == 2 and "I/N" in result.output


def test_merge_reads_the_shard_count_the_rows_record(seeds, tmp_path):
    rows = chain_like(seeds)
    files = shard_files(tmp_path, rows, 2)
    marked = []
    for i, path in enumerate(files):  # as `--shard I/2` writes them
        marked.append(write(tmp_path / f"marked-{i}.jsonl", [{**r, "shard": f"{i}/2"} for r in read_rows(path)]))
    result = CliRunner().invoke(main, ["merge", marked[1]])
    assert result.exit_code == 2 and "got 1 inputs for 2 shards" in result.output
    out = tmp_path / "merged.jsonl"
    result = CliRunner().invoke(main, ["merge", *marked, "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(map(json.dumps, read_rows(out))) == sorted(map(json.dumps, rows))  # the column is dropped
    lying = write(tmp_path / "lying.jsonl", [{**r, "shard": "0/2"} for r in read_rows(files[1])])
    result = CliRunner().invoke(main, ["merge", marked[0], lying])
    assert result.exit_code == 2 and "says shard 0/2" in result.output
