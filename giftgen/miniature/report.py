"""The miniature's report: the grid's table, wall time per stage and bar charts over seeds.

Contract. ``is_grid(dir)`` says whether a directory holds a grid (``giftgen.miniature.grid``'s layout) rather than a
single run; ``write_grid_report(dir, out_dir)`` writes ``report.md`` with pass@1 (test3 greedy and sampled, test2)
and the chain diagnostics per arm as mean ± sd over seeds, wall time per stage, ``grid_pass_at_1.png`` and
``grid_diagnostics.png`` (percentages) and ``grid_distinct.png`` (distinct codes per solved problem).
"""

from __future__ import annotations

from collections.abc import Mapping
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
