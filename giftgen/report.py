"""`giftgen report`: a markdown summary and PNG plots of one or more run directories, side by side.

Contract. Reads the layout ``giftgen run`` writes (see ``giftgen.run.rounds``): ``RUN_DIR/recipe.yaml`` and, per round,
``RUN_DIR/round-N/{chain,verify,score,select,eval}.jsonl`` (or ``.jsonl.gz``, ``.parquet``, a ``save_to_disk``
folder) and ``round-N/eval.json`` (the run's marker, whose ``result`` is ``giftgen eval``'s summary; a bare
summary, as ``giftgen eval --summary`` writes it, works too). Every piece is optional: a missing stage leaves its
table cells empty and its plot out; ``round-0`` holds the base model's evaluation only.

Writes ``OUT_DIR/report.md`` and, where there is data to draw: ``pass_at_1.png`` (pass@1 per round, one line per
run, so GiFT, RFT and RFT+RD sit on one chart), ``chain_pass_rate.png`` (pass rate per chain step),
``ppl_kept.png`` (perplexity distribution of the kept codes), ``diversity_ast.png`` and ``diversity_ngram.png``
(the two measures of ``giftgen.diversity`` per round). Kept codes are those of the deepest stage present (score,
verify, then chain) that passed and were kept (``giftgen.stats.is_kept``). Runs are labelled by the method their
recipe's (or rows') chain mode implements (``GiFT``, ``RFT``, ``RFT+RD``), or by ``--label``.

A run without a ``round-0`` of its own may borrow one (``write_report(..., bases=...)``): a cell of the miniature's
grid is such a run, whose base model the grid evaluates once for all its cells (``GRID/base/round-0``); the report
shows that evaluation as round 0, marked as shared. A directory that holds the whole grid of arms x seeds has a
report of its own (``giftgen.miniature.report``); the CLI picks which, and finds a cell's shared base.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from giftgen.config import command_config, setting
from giftgen.diversity import diversity
from giftgen.errors import ConfigError, InputError
from giftgen.plots import histogram_png, lines_png
from giftgen.publish import round_dirs, stage_output
from giftgen.records import read_rows
from giftgen.stats import (
    METHOD_NAMES,
    chain_stats,
    eval_stats,
    is_kept,
    kept_ppls,
    score_stats,
    select_stats,
    slim,
    verify_stats,
)
from giftgen.tables import table_lines
from giftgen.versions import __version__

PLOTS = ("pass_at_1.png", "chain_pass_rate.png", "ppl_kept.png", "diversity_ast.png", "diversity_ngram.png")


@command_config("report")
class ReportConfig:
    output_dir: str | None = setting(None, "Folder for report.md and the plots (default: RUN_DIR/report for one "
                                           "run, ./giftgen-report for several).", flag="-o")
    label: list[str] = setting([], "A label per RUN_DIR, in order (default: the method, e.g. GiFT, RFT, RFT+RD).")
    bins: int = setting(30, "Bins of the perplexity histogram.")
    ngram: int = setting(4, "n of the token n-grams of the pairwise diversity measure.")

    def validate(self) -> None:
        if self.bins < 1 or self.ngram < 1:
            raise ConfigError(f"bins and ngram must be >= 1, got {self.bins} and {self.ngram}")


@dataclass
class RoundData:
    round: int
    chain: dict[str, Any] | None = None
    verify: dict[str, Any] | None = None
    score: dict[str, Any] | None = None
    select: dict[str, Any] | None = None
    pass_at_1: float | None = None
    eval_problems: int | None = None
    kept_ppls: list[float] = field(default_factory=list)
    diversity: dict[str, Any] | None = None
    shared_from: Path | None = None  # a round 0 read from outside the run: the folder it came from


@dataclass
class RunData:
    path: Path
    label: str
    method: str | None
    rounds: list[RoundData]


# --------------------------------------------------------------------------------------------------- reading


def _rows(round_dir: Path, stage: str) -> list[dict[str, Any]] | None:
    path = stage_output(round_dir, stage)
    if path is None:
        return None
    return [slim(r, extra=("code",)) for r in read_rows(path)]


def _eval_summary(round_dir: Path) -> dict[str, Any] | None:
    for name in ("eval.json", "eval-summary.json", "eval_summary.json"):
        path = round_dir / name
        if path.is_file():
            try:
                data = json.loads(path.read_text())
            except json.JSONDecodeError as e:
                raise InputError(f"{path}: invalid JSON ({e})") from None
            if isinstance(data, dict) and isinstance(data.get("result"), dict):
                data = data["result"]  # giftgen run's stage marker
            if isinstance(data, dict):
                return data
    return None


def read_round(r: int, round_dir: Path, ngram: int = 4) -> RoundData:
    """The statistics of one round folder, from whatever stages it holds."""
    data = RoundData(r)
    chain, verify, score = _rows(round_dir, "chain"), _rows(round_dir, "verify"), _rows(round_dir, "score")
    select = _rows(round_dir, "select")
    data.chain = chain_stats(chain) if chain is not None else None
    data.verify = verify_stats(verify) if verify is not None else None
    data.score = score_stats(score) if score is not None else None
    data.select = select_stats(select) if select is not None else None
    data.kept_ppls = kept_ppls(score) if score is not None else []
    deepest = next((rows for rows in (score, verify, chain) if rows is not None), None)
    if deepest is not None:
        by_problem: dict[str, list[str]] = {}
        for row in deepest:
            if is_kept(row) and isinstance(row.get("code"), str):
                by_problem.setdefault(str(row.get("problem_id")), []).append(row["code"])
        data.diversity = diversity(by_problem, ngram)
    summary = _eval_summary(round_dir)
    if summary is not None:
        data.pass_at_1 = summary.get("pass@1")
        data.eval_problems = summary.get("scored_problems", summary.get("problems"))
    else:
        rows = _rows(round_dir, "eval")
        if rows is not None:
            stats = eval_stats(rows)
            data.pass_at_1, data.eval_problems = stats.get("pass@1"), stats.get("scored_problems")
    return data


def _method(run_dir: Path, rounds: list[RoundData]) -> str | None:
    recipe_path = run_dir / "recipe.yaml"
    mode = None
    if recipe_path.is_file():
        import yaml

        recipe = yaml.safe_load(recipe_path.read_text()) or {}
        mode = (recipe.get("chain") or {}).get("mode")
    if mode is None:
        mode = next((r.chain["mode"] for r in rounds if r.chain and isinstance(r.chain.get("mode"), str)), None)
    return METHOD_NAMES.get(mode, mode) if mode else None


def read_run(run_dir: str | os.PathLike, label: str | None = None, ngram: int = 4,
             base: str | os.PathLike | None = None) -> RunData:
    """Every round of a run directory (see the module docstring); ``base``: a round-0 folder to read as round 0
    when the run has none of its own (a grid's shared evaluation of the base model)."""
    root = Path(run_dir)
    if not root.is_dir():
        raise InputError(f"no such run directory: {root}")
    rounds = [read_round(r, rd, ngram) for r, rd in round_dirs(root)]
    if not rounds:
        raise InputError(f"{root} has no round-N folders", hint="give the run directory of `giftgen run` (run_dir)")
    if base is not None and all(x.round != 0 for x in rounds):
        if not Path(base).is_dir():
            raise InputError(f"no such round-0 folder: {base}")
        shared = read_round(0, Path(base), ngram)
        shared.shared_from = Path(base)
        rounds.insert(0, shared)
    method = _method(root, rounds)
    return RunData(root, label or method or root.name, method, rounds)


# --------------------------------------------------------------------------------------------------- writing


def pct(x: float | None, digits: int = 1) -> str:
    return "–" if x is None else f"{100 * x:.{digits}f}%"


def num(x: Any, digits: int = 3) -> str:
    if x is None:
        return "–"
    if isinstance(x, int) and not isinstance(x, bool):
        return str(x)
    return f"{x:.{digits}f}"


def render_markdown(runs: list[RunData], plots: set[str]) -> str:
    """The report's markdown; ``plots`` names the PNGs written beside it."""
    out = ["# giftgen report", "", f"giftgen {__version__}.", ""]
    out += table_lines(["run", "method", "directory", "rounds"],
                  [[r.label, r.method or "–", f"`{r.path}`",
                    ", ".join(f"{x.round} (shared)" if x.shared_from else str(x.round) for x in r.rounds)]
                   for r in runs],
                  right_from=4)

    out += ["## pass@1 per round", ""]
    if "pass_at_1.png" in plots:
        out += ["![pass@1 per round](pass_at_1.png)", ""]
    all_rounds = sorted({x.round for r in runs for x in r.rounds})
    by = {(r.label, x.round): x for r in runs for x in r.rounds}
    out += ["Greedy pass@1 on the held-out set (round 0: the base model).", ""]
    borrowed: dict[Path, list[str]] = {}  # a shared round-0 folder -> the runs that show it
    for r in runs:
        for x in r.rounds:
            if x.shared_from is not None:
                borrowed.setdefault(x.shared_from, []).append(r.label)
    for folder, names in borrowed.items():
        out += [f"Round 0 of {', '.join(names)}: the grid's shared evaluation of the base model, `{folder}` (the "
                f"grid evaluates the base model once for all its cells, which have no round 0 of their own).", ""]
    out += table_lines(["round", *[r.label for r in runs]],
                  [[str(k), *[pct(by[(r.label, k)].pass_at_1, 2) if (r.label, k) in by else "–" for r in runs]]
                   for k in all_rounds])

    out += ["## Chain", ""]
    rows = []
    for r in runs:
        for x in r.rounds:
            c = x.chain
            if c:
                rows.append([r.label, str(x.round), num(c["problems"]), num(c["rows"]), num(c["passed"]),
                             pct(c["pass_rate"]), num(c["problems_solved"]), num(c["kept"]),
                             num(c["problems_with_kept"])])
    out += table_lines(["run", "round", "problems", "codes", "passing", "pass rate", "problems solved", "kept codes",
                   "problems with kept"], rows, right_from=1) if rows else ["No chain rows.", ""]
    steps = sorted({s["step"] for r in runs for x in r.rounds if x.chain for s in x.chain["per_step"]})
    series = [(f"{r.label} r{x.round}", {s["step"]: s["pass_rate"] for s in x.chain["per_step"]})
              for r in runs for x in r.rounds if x.chain and x.chain["per_step"]]
    if series:
        out += ["### Pass rate per chain step", ""]
        if "chain_pass_rate.png" in plots:
            out += ["![pass rate per chain step](chain_pass_rate.png)", ""]
        out += ["Share of the codes sampled at each step that passed the problem's tests.", ""]
        out += table_lines(["step", *[name for name, _ in series]],
                      [[str(t), *[pct(s.get(t)) for _, s in series]] for t in steps])

    out += ["## Verification and selection", ""]
    rows = []
    for r in runs:
        for x in r.rounds:
            v, s = x.verify or {}, x.select or {}
            if x.verify or x.select:
                rows.append([r.label, str(x.round), num(v.get("rows")), num(v.get("passed")), num(s.get("rows")),
                             num(s.get("gold")), num(s.get("self")), num(s.get("problems_with_self")),
                             num((s.get("weight") or {}).get("mean"))])
    out += table_lines(["run", "round", "verified", "passed", "selected rows", "gold", "self", "problems with self",
                   "mean weight"], rows) if rows else ["No verify or select rows.", ""]

    out += ["## Perplexity of the kept codes", ""]
    if "ppl_kept.png" in plots:
        out += ["![perplexity of the kept codes](ppl_kept.png)", ""]
    rows = []
    for r in runs:
        for x in r.rounds:
            if x.score is not None:
                p = x.score["ppl"]
                rows.append([r.label, str(x.round), num(p["n"]), num(p["mean"]), num(p["median"]), num(p["p90"]),
                             num(p["min"]), num(p["max"])])
    out += table_lines(["run", "round", "codes", "mean", "median", "p90", "min", "max"], rows) if rows \
        else ["No score rows.", ""]

    out += ["## Diversity of the kept codes", ""]
    for name in ("diversity_ast.png", "diversity_ngram.png"):
        if name in plots:
            out += [f"![{name[:-4].replace('_', ' ')}]({name})", ""]
    ngram = next((x.diversity["ngram"] for r in runs for x in r.rounds if x.diversity), 4)
    out += [f"Per problem with kept codes: distinct programs after normalising the AST (docstrings and annotations "
            f"dropped, arguments and local variables renamed canonically), that count over the number of kept "
            f"codes (1: no two alike), and the mean pairwise Jaccard distance between the codes' token "
            f"{ngram}-gram sets (0: identical, 1: nothing shared; problems with two or more codes). Averages over "
            f"problems.", ""]
    rows = []
    for r in runs:
        for x in r.rounds:
            d = x.diversity
            if d and d["problems"]:
                rows.append([r.label, str(x.round), num(d["problems"]), num(d["codes"]), num(d["mean_codes"], 2),
                             num(d["mean_distinct_asts"], 2), num(d["mean_distinct_ratio"]),
                             num(d["mean_pairwise_distance"])])
    out += table_lines(["run", "round", "problems", "kept codes", "codes per problem", "distinct ASTs per problem",
                   "distinct ratio", f"pairwise {ngram}-gram distance"], rows) if rows else ["No kept codes.", ""]
    return "\n".join(out).rstrip("\n") + "\n"


def draw_plots(runs: list[RunData], out_dir: Path, bins: int = 30) -> set[str]:
    """Write the PNGs that have data; return their names."""
    written: set[str] = set()

    def save(name: str, png: bytes) -> None:
        (out_dir / name).write_bytes(png)
        written.add(name)

    def pts(r: RunData, key: Any) -> list[tuple[float, float | None]]:
        return [(x.round, key(x)) for x in r.rounds]

    pass1 = {r.label: [(x, None if y is None else 100 * y) for x, y in pts(r, lambda x: x.pass_at_1)] for r in runs}
    if any(y is not None for s in pass1.values() for _, y in s):
        base = [x for r in runs for x in r.rounds if x.round == 0 and x.pass_at_1 is not None]
        xlabel = "round" if not base else "round (0: the base model" + (
            ", the grid's shared evaluation)" if any(x.shared_from for x in base) else ")")
        save("pass_at_1.png", lines_png(pass1, title="pass@1 per round", xlabel=xlabel, ylabel="pass@1 (%)",
                                        ylim=(0.0, 100.0)))
    steps = {f"{r.label} r{x.round}": [(s["step"], None if s["pass_rate"] is None else 100 * s["pass_rate"])
                                       for s in x.chain["per_step"]]
             for r in runs for x in r.rounds if x.chain and x.chain["per_step"]}
    if steps:  # one colour per run, one line style per round
        groups = {f"{r.label} r{x.round}": r.label for r in runs for x in r.rounds}
        save("chain_pass_rate.png", lines_png(steps, title="Pass rate per chain step", xlabel="chain step",
                                              ylabel="passing codes (%)", ylim=(0.0, 100.0), groups=groups))
    ppls = {f"{r.label} r{x.round}": x.kept_ppls for r in runs for x in r.rounds if x.kept_ppls}
    if ppls:
        save("ppl_kept.png", histogram_png(ppls, title="Perplexity of the kept codes", xlabel="perplexity (PPL)",
                                           bins=bins, density=len(ppls) > 1))
    ast = {r.label: pts(r, lambda x: (x.diversity or {}).get("mean_distinct_asts")) for r in runs}
    if any(y is not None for s in ast.values() for _, y in s):
        save("diversity_ast.png", lines_png(ast, title="Distinct programs per problem (normalised AST)",
                                            xlabel="round", ylabel="distinct ASTs per problem (mean)"))
    grams = {r.label: pts(r, lambda x: (x.diversity or {}).get("mean_pairwise_distance")) for r in runs}
    if any(y is not None for s in grams.values() for _, y in s):
        ngram = next((x.diversity["ngram"] for r in runs for x in r.rounds if x.diversity), 4)
        save("diversity_ngram.png", lines_png(grams, title=f"Pairwise token {ngram}-gram distance of the kept codes",
                                              xlabel="round", ylabel="Jaccard distance (0: same, 1: disjoint)",
                                              ylim=(0.0, 1.05)))
    return written


@dataclass
class Report:
    markdown: str
    path: Path
    plots: list[Path]


def report_dir(run_dirs: list[str | os.PathLike], config: ReportConfig) -> Path:
    """Where the report goes: ``output_dir``, else RUN_DIR/report for one run and ./giftgen-report for several."""
    if config.output_dir is not None:
        return Path(config.output_dir)
    return Path(run_dirs[0]) / "report" if len(run_dirs) == 1 else Path("giftgen-report")


def write_report(run_dirs: list[str | os.PathLike], config: ReportConfig | None = None, *,
                 bases: Sequence[str | os.PathLike | None] | None = None,
                 default_labels: Sequence[str | None] | None = None) -> Report:
    """Read the runs, write ``report.md`` and the plots into the output folder; return them.

    Per run directory, in order: ``bases``, a round-0 folder to borrow when the run has none (``read_run``), and
    ``default_labels``, its label when ``config.label`` gives none (before the method's name)."""
    config = config or ReportConfig()
    if not run_dirs:
        raise InputError("`giftgen report` needs at least one run directory")
    if config.label and len(config.label) != len(run_dirs):
        raise ConfigError(f"{len(config.label)} labels for {len(run_dirs)} run directories",
                          hint="give one --label per RUN_DIR, in order")
    labels = list(config.label) or list(default_labels or [None] * len(run_dirs))
    shared = list(bases or [None] * len(run_dirs))
    runs = [read_run(d, label, config.ngram, base)
            for d, label, base in zip(run_dirs, labels, shared, strict=True)]
    seen: dict[str, int] = {}
    for r in runs:
        seen[r.label] = seen.get(r.label, 0) + 1
    for r in runs:  # two runs of one method: tell them apart by folder
        if seen[r.label] > 1:
            r.label = f"{r.label} ({r.path.name})"
    out_dir = report_dir(run_dirs, config)
    out_dir.mkdir(parents=True, exist_ok=True)
    plots = draw_plots(runs, out_dir, config.bins)
    markdown = render_markdown(runs, plots)
    path = out_dir / "report.md"
    path.write_text(markdown)
    return Report(markdown, path, [out_dir / name for name in PLOTS if name in plots])
