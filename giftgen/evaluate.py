"""`giftgen eval`: greedy pass@1 and sampled pass@k of a model on seed rows, through the sandbox.

Contract. Input: seed rows (README, "Seed schema"). For each problem the model gets exactly the prompt it is
trained on: ``code_prompt(row)`` with the seed description, in ``--prompt-style`` (what ``giftgen select`` pairs
codes with and ``giftgen finetune`` trains on), with the same stop strings and code extraction as ``giftgen
chain``. It writes ``n`` samples per problem; each extracted program runs against the problem's tests in the
sandbox executor (the one ``verify`` uses). Greedy pass@1 is ``n = 1``, temperature 0; sampled pass@k uses
the unbiased estimator of Chen et al. (2021), ``1 - C(n - c, k) / C(n, k)`` for ``c`` correct samples of ``n``.

Output: one row per problem, in input order, with every input column passed through plus ``prompt`` (the exact
prompt every sample was generated from), ``samples`` (per sample:
the raw completion, the extracted ``code``, the finish reason and token count, and the executor's verdict
columns), ``n_samples``, ``n_correct``, ``pass@k`` for each requested k, and ``eval_model``. ``Tally`` turns
result rows into the summary (pass@k means, counts by verdict, by source, model, settings).

Throughput: problems are read ``window`` at a time and all their prompts go to the backend in one call per stop
list (function problems and stdin/stdout programs stop differently); every sample of the window is then queued in
the executor's worker pool, which verifies it while the next window is generated. The model is released
(``close()``) right after the last generation call, before the last window's verdicts are collected.

Infrastructure failures are not wrong code: a sample whose verdict stays ``sandbox_error`` (the executor retries
them) leaves its problem's pass@k null, so the problem is left out of the means, and the summary counts it.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import closing
from fractions import Fraction
from itertools import islice
from typing import IO, TYPE_CHECKING, Any

from giftgen.backends import BackendSettings, load_backend
from giftgen.backends.base import Sampling
from giftgen.config import command_config, sandbox_settings, setting, to_dict
from giftgen.errors import ConfigError, GiftgenError, InputError
from giftgen.models import fingerprint
from giftgen.prompts import code_prompt, code_stops, extract_code
from giftgen.records import require
from giftgen.tables import print_table

if TYPE_CHECKING:
    from giftgen.backends.base import Backend, Sampling

# The columns eval reads; every other column passes through.
REQUIRED: dict[str, type | tuple[type, ...]] = {
    "problem_id": str,
    "description": str,
    "tests": (str, dict),
    "entry_point": (str, type(None)),
    "prompt_head": (str, type(None)),
}


@command_config("eval")
class EvalConfig(BackendSettings, sandbox_settings(tests="all", timeout=4.0)):
    n: int = setting(1, "Samples per problem (1 and temperature 0: greedy pass@1).", flag="-n")
    temperature: float = setting(0.0, "Sampling temperature (0: greedy).")
    top_p: float = setting(0.95, "Top-p when sampling (1.0: off; Chen et al. 2021 sampled with 0.95).")
    top_k: int = setting(0, "Top-k when sampling (0: off).")
    max_new_tokens: int = setting(512, "New tokens per sample.")
    seed: int = setting(0, "Sampling seed.")
    k: list[str] = setting([], "k for pass@k, as a list (--k 1,10 or --k 1 --k 10); default: 1 and n.")
    prompt_style: str = setting("base", "Prompt format: base (plain text), chat (the tokenizer's chat template) or "
                                        "release (the GiFT release's prompt bytes); use the one the model was "
                                        "trained with.", choices=("base", "chat", "release"))
    extraction: str = setting("stop", "Code extraction: stop (cut at the release's stop strings) or ast (longest "
                                      "parsable prefix, helpers kept).", choices=("stop", "ast"))
    window: int = setting(1024, "Problems per round of generation then verification (all their prompts go to "
                                "the backend in one call).")

    def validate(self) -> None:
        if self.n < 1:
            raise ConfigError(f"n must be at least 1, got {self.n}")
        if self.window < 1:
            raise ConfigError(f"window must be at least 1, got {self.window}")
        self.sampling(())  # checks the sampling ranges before a model loads
        self.validate_sandbox()
        if self.n > 1 and self.temperature == 0:
            raise ConfigError(f"n = {self.n} with temperature 0 would score {self.n} copies of the greedy answer",
                              hint="give --temperature (e.g. 0.8) for pass@k, or -n 1 for greedy pass@1")
        for k in self.ks:
            if k > self.n:
                raise ConfigError(f"pass@{k} needs at least {k} samples per problem; n is {self.n}",
                                  hint=f"give -n {k} (or more) with --temperature")

    @property
    def ks(self) -> list[int]:
        """The k values, parsed from ``k`` ("1,10" and ["1", "10"] alike), sorted; default 1 and n."""
        if not self.k:
            return sorted({1, self.n})
        ks: set[int] = set()
        for item in self.k:
            for part in str(item).split(","):
                part = part.strip()
                if not part:
                    continue
                try:
                    value = int(part)
                except ValueError:
                    raise ConfigError(f"k must be whole numbers like 1,10; got {item!r}") from None
                if value < 1:
                    raise ConfigError(f"k must be at least 1, got {value}")
                ks.add(value)
        if not ks:
            raise ConfigError("k is empty", hint="give --k 1,10 or leave it out (1 and n)")
        return sorted(ks)

    def sampling(self, stop: Sequence[str]) -> Sampling:
        return Sampling(n=self.n, temperature=self.temperature, top_p=self.top_p, top_k=self.top_k,
                        max_new_tokens=self.max_new_tokens, stop=list(stop), seed=self.seed)


# --------------------------------------------------------------------------------------------------- pass@k


def pass_at_k(n: int, c: int, k: int) -> float:
    """The unbiased pass@k estimator of Chen et al. (2021): 1 - C(n - c, k) / C(n, k), rounded once to a float.

    The probability that at least one of k samples drawn without replacement from n samples (c of them correct)
    is correct. Computed with exact integers, so it holds for large n too.
    """
    if not 0 <= c <= n:
        raise ValueError(f"need 0 <= c <= n, got n={n}, c={c}")
    if not 1 <= k <= n:
        raise ValueError(f"need 1 <= k <= n, got n={n}, k={k}")
    if n - c < k:
        return 1.0
    return float(1 - Fraction(math.comb(n - c, k), math.comb(n, k)))


# --------------------------------------------------------------------------------------------------- prompts


def prompt_and_stops(row: Mapping[str, Any], config: EvalConfig) -> tuple[Any, tuple[str, ...]]:
    """The prompt for ``row`` (the training prompt: seed description, ``prompt_style``) and its stop strings.

    The stop strings are the chain's (``prompts.code_stops``), so a model is measured on codes extracted exactly
    as the ones it was trained on: the release's stops for base style with stop extraction (stdin/stdout programs
    have their own), stops that spare helper functions with AST extraction, none for chat.
    """
    return code_prompt(row, style=config.prompt_style), code_stops(row, config.prompt_style, config.extraction)


def generate_window(rows: Sequence[Mapping[str, Any]], config: EvalConfig, backend: Backend) -> list[list[Any]]:
    """The backend's completions for each row, in row order: one ``generate`` call per distinct stop list."""
    prompts: list[Any] = []
    groups: dict[tuple[str, ...], list[int]] = {}
    for i, row in enumerate(rows):
        prompt, stops = prompt_and_stops(row, config)
        prompts.append(prompt)
        groups.setdefault(stops, []).append(i)
    out: list[list[Any]] = [[] for _ in rows]
    for stops, indices in groups.items():
        completions = backend.generate([prompts[i] for i in indices], config.sampling(stops))
        for i, samples in zip(indices, completions, strict=True):
            out[i] = samples
    return out


