"""The stages of `giftgen run` as jobs: one function per stage, from input files to an output that survives kill -9.

Contract of a stage function ``(config, inputs, output) -> result``: ``inputs`` maps names to files, ``output`` is
the file (or, for finetune, the folder) it writes, ``result`` is a JSON-able dict of counts. The output is either
complete or absent-or-replaceable, never half-counted:

- ``chain`` appends to ``output`` and, when started again, continues the rows already there
  (``chain.prepare_resume``: a half-written step is cut and written again), so a killed chain loses at most the
  step in flight;
- ``verify``, ``score``, ``select`` and ``eval`` write ``NAME.partial.jsonl`` and rename it onto ``output`` once it is
  complete and on disk, so a rerun redoes them from their inputs and never duplicates a row;
- ``finetune`` trains into ``output`` after removing what a killed attempt left there.

The caller (``giftgen.run.rounds``) records completion with a marker written after the stage returns; an output without
its marker is unfinished. Jobs run in the caller's process (``execute``) or in a child process of their own
(``python -m giftgen.run JOB.json``), which frees every byte of memory the stage's model held (GPU included,
and vLLM's reservation) when it exits. The child dies with its parent (Linux ``PR_SET_PDEATHSIG``), so a killed
run leaves no stage writing behind it.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from giftgen.chain import chain_into, check_problems
from giftgen.config import resolve
from giftgen.errors import GiftgenError, InputError
from giftgen.evaluate import check_complete, evaluate_into, print_summary
from giftgen.finetune import finetune
from giftgen.models import use_cpu_threads
from giftgen.progress import Progress
from giftgen.records import RowWriter, read_rows
from giftgen.run.recipe import STAGE_CONFIGS
from giftgen.score import score_rows
from giftgen.selection import select_rows
from giftgen.stats import count_chain
from giftgen.verify import verify_into

# The stages that load a model: run in a child process when the run isolates them.
MODEL_STAGES = ("chain", "score", "finetune", "eval")


# --------------------------------------------------------------------------------------------------- files


def fsync_path(path: Path) -> None:
    """Flush a file (and the directory entry naming it) to disk."""
    with open(path, "rb") as f:
        os.fsync(f.fileno())
    try:
        fd = os.open(path.parent, os.O_RDONLY)
    except OSError:  # some platforms cannot open a directory
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old file or the whole new one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_path(path)


def write_rows_atomic(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    """Write rows to ``NAME.partial.jsonl`` beside ``path``, then rename it onto ``path`` once complete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name.split(".")[0] + ".partial.jsonl")
    with RowWriter(tmp, in_place=True) as writer:
        writer.write_many(rows)
    fsync_path(tmp)
    os.replace(tmp, path)
    fsync_path(path)


# --------------------------------------------------------------------------------------------------- stages


def chain_stage(config: Any, inputs: dict[str, str], output: str) -> dict[str, Any]:
    out = Path(output)
    problems = check_problems(read_rows(inputs["seeds"]))

    def write(rows: Iterable[dict[str, Any]], append: bool) -> None:
        with RowWriter(out, append=append, in_place=True) as writer:  # the run's marker says when it is done
            writer.write_many(rows)

    chain_into(problems, config, write, resume_from=out if out.exists() else None)
    fsync_path(out)
    return chain_counts(read_rows(out))


def verify_stage(config: Any, inputs: dict[str, str], output: str) -> dict[str, Any]:
    # Only rows that can become selection candidates are verified again: those the chain kept (at most
    # `kept_per_step` passing codes per step, docs/method.md step 1), or with `select --candidates passed` every
    # row that passed in the chain. A row that failed there fails here too; verifying it would only cost time.
    column = "chain_passed" if inputs.get("candidates") == "passed" else "kept"
    rows = (row for row in read_rows(inputs["rows"]) if row.get(column) is True)
    # sandbox errors raise after the rows are written: no marker, so a rerun verifies again
    verify_into(rows, config, lambda verified: write_rows_atomic(Path(output), verified))
    return verify_counts(read_rows(output))


def score_stage(config: Any, inputs: dict[str, str], output: str) -> dict[str, Any]:
    with Progress("score") as progress:
        write_rows_atomic(Path(output), score_rows(read_rows(inputs["rows"]), config, progress=progress))
    return score_counts(read_rows(output))


def select_stage(config: Any, inputs: dict[str, str], output: str) -> dict[str, Any]:
    seeds = read_rows(config.seeds) if config.seeds else None
    write_rows_atomic(Path(output), select_rows(read_rows(inputs["rows"]), config, seeds))
    return select_counts(read_rows(output))


