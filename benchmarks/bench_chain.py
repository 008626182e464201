"""Chain throughput: problem-steps per second, batched across problems vs one problem at a time (the release).

Runs the same Gibbs chain twice with the tiny random model (tests/tiny.py) on MBPP seed rows, on CPU:
``batched`` is ``run_chain`` over all problems (one backend call per step for the codes, one for the summaries);
``one-at-a-time`` calls ``run_chain`` on each problem alone, as the release looped over problems. Both share one
model and one sandbox. Prints problem-steps/s, the speed-up, the share of wall time spent outside the backend's
``generate`` calls (verification, extraction, bookkeeping), and whether both runs wrote the same rows (they
should: a problem's samples do not depend on which problems share a call).

    python benchmarks/bench_chain.py                      # 64 problems x 2 steps, n=3, 128 new tokens
    python benchmarks/bench_chain.py --problems 32 --steps 3 --batch-size 32
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


class TimedBackend:
    """Wraps a backend and adds up the wall time spent inside ``generate``."""

    def __init__(self, backend: Any):
        self.backend, self.model, self.name = backend, backend.model, backend.name
        self.seconds, self.calls = 0.0, 0

    def generate(self, prompts: Any, sampling: Any) -> Any:
        start = time.perf_counter()
        try:
            return self.backend.generate(prompts, sampling)
        finally:
            self.seconds += time.perf_counter() - start
            self.calls += 1

    def close(self) -> None:
        pass


def measure(label: str, run: Any, backend: TimedBackend, problem_steps: int) -> tuple[dict[str, Any], list]:
    backend.seconds, backend.calls = 0.0, 0
    start = time.perf_counter()
    rows = run()
    wall = time.perf_counter() - start
    result = {"run": label, "wall_s": round(wall, 2), "problem_steps_per_s": round(problem_steps / wall, 2),
              "generate_calls": backend.calls, "outside_generate": round(1 - backend.seconds / wall, 3)}
    print(json.dumps(result), file=sys.stderr, flush=True)
    return result, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--problems", type=int, default=64)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("-n", type=int, default=3)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=64, help="transformers backend: prompts per forward")
    parser.add_argument("--workers", type=int, default=2, help="sandbox workers")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    from giftgen.backends.hf import TransformersBackend
    from giftgen.chain import ChainConfig, exemplar_pool, run_chain
    from giftgen.config import resolve
    from giftgen.sandbox import Executor, Limits
    from giftgen.seeds import load_seeds
    from tests.tiny import build_tiny_model

    data = ROOT / "tests" / "data" / "mbpp-sanitized.json"
    problems = list(load_seeds("mbpp", str(data), "all"))[: args.problems]
    with tempfile.TemporaryDirectory() as tmp:
        model = build_tiny_model(Path(tmp) / "tiny")
        config = resolve(ChainConfig, None, {
            "model": str(model), "steps": args.steps, "n": args.n, "max_new_tokens": args.max_new_tokens,
            "desc_max_new_tokens": args.max_new_tokens, "device": "cpu"})
        backend = TimedBackend(TransformersBackend(str(model), device="cpu", batch_size=args.batch_size))
        pool = exemplar_pool(problems)
        total = len(problems) * args.steps
        print(f"chain benchmark: {len(problems)} MBPP problems x {args.steps} steps, n={args.n}, "
              f"{args.max_new_tokens} new tokens, tiny model on CPU, {args.workers} sandbox workers",
              file=sys.stderr)
        with Executor(workers=args.workers, limits=Limits()) as ex:
            ex.check(problems[0]["reference"], problems[0])  # start the workers outside the timings
            batched, rows_b = measure("batched", lambda: list(run_chain(problems, config, backend=backend,
                                                                        executor=ex)), backend, total)
            single, rows_s = measure("one-at-a-time", lambda: [
                r for p in problems for r in run_chain([p], config, backend=backend, executor=ex, exemplars=pool)
            ], backend, total)
            # What verification would cost if every code compiled (a random model's rarely do): one step's worth
            # of reference solutions through the same sandbox.
            start = time.perf_counter()
            list(ex.map([(p["reference"], p) for p in problems for _ in range(args.n)]))
            verify_step = time.perf_counter() - start
    key = lambda r: (r["problem_id"], r["step"], r["sample"])  # noqa: E731
    same = sorted(rows_b, key=key) == sorted(rows_s, key=key)
    speedup = batched["problem_steps_per_s"] / single["problem_steps_per_s"]
    statuses = dict(Counter(r["chain_status"] for r in rows_b).most_common())
    summary = {"speedup": round(speedup, 2), "same_rows": same, "batched": batched, "one_at_a_time": single,
               "chain_status": statuses, "sandbox_s_per_step_if_all_compiled": round(verify_step, 2),
               "generate_s_per_step": round((1 - batched["outside_generate"]) * batched["wall_s"] / args.steps, 2)}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
