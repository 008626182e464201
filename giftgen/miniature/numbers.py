"""The miniature's numbers: per cell and round, pass@1 and the chain's diagnostics; per arm, mean and spread.

Contract. Reads the grid's layout (``giftgen.miniature.grid``): ``RUN_DIR/base/round-0`` and
``RUN_DIR/<arm>/seed-<s>/round-N`` with the stage markers and rows `giftgen run` writes. ``grid_summary`` is what
``RUN_DIR/summary.json`` holds; ``table_rows`` / ``timing_rows`` are its tables (``print_grid`` on stderr,
``markdown_table`` for reports).
"""

from __future__ import annotations

import json
import math
import statistics
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from giftgen.diversity import normalise
from giftgen.records import read_rows
from giftgen.seeds import toy
from giftgen.stats import count_chain
from giftgen.tables import print_table, table_lines
from giftgen.versions import library_versions

# arm -> (chain mode, selection temperature (None: the recipe's), other chain settings), or None for the control
# (no chain). gift-accept is GiFT's chain with the acceptance step (chain.accept), the laboratory's variant.
ARMS: dict[str, tuple[str, float | None, dict[str, Any]] | None] = {
    "gift": ("gibbs", None, {}),
    "gift-accept": ("gibbs", None, {"accept": True}),
    "rft": ("rft", 0.0, {}),
    "rftrd": ("rewrite", 0.0, {}),
    "control": None,
}
LABELS = {"gift": "GiFT", "gift-accept": "GiFT+accept", "rft": "RFT", "rftrd": "RFT+RD", "control": "control",
          "base": "base"}
TIMED = ("chain", "verify", "score", "select", "finetune", "eval", "eval-sampled", "eval2")


def _marker(rd: Path, label: str) -> dict[str, Any] | None:
    path = rd / f"{label}.json"
    return json.loads(path.read_text()) if path.exists() else None


def cell_diagnostics(rd: Path) -> dict[str, Any]:
    """One round's diagnostics from its rows (None where the stage did not run, e.g. the control's chain).

    - ``sample_pass_rate``: share of the chain's sampled codes that pass the problem's tests;
    - ``step_pass_rate``: the same share per chain step (``{"1": ..., "2": ...}``): how the sampler fares as the
      chain moves away from the seed description;
    - ``covered``: problems with at least one passing code (of the problems the chain ran on);
    - ``distinct_per_solved``: distinct verified candidate codes (normalised AST) per problem that has one;
    - ``drift``: share of chain steps (problem x step) none of whose codes pass the original tests, i.e. how
      often the step's description no longer leads to a correct code (for RFT: how often d0 itself fails);
    - ``kept_ppl``: mean perplexity (under the scoring model) of the self-generated codes selection kept;
    - ``kept_styles`` / ``correct_styles`` (toy domain only): the code styles (``toy.code_style``) of the kept
      codes and of every distinct verified correct code, as shares: does selection keep the long tail?
    """
    out: dict[str, Any] = {"sample_pass_rate": None, "step_pass_rate": None, "covered": None, "problems": None,
                           "distinct_per_solved": None, "drift": None, "kept_ppl": None, "kept_styles": None,
                           "correct_styles": None}
    chain = rd / "chain.jsonl"
    if chain.exists():
        count = count_chain(read_rows(chain))
        steps = count.steps
        samples = sum(s.samples for s in steps.values())
        passed = sum(s.passed for s in steps.values())  # the sum of the per-step counts: one tally, not two
        out.update(sample_pass_rate=passed / samples if samples else None, covered=len(count.solved),
                   step_pass_rate={str(k): s.passed / s.samples for k, s in sorted(steps.items())},
                   problems=len(count.problems),
                   drift=count.failing_steps / count.problem_steps if count.problem_steps else None)
    verify = rd / "verify.jsonl"
    if verify.exists():
        codes: dict[str, set[str]] = defaultdict(set)
        correct: dict[str, set[str]] = defaultdict(set)
        for row in read_rows(verify):
            if row.get("passed") is True:
                codes[row["problem_id"]].add(normalise(row["code"]))
                if str(row["problem_id"]).startswith("toy/"):
                    correct[row["problem_id"]].add(row["code"])
        out["distinct_per_solved"] = (sum(len(c) for c in codes.values()) / len(codes)) if codes else None
        out["correct_styles"] = _shares(toy.code_style(c) for cs in correct.values() for c in cs)
    select = rd / "select.jsonl"
    if select.exists():
        kept = [row for row in read_rows(select) if row.get("origin") == "self"]
        ppls = [row["ppl"] for row in kept if isinstance(row.get("ppl"), (int, float))]
        out["kept_ppl"] = statistics.fmean(ppls) if ppls else None
        out["kept_styles"] = _shares(toy.code_style(toy.PROMPT_HEAD + str(row.get("completion", ""))) for row in kept
                                     if str(row.get("problem_id", "")).startswith("toy/"))
    return out


def _shares(styles: Any) -> dict[str, float] | None:
    """The share of each code style among ``styles`` (None when there are none)."""
    counts: dict[str, int] = defaultdict(int)
    for style in styles:
        if style is not None:
            counts[style] += 1
    total = sum(counts.values())
    return {s: counts[s] / total for s in toy.CODE_STYLES if counts[s]} if total else None


