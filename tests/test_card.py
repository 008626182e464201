"""Dataset cards rendered from real stage output (tests/run_output.py), without a Hub.

``stage_card`` is driven exactly as ``RowWriter`` drives it on a push: with the rows' JSONL file, then with a
``fetch`` that returns what the repo already holds (here a dict standing for the repo's files), so every push of a
run can be replayed offline and the card, ``giftgen.json``, the recipe and the histogram checked.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections import Counter
from pathlib import Path

import pytest
import yaml

from giftgen.card import (
    BENCHMARKS,
    STATS_FILE,
    CardInfo,
    make_entry,
    merge_entry,
    merge_metadata,
    recorded_command,
    render_card,
    selection_rule,
)
from giftgen.plots import histogram_png
from giftgen.publish import stage_card
from giftgen.stats import chain_stats, stage_stats
from tests.run_output import IDS, STEPS, N, build_run, read

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, data_dir, tiny_model) -> Path:
    return build_run(tmp_path_factory.mktemp("run"), data_dir, tiny_model)


def push_all(run_dir: Path, repo: dict[str, bytes], info: CardInfo | None = None) -> dict[str, bytes]:
    """Replay the pushes of round 1 (chain, verify, score, select) onto ``repo`` (path -> bytes)."""
    for stage in ("chain", "verify", "score", "select"):
        path = run_dir / "round-1" / f"{stage}.jsonl"
        marker = json.loads((run_dir / "round-1" / f"{stage}.json").read_text())
        stage_info = info or CardInfo(command="giftgen run recipe.yaml", settings=marker["config"] or None,
                                      recipe=yaml.safe_load((run_dir / "recipe.yaml").read_text()))
        render = stage_card("me/run", stage, "round_1", stage_info)(len(read(path)), path)
        readme, files = render(repo.get)
        repo = {**repo, **files, "README.md": readme.encode()}
    return repo


def png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(PNG)
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13
    assert zlib.crc32(data[12:29]) == struct.unpack(">I", data[29:33])[0]  # the header chunk is intact
    return struct.unpack(">II", data[16:24])


def test_chain_statistics_follow_the_rows(run_dir):
    rows = read(run_dir / "round-1" / "chain.jsonl")
    stats = chain_stats(rows)
    # from the rows themselves
    assert stats["rows"] == len(rows) == len(IDS) * STEPS * N
    assert stats["passed"] == sum(r["chain_passed"] for r in rows)
    assert stats["verdicts"] == dict(Counter(r["chain_status"] for r in rows).most_common())
    for s in stats["per_step"]:
        step = [r for r in rows if r["step"] == s["step"]]
        assert (s["samples"], s["passed"]) == (len(step), sum(r["chain_passed"] for r in step))
    # ... and from the fake model's script: mbpp/3 passes 2 of 3 per step, mbpp/8 1 of 3, mbpp/4 never
    assert [s["passed"] for s in stats["per_step"]] == [3] * STEPS
    assert stats["problems_solved"] == 2 and stats["kept"] == 2 * STEPS  # one kept code per step and problem
    # per step: mbpp/3 fails 1, mbpp/4 fails 3, mbpp/8 fails 2
    assert stats["verdicts"] == {"wrong_answer": 6 * STEPS, "pass": 3 * STEPS}
    assert stats["sampling"]["temperature"] == 1.0 and stats["sampling"]["n"] == N
    assert stats["model"] == "fake" and stats["mode"] == "gibbs"


def test_card_of_a_round_from_real_rows(run_dir):
    repo = push_all(run_dir, {})
    readme = repo["README.md"].decode()
    doc = json.loads(repo[STATS_FILE])
    assert sorted(doc["entries"]) == ["chain/round_1", "score/round_1", "select/round_1", "verify/round_1"]
    chain = read(run_dir / "round-1" / "chain.jsonl")
    score = read(run_dir / "round-1" / "score.jsonl")
    select = read(run_dir / "round-1" / "select.jsonl")

    # counts per stage, and the exact command
    assert "| round_1 | 27 | 6 | 6 | 11 |" in readme
    assert readme.count("giftgen run recipe.yaml") == 4
    # the library versions the rows were written with, per entry
    from giftgen.versions import library_versions, versions_line

    assert all(e["versions"] == library_versions() for e in doc["entries"].values())
    assert readme.count(f"| libraries | {versions_line(library_versions())} |") == 4
    # models and revisions: the fake backend and a local folder have none, and the card says so
    assert "| fake | generates codes and descriptions | not recorded |" in readme
    assert f"| {score[0]['score_model']} | scores perplexity | not recorded |" in readme
    # sampling settings and seeds, from the chain rows
    assert "| temperature | 1 |" in readme and "| seed | 0 |" in readme and f"| n | {N} |" in readme
    # pass rate per step and rejections by verdict
    for t in range(1, STEPS + 1):
        assert f"| {t} | 9 | 3 | 33.3% | 3 | 2 |" in readme
    wrong = sum(r["chain_status"] == "wrong_answer" for r in chain)
    assert f"| wrong_answer | {wrong} | {100 * wrong / len(chain):.1f}% |" in readme
    # selection rule and weights, from the select settings and rows
    assert "w_j = softmax(T · PPL_j) over each problem's kept codes, T = 2; K = 4 codes drawn with replacement" \
        in readme
    weights = [r["weight"] for r in select if r["origin"] == "self"]
    assert f"| max | {max(weights):.4g} |" in readme
    # perplexity histogram: linked, uploaded, a real PNG
    assert "![Perplexity histogram of the kept codes, round_1](plots/ppl_round_1.png)" in readme
    assert png_size(repo["plots/ppl_round_1.png"]) == (640, 400)
    ppls = [r["ppl"] for r in score if r["ppl"] is not None]
    assert f"| mean | {sum(ppls) / len(ppls):.4g} |" in readme
    # sandbox limits (the chain ran with the defaults), license and citations
    from dataclasses import asdict

    from giftgen.sandbox import Limits

    for k, v in asdict(Limits()).items():
        assert f"| {k} | {v:.4g} |" in readme if isinstance(v, float) else f"| {k} | {v} |" in readme
    assert "licensed CC-BY-4.0" in readme and "@article{austin2021program" in readme
    assert "@inproceedings{li-etal-2025-gift" in readme
    # the recipe: inline and as a file
    assert yaml.safe_load(repo["recipe.yaml"]) == yaml.safe_load((run_dir / "recipe.yaml").read_text())
    assert "[`recipe.yaml`](recipe.yaml)" in readme
    meta = yaml.safe_load(readme.split("---\n", 2)[1])
    assert meta["license"] == "cc-by-4.0" and "giftgen" in meta["tags"]


def test_a_new_push_replaces_its_entry_and_keeps_the_others(run_dir):
    repo = push_all(run_dir, {})
    path = run_dir / "round-1" / "chain.jsonl"
    fewer = path.with_name("chain-fewer.jsonl")
    fewer.write_text("".join(line + "\n" for line in path.read_text().splitlines()[:9]))
    try:
        readme, files = stage_card("me/run", "chain", "round_1", CardInfo(command="again"))(9, fewer)(repo.get)
    finally:
        fewer.unlink()
    doc = json.loads(files[STATS_FILE])
    assert doc["entries"]["chain/round_1"]["stats"]["rows"] == 9
    assert doc["entries"]["select/round_1"] == json.loads(repo[STATS_FILE])["entries"]["select/round_1"]
    assert "| round_1 | 9 | 6 | 6 | 11 |" in readme


def test_existing_metadata_is_kept():
    old = {"license": "other", "language": ["en"], "tags": ["mine"], "owner_note": "keep me",
           "configs": [{"config_name": "chain", "data_files": "chain/*"}]}
    meta = merge_metadata(old, ["mbpp"], "Pretty")
    assert meta["license"] == "other" and meta["language"] == ["en"] and meta["owner_note"] == "keep me"
    assert meta["configs"] == old["configs"] and meta["tags"][0] == "mine" and "giftgen" in meta["tags"]
    assert meta["pretty_name"] == "Pretty"
    assert merge_metadata({}, ["mbpp", "humaneval"], None)["license"] == ["cc-by-4.0", "mit"]
    assert "license" not in merge_metadata({}, ["mine"], None)


def test_existing_card_metadata_survives_a_push(run_dir):
    existing = "---\nlicense: other\nlanguage:\n- en\nowner_note: keep me\n---\n\n# My data\n"
    repo = push_all(run_dir, {"README.md": existing.encode()})
    meta = yaml.safe_load(repo["README.md"].decode().split("---\n", 2)[1])
    assert meta["license"] == "other" and meta["language"] == ["en"] and meta["owner_note"] == "keep me"
    assert "giftgen" in meta["tags"]


@pytest.mark.parametrize("source", sorted(BENCHMARKS))
def test_license_and_citation_per_seed_benchmark(source):
    stats = stage_stats("chain", [{"problem_id": f"{source}/1", "step": 1, "chain_passed": True}])
    doc = merge_entry(None, make_entry(config="chain", split="round_1", stage="chain", stats=stats,
                                       info=CardInfo(command="c")))
    b = BENCHMARKS[source]
    card = render_card("me/x", doc, merge_metadata({}, [source], None))
    assert f"licensed {b.license}" in card and b.bibtex.splitlines()[0] in card
    assert yaml.safe_load(card.split("---\n", 2)[1])["license"] == b.license_id


def test_unknown_source_says_the_license_is_unknown():
    stats = stage_stats("seeds", [{"problem_id": "p1", "source": "mine"}])
    doc = merge_entry(None, make_entry(config="seeds", split="train", stage="seeds", stats=stats,
                                       info=CardInfo(command="c")))
    assert "Seed problems from mine: giftgen does not know their license" in render_card("me/x", doc, {})


def test_selection_rule_text():
    assert "T = 0; K = 8 codes drawn without replacement (T = 0: uniform, the RFT baseline)" in selection_rule(
        {"temperature": 0.0, "k": 8, "replacement": False})
    assert "softmax(T · log PPL_j)" in selection_rule({"temperature": 2.0, "k": 8, "log_ppl": True})
    assert "not recorded" in selection_rule(None)


def test_no_token_in_recorded_commands():
    argv = ["giftgen", "chain", "s.jsonl", "--api-key", "sk-secret", "--token=hf_secret", "--push-to-hub", "me/x"]
    assert recorded_command(argv) == "giftgen chain s.jsonl --api-key '***' '--token=***' --push-to-hub me/x"


def test_histogram_png():
    data = histogram_png({"a": [1.0, 1.5, 2.0, 4.0], "b": [2.0, 3.0]}, title="t", xlabel="ppl", bins=5)
    assert png_size(data) == (640, 400)
    empty = histogram_png({"a": []}, title="t", xlabel="ppl")
    assert png_size(empty) == (640, 400) and empty != data


def test_model_revision_comes_from_the_local_hub_cache(tmp_path, monkeypatch):
    from huggingface_hub import constants

    from giftgen.card import model_revision

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    refs = tmp_path / "models--org--coder" / "refs"
    refs.mkdir(parents=True)
    (refs / "main").write_text("0123456789abcdef0123456789abcdef01234567\n")
    assert model_revision("org/coder") == "0123456789abcdef0123456789abcdef01234567"
    assert model_revision("org/uncached") is None
    assert model_revision(str(tmp_path)) is None  # a local folder has no Hub revision
    entry = make_entry(config="chain", split="round_1", stage="chain", stats={"model": "org/coder", "rows": 1},
                       info=CardInfo(command="c"))
    assert entry["models"] == {"org/coder": "0123456789abcdef0123456789abcdef01234567"}
    card = render_card("me/x", merge_entry(None, entry), {})
    assert "| org/coder | generates codes and descriptions | 0123456789abcdef0123456789abcdef01234567 |" in card