# --------------------------------------------------------------------------------------------------- the stage


def _windows(rows: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    it = iter(rows)
    while batch := list(islice(it, size)):
        yield batch


def evaluate_rows(
    rows: Iterable[dict[str, Any]],
    config: EvalConfig,
    *,
    backend: Backend | None = None,
    executor: Any = None,
    progress: Any = None,
    timings: dict[str, float] | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield one result row per seed row, in input order (see the module docstring for the columns).

    ``backend`` defaults to the one ``config`` names, loaded when the first rows have been read and checked,
    and closed after the last generation call (a backend passed in is the caller's to close). ``executor``
    defaults to a sandbox ``Executor`` with the configured test selection and limits. Window i is verified in
    the executor's workers while window i+1 is generated. ``timings``, when given, receives the seconds spent
    in generation calls (``generate_s``) and waiting for verdicts once generation had nothing left to overlap
    with (``verify_wait_s``).
    """
    config.validate()
    ks = config.ks
    if backend is None and config.model is None:
        raise ConfigError("`giftgen eval` needs a model", hint="give --model (a Hub id or a local folder)")
    timings = timings if timings is not None else {}
    timings.setdefault("generate_s", 0.0)
    timings.setdefault("verify_wait_s", 0.0)
    own_backend = backend is None
    windows = _windows(rows, config.window)
    index = 0
    seen: dict[str, int] = {}  # problem_id -> the row it first came in: a problem counts once in pass@k
    pending: _Pending | None = None
    with _executor_context(config, executor) as ex:
        try:
            window = next(windows, None)
            while window is not None:
                for row in window:
                    index += 1
                    require(row, REQUIRED, index, "eval")
                    first = seen.setdefault(row["problem_id"], index)
                    if first != index:
                        raise InputError(f"`giftgen eval`: row {index}: problem {row['problem_id']!r} repeats row "
                                         f"{first}; each problem must come once",
                                         hint="drop the repeated rows (problem ids must be unique)")
                if backend is None:
                    backend = load_backend(config)
                start = time.perf_counter()
                completions = generate_window(window, config, backend)
                timings["generate_s"] += time.perf_counter() - start
                model = getattr(backend, "model", None) or config.model
                upcoming = next(windows, None)
                if upcoming is None and own_backend:
                    backend.close()  # free the model (GPU memory) before the last verification
                    own_backend = False
                if pending is not None:
                    yield from _finish(pending, ks, progress, timings)
                pending = _submit(window, completions, config, ex, model)
                window = upcoming
            if pending is not None:
                yield from _finish(pending, ks, progress, timings)
                pending = None
        finally:
            if pending is not None:  # stopped early: drop the queued programs rather than wait for them
                for future in pending.futures:
                    future.cancel()
            if own_backend and backend is not None:
                backend.close()


class _Pending:
    """A generated window whose programs are in the executor: rows, samples (verdicts to come), futures."""

    def __init__(self, rows: list[dict[str, Any]], samples: list[list[dict[str, Any]]], futures: list[Any],
                 model: str | None, prompts: list[Any] | None = None):
        self.prompts = prompts or [None] * len(rows)
        self.rows = rows
        self.samples = samples
        self.futures = futures
        self.model = model


def _submit(rows: list[dict[str, Any]], completions: Sequence[Sequence[Any]], config: EvalConfig, ex: Any,
            model: str | None) -> _Pending:
    """Extract every sample's code and queue it in the executor (each problem's test plan is built once)."""
    samples: list[list[dict[str, Any]]] = []
    futures: list[Any] = []
    prompts: list[Any] = []
    for row, generated in zip(rows, completions, strict=True):
        prompts.append(code_prompt(row, style=config.prompt_style))
        plan = ex.plan(row)
        mine = []
        for completion in generated:
            code = extract_code(row, completion.text, method=config.extraction, style=config.prompt_style)
            mine.append({"raw": completion.text, "code": code, "finish_reason": completion.finish_reason,
                         "tokens": completion.tokens})
            futures.append(ex.submit(code, plan))
        samples.append(mine)
    return _Pending(rows, samples, futures, model, prompts)


def _finish(pending: _Pending, ks: Sequence[int], progress: Any, timings: dict[str, float]) -> Iterator[dict[str, Any]]:
    """Wait for a window's verdicts and yield its result rows."""
    futures = iter(pending.futures)
    for row, samples, prompt in zip(pending.rows, pending.samples, pending.prompts, strict=True):
        start = time.perf_counter()
        for sample in samples:
            sample.update(next(futures).result().to_columns())
        timings["verify_wait_s"] += time.perf_counter() - start
        yield _result_row(row, samples, ks, pending.model, prompt)
        if progress is not None:
            progress.advance()


def _result_row(row: Mapping[str, Any], samples: list[dict[str, Any]], ks: Sequence[int],
                model: str | None, prompt: Any = None) -> dict[str, Any]:
    n = len(samples)
    correct = sum(1 for s in samples if s.get("passed") is True)
    broken = any(s.get("status") == "sandbox_error" for s in samples)
    out = dict(row)
    out["prompt"] = prompt  # the exact prompt every sample was generated from
    out["samples"] = samples
    out["n_samples"] = n
    out["n_correct"] = correct
    for k in ks:
        out[f"pass@{k}"] = None if broken or k > n else pass_at_k(n, correct, k)
    out["eval_model"] = model
    return out


class _borrowed:
    """A context manager around an executor the caller owns (it is not closed here)."""

    def __init__(self, ex: Any):
        self.ex = ex

    def __enter__(self) -> Any:
        return self.ex

    def __exit__(self, *exc: Any) -> None:
        return None


def _executor_context(config: EvalConfig, executor: Any) -> Any:
    if executor is not None:
        return _borrowed(executor)
    return config.executor()


# --------------------------------------------------------------------------------------------------- summary


class Tally:
    """Accumulate result rows into the summary: pass@k means, counts by verdict, per source."""

    def __init__(self, config: EvalConfig):
        self.config = config
        self.ks = config.ks
        self.problems = 0
        self.samples = 0
        self.verdicts: Counter[str] = Counter()
        self.incomplete = 0  # problems with a sandbox_error sample (no pass@k)
        self._sums: dict[str, dict[int, list[float]]] = {}
        self.models: set[str] = set()

    def add(self, row: Mapping[str, Any]) -> None:
        self.problems += 1
        self.samples += row["n_samples"]
        self.verdicts.update(s.get("status", "unknown") for s in row["samples"])
        if row.get("eval_model"):
            self.models.add(row["eval_model"])
        values = [row.get(f"pass@{k}") for k in self.ks]
        if any(v is None for v in values):
            self.incomplete += 1
            return
        for source in ("all", str(row.get("source") or "unknown")):
            sums = self._sums.setdefault(source, {k: [] for k in self.ks})
            for k, v in zip(self.ks, values, strict=True):
                sums[k].append(v)

    def track(self, rows: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for row in rows:
            self.add(row)
            yield row

    def summary(self, **extra: Any) -> dict[str, Any]:
        def means(sums: dict[int, list[float]]) -> dict[str, float | None]:
            return {f"pass@{k}": (math.fsum(v) / len(v) if v else None) for k, v in sums.items()}

        overall = self._sums.get("all", {k: [] for k in self.ks})
        by_source = {
            source: {"problems": len(next(iter(sums.values()))), **means(sums)}
            for source, sums in sorted(self._sums.items()) if source != "all"
        }
        model = self.config.model or (", ".join(sorted(self.models)) if self.models else None)
        return {
            "model": model,
            "model_sha256": fingerprint(self.config.model),
            "backend": self.config.backend,
            "problems": self.problems,
            "scored_problems": len(next(iter(overall.values()))),
            "incomplete_problems": self.incomplete,
            "samples_per_problem": self.config.n,
            "greedy": self.config.temperature == 0,
            **means(overall),
            "verdicts": dict(sorted(self.verdicts.items())),
            "by_source": by_source,
            **extra,
            "settings": to_dict(self.config),
        }


def print_summary(summary: Mapping[str, Any], file: IO[str] | None = None) -> None:
    """Print the summary as a table (pass@k by source, then all) and the verdict counts; default on stderr."""
    pass_keys = [key for key in summary if key.startswith("pass@")]
    if summary["greedy"]:
        mode = "greedy"
    else:
        mode = f"n={summary['samples_per_problem']}, temperature {summary['settings']['temperature']}"
    rows = [[source, str(entry["problems"]), *(_pct(entry[key]) for key in pass_keys)]
            for source, entry in summary["by_source"].items()]
    rows.append(["all", str(summary["scored_problems"]), *(_pct(summary[key]) for key in pass_keys)])
    notes = ["verdicts: " + ", ".join(f"{name} {count}" for name, count in summary["verdicts"].items())]
    if summary["incomplete_problems"]:
        notes.append(f"[bold red]{summary['incomplete_problems']} problem(s) had sandbox errors and are left out "
                     "of pass@k[/]")
    print_table(f"giftgen eval: {summary['model']} ({mode})", ["source", "problems", *pass_keys], rows, file=file,
                bold_last=True, notes=notes)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}%"


def check_complete(summary: Mapping[str, Any]) -> None:
    """Raise when problems met sandbox errors after retries: pass@k covers only the others, so it is no result."""
    if summary["incomplete_problems"]:
        raise GiftgenError(f"{summary['incomplete_problems']} of {summary['problems']} problems met sandbox errors "
                           f"after retries; pass@k covers the other {summary['scored_problems']}",
                           hint="see the error of their samples with status sandbox_error, then evaluate them again "
                                "(a run: rerun the same command)")


def evaluate_into(rows: Iterable[dict[str, Any]], config: EvalConfig, write: Callable[[Iterable[dict[str, Any]]], Any],
                  *, progress: Any = None, backend: Backend | None = None, executor: Any = None,
                  **extra: Any) -> dict[str, Any]:
    """Evaluate ``rows``, hand the result rows (a stream) to ``write``, and return the summary.

    The model and the sandbox workers are released even when ``write`` stops early (a closed pipe). ``extra``
    goes into the summary (the CLI records its input there).
    """
    tally = Tally(config)
    timings: dict[str, float] = {}
    start = time.perf_counter()
    with closing(evaluate_rows(rows, config, backend=backend, executor=executor, progress=progress,
                               timings=timings)) as results:
        write(tally.track(results))
    summary_extra: dict[str, Any] = {"elapsed_s": round(time.perf_counter() - start, 3)}
    summary_extra.update({k: round(v, 3) for k, v in timings.items()})
    if backend is not None:
        summary_extra["backend"] = backend.name
    return tally.summary(**summary_extra, **extra)


def evaluate(rows: Iterable[dict[str, Any]], config: EvalConfig, **kwargs: Any) -> tuple[list[dict[str, Any]],
                                                                                      dict[str, Any]]:
    """Evaluate all ``rows`` in memory: (result rows, summary). ``kwargs`` go to ``evaluate_into``."""
    results: list[dict[str, Any]] = []
    summary = evaluate_into(rows, config, results.extend, **kwargs)
    return results, summary
