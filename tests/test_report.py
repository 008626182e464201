"""`giftgen report` and the diversity measures: literal codes, and a synthetic directory of three runs.

The synthetic runs are laid out as `giftgen run` writes them (recipe.yaml, round-N/<stage>.jsonl and the eval
marker round-N/eval.json), with rows whose numbers are chosen by hand, so the expected figures are computed here
from those choices, independently of giftgen.stats.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from giftgen.cli import main
from giftgen.diversity import diversity, normalise, pairwise_distance, tokens
from giftgen.errors import ConfigError, InputError
from giftgen.report import ReportConfig, read_run, write_report

PNG = b"\x89PNG\r\n\x1a\n"

# --------------------------------------------------------------------------------------------------- diversity

SUM_LOOP = '''def total(xs, n):
    """Sum of xs times n."""
    acc = 0  # running sum
    for x in xs:
        acc += x * n
    return acc
'''
SUM_LOOP_RENAMED = '''def total(items: list, k: int) -> int:
    s = 0
    for it in items:
        s += it * k

    return s
'''
SUM_BUILTIN = "def total(xs, n):\n    return sum(x * n for x in xs)\n"
SUM_LOOP_OTHER_CONSTANT = SUM_LOOP.replace("acc = 0", "acc = 1")


def test_normalise_ignores_local_names_docstrings_comments_annotations_and_layout():
    assert normalise(SUM_LOOP) == normalise(SUM_LOOP_RENAMED)
    assert normalise(SUM_LOOP) != normalise(SUM_BUILTIN)
    assert normalise(SUM_LOOP) != normalise(SUM_LOOP_OTHER_CONSTANT)


def test_normalise_keeps_the_interface_and_free_names():
    # the function name is the entry point; len vs sum are different programs
    assert normalise("def f(x):\n    return len(x)\n") != normalise("def f(x):\n    return sum(x)\n")
    assert normalise("def f(x):\n    return x\n") != normalise("def g(x):\n    return x\n")
    assert normalise("import math\ndef f(x):\n    return math.sqrt(x)\n") != \
        normalise("import cmath\ndef f(x):\n    return cmath.sqrt(x)\n")


def test_normalise_scopes_globals_closures_and_scripts():
    # stdin/stdout scripts: module-level variables are renamed too
    a = "n = int(input())\nvals = list(map(int, input().split()))\nprint(sum(vals) * n)\n"
    b = "m = int(input())\narr = list(map(int, input().split()))\nprint(sum(arr) * m)\n"
    assert normalise(a) == normalise(b)
    # a closure's nonlocal refers to the outer argument, whatever it is called
    c = "def f(a):\n    def g(b):\n        nonlocal a\n        a = a + b\n        return a\n    return g\n"
    d = "def f(z):\n    def g(y):\n        nonlocal z\n        z = z + y\n        return z\n    return g\n"
    assert normalise(c) == normalise(d)
    # ... but not when the inner function binds its own variable instead
    e = "def f(z):\n    def g(y):\n        w = 0\n        w = z + y\n        return w\n    return g\n"
    assert normalise(c) != normalise(e)
    # a global read inside a function follows the module-level renaming
    g1 = "K = 3\ndef f(x):\n    return x * K\n"
    g2 = "M = 3\ndef f(y):\n    return y * M\n"
    assert normalise(g1) == normalise(g2)


def test_unparsable_code_compares_by_text():
    assert normalise("def f(:\n  pass   \n") == normalise("def f(:\n  pass\n")
    assert normalise("def f(:\n") != normalise("def g(:\n")


def test_pairwise_ngram_distance():
    assert pairwise_distance([SUM_LOOP]) is None
    assert pairwise_distance([SUM_LOOP, SUM_LOOP]) == 0.0
    # comments and blank lines are not tokens
    assert pairwise_distance([SUM_LOOP, SUM_LOOP.replace("  # running sum", "")]) == 0.0
    assert pairwise_distance(["a b c d", "e f g h"], n=4) == 1.0
    # one changed constant: close, but not identical
    near = pairwise_distance([SUM_LOOP, SUM_LOOP_OTHER_CONSTANT])
    far = pairwise_distance([SUM_LOOP, SUM_BUILTIN])
    assert 0.0 < near < far <= 1.0
    # by hand: tokens of "x = 1" and "x = 2" share no 4-gram with the literal; with n = 2 they share ("x", "=")
    assert tokens("x = 1\n") == ["x", "=", "1", "NEWLINE"]
    # 2-grams {x =, = 1, 1 NL} vs {x =, = 2, 2 NL}: 1 shared of 5
    assert pairwise_distance(["x = 1\n", "x = 2\n"], n=2) == pytest.approx(1 - 1 / 5)


def test_diversity_aggregates_over_problems():
    result = diversity({"p1": [SUM_LOOP, SUM_LOOP_RENAMED, SUM_BUILTIN], "p2": [SUM_BUILTIN], "p3": []})
    assert result["problems"] == 2 and result["codes"] == 4
    assert result["mean_codes"] == pytest.approx((3 + 1) / 2)
    assert result["mean_distinct_asts"] == pytest.approx((2 + 1) / 2)
    assert result["mean_distinct_ratio"] == pytest.approx((2 / 3 + 1) / 2)
    assert result["problems_with_pairs"] == 1
    assert result["mean_pairwise_distance"] == pytest.approx(pairwise_distance([SUM_LOOP, SUM_LOOP_RENAMED,
                                                                                 SUM_BUILTIN]))


# --------------------------------------------------------------------------------------------------- runs

# Per method: pass@1 of rounds 0, 1, 2; per round, per step, which of 4 samples pass; ppl of kept codes.
RUNS = {
    "gibbs": {"pass": [0.30, 0.40, 0.45], "steps": [[1, 1, 0, 0], [1, 0, 0, 0]], "ppl": [1.5, 2.5, 3.5]},
    "rft": {"pass": [0.30, 0.35, 0.37], "steps": [[1, 1, 1, 0], [1, 1, 0, 0]], "ppl": [1.1, 1.2]},
    "rewrite": {"pass": [0.30, 0.33, None], "steps": [[1, 0, 0, 0], [0, 0, 0, 0]], "ppl": [1.4]},
}
CODES = [SUM_LOOP, SUM_LOOP_RENAMED, SUM_BUILTIN, SUM_LOOP_OTHER_CONSTANT]


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def make_run(root: Path, mode: str, spec: dict, rounds: int = 2) -> Path:
    run = root / mode
    run.mkdir(parents=True)
    (run / "recipe.yaml").write_text(yaml.safe_dump({"run": {"rounds": rounds}, "chain": {"mode": mode}}))
    for r in range(rounds + 1):
        rd = run / f"round-{r}"
        rd.mkdir()
        p1 = spec["pass"][r]
        if p1 is not None:  # the run's eval marker: `result` is eval's summary
            (rd / "eval.json").write_text(json.dumps({"stage": "eval", "round": r,
                                                      "result": {"pass@1": p1, "problems": 100}}))
        if r == 0:
            continue
        chain = []
        for step, passes in enumerate(spec["steps"], start=1):
            for j, ok in enumerate(passes):
                chain.append({"problem_id": "mbpp/1", "step": step, "sample": j, "code": CODES[j],
                              "chain_passed": bool(ok), "chain_status": "pass" if ok else "wrong_answer",
                              "kept": bool(ok), "mode": mode})
        write_jsonl(rd / "chain.jsonl", chain)
        if r == 1:  # round 2 stops after the chain: no score rows
            kept = [row for row in chain if row["kept"]][:len(spec["ppl"])]
            write_jsonl(rd / "score.jsonl", [{**row, "passed": True, "ppl": p} for row, p in
                                             zip(kept, spec["ppl"], strict=True)])
    return run


@pytest.fixture
def runs(tmp_path) -> list[Path]:
    return [make_run(tmp_path, mode, spec) for mode, spec in RUNS.items()]


def test_read_run_takes_numbers_from_the_files(runs):
    gift = read_run(runs[0])
    assert gift.label == "GiFT" and [x.round for x in gift.rounds] == [0, 1, 2]
    assert [x.pass_at_1 for x in gift.rounds] == RUNS["gibbs"]["pass"]
    r1 = gift.rounds[1]
    assert [s["pass_rate"] for s in r1.chain["per_step"]] == [0.5, 0.25]
    assert r1.kept_ppls == RUNS["gibbs"]["ppl"]
    # round 1: the kept codes of the score rows (codes 0, 1, 0) are one program (0 and 1 differ only in names)
    assert r1.diversity["codes"] == 3 and r1.diversity["mean_distinct_asts"] == 1
    # round 2 has no score rows: kept codes come from the chain (codes 0, 1 of step 1, 0 of step 2)
    assert gift.rounds[2].diversity["codes"] == 3 and gift.rounds[2].score is None
    assert gift.rounds[0].chain is None and gift.rounds[0].diversity is None


def test_report_of_three_methods(runs, tmp_path):
    out = tmp_path / "report"
    report = write_report([str(r) for r in runs], ReportConfig(output_dir=str(out)))
    md = report.markdown
    assert (out / "report.md").read_text() == md
    names = {p.name for p in report.plots}
    assert names == {"pass_at_1.png", "chain_pass_rate.png", "ppl_kept.png", "diversity_ast.png",
                     "diversity_ngram.png"}
    for p in report.plots:
        assert p.read_bytes().startswith(PNG) and p.stat().st_size > 2000
        assert f"]({p.name})" in md
    # pass@1 per round: one column per method, round 0 the base model, a missing eval a dash
    assert "| round | GiFT | RFT | RFT+RD |" in md
    assert "| 0 | 30.00% | 30.00% | 30.00% |" in md
    assert "| 1 | 40.00% | 35.00% | 33.00% |" in md
    assert "| 2 | 45.00% | 37.00% | – |" in md
    # chain table: GiFT round 1 has 8 codes, 3 passing (37.5%), 3 kept
    assert "| GiFT | 1 | 1 | 8 | 3 | 37.5% | 1 | 3 | 1 |" in md
    assert "| RFT | 2 | 1 | 8 | 5 | 62.5% | 1 | 5 | 1 |" in md
    # per-step pass rate: step 1 of GiFT r1 passes 2 of 4, RFT r1 3 of 4, RFT+RD r1 1 of 4
    assert "| step | GiFT r1 | GiFT r2 | RFT r1 | RFT r2 | RFT+RD r1 | RFT+RD r2 |" in md
    assert "| 1 | 50.0% | 50.0% | 75.0% | 75.0% | 25.0% | 25.0% |" in md
    assert "| 2 | 25.0% | 25.0% | 50.0% | 50.0% | 0.0% | 0.0% |" in md
    # perplexity of kept codes, round 1 only (round 2 has no score rows)
    assert "| GiFT | 1 | 3 | 2.500 | 2.500 | 3.500 | 1.500 | 3.500 |" in md
    assert "| RFT | 1 | 2 | 1.150 | 1.150 | 1.200 | 1.100 | 1.200 |" in md
    assert "| GiFT | 2 |" not in md.split("## Perplexity")[1].split("## Diversity")[0]
    # diversity: RFT round 1 keeps codes 0, 1 (score rows: the first two kept) -> 1 program of 2 codes
    div = md.split("## Diversity")[1]
    expected = pairwise_distance([CODES[0], CODES[1]])
    assert f"| RFT | 1 | 1 | 2 | 2.00 | 1.00 | 0.500 | {expected:.3f} |" in div
    # RFT round 2 (chain rows): codes 0, 1, 2 of step 1 and 0, 1 of step 2 -> 2 programs of 5
    expected = pairwise_distance([CODES[0], CODES[1], CODES[2], CODES[0], CODES[1]])
    assert f"| RFT | 2 | 1 | 5 | 5.00 | 2.00 | 0.400 | {expected:.3f} |" in div


def test_report_tolerates_missing_stages_and_labels_runs(tmp_path):
    only_eval = tmp_path / "base"
    (only_eval / "round-0").mkdir(parents=True)
    (only_eval / "round-0" / "eval.json").write_text(json.dumps({"pass@1": 0.25, "problems": 4}))
    chain_only = make_run(tmp_path, "gibbs", {**RUNS["gibbs"], "pass": [None, None, None]}, rounds=1)
    (chain_only / "round-1" / "score.jsonl").unlink()
    report = write_report([str(only_eval), str(chain_only)],
                          ReportConfig(output_dir=str(tmp_path / "out"), label=["base", "mine"]))
    assert {p.name for p in report.plots} == {"pass_at_1.png", "chain_pass_rate.png", "diversity_ast.png",
                                              "diversity_ngram.png"}
    assert not (tmp_path / "out" / "ppl_kept.png").exists()
    assert "| 0 | 25.00% | – |" in report.markdown and "No score rows." in report.markdown
    assert "| mine | 1 | 1 | 8 | 3 | 37.5% |" in report.markdown


def test_report_errors(tmp_path):
    with pytest.raises(InputError, match="no such run directory"):
        write_report([str(tmp_path / "nope")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no round-N folders"):
        write_report([str(tmp_path / "empty")])
    with pytest.raises(ConfigError, match="1 labels for 2 run directories"):
        write_report([str(tmp_path), str(tmp_path)], ReportConfig(label=["x"]))


def test_cli_prints_the_markdown_and_writes_the_plots(runs, tmp_path):
    result = CliRunner().invoke(main, ["report", *map(str, runs), "-o", str(tmp_path / "cli")])
    assert result.exit_code == 0, result.output
    md = (tmp_path / "cli" / "report.md").read_text()
    assert result.stdout == md
    assert "wrote" in result.stderr and "5 plots" in result.stderr
    # one run: the default output folder is RUN_DIR/report
    result = CliRunner().invoke(main, ["report", str(runs[1])])
    assert result.exit_code == 0, result.output
    assert (runs[1] / "report" / "report.md").exists() and (runs[1] / "report" / "pass_at_1.png").exists()
    result = CliRunner().invoke(main, ["report", str(tmp_path / "missing")])
    assert result.exit_code == 2 and "no such run directory" in result.stderr
