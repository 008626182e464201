"""The miniature's grid: one base model, then a `giftgen run` per arm and seed, and the numbers that compare them.

Contract. ``run_grid(plan)`` runs a recipe whose ``run.arms`` lists arms (or that has a ``pretrain`` section):

1. ``pretrain`` (when the recipe has the section): the tiny base model is trained into ``run.model`` by
   ``giftgen.pretrain`` (cached there: a second grid reuses it). ``RUN_DIR/pretrain.json`` records its wall time.
2. ``RUN_DIR/base``: round 0 only, the base model's evaluations (``eval``, ``eval-sampled``, ``eval2``), shared by
   every arm (all arms start from the same model).
3. ``RUN_DIR/<arm>/seed-<s>``: a full `giftgen run` (``run.rounds`` rounds, resumable like any run) where the arm
   sets the chain's mode and the selection temperature (``ARMS``), and seed ``s`` is added to the seed of the
   chain, select, finetune and eval. The ``control`` arm runs no chain: its finetune spends the same steps
   (``finetune.max_steps``) on the seed pairs and the replay rows only, so any gain of the other arms over it
   comes from their self-generated codes, not from more training on the seed problems.
4. ``RUN_DIR/summary.json``: ``grid_summary`` (per arm and seed, per round: pass@1 greedy / sampled / on the
   second split, and the diagnostics of ``cell_diagnostics``; per arm the mean and spread over seeds) and a table
   on stderr.

``run.replay_split`` is written once to ``RUN_DIR/seeds/replay.jsonl`` and every cell's finetune reads it.
"""

from __future__ import annotations

import json
import math
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

# arm -> (chain mode, selection temperature; None: the recipe's), or None for the control (no chain)
ARMS: dict[str, tuple[str, float | None] | None] = {
    "gift": ("gibbs", None),
    "rft": ("rft", 0.0),
    "rftrd": ("rewrite", 0.0),
    "control": None,
}
LABELS = {"gift": "GiFT", "rft": "RFT", "rftrd": "RFT+RD", "control": "control", "base": "base"}
TIMED = ("chain", "verify", "score", "select", "finetune", "eval", "eval-sampled", "eval2")


def cell_plan(plan: Any, arm: str, seed: int, run_dir: Path, replay: Path | None) -> Any:
    """The `giftgen run` plan of one arm and seed (module docstring, step 3)."""
    from giftgen.run import RunRecipe

    t = plan.stages
    run = replace(plan.run, run_dir=str(run_dir), arms=[], seeds=[seed], base_eval=False, replay_split=None,
                  push_to_hub=None, push_models_to=None)
    spec = ARMS[arm]
    chain, select = t["chain"], t["select"]
    if spec is not None:
        mode, temperature = spec
        chain = replace(chain, mode=mode)
        select = replace(select, temperature=select.temperature if temperature is None else temperature)
    stages = {
        "chain": replace(chain, seed=chain.seed + seed),
        "verify": t["verify"],
        "score": t["score"],
        "select": replace(select, seed=select.seed + seed),
        "finetune": replace(t["finetune"], seed=t["finetune"].seed + seed,
                            replay=str(replay) if replay is not None else t["finetune"].replay),
        "eval": replace(t["eval"], seed=t["eval"].seed + seed),
    }
    return RunRecipe(run, stages)


def run_grid(plan: Any) -> dict[str, Any]:
    """Pretrain (cached), evaluate the base model, run every arm and seed; return (and write) the grid summary."""
    from giftgen.progress import log
    from giftgen.run import Runner, RunRecipe, _locked
    from giftgen.stages import write_atomic

    root = Path(plan.run.run_dir).resolve()
    root.mkdir(parents=True, exist_ok=True)
    top = Runner(plan)
    with _locked(root):
        top._save_recipe()  # a rerun with another recipe is refused, as for a run
        if "pretrain" in plan.stages:
            _pretrain(plan.stages["pretrain"], root)
        replay = None
        if plan.run.replay_split is not None:
            replay = top._seeds("replay", plan.run.train_source, plan.run.train_path, plan.run.replay_split, None)
        stages = {k: v for k, v in plan.stages.items() if k != "pretrain"}
        if plan.run.eval_source is not None and plan.run.base_eval:
            base = replace(plan.run, run_dir=str(root / "base"), rounds=0, arms=[], replay_split=None,
                           push_to_hub=None, push_models_to=None)
            Runner(RunRecipe(base, stages))()
        arms = plan.run.arms or ["gift"]
        for arm in arms:
            for seed in plan.run.seeds:
                log(f"grid: {LABELS[arm]}, seed {seed}")
                Runner(cell_plan(plan, arm, seed, root / arm / f"seed-{seed}", replay), arm=arm)()
        summary = grid_summary(root, arms, plan.run.seeds)
        write_atomic(root / "summary.json", json.dumps(summary, indent=2) + "\n")
    print_grid(summary)
    return summary


