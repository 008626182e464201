"""`giftgen chain`: the Gibbs chain of GiFT, and its RFT and RFT+RD baselines, over seed problems.

Contract (docs/method.md, "One round" step 1, "Prompts", "Baselines"). Per problem, for steps t = 1..R:

- ``gibbs``: sample ``n`` codes from ``code_prompt(row, d)`` (d := d0 at t = 1), extract and verify them; choose
  at most ``kept_per_step`` passing codes at random; summarise the first chosen one (else the fallback code:
  the chain's last passing code, then the reference; or the reference) into the next description, one-shot
  with an exemplar (another problem's reference and seed description, drawn per problem and step; never the
  problem itself). Descriptions are never filtered. Chosen codes are marked ``kept`` on steps B+m, B+2m, ...
  (burn-in B, thinning m). Every step summarises, the last one too, so a chain can be extended later.
- gibbs variants (off by default; recorded in ``chain_settings`` when on): ``accept`` keeps a new description
  only if one of its codes passes, else the next step returns to the last description that had a passing code
  (``summary_source`` "rejected", no summary that step); ``summary_candidates`` k > 1 samples k summaries and
  continues from the first whose ``n`` probe codes (verified, then dropped) include a passing one, else the
  first (``summary_rank`` on the carrier row).
- ``rft``: codes from d0 only, the same budget (R steps x n codes); every passing code is kept.
- ``rewrite`` (RFT+RD): each step paraphrases d0 (description sampling settings), then samples n codes from the
  paraphrase; every passing code is kept. With ``rewrite_from: code`` the new description instead summarises a
  code sampled from d0 (n codes sampled and verified, one passing code chosen at random, else the reference):
  descriptions from one Gibbs step, the paper's Figure 4.

Rows: one per sampled code, passing or not, step-major (all problems' step 1, then step 2, ...; problems in input
order, samples in order). Seed columns pass through; added: ``chain_id``, ``step`` (1-based), ``sample`` (0-based),
``prompt`` (the exact code prompt the sample was generated from), ``gen_description``, ``raw``, ``code``, ``gen_tokens``, ``finish_reason``, ``chain_status``, ``chain_passed``,
``kept``, and, in gibbs mode, on the row whose code was summarised (the first chosen code; the step's first row
when none passed; null on every other row): ``next_description``, ``summary_source`` (``step``,
``last-passing``, ``reference``, or null when there was nothing to summarise and the description stays) and
``exemplar_id``; then the run: ``chain_model``, ``mode``, ``temperature``, ``top_p``, ``top_k``,
``max_new_tokens``, ``seed`` and ``chain_settings`` (the other settings that shape the rows, as a JSON string).

Determinism and resume: every random choice (exemplar, kept codes) comes from (seed, problem_id, step), and each
backend call's sampling seed from (seed, kind, step), so a problem's rows do not depend on which other problems
share a call (within the backend's own guarantee). A chain's state (current description, last passing code) is
a function of the rows already written, so ``prepare_resume`` + ``run_chain(done=...)`` continue a killed run
with exactly the rows an uninterrupted run writes.

Throughput: each step makes one backend call for all problems' code prompts (one per distinct stop list) and
one for their summaries; codes are verified in the sandbox's worker processes as soon as a call returns, and in
rft/rewrite modes while the next step generates. A problem's identical codes are verified once per run, and a
code that does not compile is judged ``syntax_error`` here, without a sandbox process.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import random
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from giftgen.backends import BackendSettings, load_backend
from giftgen.backends.base import Sampling, derive_seed
from giftgen.config import command_config, sandbox_settings, setting
from giftgen.errors import ConfigError, GiftgenError, InputError
from giftgen.models import fingerprint
from giftgen.progress import Progress, log
from giftgen.prompts import (
    SUMMARY_STOP,
    code_prompt,
    code_stops,
    extract_code,
    extract_description,
    rewrite_prompt,
    summary_prompt,
)
from giftgen.records import require
from giftgen.sandbox import Verdict, make_plan

FALLBACKS = ("last-passing", "reference")
# Settings that shape the rows besides the flat sampling columns; recorded as JSON and checked on resume.
_SETTINGS_COLUMN = ("n", "kept_per_step", "fallback", "burn_in", "thinning", "prompt_style", "extraction",
                    "desc_temperature", "desc_top_p", "desc_top_k", "desc_max_new_tokens", "tests", "max_tests",
                    "timeout")
# Chain variants, recorded in ``chain_settings`` only when set, so that the paper's chain writes the rows it did.
_VARIANT_DEFAULTS = {"accept": False, "summary_candidates": 1}


@command_config("chain")
class ChainConfig(BackendSettings, sandbox_settings(tests="base", timeout=4.0)):
    mode: str = setting("gibbs", "gibbs: GiFT's chain; rft: codes from the seed description only; rewrite: RFT+RD.",
                        choices=("gibbs", "rft", "rewrite"))
    steps: int = setting(20, "Chain steps R per problem.", flag="-R")
    n: int = setting(3, "Codes sampled per step.", flag="-n")
    temperature: float = setting(1.0, "Code sampling temperature.")
    top_p: float = setting(1.0, "Code sampling top-p (1.0: off).")
    top_k: int = setting(50, "Code sampling top-k (0: off).")
    max_new_tokens: int = setting(512, "New tokens per code.")
    desc_temperature: float = setting(1.0, "Description sampling temperature (summaries, paraphrases).")
    desc_top_p: float = setting(0.95, "Description sampling top-p (1.0: off).")
    desc_top_k: int = setting(0, "Description sampling top-k (0: off).")
    desc_max_new_tokens: int = setting(512, "New tokens per description.")
    kept_per_step: int = setting(1, "gibbs: passing codes kept per step, chosen at random (0: all).")
    fallback: str = setting("last-passing", "gibbs: code summarised when none passed: the chain's last passing "
                            "code (else the reference), or always the reference.", choices=FALLBACKS)
    accept: bool = setting(False, "gibbs variant: keep a new description only if one of its codes passes; "
                           "otherwise return to the last description that had a passing code (stops drift).")
    summary_candidates: int = setting(1, "gibbs variant: sample this many summaries per step and continue from "
                                      "the first whose n probe codes include a passing one (1: the paper's chain).")
    rewrite_from: str = setting("paraphrase", "rewrite: new descriptions paraphrase d0 (RFT+RD), or summarise a "
                                "code sampled from d0 (code: one Gibbs step from the seed, the paper's Figure 4).",
                                choices=("paraphrase", "code"))
    burn_in: int = setting(0, "gibbs: steps whose codes are never marked kept (the chain still runs them).")
    thinning: int = setting(1, "gibbs: after burn-in, mark codes kept every m-th step only.")
    prompt_style: str = setting("base", "Prompt format: base (plain text, stop strings), chat (chat template) or "
                                "release (the GiFT release's exact prompt bytes).", choices=("base", "chat", "release"))
    exemplars: str | None = setting(None, "gibbs: summary exemplars from this pool file (the release's "
                                    "ict_data*.json: a JSON list of [problem, description]; default: the other seed "
                                    "problems' own descriptions).")
    extraction: str = setting("stop", "Code extraction: stop (the release's stop strings) or ast (keeps helpers).",
                              choices=("stop", "ast"))
    seed: int = setting(0, "Random seed (sampling, exemplar choice, kept-code choice).")
    resume: bool = setting(True, "With -o FILE.jsonl: continue the rows already in FILE (a killed run); "
                           "--no-resume starts over.")

    def validate(self) -> None:
        for name, low in (("steps", 1), ("n", 1), ("kept_per_step", 0), ("burn_in", 0), ("thinning", 1),
                          ("summary_candidates", 1)):
            value = getattr(self, name)
            if value is not None and value < low:
                raise ConfigError(f"{name} must be at least {low}, got {value}")
        # Sampling checks its own ranges; build both now so a bad value fails before a model loads.
        self.code_sampling(0, [])
        self.desc_sampling(0)
        self.validate_sandbox()

    def code_sampling(self, step: int, stop: list[str], kind: str = "code") -> Any:
        return Sampling(n=self.n, temperature=float(self.temperature), top_p=float(self.top_p), top_k=self.top_k,
                        max_new_tokens=self.max_new_tokens, stop=list(stop),
                        seed=derive_seed(self.seed, kind, step))

    def desc_sampling(self, step: int, kind: str = "summary") -> Any:
        return Sampling(n=1, temperature=float(self.desc_temperature), top_p=float(self.desc_top_p),
                        top_k=self.desc_top_k, max_new_tokens=self.desc_max_new_tokens,
                        stop=list(SUMMARY_STOP) if self.prompt_style != "chat" else [],
                        seed=derive_seed(self.seed, kind, step))


# --------------------------------------------------------------------------------------------------- problems

SEED_TYPES: dict[str, type | tuple[type, ...]] = {
    "problem_id": str, "description": str, "reference": (str, type(None)), "entry_point": (str, type(None)),
    "prompt_head": str, "tests": str,
}

Exemplar = tuple[str, str, str]  # (problem_id, code, description)


@dataclass
class _Chain:
    """One problem's chain: its seed row, its test plan and the state the next step needs."""

    row: dict[str, Any]
    description: str
    plan: Any
    last_passing: str | None = None
    stops: tuple[str, ...] = ()
    accepted: str | None = None  # accept variant: the last description one of whose codes passed (d0 at first)

    def __post_init__(self) -> None:
        if self.accepted is None:
            self.accepted = self.description


