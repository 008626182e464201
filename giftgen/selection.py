"""`giftgen select`: perplexity-weighted draw of K codes per problem; writes TRL prompt-completion rows.

Contract (METHOD.md, step 3 and the training set of step 4):

- Candidates of a problem are its rows with ``passed`` true (``giftgen verify``) that the chain marked ``kept``
  (at most one per Gibbs step, after burn-in and thinning; rows without a ``kept`` column count as kept;
  ``--candidates passed`` ignores the mark); each has a ``ppl`` from ``giftgen score`` (not needed when T = 0,
  the uniform RFT baseline). Weights are w_j = softmax(T * p_j), or softmax(T * log p_j) with
  ``--log-ppl``; K codes are drawn by these weights, with replacement by default (a problem with one distinct code
  then contributes K copies of it), or without (then at most K distinct rows). ``--uniform-distinct`` makes a
  uniform draw (T = 0) the release's: K distinct rows when a problem has at least K, else K with replacement. ``--dedup`` first keeps one row per
  normalised code (the first one seen, with its ppl).
- Every selected code is paired with the problem's *seed* description d0 through ``prompts.training_pair``: the
  same prompt the chain and eval use, in base or chat style. With ``--include-reference`` (default), each problem
  also contributes its seed pair (d0, reference): the problems of INPUT, or those of ``--seeds FILE`` when given
  (so that problems where no code passed, possibly filtered out upstream, still contribute their seed pair).
- Output rows: ``prompt``, ``completion`` and provenance: ``problem_id``, ``origin`` ("gold" or "self"),
  ``weight`` (the drawn code's selection probability), ``ppl``, and the source row's ``chain_id`` and ``step``
  (null when absent). Problems come out in the order first seen, the seed pair before the draws.
- The draw of each problem depends only on ``--seed``, its ``problem_id`` and its rows in input order; not on
  the order of problems, or on which other problems the input holds.

The input is read once, grouped by ``problem_id`` in memory; per row only the code, its ppl and provenance are
kept (the seed columns once per problem, tests never), so large chain outputs fit.
"""

from __future__ import annotations

import ast
import math
import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from giftgen.config import command_config, setting
from giftgen.errors import ConfigError, InputError
from giftgen.records import require

# The seed-schema columns prompts need; ``tests`` is left out on purpose (MBPP+ tests are large).
SEED_COLUMNS = ("problem_id", "source", "split", "description", "reference", "entry_point", "prompt_head", "doctest")
# Provenance copied from a selected row (null when the row has no such column).
PROVENANCE = ("chain_id", "step", "sample")


@command_config("select")
class SelectConfig:
    temperature: float = setting(2.0, "Selection weight T in softmax(T * PPL), not a sampling temperature (nothing "
                                      "is generated here): > 0 favours the tail, < 0 the head, 0 is uniform (the RFT "
                                      "baseline; needs no ppl).", flag="-T")
    k: int = setting(8, "Codes drawn per problem.", flag="-k")
    seed: int = setting(0, "Seed of the draw (each problem's draw depends on it and the problem id only).")
    candidates: str = setting("kept", "Rows to draw from: passed rows the chain marked kept (its one code per step), "
                                      "or every passed row.", choices=("kept", "passed"))
    replacement: bool = setting(True, "Draw with replacement (the release) or without (at most K distinct rows).")
    uniform_distinct: bool = setting(False, "Uniform draws (T = 0): K distinct codes when a problem has at least K "
                                            "candidates, else K with replacement (the release's uniform mode).")
    dedup: bool = setting(False, "Keep one candidate per normalised code (comments and layout ignored) before drawing.")
    log_ppl: bool = setting(False, "Weight by softmax(T * log PPL) instead of softmax(T * PPL).")
    include_reference: bool = setting(True, "Also write each problem's seed pair (d0, reference solution).")
    seeds: str | None = setting(None, "Seed rows whose reference pairs to include (default: the problems in INPUT).")
    prompt_style: str = setting("base", "Prompt format of the pairs: base (plain text) or chat (messages).",
                                choices=("base", "chat", "release"))

    def validate(self) -> None:
        if self.k < 0:
            raise ConfigError(f"k must be >= 0, got {self.k}")
        if not math.isfinite(self.temperature):
            raise ConfigError(f"temperature must be finite, got {self.temperature}")


# --------------------------------------------------------------------------------------------------- weights and draws


def selection_weights(ppls: Sequence[float] | None, temperature: float, *, log_ppl: bool = False,
                      n: int | None = None) -> list[float]:
    """softmax(T * x) over x = ppls (or log ppls). With T = 0 the weights are uniform over ``n`` (or len(ppls))."""
    if temperature == 0:
        count = n if n is not None else len(ppls or ())
        return [1.0 / count] * count if count else []
    if ppls is None:
        raise ValueError("perplexities are needed when the temperature is not 0")
    xs = [temperature * (math.log(p) if log_ppl else p) for p in ppls]
    top = max(xs)  # subtract the max: exp never overflows, the softmax is unchanged
    exps = [math.exp(x - top) for x in xs]
    total = sum(exps)
    return [e / total for e in exps]


