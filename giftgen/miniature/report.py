"""The miniature's report: the grid's table, wall time per stage and bar charts over seeds.

Contract. ``is_grid(dir)`` says whether a directory holds a grid (``giftgen.miniature.grid``'s layout) rather than a
single run; ``write_grid_report(dir, out_dir)`` writes ``report.md`` with pass@1 (test3 greedy and sampled, test2)
and the chain diagnostics per arm as mean ± sd over seeds, wall time per stage, ``grid_pass_at_1.png`` and
``grid_diagnostics.png`` (percentages) and ``grid_distinct.png`` (distinct codes per solved problem).
``grid_cell(run_dir)`` finds the label and the shared round 0 of a grid's cell (``RUN_DIR/<arm>/seed-<s>``): the
grid's ``base/round-0``, which ``giftgen report`` on a cell shows as the cell's round 0.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from giftgen.miniature.numbers import ARMS, LABELS, eval_names, grid_summary, markdown_table, timing_rows
from giftgen.plots import bars_png
from giftgen.tables import table_lines

GRID_PLOTS = ("grid_pass_at_1.png", "grid_diagnostics.png", "grid_distinct.png")
ALT = {"grid_pass_at_1.png": "pass@1 per arm", "grid_diagnostics.png": "chain diagnostics per arm",
       "grid_distinct.png": "distinct codes per solved problem, per arm"}


def is_grid(run_dir: str | Path) -> bool:
    """Whether ``run_dir`` holds a grid (``run_grid``'s layout) rather than a single run."""
    root = Path(run_dir)
    return (root / "base" / "round-0").is_dir() or any((root / arm / "seed-0").is_dir() for arm in ARMS) \
        or any((root / arm).is_dir() and any((root / arm).glob("seed-*")) for arm in ARMS)



@dataclass(frozen=True)
class GridCell:
    arm: str
    seed: int
    label: str  # e.g. "GiFT (seed 0)": the cell's recipe names the chain's mode even for the control, which has none
    base: Path | None  # the grid's shared round 0 (the base model's evaluation), if the grid has one


def grid_cell(run_dir: str | Path) -> GridCell | None:
    """``run_dir`` as a cell of a grid (``GRID/<arm>/seed-<s>``, see ``giftgen.miniature.grid``), else None."""
    given = Path(run_dir)
    cell = given.resolve()
    found = re.fullmatch(r"seed-(\d+)", cell.name)
    if found is None or cell.parent.name not in ARMS or not (cell / "recipe.yaml").is_file():
        return None
    base = cell.parent.parent / "base" / "round-0"
    if len(given.parts) >= 2 and ".." not in given.parts:
        base = given.parent.parent / "base" / "round-0"  # as the user named the cell
    seed = int(found.group(1))
    return GridCell(cell.parent.name, seed, f"{LABELS[cell.parent.name]} (seed {seed})",
                    base if base.is_dir() else None)


def draw_grid_plots(summary: Mapping[str, Any], out_dir: Path) -> set[str]:
    """pass@1 per arm (greedy, sampled, test2; mean ± sd over seeds; the base model's single evaluation first), the
    chain's diagnostics per arm (percentages) and its distinct codes per solved problem (a count, a chart of its
    own). An arm that runs no chain (the control) says so in the diagnostics, and "no verified code" where no
    problem has one; an sd needs two seeds."""
    arms = list(summary["arms"].values())
    written: set[str] = set()
    if not arms:
        return written
    labels = [a["label"] for a in arms]
    base = summary.get("base")

    def series(metric: str, scale: float = 100.0, with_base: bool = True) -> list[tuple[float | None, float | None]]:
        out: list[tuple[float | None, float | None]] = []
        if with_base and base:  # one evaluation: no spread
            value = base.get(metric)
            out.append((None if value is None else scale * value, None))
        for a in arms:
            s = a["last_round"][metric]
            sd = None if s["sd"] is None or s.get("n", 0) < 2 else scale * s["sd"]
            out.append((None if s["mean"] is None else scale * s["mean"], sd))
        return out

    def save(name: str, png: bytes) -> None:
        (out_dir / name).write_bytes(png)
        written.add(name)

    first, second = eval_names(summary)
    pass1 = {f"{first} greedy": series("greedy"), f"{first} sampled (T = 1)": series("sampled"),
             f"{second} greedy": series("test2")}
    save(GRID_PLOTS[0], bars_png((["base model"] if base else []) + labels, pass1, ylim=(0.0, 100.0),
                                 title="pass@1 per arm, last round (mean ± sd over seeds)", ylabel="pass@1 (%)"))
    diag = {"sample pass rate (% of sampled codes)": series("sample_pass_rate", with_base=False),
            "drift (% of chain steps with no passing code)": series("drift", with_base=False)}
    save(GRID_PLOTS[1], bars_png(labels, diag, ylim=(0.0, 100.0), title="Chain diagnostics per arm (mean ± sd)",
                                 ylabel="share (%)", missing="no chain"))
    distinct = {"distinct verified codes per solved problem": series("distinct_per_solved", 1.0, with_base=False)}
    save(GRID_PLOTS[2], bars_png(labels, distinct, digits=2, title="Diversity per arm (mean ± sd)",
                                 ylabel="distinct codes per problem (normalised AST)", missing="no verified code"))
    return written


def grid_markdown(summary: Mapping[str, Any], plots: set[str]) -> str:
    """The grid's report: the pass@1 and diagnostics table, wall time per stage, the plots."""
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
            lines += [f"![{ALT[name]}]({name})", ""]
    return "\n".join(lines)


def write_grid_report(run_dir: str | Path, out_dir: Path) -> tuple[str, list[Path]]:
    """Write ``report.md`` and the grid's plots into ``out_dir``; return the markdown and the plot paths."""
    summary = grid_summary(Path(run_dir).resolve())
    out_dir.mkdir(parents=True, exist_ok=True)
    plots = draw_grid_plots(summary, out_dir)
    markdown = grid_markdown(summary, plots)
    (out_dir / "report.md").write_text(markdown)
    return markdown, [out_dir / name for name in GRID_PLOTS if name in plots]


# --------------------------------------------------------------------------------------------------- the laboratory

LAB_ARMS = ("gift", "gift-accept")


def lab_rows(summaries: Mapping[str, Mapping[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """One line per setting (a grid) and GiFT variant: its margin over RFT in sampled and greedy pass@1 (points,
    mean over seeds), the larger of the two arms' seed sd, whether the margin exceeds it, and the diagnostics."""
    header = ["setting", "arm", "sampled - RFT", "greedy - RFT", "larger sd", "beats RFT", "drift",
              "RFT drift", "covered", "RFT covered", "distinct / solved", "RFT distinct", "kept PPL",
              "kept styles", "correct styles"]
    rows = []
    for name, summary in summaries.items():
        arms = summary["arms"]
        rft = arms.get("rft", {}).get("last_round")
        for arm in LAB_ARMS:
            if arm not in arms or rft is None:
                continue
            m = arms[arm]["last_round"]
            margin, sd, beats = _compare(m, rft)
            rows.append([name, arms[arm]["label"], _pts(margin["sampled"]), _pts(margin["greedy"]), _pts(sd),
                         _yes(beats), _pct(m["drift"]), _pct(rft["drift"]), _num(m["covered"]), _num(rft["covered"]),
                         _num(m["distinct_per_solved"], 2), _num(rft["distinct_per_solved"], 2),
                         _num(m["kept_ppl"], 3), _styles(arms[arm], "kept_styles"),
                         _styles(arms[arm], "correct_styles")])
    return header, rows


SELF_TRAINING_ARMS = ("gift", "gift-accept", "rft", "rftrd")


def control_rows(summaries: Mapping[str, Mapping[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Whether self-training helps, per grid and across them: one line per grid and self-training arm with its margin
    over the control (same fine-tuning steps on the seed pairs) in sampled and greedy pass@1, the larger of the two
    arms' seed sd and whether the sampled margin exceeds it; then, over several grids (other domains, or other base
    models of one domain: ``pretrain.seed``), one line per arm with the margins' mean, range and how many grids it
    beats the control in, and GiFT's margin over RFT likewise, so a claim is made only where it holds in each."""
    header = ["grid", "arm", "sampled - control", "greedy - control", "larger sd", "beats control"]
    rows, pooled = [], {}
    for name, summary in summaries.items():
        arms = summary["arms"]
        control = arms.get("control", {}).get("last_round")
        if control is None:
            continue
        for arm in SELF_TRAINING_ARMS:
            if arm not in arms:
                continue
            margin, sd, beats = _compare(arms[arm]["last_round"], control)
            rows.append([name, arms[arm]["label"], _pts(margin["sampled"]), _pts(margin["greedy"]), _pts(sd),
                         _yes(beats)])
            pooled.setdefault((arms[arm]["label"], "control"), []).append((margin, beats))
        rft = arms.get("rft", {}).get("last_round")
        for arm in LAB_ARMS:
            if arm in arms and rft is not None:
                margin, _, beats = _compare(arms[arm]["last_round"], rft)
                pooled.setdefault((arms[arm]["label"], "RFT"), []).append((margin, beats))
    if len(summaries) > 1:
        for (label, over), found in sorted(pooled.items(), key=lambda kv: (kv[0][1] != "control", kv[0][0])):
            sampled = [m["sampled"] for m, _ in found if m["sampled"] is not None]
            greedy = [m["greedy"] for m, _ in found if m["greedy"] is not None]
            wins = sum(1 for _, b in found if b)
            grids = f"over {len(found)} grid{'s' if len(found) > 1 else ''}"
            rows.append([grids, f"{label} - {over}", _span(sampled), _span(greedy), "-", f"{wins} of {len(found)}"])
    return header, rows


def _compare(m: Mapping[str, Any], other: Mapping[str, Any]) -> tuple[dict[str, float | None], float | None,
                                                                    bool | None]:
    """An arm's last round against another's: the margins of sampled and greedy pass@1, the larger of the two
    arms' seed sd of sampled pass@1, and whether the sampled margin exceeds it (None where a figure is missing)."""
    margin = {k: _diff(m[k], other[k]) for k in ("sampled", "greedy")}
    sd = _larger_sd(m["sampled"], other["sampled"])
    return margin, sd, None if margin["sampled"] is None or sd is None else margin["sampled"] > sd


def _larger_sd(a: Mapping[str, Any], b: Mapping[str, Any]) -> float | None:
    return None if a["mean"] is None or b["mean"] is None else max(a["sd"] or 0.0, b["sd"] or 0.0)


def _yes(beats: bool | None) -> str:
    return "-" if beats is None else ("yes" if beats else "no")


def _span(values: list[float]) -> str:
    """Mean and range of margins in points: ``+4.1 (+2.0..+6.2)``."""
    if not values:
        return "-"
    return f"{_pts(sum(values) / len(values))} ({_pts(min(values))}..{_pts(max(values))})"


def _diff(a: Mapping[str, Any], b: Mapping[str, Any]) -> float | None:
    return None if a["mean"] is None or b["mean"] is None else a["mean"] - b["mean"]


def _pts(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:+.1f}"


def _pct(s: Mapping[str, Any]) -> str:
    return "-" if s["mean"] is None else f"{100 * s['mean']:.1f}"


def _num(s: Mapping[str, Any], digits: int = 1) -> str:
    return "-" if s["mean"] is None else f"{s['mean']:.{digits}f}"


def _styles(arm: Mapping[str, Any], key: str) -> str:
    """The code-style shares of the arm's last rounds, pooled over seeds (mean of the seeds' shares)."""
    shares: dict[str, list[float]] = {}
    cells = [c[max(c, key=int)] for c in arm["cells"].values() if c]
    for numbers in cells:
        for style, share in (numbers.get(key) or {}).items():
            shares.setdefault(style, []).append(share)
    if not shares:
        return "-"
    return " ".join(f"{style[:2]} {100 * sum(v) / len(cells):.0f}" for style, v in sorted(shares.items()))


def write_lab_report(run_dirs: Sequence[str | Path], out_dir: Path) -> str:
    """The laboratory's report over several grids (one per domain setting): ``lab.md`` in ``out_dir``."""
    summaries = {Path(d).name: grid_summary(Path(d).resolve()) for d in run_dirs}
    header, rows = lab_rows(summaries)
    lines = ["# giftgen laboratory", "",
             "Per setting (one grid each) and GiFT variant: the margin over RFT of sampled and greedy pass@1 "
             "(points, mean over seeds), the larger of the two arms' seed sd, and whether the sampled margin "
             "exceeds it; then the diagnostics of the last round (drift and coverage against RFT's, distinct "
             "verified codes per solved problem, the mean perplexity of the kept codes, and the code styles of the "
             "kept codes against those of all correct codes: in, fr, ne, mi = inplace, fresh, nested, mixed, %).",
             "", *table_lines(header, rows)[:-1], ""]
    header, rows = control_rows(summaries)
    if rows:
        lines += ["Self-training against the control (the same fine-tuning steps on the seed pairs alone), per grid "
                  "and arm; over several grids, each arm's margins (mean, and range over grids) and in how many "
                  "grids it beats the control, or RFT for the GiFT variants, by more than the larger seed sd.",
                  "", *table_lines(header, rows, right_from=2)[:-1], ""]
    for name, summary in summaries.items():
        lines += [f"## {name}", "", markdown_table(summary), ""]
    out_dir.mkdir(parents=True, exist_ok=True)
    markdown = "\n".join(lines)
    (out_dir / "lab.md").write_text(markdown)
    return markdown