def check_problems(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The seed rows as a list, each checked for the columns the chain reads; problem ids must be unique."""
    problems, seen = [], set()
    for index, row in enumerate(rows, start=1):
        require(row, SEED_TYPES, index, "chain")
        if row["problem_id"] in seen:
            raise InputError(f"`giftgen chain`: row {index} repeats problem_id {row['problem_id']!r}",
                             hint="each problem needs its own id; deduplicate the seed rows")
        seen.add(row["problem_id"])
        problems.append(row)
    return problems


def exemplar_pool(rows: Sequence[dict[str, Any]], style: str = "base") -> list[Exemplar]:
    """(problem_id, reference, seed description) of every seed row with a reference: the summary exemplars."""
    return [(r["problem_id"], reference_code(r, style), r["description"]) for r in rows if r.get("reference")]


def reference_code(row: dict[str, Any], style: str = "base") -> str:
    """The reference a summary prompt shows (an exemplar's code, or the reference fallback): in the release prompt
    style the raw bytes of the benchmark's file when the row has them (``raw_reference``), else ``reference``."""
    raw = row.get("raw_reference")
    return raw if style == "release" and isinstance(raw, str) and raw.strip() else row["reference"]


# The order of the seed set that the release's integer exemplar ids index (MBPP: its Hub splits concatenated).
_RELEASE_MBPP_ORDER = ("train", "prompt", "validation", "test")


def release_order(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The seed rows in the order of the release's problem lists: MBPP as train + prompt + validation (each by
    task id); any other source in the order given (the order of the release's own problem files)."""
    if rows and all(r.get("source") == "mbpp" and r.get("split") in _RELEASE_MBPP_ORDER for r in rows):
        def key(r: dict[str, Any]) -> tuple[int, int]:
            number = str(r["problem_id"]).rsplit("/", 1)[-1]
            return _RELEASE_MBPP_ORDER.index(r["split"]), int(number) if number.isdigit() else 0

        return sorted(rows, key=key)
    return list(rows)


def load_exemplars(path: str | Path, rows: Sequence[dict[str, Any]], style: str = "base") -> list[Exemplar]:
    """A summary exemplar pool from a file in the release's format (``ict_data*.json``): a JSON list (or JSONL) of
    ``[problem, description]``, where ``problem`` is an index into the whole seed set in the release's order
    (``release_order``) or a problem id; the exemplar's code is that problem's reference, its description the
    pool's, unchanged (in the release prompt style, the reference's raw bytes: ``reference_code``). Entries whose
    problem has no reference are left out."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read the exemplar pool {path} ({e})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        try:
            data = [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as e:
            raise InputError(f"{path}: not JSON or JSONL ({e})") from None
    if not isinstance(data, list) or not data:
        raise InputError(f"{path}: an exemplar pool is a non-empty JSON list of [problem, description]")
    ordered = release_order(rows)
    by_id = {r["problem_id"]: r for r in rows}
    pool: list[Exemplar] = []
    for n, entry in enumerate(data, start=1):
        if isinstance(entry, str):
            raise InputError(f"{path}: entry {n} is a bare string, not [problem, description] (the release's "
                             "introductory pool is malformed so): use another pool, or none (the seeds' own "
                             "descriptions)")
        if isinstance(entry, dict):
            entry = [entry.get("problem_id"), entry.get("description")]
        if not isinstance(entry, list) or len(entry) != 2 or not isinstance(entry[1], str):
            raise InputError(f"{path}: entry {n} is not [problem, description]")
        key = entry[0]
        if isinstance(key, int) and not isinstance(key, bool):
            if not 0 <= key < len(ordered):
                raise InputError(f"{path}: entry {n} names problem {key}, but the seed set has {len(ordered)} "
                                 "problems; integer ids index the whole seed set the pool was written for")
            row = ordered[key]
        elif isinstance(key, str) and key in by_id:
            row = by_id[key]
        else:
            raise InputError(f"{path}: entry {n} names problem {key!r}, which is not among the seeds")
        if row.get("reference"):
            pool.append((row["problem_id"], reference_code(row, style), entry[1]))
    return pool


def summary_exemplars(config: ChainConfig, seeds: Sequence[dict[str, Any]]) -> list[Exemplar]:
    """The summary exemplars of a run over ``seeds`` (all of them, also when this process runs a shard): the pool
    file ``config.exemplars`` when the mode summarises, else the seeds' own (reference, description) pairs."""
    if config.exemplars and (config.mode == "gibbs" or config.rewrite_from == "code"):
        return load_exemplars(config.exemplars, seeds, config.prompt_style)
    return exemplar_pool(seeds, config.prompt_style)


def draw_exemplar(pool: Sequence[Exemplar], problem_id: str, seed: int, step: int) -> Exemplar | None:
    """An exemplar for summarising ``problem_id`` at ``step``: uniform over the pool minus the problem itself."""
    own = [i for i, e in enumerate(pool) if e[0] == problem_id]
    size = len(pool) - len(own)
    if size <= 0:
        return None
    j = random.Random(derive_seed(seed, "exemplar", problem_id, step)).randrange(size)
    for i in own:  # skip the problem's own entries (sorted), so every other entry is equally likely
        if j >= i:
            j += 1
    return pool[j]


def marks_kept(config: ChainConfig, step: int) -> bool:
    """Whether step ``step``'s chosen codes are marked kept: after burn-in, every ``thinning``-th step."""
    return step > config.burn_in and (step - config.burn_in) % config.thinning == 0


def run_columns(config: ChainConfig, model: str | None) -> dict[str, Any]:
    """The columns every row of a run shares; resume checks them against the rows already written."""
    settings = {name: getattr(config, name) for name in _SETTINGS_COLUMN}
    settings.update({name: getattr(config, name) for name, default in _VARIANT_DEFAULTS.items()
                     if getattr(config, name) != default})
    if getattr(config, "exemplars", None):
        settings["exemplars"] = config.exemplars
    if config.rewrite_from != "paraphrase":
        settings["rewrite_from"] = config.rewrite_from
    return {"chain_model": model, "chain_model_sha256": fingerprint(model), "mode": config.mode, "temperature": float(config.temperature),
            "top_p": float(config.top_p), "top_k": config.top_k, "max_new_tokens": config.max_new_tokens,
            "seed": config.seed, "chain_settings": json.dumps(settings, sort_keys=True)}


def chain_id(config: ChainConfig, problem_id: str) -> str:
    return f"{config.mode}/{config.seed}/{problem_id}"


# --------------------------------------------------------------------------------------------------- the chain


def run_chain(rows: Iterable[dict[str, Any]], config: ChainConfig, *, backend: Any = None, executor: Any = None,
              exemplars: Sequence[Exemplar] | None = None, done: Sequence[dict[str, Any]] = (),
              progress: Any = None) -> Iterator[dict[str, Any]]:
    """Run the chain over the seed ``rows`` and yield its rows (module docstring), step by step.

    ``backend`` (the ``Backend`` protocol) and ``executor`` (``giftgen.sandbox.Executor``; it is given test plans
    of the configured ``tests``/``max_tests`` selection) default to the configured ones, created when the first
    step needs them and closed at the end. ``exemplars`` defaults to
    the pool built from ``rows``. ``done`` are rows of this run already written (``prepare_resume``): the chain
    state is rebuilt from them and the run continues with the next step; they are not yielded again.
    """
    problems = check_problems(rows)
    model = config.model or getattr(backend, "model", None)
    if model is None:
        raise ConfigError("`giftgen chain` needs a model", hint="give --model (a Hub id, a local folder, or "
                          "the served model name with --backend openai)")
    if not problems:
        return
    pool = summary_exemplars(config, problems) if exemplars is None else list(exemplars)

    # Test plans first: a problem whose tests cannot run is an input error before any model loads.
    chains = [_Chain(row, row["description"], make_plan(row, config.tests, config.max_tests),
                     stops=code_stops(row, config.prompt_style, config.extraction)) for row in problems]
    block = len(problems) * config.n
    if len(done) % block:
        raise ConfigError(f"resume: {len(done)} rows done is not a whole number of steps ({block} rows per step)")
    start = len(done) // block + 1
    for t in range(1, start):
        _replay(chains, done[(t - 1) * block:t * block], config)
    if progress is not None and start > 1:
        progress.skip(len(problems) * (start - 1))
    if start > config.steps:
        return
    shared = run_columns(config, model)
    with contextlib.ExitStack() as stack:
        if backend is None:
            backend = load_backend(config)
            stack.callback(backend.close)
        if executor is None:
            executor = stack.enter_context(config.executor())
        run = _Run(config, backend, executor, chains, pool, shared, progress)
        yield from run.steps(start)


def _replay(chains: list[_Chain], step_rows: Sequence[dict[str, Any]], config: ChainConfig) -> None:
    """Advance each chain's state over one step's rows already written, as the live run did."""
    if config.mode != "gibbs":
        return
    for k, chain in enumerate(chains):
        rows = step_rows[k * config.n:(k + 1) * config.n]
        if any(row.get("chain_passed") for row in rows):
            chain.accepted = rows[0].get("gen_description", chain.accepted)
        for row in rows:
            if row.get("next_description") is not None:
                chain.description = row["next_description"]
                if row.get("summary_source") == "step":
                    chain.last_passing = row["code"]


@dataclass
class _Choice:
    """One problem's step in gibbs mode: verdicts, chosen passing samples, and what the summary describes."""

    verdicts: list[Any]
    chosen: list[int]
    source: str | None  # step | last-passing | reference | rejected (accept variant) | None
    code: str | None
    exemplar: Exemplar | None

    @property
    def carrier(self) -> int:
        """The sample whose row carries the next description: the summarised code's, else the first."""
        return self.chosen[0] if self.chosen else 0


class _Run:
    """The steps of one run: generation calls, verification futures, choices and rows."""

    def __init__(self, config: ChainConfig, backend: Any, executor: Any, chains: list[_Chain],
                 pool: Sequence[Exemplar], shared: dict[str, Any], progress: Any = None):
        self.config, self.backend, self.executor = config, backend, executor
        self.chains, self.pool, self.shared, self.progress = chains, pool, shared, progress
        self.cache: dict[tuple[int, str], Future] = {}  # identical codes of a problem are verified once

    def steps(self, start: int) -> Iterator[dict[str, Any]]:
        config = self.config
        deferred: list[tuple[Any, ...]] = []
        for t in range(start, config.steps + 1):
            descriptions = self._descriptions(t)
            completions = self._codes(descriptions, t)
            codes, futures = self._verify(completions)
            if config.mode == "gibbs":
                yield from self._gibbs_rows(t, descriptions, completions, codes, futures)
                self._advance()
            else:
                # Verification of this step runs in the workers while the next step generates.
                for item in deferred:
                    yield from self._plain_rows(*item)
                    self._advance()
                deferred = [(t, descriptions, completions, codes, futures)]
        for item in deferred:
            yield from self._plain_rows(*item)
            self._advance()

    def _advance(self) -> None:
        if self.progress is not None:
            self.progress.advance(len(self.chains))

    # ----------------------------------------------------------------------------------------------- calls

    def _descriptions(self, t: int) -> list[str]:
        if self.config.mode == "gibbs":
            return [c.description for c in self.chains]
        if self.config.mode == "rft":
            return [c.row["description"] for c in self.chains]
        if self.config.rewrite_from == "code":
            return self._one_gibbs_step(t)
        prompts = [rewrite_prompt(c.row["description"], self.config.prompt_style) for c in self.chains]
        out = self.backend.generate(prompts, self.config.desc_sampling(t, "rewrite"))
        return [extract_description(samples[0].text, self.config.prompt_style) for samples in out]

    def _one_gibbs_step(self, t: int) -> list[str]:
        """``rewrite_from: code``: each problem's new description summarises a code sampled from d0 (a passing
        one chosen at random, else the reference; with neither, d0 stays): one Gibbs step from the seed."""
        config = self.config
        completions = self._codes([c.row["description"] for c in self.chains], t, kind="one-step-code")
        codes, futures = self._verify(completions)
        out = [c.row["description"] for c in self.chains]
        todo, prompts = [], []
        for i, chain in enumerate(self.chains):
            pid = chain.row["problem_id"]
            passing = [j for j, f in enumerate(futures[i]) if _verdict(f, chain, t).passed]
            if passing:
                code = codes[i][random.Random(derive_seed(config.seed, "one-step", pid, t)).choice(passing)]
            else:
                code = reference_code(chain.row, config.prompt_style) if chain.row.get("reference") else None
            if not code:
                continue
            exemplar = draw_exemplar(self.pool, pid, config.seed, t)
            todo.append(i)
            prompts.append(summary_prompt(code, exemplar[1:] if exemplar else None, config.prompt_style))
        if prompts:
            summaries = self.backend.generate(prompts, config.desc_sampling(t, "one-step"))
            for i, samples in zip(todo, summaries, strict=True):
                out[i] = extract_description(samples[0].text, config.prompt_style)
        return out

    def _codes(self, descriptions: list[str], t: int, kind: str = "code") -> list[list[Any]]:
        """One generate call per distinct stop list (usually one), all problems in it."""
        groups: dict[tuple[str, ...], list[int]] = {}
        for i, chain in enumerate(self.chains):
            groups.setdefault(chain.stops, []).append(i)
        out: list[list[Any]] = [[] for _ in self.chains]
        for stops, members in groups.items():
            prompts = [code_prompt(self.chains[i].row, descriptions[i], self.config.prompt_style) for i in members]
            results = self.backend.generate(prompts, self.config.code_sampling(t, list(stops), kind))
            for i, samples in zip(members, results, strict=True):
                out[i] = samples
        return out

    def _verify(self, completions: list[list[Any]]) -> tuple[list[list[str]], list[list[Future]]]:
        codes, futures = [], []
        for i, (chain, samples) in enumerate(zip(self.chains, completions, strict=True)):
            mine = [extract_code(chain.row, s.text, self.config.extraction, self.config.prompt_style) for s in samples]
            codes.append(mine)
            futures.append([self._submit(i, code) for code in mine])
        return codes, futures

    def _submit(self, i: int, code: str) -> Future:
        key = (i, code)
        if key not in self.cache:
            self.cache[key] = _syntax_error(code) or self.executor.submit(code, self.chains[i].plan)
        return self.cache[key]

    # ----------------------------------------------------------------------------------------------- rows

    def _gibbs_rows(self, t: int, descriptions: list[str], completions: list[list[Any]], codes: list[list[str]],
                    futures: list[list[Future]]) -> Iterator[dict[str, Any]]:
        config = self.config
        choices = [self._choose(chain, t, codes[i], [_verdict(f, chain, t) for f in futures[i]])
                   for i, chain in enumerate(self.chains)]
        todo = [i for i, c in enumerate(choices) if c.code is not None]
        prompts = [summary_prompt(choices[i].code, choices[i].exemplar[1:] if choices[i].exemplar else None,
                                  config.prompt_style) for i in todo]
        sampling = config.desc_sampling(t)
        if config.summary_candidates > 1:
            sampling = dataclasses.replace(sampling, n=config.summary_candidates)
        summaries = self.backend.generate(prompts, sampling) if prompts else []
        candidates = {i: [extract_description(c.text, config.prompt_style) for c in s]
                      for i, s in zip(todo, summaries, strict=True)}
        picked = self._best_of(candidates, t) if config.summary_candidates > 1 else {i: 0 for i in candidates}
        mark = marks_kept(config, t)
        for i, chain in enumerate(self.chains):
            choice = choices[i]
            if choice.source == "rejected":
                new = chain.accepted
            else:
                new = candidates[i][picked[i]] if i in candidates else chain.description
            lineage_extra = {"summary_rank": picked.get(i)} if config.summary_candidates > 1 else {}
            for j, completion in enumerate(completions[i]):
                here = j == choice.carrier
                yield self._row(chain, t, j, descriptions[i], completion, codes[i][j], choice.verdicts[j],
                                kept=mark and j in choice.chosen,
                                next_description=new if here else None,
                                summary_source=choice.source if here else None,
                                exemplar_id=choice.exemplar[0] if here and choice.exemplar else None,
                                **{k: v if here else None for k, v in lineage_extra.items()})
            if choice.chosen:
                chain.accepted = descriptions[i]
            chain.description = new
            if choice.source == "step":
                chain.last_passing = choice.code

    def _best_of(self, candidates: dict[int, list[str]], t: int) -> dict[int, int]:
        """Best-of-k summaries: per problem, the first candidate description whose ``n`` probe codes include a
        passing one (the first candidate when none does). The probe codes are sampled in one call per stop list
        with their own seeds; they are verified, then dropped (the next step samples its own codes)."""
        order = [(i, r) for i in sorted(candidates) for r in range(len(candidates[i]))]
        groups: dict[tuple[str, ...], list[tuple[int, int]]] = {}
        for i, r in order:
            groups.setdefault(self.chains[i].stops, []).append((i, r))
        futures: dict[tuple[int, int], list[Future]] = {}
        for stops, members in groups.items():
            prompts = [code_prompt(self.chains[i].row, candidates[i][r], self.config.prompt_style)
                       for i, r in members]
            sampling = self.config.code_sampling(t, list(stops), "probe")
            for (i, r), samples in zip(members, self.backend.generate(prompts, sampling), strict=True):
                row = self.chains[i].row
                futures[(i, r)] = [self._submit(i, extract_code(row, s.text, self.config.extraction,
                                                                self.config.prompt_style)) for s in samples]
        picked = {}
        for i in sorted(candidates):
            picked[i] = next((r for r in range(len(candidates[i]))
                              if any(_verdict(f, self.chains[i], t).passed for f in futures[(i, r)])), 0)
        return picked

    def _choose(self, chain: _Chain, t: int, codes: list[str], verdicts: list[Any]) -> _Choice:
        """Which passing codes this step keeps, and which code (and exemplar) its summary describes."""
        config = self.config
        pid = chain.row["problem_id"]
        passing = [j for j, v in enumerate(verdicts) if v.passed]
        k = len(passing) if config.kept_per_step == 0 else min(config.kept_per_step, len(passing))
        chosen = random.Random(derive_seed(config.seed, "keep", pid, t)).sample(passing, k)
        if chosen:
            source, code = "step", codes[chosen[0]]
        elif config.accept and t > 1 and chain.description != chain.accepted:
            source, code = "rejected", None  # back to the last description that had a passing code
        elif config.fallback == "last-passing" and chain.last_passing is not None:
            source, code = "last-passing", chain.last_passing
        elif chain.row.get("reference"):
            source, code = "reference", reference_code(chain.row, config.prompt_style)
        else:  # nothing to summarise: the description stays
            source, code = None, None
        exemplar = draw_exemplar(self.pool, pid, config.seed, t) if code is not None else None
        return _Choice(verdicts, chosen, source, code, exemplar)

    def _plain_rows(self, t: int, descriptions: list[str], completions: list[list[Any]], codes: list[list[str]],
                    futures: list[list[Future]]) -> Iterator[dict[str, Any]]:
        # every verdict first: a sandbox failure must not leave half a step behind
        verdicts = [[_verdict(f, chain, t) for f in fs] for chain, fs in zip(self.chains, futures, strict=True)]
        for i, chain in enumerate(self.chains):
            for j, completion in enumerate(completions[i]):
                verdict = verdicts[i][j]
                yield self._row(chain, t, j, descriptions[i], completion, codes[i][j], verdict,
                                kept=bool(verdict.passed), next_description=None, summary_source=None,
                                exemplar_id=None)

    def _row(self, chain: _Chain, t: int, j: int, description: str, completion: Any, code: str, verdict: Any,
             **lineage: Any) -> dict[str, Any]:
        row = dict(chain.row)
        row.update({
            "chain_id": chain_id(self.config, chain.row["problem_id"]), "step": t, "sample": j,
            "prompt": code_prompt(chain.row, description, self.config.prompt_style),
            "gen_description": description, "raw": completion.text, "code": code,
            "gen_tokens": completion.tokens, "finish_reason": completion.finish_reason,
            "chain_status": verdict.status, "chain_passed": bool(verdict.passed),
        })
        row.update(lineage)
        row.update(self.shared)
        return row


def _verdict(future: Future, chain: _Chain, step: int) -> Any:
    """The verdict of a code; an infrastructure failure stops the run rather than pass for a wrong code."""
    verdict = future.result()
    if verdict.status == "sandbox_error":
        lines = (verdict.error or "").strip().splitlines()
        raise GiftgenError(
            f"the sandbox failed on a code of {chain.row['problem_id']} at step {step}: "
            f"{lines[-1] if lines else 'no detail'}",
            hint="the steps before it are written; run the same command again (with -o FILE.jsonl) to resume")
    return verdict


def _syntax_error(code: str) -> Future | None:
    """A finished ``syntax_error`` verdict when ``code`` does not compile, else None.

    Weak models write many programs that do not parse; each would cost the sandbox a process to say so.
    Compiling runs none of the code, so it is safe here, and it is the same compiler the sandbox's child uses.
    """
    try:
        with warnings.catch_warnings():  # "invalid escape sequence" and the like: the program's, not ours
            warnings.simplefilter("ignore")
            compile(code, "<program>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError, OverflowError, RecursionError, MemoryError) as e:
        future: Future = Future()
        future.set_result(Verdict("syntax_error", False, error=f"{type(e).__name__}: {e}"))
        return future
    return None


# --------------------------------------------------------------------------------------------------- resume


def prepare_resume(path: str | Path, rows: Sequence[dict[str, Any]], config: ChainConfig) -> list[dict[str, Any]]:
    """The rows of this run already in the JSONL file ``path``, cut to whole steps (the file is truncated to match).

    A run killed mid-step leaves part of a step (and maybe half a line); both are cut, and ``run_chain(done=...)``
    writes that step again, so the file ends as an uninterrupted run's. Rows of another run (other problems,
    seed, model or settings) are a ``ConfigError``: the file is left untouched.
    """
    path = Path(path)
    if not path.exists():
        return []
    problems = check_problems(rows)
    shared = run_columns(config, config.model)
    block = len(problems) * config.n
    lines = path.read_bytes().splitlines(keepends=True)
    if lines and not lines[-1].endswith(b"\n"):
        lines.pop()  # half a line: the run was killed while writing it
    done: list[dict[str, Any]] = []
    for k, line in enumerate(lines):
        if not line.strip():
            break
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            raise ConfigError(f"{path}, line {k + 1}: invalid JSON, cannot resume",
                              hint="use --no-resume to start over, or another -o") from None
        if block == 0 or k // block >= config.steps:
            raise ConfigError(f"{path} holds more rows than {config.steps} steps of this run write",
                              hint="raise --steps to extend the chain, or use --no-resume")
        within = k % block
        expected = {"problem_id": problems[within // config.n]["problem_id"], "step": k // block + 1,
                    "sample": within % config.n, **shared}
        difference = _difference(row, expected)
        if difference:
            key, got, want = difference
            raise ConfigError(f"{path}, line {k + 1}: rows of another run ({key} is {got!r}, this run: "
                              f"{want!r}); cannot resume", hint="use --no-resume to start over, or another -o")
        done.append(row)
    keep = len(done) - len(done) % block if block else 0
    size = sum(len(line) for line in lines[:keep])
    if size != path.stat().st_size:
        with open(path, "rb+") as f:
            f.truncate(size)
    return done[:keep]



def _difference(row: Any, expected: dict[str, Any]) -> tuple[str, Any, Any] | None:
    """The first (column, found, expected) where ``row`` differs; inside ``chain_settings``, the setting."""
    if not isinstance(row, dict):
        return ("row", row, "an object")
    for key, want in expected.items():
        got = row.get(key)
        if got == want:
            continue
        if key == "chain_settings" and isinstance(got, str):
            try:
                old, new = json.loads(got), json.loads(want)
            except json.JSONDecodeError:
                return (key, got, want)
            for name in sorted(set(old) | set(new)):
                if old.get(name) != new.get(name):
                    return (name, old.get(name), new.get(name))
        return (key, got, want)
    return None


def chain_into(problems: Sequence[dict[str, Any]], config: ChainConfig,
               write: Callable[[Iterable[dict[str, Any]], bool], Any], *, resume_from: str | Path | None = None,
               backend: Any = None, exemplars: Sequence[Exemplar] | None = None) -> int:
    """Run the chain over ``problems`` with progress on stderr and hand its rows to ``write(rows, append)``, which
    consumes them: what `giftgen chain` and `giftgen run`'s chain job both call.

    With ``resume_from`` (a JSONL file of an earlier run of the same settings), the rows already there are cut to
    whole steps (``prepare_resume``) and the chain continues after them: ``write`` is then told to append to that
    file (``append=True``). The rows always end up closed (the backend and sandbox the chain loaded, too; a
    ``backend`` passed in is the caller's to close). Returns how many rows were there before.
    """
    done = prepare_resume(resume_from, problems, config) if resume_from is not None else []
    if done:
        log(f"chain: resuming {resume_from} after step {len(done) // max(1, len(problems) * config.n)}")
    with Progress("chain", total=len(problems) * config.steps, unit="problem-steps") as progress, \
            contextlib.closing(run_chain(problems, config, backend=backend, exemplars=exemplars, done=done,
                                         progress=progress)) as rows:
        write(rows, bool(done))
    return len(done)
