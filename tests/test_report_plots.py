"""The report's plots, checked on the figures they are drawn from (not on pixels), and a grid cell's report.

Every figure the plain report and the grid's report write is captured as it is saved and checked for what a reader
needs: a title and labelled axes, every text inside the picture, the legend outside the axes (so it covers no data),
tick labels that do not overlap, integer rounds (also for a single round), value axes from 0, the expected series.
The runs are synthetic layouts as `giftgen run` and the grid write them (``tests/test_report.py``'s ``make_run``,
and ``make_grid`` below), with numbers chosen here.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

import giftgen.plots
from giftgen.cli import main
from giftgen.miniature import grid_cell, write_grid_report
from giftgen.report import ReportConfig, read_run, write_report
from tests.test_report import RUNS, make_run, write_jsonl


@pytest.fixture
def figures(monkeypatch) -> dict[str, object]:
    """The figures plots draw, by title, as they are saved (after layout)."""
    drawn: dict[str, object] = {}
    real = giftgen.plots.png

    def capture(fig):
        data = real(fig)
        drawn[fig.axes[0].get_title()] = fig
        return data

    monkeypatch.setattr(giftgen.plots, "png", capture)
    return drawn


def _overlap(a, b) -> bool:
    return a.x0 < b.x1 - 1 and b.x0 < a.x1 - 1 and a.y0 < b.y1 - 1 and b.y0 < a.y1 - 1


def drawn_ticklabels(axis) -> list:
    """The tick labels matplotlib draws: those of the ticks inside the view limits."""
    low, high = sorted(axis.get_view_interval())
    locs = [loc for loc in axis.get_majorticklocs() if low - 1e-9 <= loc <= high + 1e-9]
    labels = {round(float(loc), 9): label for loc, label in zip(axis.get_majorticklocs(), axis.get_ticklabels(),
                                                                strict=False)}
    return [labels[round(float(loc), 9)] for loc in locs if round(float(loc), 9) in labels]


def assert_readable(fig, *, xlabel: bool = True) -> None:
    """Title and axis labels present, every text inside the picture, legend off the data, no tick label overlaps."""
    ax = fig.axes[0]
    renderer = fig.canvas.get_renderer()
    assert ax.get_title() and ax.get_ylabel()
    assert ax.get_xlabel() if xlabel else True
    texts = [ax.title, ax.xaxis.label, ax.yaxis.label, *drawn_ticklabels(ax.xaxis), *drawn_ticklabels(ax.yaxis),
             *ax.texts]
    legend = ax.get_legend() or (fig.legends[0] if fig.legends else None)
    if legend is not None:
        texts += legend.get_texts()
        box = legend.get_window_extent(renderer)
        assert not _overlap(box, ax.get_window_extent(renderer)), "legend over data"
        assert not _overlap(box, ax.xaxis.label.get_window_extent(renderer)), "legend over the x label"
    page = fig.bbox
    for t in texts:
        if t.get_visible() and t.get_text():
            box = t.get_window_extent(renderer)
            assert page.x0 - 1 <= box.x0 and box.x1 <= page.x1 + 1, f"{t.get_text()!r} cut at the side"
            assert page.y0 - 1 <= box.y0 and box.y1 <= page.y1 + 1, f"{t.get_text()!r} cut at the top or bottom"
    frame = ax.get_window_extent(renderer)
    for t in ax.texts:  # values on bars, "no data": inside the axes, off the title
        box = t.get_window_extent(renderer)
        assert frame.y0 - 1 <= box.y0 and box.y1 <= frame.y1 + 1, f"{t.get_text()!r} leaves the axes"
        assert not _overlap(box, ax.title.get_window_extent(renderer))
    ticks = [t.get_window_extent(renderer) for t in drawn_ticklabels(ax.xaxis) if t.get_visible() and t.get_text()]
    assert not any(_overlap(a, b) for i, a in enumerate(ticks) for b in ticks[i + 1:]), "x tick labels overlap"
    assert ax.get_ylim()[0] >= 0  # no negative counts or shares


def legend_of(fig) -> list[str]:
    legend = fig.axes[0].get_legend() or fig.legends[0]
    return [t.get_text() for t in legend.get_texts()]


def xticks(fig) -> list[float]:
    ax = fig.axes[0]
    low, high = ax.get_xlim()
    return [t for t in ax.get_xticks() if low <= t <= high]


# --------------------------------------------------------------------------------------------------- plain runs


def test_every_plot_of_three_runs_reads(tmp_path, figures):
    runs = [make_run(tmp_path, mode, spec) for mode, spec in RUNS.items()]
    report = write_report([str(r) for r in runs], ReportConfig(output_dir=str(tmp_path / "out")))
    assert len(report.plots) == len(figures) == 5
    for fig in figures.values():
        assert_readable(fig)
    pass1 = figures["pass@1 per round"]
    assert legend_of(pass1) == ["GiFT", "RFT", "RFT+RD"] and len(pass1.axes[0].lines) == 3
    assert xticks(pass1) == [0, 1, 2] and pass1.axes[0].get_ylim() == (0.0, 100.0)
    assert pass1.axes[0].get_xlabel() == "round (0: the base model)" and "%" in pass1.axes[0].get_ylabel()
    # three runs start from one base model (30%): each line stays visible (its own marker, drawn smaller on top)
    lines = pass1.axes[0].lines
    assert len({line.get_marker() for line in lines}) == 3
    assert lines[0].get_markersize() > lines[1].get_markersize() > lines[2].get_markersize()

    chain = figures["Pass rate per chain step"]
    assert legend_of(chain) == ["GiFT r1", "GiFT r2", "RFT r1", "RFT r2", "RFT+RD r1", "RFT+RD r2"]
    assert xticks(chain) == [1, 2]
    gift1, gift2, rft1 = chain.axes[0].lines[:3]  # a run's rounds: one colour, two line styles
    assert gift1.get_color() == gift2.get_color() != rft1.get_color()
    assert gift1.get_linestyle() != gift2.get_linestyle()

    ppl = figures["Perplexity of the kept codes"]
    assert legend_of(ppl) == ["GiFT r1 (n=3)", "RFT r1 (n=2)", "RFT+RD r1 (n=1)"]
    assert "%" in ppl.axes[0].get_ylabel()  # series of 3, 2 and 1 codes compare as shares
    ast = figures["Distinct programs per problem (normalised AST)"]
    assert ast.axes[0].get_ylim()[0] == 0 and xticks(ast) == [1, 2]
    ngram = figures["Pairwise token 4-gram distance of the kept codes"]
    assert legend_of(ngram) == ["GiFT", "RFT"]  # RFT+RD keeps one code per problem: no pairs


def test_many_long_series_keep_their_legend_whole(tmp_path, figures):
    runs = [make_run(tmp_path / str(i), mode, {**RUNS[mode], "pass": [0.3, 0.4, 0.5, 0.55]}, rounds=3)
            for i, mode in enumerate(list(RUNS) * 2)]
    labels = [f"GiFT+accept, a long label {i}" for i in range(6)]
    write_report([str(r) for r in runs], ReportConfig(output_dir=str(tmp_path / "out"), label=labels))
    for fig in figures.values():
        assert_readable(fig)
    chain = figures["Pass rate per chain step"]
    assert len(legend_of(chain)) == 18 and chain.get_figheight() > 4.0  # taller, rather than a squeezed chart
    assert len(legend_of(figures["pass@1 per round"])) == 6


@pytest.mark.parametrize("with_base", [True, False])
def test_one_round_has_integer_rounds_and_a_full_axis(tmp_path, figures, with_base):
    run = make_run(tmp_path, "gibbs", {**RUNS["gibbs"], "pass": [0.61, 0.62]}, rounds=1)
    if not with_base:
        shutil.rmtree(run / "round-0")
    write_report([str(run)], ReportConfig(output_dir=str(tmp_path / "out")))
    for fig in figures.values():
        assert_readable(fig)
    pass1 = figures["pass@1 per round"]
    assert xticks(pass1) == ([0, 1] if with_base else [1])  # never 0.945 .. 1.050
    assert pass1.axes[0].get_ylim() == (0.0, 100.0)  # 61% and 62% are not zoomed into a slope
    assert pass1.axes[0].get_xlabel() == ("round (0: the base model)" if with_base else "round")
    for title in ("Distinct programs per problem (normalised AST)", "Pairwise token 4-gram distance of the kept codes"):
        fig = figures[title]
        assert xticks(fig) == [1] and fig.axes[0].get_ylim()[0] == 0  # one value: no 0.96 .. 1.04 zoom
    ppl = figures["Perplexity of the kept codes"]
    assert ppl.axes[0].get_ylabel() == "codes" and all(t == int(t) for t in ppl.axes[0].get_yticks())


# --------------------------------------------------------------------------------------------------- a grid

BASE = {"eval": 0.30, "eval-sampled": 0.20, "eval2": 1.00}  # a bar at the top: its value must fit
# per arm and seed: greedy pass@1 of round 1, and per problem which of its two chain codes pass (None: no chain)
ARM_CELLS = {"gift": [0.45, 0.41], "rft": [0.40, 0.38], "control": [0.33, 0.31]}
CHAIN = {"gift": [[True, False], [False, False]], "rft": [[True, True], [True, False]], "control": None}


def make_grid(root: Path) -> Path:
    """A grid as `giftgen run` lays it out (giftgen.miniature.grid): base/round-0 and <arm>/seed-<s>/round-1."""
    grid = root / "grid"
    (grid / "base" / "round-0").mkdir(parents=True)
    for label, value in BASE.items():
        (grid / "base" / "round-0" / f"{label}.json").write_text(json.dumps({"result": {"pass@1": value,
                                                                                         "problems": 100},
                                                                             "elapsed_s": 1.0}))
    for arm, values in ARM_CELLS.items():
        for seed, value in enumerate(values):
            cell = grid / arm / f"seed-{seed}"
            rd = cell / "round-1"
            rd.mkdir(parents=True)
            # the cell's recipe holds the recipe's chain mode, also for the control, which runs no chain
            (cell / "recipe.yaml").write_text(yaml.safe_dump({"run": {"rounds": 1, "base_eval": False},
                                                              "chain": {"mode": "rft" if arm == "rft" else "gibbs"}}))
            for label, v in (("eval", value), ("eval-sampled", value - 0.1), ("eval2", 0.9)):
                (rd / f"{label}.json").write_text(json.dumps({"result": {"pass@1": v, "problems": 100},
                                                              "elapsed_s": 2.0}))
            if CHAIN[arm] is None:
                continue
            chain, verify = [], []
            for p, passes in enumerate(CHAIN[arm]):
                for j, ok in enumerate(passes):
                    code = f"def f(x):\n    return x + {j + seed}\n"
                    chain.append({"problem_id": f"toy/{p}", "step": 1, "sample": j, "chain_passed": ok, "kept": ok,
                                  "code": code, "mode": "gibbs"})
                    verify.append({"problem_id": f"toy/{p}", "passed": ok, "code": code})
            write_jsonl(rd / "chain.jsonl", chain)
            write_jsonl(rd / "verify.jsonl", verify)
    return grid


def test_every_plot_of_the_grid_reads(tmp_path, figures):
    grid = make_grid(tmp_path)
    markdown, plots = write_grid_report(grid, tmp_path / "out")
    assert {p.name for p in plots} == {"grid_pass_at_1.png", "grid_diagnostics.png", "grid_distinct.png"}
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in plots)
    assert "![pass@1 per arm](grid_pass_at_1.png)" in markdown
    assert len(figures) == 3
    for fig in figures.values():
        assert_readable(fig, xlabel=False)

    def bars(fig) -> dict[str, list[float]]:
        from matplotlib.container import BarContainer

        return {c.get_label(): [p.get_height() for p in c.patches] for c in fig.axes[0].containers
                if isinstance(c, BarContainer)}

    def groups(fig) -> list[str]:
        return [t.get_text() for t in fig.axes[0].get_xticklabels()]

    pass1 = figures["pass@1 per arm, last round (mean ± sd over seeds)"]
    assert groups(pass1) == ["base model", "GiFT", "RFT", "control"]
    # a percentage axis up to 100, a little room above a bar of 100% for its value
    assert pass1.axes[0].get_ylim() == (0.0, pytest.approx(110.0)) and max(pass1.axes[0].get_yticks()) == 100
    heights = bars(pass1)
    assert list(heights) == ["eval greedy", "eval sampled (T = 1)", "eval2 greedy"]
    assert heights["eval greedy"] == pytest.approx([30.0, 43.0, 39.0, 32.0])
    # each bar says its value; the base model's single evaluation has no error bar, each arm's two seeds one
    labels = [t.get_text() for t in pass1.axes[0].texts]
    assert "30.0" in labels and "43.0" in labels
    assert len(pass1.axes[0].containers) == 3 + 3 * 3  # 3 bar series, an error bar per arm and series

    diag = figures["Chain diagnostics per arm (mean ± sd)"]
    assert groups(diag) == ["GiFT", "RFT", "control"]  # the base model runs no chain: no empty group
    assert diag.axes[0].get_ylim() == (0.0, 100.0) and "%" in diag.axes[0].get_ylabel()
    assert [len(h) for h in bars(diag).values()] == [2, 2]  # the control's chain diagnostics are missing, not 0
    assert [t.get_text() for t in diag.axes[0].texts].count("no chain") == 2
    distinct = figures["Diversity per arm (mean ± sd)"]
    assert groups(distinct) == ["GiFT", "RFT", "control"] and len(bars(distinct)) == 1
    assert "%" not in distinct.axes[0].get_ylabel()  # a count, on a chart of its own


def test_a_grid_cells_report_shows_the_shared_base_as_round_0(tmp_path, figures):
    grid = make_grid(tmp_path)
    cell = grid_cell(grid / "gift" / "seed-1")
    assert cell is not None and (cell.arm, cell.seed, cell.label) == ("gift", 1, "GiFT (seed 1)")
    assert cell.base == grid / "base" / "round-0"
    assert grid_cell(grid) is None and grid_cell(grid / "base") is None
    result = CliRunner().invoke(main, ["report", str(grid / "gift" / "seed-1"), "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    md = result.stdout
    assert "| GiFT (seed 1) | GiFT |" in md and "| 0 (shared), 1 |" in md
    assert "| round | GiFT (seed 1) |" in md and "| 0 | 30.00% |" in md and "| 1 | 41.00% |" in md
    assert f"the grid's shared evaluation of the base model, `{grid / 'base' / 'round-0'}`" in md
    pass1 = figures["pass@1 per round"]
    assert pass1.axes[0].lines[0].get_xydata().tolist() == [[0, 30.0], [1, 41.0]]
    assert pass1.axes[0].get_xlabel() == "round (0: the base model, the grid's shared evaluation)"

    # two cells side by side, the control labelled by its arm (its recipe still names GiFT's chain mode)
    result = CliRunner().invoke(main, ["report", str(grid / "gift" / "seed-0"), str(grid / "control" / "seed-0"),
                                       "-o", str(tmp_path / "two")])
    assert result.exit_code == 0, result.output
    assert "| round | GiFT (seed 0) | control (seed 0) |" in result.stdout
    assert "| 0 | 30.00% | 30.00% |" in result.stdout and "| 1 | 45.00% | 33.00% |" in result.stdout
    assert result.stdout.count("the grid's shared evaluation of the base model") == 1  # one line for both
    assert "Round 0 of GiFT (seed 0), control (seed 0): the grid's shared" in result.stdout

    # --label still names the runs; the base is still the grid's
    result = CliRunner().invoke(main, ["report", str(grid / "rft" / "seed-0"), "--label", "mine",
                                       "-o", str(tmp_path / "labelled")])
    assert result.exit_code == 0 and "| round | mine |" in result.stdout and "| 0 | 30.00% |" in result.stdout


def test_a_run_keeps_its_own_round_0_and_borrows_none_outside_a_grid(tmp_path):
    run = make_run(tmp_path, "gibbs", RUNS["gibbs"], rounds=1)
    other = tmp_path / "other" / "round-0"
    other.mkdir(parents=True)
    (other / "eval.json").write_text(json.dumps({"pass@1": 0.99}))
    data = read_run(run, base=other)  # the run's own round 0 wins
    assert data.rounds[0].pass_at_1 == 0.30 and data.rounds[0].shared_from is None
    shutil.rmtree(run / "round-0")
    data = read_run(run, base=other)
    assert data.rounds[0].pass_at_1 == 0.99 and data.rounds[0].shared_from == other
    assert [x.round for x in read_run(run).rounds] == [1]
    assert grid_cell(run) is None  # a run outside a grid: no shared base
    result = CliRunner().invoke(main, ["report", str(run), "-o", str(tmp_path / "out")])
    assert result.exit_code == 0 and "shared evaluation" not in result.stdout and "(shared)" not in result.stdout