def _pretrain(config: Any, root: Path) -> None:
    from dataclasses import asdict

    from giftgen.pretrain import pretrain
    from giftgen.stages import write_atomic

    marker = root / "pretrain.json"
    start = time.perf_counter()
    result = pretrain(config)
    if result.cached and marker.exists():
        return  # the marker holds the wall time of the training that made the model
    elapsed = result.seconds if result.cached else round(time.perf_counter() - start, 3)
    write_atomic(marker, json.dumps({"stage": "pretrain", "result": asdict(result), "elapsed_s": elapsed},
                                    indent=2) + "\n")


# --------------------------------------------------------------------------------------------------- numbers


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
      often the step's description no longer leads to a correct code (for RFT: how often d0 itself fails).
    """
    from giftgen.diversity import normalise
    from giftgen.records import read_rows

    out: dict[str, Any] = {"sample_pass_rate": None, "step_pass_rate": None, "covered": None, "problems": None,
                           "distinct_per_solved": None, "drift": None}
    chain = rd / "chain.jsonl"
    if chain.exists():
        problems: set[str] = set()
        solved: set[str] = set()
        steps: dict[tuple[str, int], bool] = {}
        by_step: dict[int, list[int]] = defaultdict(lambda: [0, 0])  # step -> [passed, samples]
        for row in read_rows(chain):
            ok = row.get("chain_passed") is True
            problems.add(row["problem_id"])
            if ok:
                solved.add(row["problem_id"])
            key = (row["problem_id"], int(row["step"]))
            by_step[key[1]][0] += ok
            by_step[key[1]][1] += 1
            steps[key] = steps.get(key, False) or ok
        passed, samples = (sum(counts) for counts in zip(*by_step.values(), strict=True)) if by_step else (0, 0)
        out.update(sample_pass_rate=passed / samples if samples else None, covered=len(solved),
                   step_pass_rate={str(k): p / n for k, (p, n) in sorted(by_step.items())},
                   problems=len(problems), drift=sum(not ok for ok in steps.values()) / len(steps) if steps else None)
    verify = rd / "verify.jsonl"
    if verify.exists():
        codes: dict[str, set[str]] = defaultdict(set)
        for row in read_rows(verify):
            if row.get("passed") is True:
                codes[row["problem_id"]].add(normalise(row["code"]))
        out["distinct_per_solved"] = (sum(len(c) for c in codes.values()) / len(codes)) if codes else None
    return out


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


METRICS = ("greedy", "sampled", "test2", "sample_pass_rate", "covered", "distinct_per_solved", "drift", "train_loss")


def grid_summary(root: Path, arms: Sequence[str] | None = None, seeds: Sequence[int] | None = None) -> dict[str, Any]:
    """Every cell's numbers per round, and per arm the mean and spread over seeds of its last round."""
    root = Path(root)
    if arms is None:
        arms = [a for a in ARMS if (root / a).is_dir()]
    from giftgen.versions import library_versions

    out: dict[str, Any] = {"run_dir": str(root), "versions": library_versions(), "base": None, "arms": {},
                           "pretrain_s": None}
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