def round_numbers(rd: Path) -> dict[str, Any]:
    """pass@1 (greedy, sampled, second split), diagnostics and wall time per stage of one round folder."""
    numbers: dict[str, Any] = {}
    for key, label in (("greedy", "eval"), ("sampled", "eval-sampled"), ("test2", "eval2")):
        marker = _marker(rd, label)
        numbers[key] = None if marker is None else marker["result"].get("pass@1")
    numbers.update(cell_diagnostics(rd))
    numbers["seconds"] = {label: m["elapsed_s"] for label in TIMED if (m := _marker(rd, label)) is not None}
    finetune = _marker(rd, "finetune")
    numbers["train_loss"] = None if finetune is None else finetune["result"].get("train_loss")
    return numbers


def spread(values: Sequence[float | None]) -> dict[str, Any]:
    """Mean, sample standard deviation, min and max of the values present (None when none are)."""
    xs = [float(v) for v in values if v is not None]
    if not xs:
        return {"mean": None, "sd": None, "min": None, "max": None, "n": 0}
    return {"mean": statistics.fmean(xs), "sd": statistics.stdev(xs) if len(xs) > 1 else 0.0,
            "min": min(xs), "max": max(xs), "n": len(xs)}


METRICS = ("greedy", "sampled", "test2", "sample_pass_rate", "covered", "distinct_per_solved", "drift", "train_loss",
           "kept_ppl")


def grid_summary(root: Path, arms: Sequence[str] | None = None, seeds: Sequence[int] | None = None) -> dict[str, Any]:
    """Every cell's numbers per round, and per arm the mean and spread over seeds of its last round."""
    root = Path(root)
    if arms is None:
        arms = [a for a in ARMS if (root / a).is_dir()]
    out: dict[str, Any] = {"run_dir": str(root), "versions": library_versions(), "base": None, "arms": {},
                           "pretrain_s": None}
    written = _marker(root, "summary")  # the names of the evaluations, which only the recipe knows
    if written is not None and written.get("eval_names"):
        out["eval_names"] = written["eval_names"]
    pretrain = _marker(root, "pretrain")
    if pretrain is not None:
        out["pretrain_s"] = pretrain["elapsed_s"]
    if (root / "base" / "round-0").is_dir():
        out["base"] = round_numbers(root / "base" / "round-0")
    for arm in arms:
        cells = {}
        found = sorted((root / arm).glob("seed-*"), key=lambda p: int(p.name.split("-", 1)[1])) \
            if seeds is None else [root / arm / f"seed-{s}" for s in seeds]
        for cell in found:
            rounds = sorted((int(p.name.split("-")[1]), p) for p in cell.glob("round-*") if p.is_dir())
            per_round = {r: round_numbers(p) for r, p in rounds if r > 0}
            if per_round:
                cells[cell.name] = per_round
        if not cells:
            continue
        last = [c[max(c)] for c in cells.values()]
        seconds: dict[str, list[float]] = defaultdict(list)
        for numbers in last:
            for stage, s in numbers["seconds"].items():
                seconds[stage].append(s)
        out["arms"][arm] = {
            "label": LABELS[arm], "cells": cells,
            "last_round": {m: spread([n.get(m) for n in last]) for m in METRICS},
            "seconds": {stage: statistics.fmean(v) for stage, v in seconds.items()},
        }
    return out


def _fmt(s: Mapping[str, Any] | None, pct: bool = True, digits: int = 1) -> str:
    if not s or s.get("mean") is None:
        return "-"
    scale = 100 if pct else 1
    text = f"{scale * s['mean']:.{digits}f}"
    if s.get("n", 0) > 1:
        text += f" ± {scale * s['sd']:.{digits}f}"
    return text


def eval_names(summary: Mapping[str, Any]) -> tuple[str, str]:
    """What the grid's two evaluations are called (the eval split, else its source; the second split)."""
    names = summary.get("eval_names") or ["eval", "eval2"]
    return str(names[0]), str(names[1])


def table_rows(summary: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    """The grid's table: one line per arm (base first); pass@1 in %, mean ± sd over seeds."""
    first, second = eval_names(summary)
    header = ["arm", "seeds", f"{first} greedy", f"{first} sampled", f"{second} greedy", "sample pass rate",
              "covered", "distinct / solved", "drift"]
    lines = []
    base = summary.get("base")
    if base:
        one = {k: spread([base.get(k)]) for k in ("greedy", "sampled", "test2")}
        lines.append(["base", "-", _fmt(one["greedy"]), _fmt(one["sampled"]), _fmt(one["test2"]), *["-"] * 4])
    for data in summary["arms"].values():
        m = data["last_round"]
        lines.append([data["label"], str(len(data["cells"])), _fmt(m["greedy"]), _fmt(m["sampled"]),
                      _fmt(m["test2"]), _fmt(m["sample_pass_rate"]), _fmt(m["covered"], pct=False),
                      _fmt(m["distinct_per_solved"], pct=False, digits=2), _fmt(m["drift"])])
    return header, lines


def markdown_table(summary: Mapping[str, Any]) -> str:
    return "\n".join(table_lines(*table_rows(summary))[:-1])


def timing_rows(summary: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Wall seconds per stage: per arm, the mean over seeds of one cell's last round."""
    header = ["arm", *TIMED, "total"]
    lines = []
    for data in summary["arms"].values():
        secs = data["seconds"]
        lines.append([data["label"], *(f"{secs[s]:.1f}" if s in secs else "-" for s in TIMED),
                      f"{math.fsum(secs.values()):.1f}"])
    return header, lines


def print_grid(summary: Mapping[str, Any], file: Any = None) -> None:
    """The grid's two tables (pass@1 and diagnostics; wall time per stage) on stderr."""
    print_table("miniature: pass@1 (%) and diagnostics, mean ± sd over seeds", *table_rows(summary), file=file)
    print_table("wall time per stage (s, one run, mean over seeds)", *timing_rows(summary), file=file)
