"""Scoring throughput: `giftgen score` (sorted, batched, dynamic padding) against the release's loop, same run.

    python benchmarks/bench_score.py [--rows 64] [--rounds 3] [--batch-size 16] [--hidden 256] [--layers 4]

The release scores one example at a time, each padded to 1536 tokens. Both loops here score the same verified
rows (MBPP reference solutions as codes, from tests/data) under the same random-init Llama built offline
(``tests/tiny.py``, a little bigger than the test model by default), on CPU, and must agree on every PPL. Prints
rows/s of each (median over rounds that alternate the two loops, so that machine noise hits both alike) and the
speed-up; the goal is at least 10x.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RELEASE_MAX_LENGTH = 1536


def verified_rows(n: int) -> list[dict]:
    from tests.rows import chain_rows, seed_rows

    seeds = seed_rows(ROOT / "tests" / "data", n)
    return [row for s in seeds for row in chain_rows(s, [s["reference"]])]


def release_loop(rows: list[dict], model_dir: str) -> list[float]:
    """The release's way: batch of one, padded to max length, loss over unmasked labels, exp."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from giftgen.prompts import encode_pair
    from giftgen.score import score_pair

    # loading is timed too, as it is in giftgen_loop
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    ppls = []
    with torch.inference_mode():
        for row in rows:
            pair = score_pair(row, "generating")
            ids, start = encode_pair(tok, pair["prompt"], pair["completion"])
            n = len(ids)
            input_ids = torch.full((1, RELEASE_MAX_LENGTH), tok.pad_token_id, dtype=torch.long)
            input_ids[0, :n] = torch.tensor(ids)
            mask = torch.zeros_like(input_ids)
            mask[0, :n] = 1
            labels = torch.full_like(input_ids, -100)
            labels[0, start:n] = input_ids[0, start:n]
            loss = model(input_ids=input_ids, attention_mask=mask, labels=labels).loss
            ppls.append(math.exp(float(loss)))
    return ppls


def giftgen_loop(rows: list[dict], model_dir: str, batch_size: int) -> list[float]:
    from giftgen.score import ScoreConfig, score_rows

    config = ScoreConfig(model=model_dir, device="cpu", batch_size=batch_size)
    return [r["ppl"] for r in score_rows(rows, config)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import torch

    from tests.tiny import build_tiny_model

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = str(build_tiny_model(Path(tmp) / "model", hidden=args.hidden, layers=args.layers))
        rows = verified_rows(args.rows)
        giftgen_loop(rows[:4], model_dir, args.batch_size)  # warm-up: load paths, allocator
        times_ours, times_theirs = [], []
        for _ in range(args.rounds):
            start = time.perf_counter()
            ours = giftgen_loop(rows, model_dir, args.batch_size)
            times_ours.append(time.perf_counter() - start)
            start = time.perf_counter()
            theirs = release_loop(rows, model_dir)
            times_theirs.append(time.perf_counter() - start)
    t_ours, t_theirs = statistics.median(times_ours), statistics.median(times_theirs)
    worst = max(abs(a - b) / b for a, b in zip(ours, theirs, strict=True))
    print(f"model: random Llama, hidden {args.hidden}, {args.layers} layers; {len(rows)} rows; "
          f"{args.threads} CPU threads")
    print(f"release loop (batch 1, padded to {RELEASE_MAX_LENGTH}): {len(rows) / t_theirs:8.1f} rows/s")
    print(f"giftgen score (batch {args.batch_size}, sorted, dynamic padding): {len(rows) / t_ours:8.1f} rows/s")
    per_round = ", ".join(f"{a / b:.1f}x" for a, b in zip(times_theirs, times_ours, strict=True))
    print(f"speed-up: {t_theirs / t_ours:.1f}x (medians of {args.rounds} rounds; per round: {per_round}); "
          f"largest relative PPL difference: {worst:.1e}")


if __name__ == "__main__":
    main()