def table_rows(summary: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    """The grid's table: one line per arm (base first); pass@1 in %, mean ± sd over seeds."""
    header = ["arm", "seeds", "test3 greedy", "test3 sampled", "test2 greedy", "sample pass rate", "covered",
              "distinct / solved", "drift"]
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
    from giftgen.report import table_lines

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
    from rich.console import Console
    from rich.table import Table

    console = Console(file=file if file is not None else sys.stderr)
    for title, (header, lines) in (("miniature: pass@1 (%) and diagnostics, mean ± sd over seeds",
                                     table_rows(summary)),
                                    ("wall time per stage (s, one run, mean over seeds)", timing_rows(summary))):
        table = Table(title=title)
        for i, column in enumerate(header):
            table.add_column(column, justify="left" if i == 0 else "right")
        for line in lines:
            table.add_row(*line)
        console.print(table)


# --------------------------------------------------------------------------------------------------- report

GRID_PLOTS = ("grid_pass_at_1.png", "grid_diagnostics.png")


def is_grid(run_dir: str | Path) -> bool:
    """Whether ``run_dir`` holds a grid (``run_grid``'s layout) rather than a single run."""
    root = Path(run_dir)
    return (root / "base" / "round-0").is_dir() or any((root / arm / "seed-0").is_dir() for arm in ARMS) \
        or any((root / arm).is_dir() and any((root / arm).glob("seed-*")) for arm in ARMS)


def bars_png(groups: Sequence[str], series: Mapping[str, Sequence[tuple[float | None, float | None]]], *,
             title: str, ylabel: str) -> bytes:
    """Grouped bars: one group per name in ``groups``, one bar per series, each a (mean, sd) or None."""
    from giftgen.plots import _figure, _png

    fig, ax = _figure(7.2, 4.0)
    width = 0.8 / max(1, len(series))
    for i, (label, values) in enumerate(series.items()):
        xs = [g + (i - (len(series) - 1) / 2) * width for g in range(len(groups))]
        means = [m if m is not None else 0.0 for m, _ in values]
        errs = [s if s is not None else 0.0 for _, s in values]
        ax.bar(xs, means, width=width, yerr=errs, capsize=3, label=label)
    ax.set_xticks(list(range(len(groups))))
    ax.set_xticklabels(list(groups))
    ax.legend(fontsize="small")
    ax.grid(True, axis="y", alpha=0.3)
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    return _png(fig)


def draw_grid_plots(summary: Mapping[str, Any], out_dir: Path) -> set[str]:
    """pass@1 per arm (greedy, sampled, test2; mean ± sd over seeds) and the diagnostics per arm."""
    arms = list(summary["arms"].values())
    written: set[str] = set()
    if not arms:
        return written
    groups = ([] if not summary.get("base") else ["base"]) + [a["label"] for a in arms]

    def series(metric: str, scale: float = 100.0, base: bool = True) -> list[tuple[float | None, float | None]]:
        out = []
        if summary.get("base"):
            value = summary["base"].get(metric) if base else None
            out.append((None if value is None else scale * value, 0.0))
        for a in arms:
            s = a["last_round"][metric]
            out.append((None if s["mean"] is None else scale * s["mean"], None if s["sd"] is None else scale * s["sd"]))
        return out

    pass1 = {"test3 greedy": series("greedy"), "test3 sampled (T = 1)": series("sampled"),
             "test2 greedy": series("test2")}
    (out_dir / GRID_PLOTS[0]).write_bytes(bars_png(groups, pass1, title="pass@1 per arm (mean ± sd over seeds)",
                                                   ylabel="pass@1 (%)"))
    written.add(GRID_PLOTS[0])
    diag = {"sample pass rate (%)": series("sample_pass_rate", base=False),
            "drift: failing steps (%)": series("drift", base=False),
            "distinct codes / solved problem (x10)": series("distinct_per_solved", 10.0, base=False)}
    (out_dir / GRID_PLOTS[1]).write_bytes(bars_png(groups, diag, title="chain diagnostics per arm",
                                                   ylabel="value"))
    written.add(GRID_PLOTS[1])
    return written


def grid_markdown(summary: Mapping[str, Any], plots: set[str]) -> str:
    """The grid's report: the pass@1 and diagnostics table, wall time per stage, the plots."""
    from giftgen.report import table_lines

    lines = [f"# giftgen report: {summary['run_dir']}", "",
             "pass@1 in %, mean ± sd over seeds (last round); test3: unseen 3-operation problems, test2: held-out "
             "2-operation problems (forgetting). Diagnostics of the round's chain: *sample pass rate* (sampled "
             "codes that pass), *covered* (seed problems with a passing code), *distinct / solved* (distinct "
             "verified codes per covered problem, normalised AST), *drift* (chain steps none of whose codes pass "
             "the original tests).", "", markdown_table(summary), ""]
    header, rows = timing_rows(summary)
    if rows:
        lines += ["## Wall time per stage (seconds)", ""]
        if summary.get("pretrain_s") is not None:
            lines += [f"Pretraining the base model: {summary['pretrain_s']:.0f} s (once; cached).", ""]
        lines += table_lines(header, rows)
    for name in GRID_PLOTS:
        if name in plots:
            lines += [f"![{name}]({name})", ""]
    return "\n".join(lines)


def write_grid_report(run_dir: str | Path, out_dir: Path) -> tuple[str, list[Path]]:
    """Write ``report.md`` and the grid's plots into ``out_dir``; return the markdown and the plot paths."""
    summary = grid_summary(Path(run_dir).resolve())
    out_dir.mkdir(parents=True, exist_ok=True)
    plots = draw_grid_plots(summary, out_dir)
    markdown = grid_markdown(summary, plots)
    (out_dir / "report.md").write_text(markdown)
    return markdown, [out_dir / name for name in GRID_PLOTS if name in plots]