def draw(weights: Sequence[float], k: int, rng: random.Random, *, replacement: bool = True) -> list[int]:
    """Indices of ``k`` draws by ``weights``; without replacement, min(k, len(weights)) distinct indices."""
    if not weights or k <= 0:
        return []
    if replacement:
        return rng.choices(range(len(weights)), weights=weights, k=k)
    remaining = list(range(len(weights)))
    picked: list[int] = []
    for _ in range(min(k, len(weights))):
        j = rng.choices(range(len(remaining)), weights=[weights[i] for i in remaining], k=1)[0]
        picked.append(remaining.pop(j))
    return picked


def normalise_code(code: str) -> str:
    """A key under which codes that differ only in comments, blank lines or layout are equal."""
    try:
        return ast.unparse(ast.parse(code))
    except (SyntaxError, ValueError):  # unparsable code: fall back to stripping layout line by line
        return "\n".join(line.rstrip() for line in code.splitlines() if line.strip())


def problem_rng(seed: int, problem_id: str) -> random.Random:
    # random.Random hashes a str seed with SHA-512: stable across runs and Python versions
    return random.Random(f"giftgen-select:{seed}:{problem_id}")


# --------------------------------------------------------------------------------------------------- grouping


@dataclass
class Candidate:
    code: str
    ppl: float | None
    provenance: dict[str, Any]


@dataclass
class Problem:
    seed: dict[str, Any]
    candidates: list[Candidate] = field(default_factory=list)


def is_candidate(row: dict[str, Any], candidates: str = "kept") -> bool:
    """A row that passed verification and, unless ``candidates == "passed"``, that the chain did not leave unkept."""
    return row.get("passed") is True and (candidates == "passed" or row.get("kept", True) is not False)


def group_problems(rows: Iterable[dict[str, Any]], *, need_ppl: bool,
                   candidates: str = "kept") -> dict[str, Problem]:
    """Group rows by ``problem_id`` (first-seen order), keeping the seed columns once and each candidate code."""
    problems: dict[str, Problem] = {}
    for index, row in enumerate(rows, start=1):
        require(row, {"problem_id": str, "description": str, "passed": (bool, type(None))}, index, "select")
        pid = row["problem_id"]
        problem = problems.get(pid)
        if problem is None:
            problem = problems[pid] = Problem(seed={c: row.get(c) for c in SEED_COLUMNS})
        if not is_candidate(row, candidates):
            continue
        require(row, {"code": str}, index, "select")
        ppl = None
        if need_ppl:
            require(row, {"ppl": (int, float, type(None))}, index, "select")
            ppl = row["ppl"]
            if ppl is None or not math.isfinite(ppl) or ppl <= 0:
                raise InputError(
                    f"`giftgen select`: row {index} ({pid}) passed but has no usable ppl ({ppl!r})",
                    hint="score it with `giftgen score` (--all for rows the chain did not keep), or draw uniformly "
                         "with -T 0",
                )
        elif isinstance(row.get("ppl"), (int, float)):
            ppl = row["ppl"]
        problem.candidates.append(Candidate(row["code"], ppl, {c: row.get(c) for c in PROVENANCE}))
    return problems


def _dedup(candidates: list[Candidate]) -> list[Candidate]:
    seen: set[str] = set()
    out = []
    for c in candidates:
        key = normalise_code(c.code)
        if key not in seen:
            seen.add(key)
            out.append(c)
    return out


# --------------------------------------------------------------------------------------------------- selection


def select_rows(rows: Iterable[dict[str, Any]], config: SelectConfig,
                seeds: Iterable[dict[str, Any]] | None = None) -> Iterator[dict[str, Any]]:
    """The training set: seed pairs (if asked) plus K perplexity-weighted draws per problem, as TRL rows."""
    from giftgen.prompts import training_pair

    problems = group_problems(rows, need_ppl=config.temperature != 0, candidates=config.candidates)
    gold: dict[str, dict[str, Any]] = {}
    if config.include_reference:
        if seeds is not None:
            for index, row in enumerate(seeds, start=1):
                require(row, {"problem_id": str, "description": str}, index, "select --seeds")
                gold.setdefault(row["problem_id"], {c: row.get(c) for c in SEED_COLUMNS})
        else:
            gold = {pid: p.seed for pid, p in problems.items()}
    order = list(gold) + [pid for pid in problems if pid not in gold]
    empty = {c: None for c in PROVENANCE}
    for pid in order:
        seed_row = gold.get(pid)
        if seed_row is not None and isinstance(seed_row.get("reference"), str):
            pair = training_pair(seed_row, seed_row["reference"], style=config.prompt_style)
            yield {**pair, "problem_id": pid, "origin": "gold", "weight": None, "ppl": None, **empty}
        problem = problems.get(pid)
        if problem is None or not problem.candidates:
            continue
        candidates = _dedup(problem.candidates) if config.dedup else problem.candidates
        ppls = None if config.temperature == 0 else [c.ppl for c in candidates]
        weights = selection_weights(ppls, config.temperature, log_ppl=config.log_ppl, n=len(candidates))
        rng = problem_rng(config.seed, pid)
        replacement = config.replacement
        if config.temperature == 0 and config.uniform_distinct:
            replacement = len(candidates) < config.k
        for j in draw(weights, config.k, rng, replacement=replacement):
            c = candidates[j]
            pair = training_pair(problem.seed, c.code, style=config.prompt_style)
            yield {**pair, "problem_id": pid, "origin": "self", "weight": weights[j], "ppl": c.ppl, **c.provenance}
