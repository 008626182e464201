"""The miniature's report: the grid's table, wall time per stage and bar charts over seeds.

Contract. ``is_grid(dir)`` says whether a directory holds a grid (``giftgen.miniature.grid``'s layout) rather than a
single run; ``write_grid_report(dir, out_dir)`` writes ``report.md`` with pass@1 (test3 greedy and sampled, test2)
and the chain diagnostics per arm as mean ± sd over seeds, wall time per stage, ``grid_pass_at_1.png`` and
``grid_diagnostics.png`` (percentages) and ``grid_distinct.png`` (distinct codes per solved problem).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from giftgen.miniature.numbers import ARMS, eval_names, grid_summary, markdown_table, timing_rows
from giftgen.plots import bars_png
from giftgen.tables import table_lines

GRID_PLOTS = ("grid_pass_at_1.png", "grid_diagnostics.png", "grid_distinct.png")


def is_grid(run_dir: str | Path) -> bool:
    """Whether ``run_dir`` holds a grid (``run_grid``'s layout) rather than a single run."""
    root = Path(run_dir)
    return (root / "base" / "round-0").is_dir() or any((root / arm / "seed-0").is_dir() for arm in ARMS) \
        or any((root / arm).is_dir() and any((root / arm).glob("seed-*")) for arm in ARMS)



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

    first, second = eval_names(summary)
    pass1 = {f"{first} greedy": series("greedy"), f"{first} sampled (T = 1)": series("sampled"),
             f"{second} greedy": series("test2")}
    (out_dir / GRID_PLOTS[0]).write_bytes(bars_png(groups, pass1, title="pass@1 per arm (mean ± sd over seeds)",
                                                   ylabel="pass@1 (%)"))
    written.add(GRID_PLOTS[0])
    diag = {"sample pass rate": series("sample_pass_rate", base=False),
            "drift: failing steps": series("drift", base=False)}
    (out_dir / GRID_PLOTS[1]).write_bytes(bars_png(groups, diag, title="chain diagnostics per arm (mean ± sd)",
                                                   ylabel="% of codes / of chain steps"))
    written.add(GRID_PLOTS[1])
    distinct = {"distinct verified codes per solved problem": series("distinct_per_solved", 1.0, base=False)}
    (out_dir / GRID_PLOTS[2]).write_bytes(bars_png(groups, distinct, title="diversity per arm (mean ± sd)",
                                                   ylabel="distinct codes (normalised AST)"))
    written.add(GRID_PLOTS[2])
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
            margin = {k: _diff(m[k], rft[k]) for k in ("sampled", "greedy")}
            sd = max((s["sd"] or 0.0) for s in (m["sampled"], rft["sampled"]) if s["mean"] is not None) \
                if m["sampled"]["mean"] is not None and rft["sampled"]["mean"] is not None else None
            beats = "-" if margin["sampled"] is None or sd is None else ("yes" if margin["sampled"] > sd else "no")
            rows.append([name, arms[arm]["label"], _pts(margin["sampled"]), _pts(margin["greedy"]), _pts(sd), beats,
                         _pct(m["drift"]), _pct(rft["drift"]), _num(m["covered"]), _num(rft["covered"]),
                         _num(m["distinct_per_solved"], 2), _num(rft["distinct_per_solved"], 2),
                         _num(m["kept_ppl"], 3), _styles(arms[arm], "kept_styles"),
                         _styles(arms[arm], "correct_styles")])
    return header, rows


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
    for name, summary in summaries.items():
        lines += [f"## {name}", "", markdown_table(summary), ""]
    out_dir.mkdir(parents=True, exist_ok=True)
    markdown = "\n".join(lines)
    (out_dir / "lab.md").write_text(markdown)
    return markdown
