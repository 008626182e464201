"""Statistics of stage rows, computed from the rows themselves: the numbers dataset cards and reports print.

Contract. ``stage_stats(stage, rows)`` reads the rows one stage wrote (``seeds``, ``chain``, ``verify``,
``score``, ``select``, ``eval``; any other stage gets counts only) and returns plain JSON data. Each stage's
statistics come from the columns that stage itself adds (README, "The commands"); columns passed through from
earlier stages are ignored, so ``score`` rows count the scored codes, not the chain's pass rate again. Missing
optional columns give ``None`` or empty counts, never an error: a card must render for whatever was pushed.

A code is *kept* (``is_kept``) when it passed and the chain kept it: ``passed`` (``verify``) when present, else
``chain_passed``; and ``kept`` not false (the chain marks kept codes; RFT keeps every passing one). Perplexities of
kept codes are the selection candidates' (``giftgen select`` draws among them).
"""

from __future__ import annotations

import json
import math
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# The method each chain mode implements (docs/method.md, "Baselines"): the labels of reports and cards.
METHOD_NAMES = {"gibbs": "GiFT", "rft": "RFT", "rewrite": "RFT+RD"}
# Chain columns that shape the sampled codes, recorded flat on every chain row (``chain.run_columns``).
SAMPLING_COLUMNS = ("temperature", "top_p", "top_k", "max_new_tokens", "seed")


# The columns the statistics read; ``slim`` keeps only these, so that big columns (tests, raw output) of many
# rows need not sit in memory together.
STAT_COLUMNS = frozenset({
    "problem_id", "source", "split", "step", "sample", "chain_passed", "chain_status", "kept", "chain_model", "mode",
    *SAMPLING_COLUMNS, "chain_settings", "finish_reason", "passed", "status", "ppl", "score_model", "score_condition",
    "origin", "weight", "completion", "eval_model",
})


def slim(row: Mapping[str, Any], extra: Iterable[str] = ()) -> dict[str, Any]:
    """``row`` with only the columns statistics read (plus ``extra``, and every ``pass@k``)."""
    keep = STAT_COLUMNS.union(extra)
    return {k: v for k, v in row.items() if k in keep or k.startswith("pass@")}


def is_kept(row: Mapping[str, Any]) -> bool:
    """Whether ``row``'s code passed and the chain kept it (see the module docstring)."""
    passed = row["passed"] if "passed" in row else row.get("chain_passed")
    return passed is True and row.get("kept", True) is not False


def summary(values: Sequence[float]) -> dict[str, float | int | None]:
    """Count, mean, median, min, max and the 90th percentile of ``values`` (None when empty)."""
    if not values:
        return {"n": 0, "mean": None, "median": None, "min": None, "max": None, "p90": None}
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, math.ceil(0.9 * len(ordered)) - 1)]
    return {"n": len(ordered), "mean": math.fsum(ordered) / len(ordered), "median": statistics.median(ordered),
            "min": ordered[0], "max": ordered[-1], "p90": p90}


def histogram(values: Sequence[float], bins: int = 20) -> dict[str, list]:
    """Equal-width histogram of ``values``: ``edges`` (bins + 1) and ``counts`` (bins); empty lists when no values."""
    if not values:
        return {"edges": [], "counts": []}
    low, high = min(values), max(values)
    if high == low:
        high = low + 1e-9 if low == 0 else low * (1 + 1e-9)
    width = (high - low) / bins
    counts = [0] * bins
    for v in values:
        counts[min(bins - 1, int((v - low) / width))] += 1
    return {"edges": [low + i * width for i in range(bins)] + [high], "counts": counts}