def finetune_stage(config: Any, inputs: dict[str, str], output: str) -> dict[str, Any]:
    out = Path(output)
    if out.exists() and _rank_zero():  # what a killed attempt left: train again from the start
        shutil.rmtree(out, ignore_errors=True)
    result = finetune(replace(config, output_dir=str(out)), read_rows(inputs["rows"]), dataset_name=inputs["rows"])
    return asdict(result)


def eval_stage(config: Any, inputs: dict[str, str], output: str) -> dict[str, Any]:
    with Progress("eval", unit="problems") as progress:
        summary = evaluate_into(read_rows(inputs["seeds"]), config, lambda rows: write_rows_atomic(Path(output), rows),
                                progress=progress, input=inputs["seeds"])
    print_summary(summary)
    check_complete(summary)  # as `giftgen eval`: infrastructure failures are not a result
    return summary


STAGES = {"chain": chain_stage, "verify": verify_stage, "score": score_stage, "select": select_stage,
          "finetune": finetune_stage, "eval": eval_stage}


# --------------------------------------------------------------------------------------------------- counts


def chain_counts(rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    count = count_chain(rows)
    return {"rows": count.rows, "problems": len(count.problems), "solved": len(count.kept_problems),
            "kept": count.marked_kept, "passed": count.passed}


def verify_counts(rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    statuses: Counter[str] = Counter()
    passed_problems = set()
    passed = 0
    for row in rows:
        statuses[str(row.get("status"))] += 1
        if row.get("passed") is True:
            passed += 1
            passed_problems.add(row["problem_id"])
    return {"rows": sum(statuses.values()), "passed": passed, "solved": len(passed_problems),
            "statuses": dict(sorted(statuses.items()))}


def score_counts(rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    total, ppls = 0, []
    for row in rows:
        total += 1
        if isinstance(row.get("ppl"), (int, float)):
            ppls.append(float(row["ppl"]))
    return {"rows": total, "scored": len(ppls), "mean_ppl": math.fsum(ppls) / len(ppls) if ppls else None}


def select_counts(rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    origins: Counter[str] = Counter()
    problems = set()
    for row in rows:
        origins[str(row.get("origin"))] += 1
        if row.get("origin") == "self":
            problems.add(row["problem_id"])
    return {"rows": sum(origins.values()), "gold": origins.get("gold", 0), "self": origins.get("self", 0),
            "problems_with_self": len(problems)}


# --------------------------------------------------------------------------------------------------- jobs


def execute(job: dict[str, Any]) -> dict[str, Any]:
    """Run one job: ``{"stage", "config" (the section as a dict), "inputs", "output"}`` and optionally ``"threads"``
    (torch's CPU threads, 0: its default); return its result."""
    stage = job["stage"]
    if stage not in STAGES:
        raise InputError(f"unknown stage {stage!r}; stages: {', '.join(STAGES)}")
    config = resolve(STAGE_CONFIGS[stage], job["config"])
    use_cpu_threads(int(job.get("threads") or 0))
    return STAGES[stage](config, dict(job["inputs"]), job["output"])


def die_with_parent(parent: int | None = None) -> None:
    """Linux: have the kernel SIGKILL this process when its parent dies; exit now if it already has."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    expected = os.getppid() if parent is None else parent
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != expected:  # the parent died before the line above
        os._exit(1)


def _rank_zero() -> bool:
    return os.environ.get("RANK", "0") == "0"


def main(argv: list[str] | None = None) -> int:
    """``python -m giftgen.run JOB.json``: run the job; write ``{"result": ...}`` or ``{"error": ...}`` to
    the job's ``result`` file. Exit code 0 on success, else the error's."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m giftgen.run JOB.json", file=sys.stderr)
        return 2
    die_with_parent()
    job = json.loads(Path(args[0]).read_text())
    result_path = Path(job["result"])
    # stdout is the run's stderr here (see giftgen.run.rounds), so library prints cannot reach the run's records
    try:
        result = execute(job)
    except GiftgenError as e:
        if _rank_zero():  # the run reports it, with the round and stage
            write_atomic(result_path, json.dumps({"error": str(e), "exit_code": e.exit_code}))
        else:
            print(f"Error: {e}", file=sys.stderr)
        return e.exit_code
    if _rank_zero():
        write_atomic(result_path, json.dumps({"result": result}, default=_json_default))
    return 0


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"cannot write a value of type {type(value).__name__} to JSON")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