def sources(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """The seed benchmarks of ``rows``: their ``source`` column, else the prefix of ``problem_id``."""
    found: set[str] = set()
    for row in rows:
        source = row.get("source")
        if not source and isinstance(row.get("problem_id"), str) and "/" in row["problem_id"]:
            source = row["problem_id"].split("/", 1)[0]
        if source:
            found.add(str(source))
    return sorted(found)


def _distinct(values: Iterable[Any]) -> Any:
    """One value when all agree, else the sorted distinct values (so a card shows a mix instead of hiding it)."""
    seen = sorted({json.dumps(v, sort_keys=True) for v in values if v is not None})
    if not seen:
        return None
    decoded = [json.loads(s) for s in seen]
    return decoded[0] if len(decoded) == 1 else decoded


def _counts(values: Iterable[Any]) -> dict[str, int]:
    counter = Counter(str(v) for v in values if v is not None)
    return dict(sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])))


# --------------------------------------------------------------------------------------------------- stages


def seeds_stats(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    return {"rows": len(rows), "problems": len({r.get("problem_id") for r in rows}),
            "splits": _counts(r.get("split") for r in rows)}


@dataclass
class StepCount:
    samples: int = 0
    passed: int = 0
    problems: set[Any] = field(default_factory=set)
    solved: set[Any] = field(default_factory=set)  # problems with a passing code at this step


@dataclass
class ChainCount:
    """One pass over chain rows, counting what every reader of them needs: the run's stage marker
    (``giftgen.run.jobs``), the report and cards (``chain_stats``) and the miniature's diagnostics.

    ``passed``: rows whose code passed in the chain (``chain_passed``); ``marked_kept``: rows the chain marked
    ``kept``; ``solved``: problems with a passing code; ``kept_problems``: problems with a row marked kept;
    ``steps``: per step (rows with an integer ``step``), samples, passes, problems and problems passed.
    """

    rows: int = 0
    passed: int = 0
    marked_kept: int = 0
    problems: set[Any] = field(default_factory=set)
    solved: set[Any] = field(default_factory=set)
    kept_problems: set[Any] = field(default_factory=set)
    steps: dict[int, StepCount] = field(default_factory=dict)

    def add(self, row: Mapping[str, Any]) -> None:
        pid, ok = row.get("problem_id"), row.get("chain_passed") is True
        self.rows += 1
        self.problems.add(pid)
        if ok:
            self.passed += 1
            self.solved.add(pid)
        if row.get("kept"):
            self.marked_kept += 1
            self.kept_problems.add(pid)
        step = row.get("step")
        if isinstance(step, int) and not isinstance(step, bool):
            s = self.steps.setdefault(step, StepCount())
            s.samples += 1
            s.problems.add(pid)
            if ok:
                s.passed += 1
                s.solved.add(pid)

    @property
    def failing_steps(self) -> int:
        """(problem, step) pairs none of whose codes passed: the step's description led to no correct code."""
        return sum(len(s.problems - s.solved) for s in self.steps.values())

    @property
    def problem_steps(self) -> int:
        return sum(len(s.problems) for s in self.steps.values())


def count_chain(rows: Iterable[Mapping[str, Any]]) -> ChainCount:
    """The ``ChainCount`` of chain rows (read once, row by row)."""
    count = ChainCount()
    for row in rows:
        count.add(row)
    return count


def chain_stats(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Counts, pass rate per step, verdicts, kept codes and the sampling settings of chain rows."""
    per_step = count_chain(rows).steps
    steps = [
        {"step": t, "samples": s.samples, "passed": s.passed,
         "pass_rate": s.passed / s.samples if s.samples else None,
         "problems": len(s.problems), "problems_passed": len(s.solved)}
        for t, s in sorted(per_step.items())
    ]
    passed = [r for r in rows if r.get("chain_passed") is True]
    kept = [r for r in passed if r.get("kept", True) is not False]
    sampling: dict[str, Any] = {k: _distinct(r.get(k) for r in rows) for k in SAMPLING_COLUMNS}
    settings = _distinct(r.get("chain_settings") for r in rows)
    if isinstance(settings, str):
        try:
            sampling.update(json.loads(settings))
        except json.JSONDecodeError:
            sampling["chain_settings"] = settings
    samples = [r.get("sample") for r in rows if isinstance(r.get("sample"), int)]
    return {
        "rows": len(rows),
        "problems": len({r.get("problem_id") for r in rows}),
        "steps": max(per_step) if per_step else None,
        "samples_per_step": max(samples) + 1 if samples else None,
        "mode": _distinct(r.get("mode") for r in rows),
        "model": _distinct(r.get("chain_model") for r in rows),
        "passed": len(passed),
        "pass_rate": len(passed) / len(rows) if rows else None,
        "problems_solved": len({r.get("problem_id") for r in passed}),
        "kept": len(kept),
        "problems_with_kept": len({r.get("problem_id") for r in kept}),
        "per_step": steps,
        "verdicts": _counts(r.get("chain_status") for r in rows),
        "finish_reasons": _counts(r.get("finish_reason") for r in rows),
        "sampling": sampling,
    }


def verify_stats(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    passed = [r for r in rows if r.get("passed") is True]
    return {
        "rows": len(rows),
        "problems": len({r.get("problem_id") for r in rows}),
        "passed": len(passed),
        "pass_rate": len(passed) / len(rows) if rows else None,
        "problems_passed": len({r.get("problem_id") for r in passed}),
        "verdicts": _counts(r.get("status") for r in rows),
    }


def kept_ppls(rows: Iterable[Mapping[str, Any]]) -> list[float]:
    """Perplexities of the kept codes among scored rows (the selection candidates)."""
    return [float(r["ppl"]) for r in rows if isinstance(r.get("ppl"), (int, float)) and is_kept(r)]


def score_stats(rows: Sequence[Mapping[str, Any]], bins: int = 20) -> dict[str, Any]:
    ppls = kept_ppls(rows)
    return {
        "rows": len(rows),
        "scored": sum(1 for r in rows if isinstance(r.get("ppl"), (int, float))),
        "kept_scored": len(ppls),
        "problems": len({r.get("problem_id") for r in rows}),
        "model": _distinct(r.get("score_model") for r in rows),
        "condition": _distinct(r.get("score_condition") for r in rows),
        "ppl": summary(ppls),
        "histogram": histogram(ppls, bins),
    }


def select_stats(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    own = [r for r in rows if r.get("origin") == "self"]
    per_problem: dict[Any, set[str]] = {}
    for r in own:
        per_problem.setdefault(r.get("problem_id"), set()).add(json.dumps(r.get("completion"), sort_keys=True))
    weights = [float(r["weight"]) for r in own if isinstance(r.get("weight"), (int, float))]
    ppls = [float(r["ppl"]) for r in own if isinstance(r.get("ppl"), (int, float))]
    return {
        "rows": len(rows),
        "problems": len({r.get("problem_id") for r in rows}),
        "gold": sum(1 for r in rows if r.get("origin") == "gold"),
        "self": len(own),
        "problems_with_self": len(per_problem),
        "distinct_per_problem": (math.fsum(len(v) for v in per_problem.values()) / len(per_problem)
                                 if per_problem else None),
        "weight": summary(weights),
        "ppl": summary(ppls),
    }


def eval_stats(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    keys = sorted({k for r in rows for k in r if k.startswith("pass@")}, key=lambda k: int(k[5:] or 0))
    out: dict[str, Any] = {"rows": len(rows), "problems": len({r.get("problem_id") for r in rows}),
                           "model": _distinct(r.get("eval_model") for r in rows)}
    for k in keys:
        values = [float(r[k]) for r in rows if isinstance(r.get(k), (int, float))]
        out[k] = math.fsum(values) / len(values) if values else None
    out["scored_problems"] = sum(1 for r in rows if isinstance(r.get("pass@1"), (int, float)))
    return out


STAGE_STATS = {"seeds": seeds_stats, "chain": chain_stats, "verify": verify_stats, "score": score_stats,
               "select": select_stats, "eval": eval_stats}


def stage_stats(stage: str, rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The statistics of one stage's rows, plus ``sources`` (the seed benchmarks the rows come from)."""
    rows = [slim(r) for r in rows]
    fn = STAGE_STATS.get(stage)
    out = fn(rows) if fn is not None else {"rows": len(rows), "problems": len({r.get("problem_id") for r in rows})}
    out["sources"] = sources(rows)
    return out
