"""Generation throughput on a real model: plain ``generate``, the transformers backend, the llamacpp backend.

    python benchmarks/bench_generate.py --model SmolLM2-135M-Instruct.Q4_1.gguf [--prompts 8] [--batch 1,8]
        [--max-new-tokens 96] [--threads 2] [--style chat] [--n 1] [--llamacpp-model OTHER.gguf]...
        [--step code|summary] [--no-plain] [--unshared] [--plain-layouts] [--unwidened]

``--model`` is a GGUF file (``../shared/tools/real-models.sh`` fetches two): transformers loads it dequantized
to float32, llama.cpp runs it as it is. The prompts are giftgen's own code prompts for the first MBPP problems
(``tests/data``), sampled at T = 1 with the chain's settings (top-p 1, top-k off, a seed) until EOS or
``--max-new-tokens``, ``--n`` samples per prompt (the chain's code step takes 3); ``--step summary`` takes the
summary step's one-shot prompts instead (a reference code to describe, another problem as the exemplar; the
chain takes 1 sample of each). For each batch size it runs, in
one process and alternating:

- **plain**: ``model.generate(do_sample=True)`` on left-padded batches, transformers' own sampler;
- **transformers**: giftgen's transformers backend (batch-independent seeding, stop strings) at that batch size;
- **llamacpp**: giftgen's llamacpp backend with ``parallel`` = the batch size (that many sequences decoded
  together, every thread on each batch), if llama-cpp-python is installed;
- **llamacpp FILE** for each ``--llamacpp-model FILE``: the same on another GGUF of the model, e.g. its exact F32
  dequantization (``scripts/dequantize-gguf.py``: the weights transformers runs);
- **llamacpp-unshared** (``--unshared``): the same with each sample reading its own copy of its prompt, as
  before prompts were shared (their ratio is what sharing a prompt's read between its ``n`` samples gives);
- **llamacpp-plain-layouts** (``--plain-layouts``): the same without llama.cpp's extra weight layouts (AMX's
  tiles, the repacked ones), as a build whose AMX kernels fail runs (their ratio is what the layouts give);
- **llamacpp-unwidened** (``--unwidened``): the same on the file as it is, where llamacpp runs its Q5_0 tensors
  as Q8_0 (``giftgen.backends.widen``: where AMX's kernels work; their ratio is what widening gives).

``--no-plain`` leaves out the plain loop and its ratio. Prints generated tokens/s of each and the ratios
transformers/plain (goal: at least 0.9) and llamacpp/transformers (goal: at least 2; one per GGUF), each the
median of ``--rounds`` rounds that alternate the loops' order. Machines are noisy:
compare the ratios of one run, not absolute figures across runs, and run it alone. The load average before and
after and ``OMP_WAIT_POLICY`` (both engines wait at OpenMP barriers: on a machine shared with other jobs,
``PASSIVE`` avoids threads spinning for a core that another job holds) are printed with the table.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def mbpp_prompts(n: int, style: str, step: str = "code") -> list:
    """The chain's prompts for the first ``n`` MBPP problems: its code step's, or its summary step's (each
    problem's reference code, the next problem's code and description as the exemplar)."""
    from giftgen.prompts import code_prompt, summary_prompt
    from tests.rows import seed_rows

    rows = seed_rows(ROOT / "tests" / "data", n + 1)
    if step == "code":
        return [code_prompt(row, style=style) for row in rows[:n]]
    return [summary_prompt(row["reference"], (other["reference"], other["description"]), style=style)
            for row, other in zip(rows[:n], rows[1:], strict=True)]


def plain(backend, prompts: list, batch: int, max_new_tokens: int, n: int = 1) -> int:
    """Generated tokens (EOS included, padding never) of transformers' own sampling loop."""
    import torch

    tok, lm = backend.tokenizer, backend.lm
    tokens = 0
    for start in range(0, len(prompts), batch):
        ids = [backend._encode(backend._render(p), chat=not isinstance(p, str)) for p in prompts[start:start + batch]]
        width = max(map(len, ids))
        input_ids = torch.full((len(ids), width), backend.pad_id, dtype=torch.long)
        mask = torch.zeros_like(input_ids)
        for r, x in enumerate(ids):
            input_ids[r, width - len(x):] = torch.tensor(x)
            mask[r, width - len(x):] = 1
        with torch.inference_mode():
            out = lm.generate(input_ids=input_ids, attention_mask=mask, do_sample=True, temperature=1.0, top_k=0,
                              top_p=1.0, max_new_tokens=max_new_tokens,
                              num_return_sequences=n)
        for row in out[:, width:].tolist():
            ends = [i for i, t in enumerate(row) if t in backend.eos_ids]
            tokens += ends[0] + 1 if ends else len(row)
    del tok
    return tokens


def timed(fn) -> tuple[float, int]:
    t = time.perf_counter()
    tokens = fn()
    return time.perf_counter() - t, tokens


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="a GGUF file")
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--batch", default="1,8", help="comma-separated batch sizes (prompts per generate call)")
    ap.add_argument("--max-new-tokens", type=int, default=96)
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--style", default="chat", choices=("base", "chat"))
    ap.add_argument("--rounds", type=int, default=3, help="rounds that alternate the loops; medians are printed")
    ap.add_argument("--n", type=int, default=1, help="samples per prompt")
    ap.add_argument("--step", default="code", choices=("code", "summary"), help="the chain step whose prompts to use")
    ap.add_argument("--llamacpp-model", action="append", default=[],
                    help="another GGUF of the model for llama.cpp to run too (repeatable)")
    ap.add_argument("--no-plain", action="store_true", help="leave out transformers' own generate loop")
    ap.add_argument("--unshared", action="store_true", help="also run llamacpp with prompts not shared")
    ap.add_argument("--plain-layouts", action="store_true",
                    help="also run llamacpp without llama.cpp's extra weight layouts (AMX's, the repacked ones)")
    ap.add_argument("--unwidened", action="store_true",
                    help="also run llamacpp on the file as it is, where it runs its Q5_0 tensors as Q8_0")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from giftgen.backends.base import Sampling
    from giftgen.backends.hf import TransformersBackend

    prompts = mbpp_prompts(args.prompts, args.style, args.step)
    hf = TransformersBackend(args.model, device="cpu")
    engines = {}  # loop name -> llamacpp backend
    try:
        from giftgen.backends.llamacpp import LlamaCppBackend

        engines["llamacpp"] = LlamaCppBackend(args.model, threads=args.threads)
        if args.plain_layouts and engines["llamacpp"].extra_layouts:
            engines["llamacpp-plain-layouts"] = LlamaCppBackend(args.model, threads=args.threads, extra_layouts=False)
        if args.unwidened and engines["llamacpp"].weights != Path(args.model):
            engines["llamacpp-unwidened"] = LlamaCppBackend(args.model, threads=args.threads, widen=False)
        for other in args.llamacpp_model:
            engines[f"llamacpp {Path(other).name}"] = LlamaCppBackend(other, threads=args.threads)
    except Exception as e:  # noqa: BLE001 - the benchmark still compares the two transformers loops
        print(f"llamacpp: not measured ({e})", file=sys.stderr)

    def sampling(seed: int) -> Sampling:
        return Sampling(n=args.n, temperature=1.0, max_new_tokens=args.max_new_tokens, seed=seed)

    def ours() -> int:
        return sum(c.tokens for cs in hf.generate(prompts, sampling(1)) for c in cs)

    def native(name: str, share: bool = True) -> Callable[[], int]:
        def run() -> int:
            cpp = engines[name]
            cpp.share_prompts = share
            return sum(c.tokens for cs in cpp.generate(prompts, sampling(1)) for c in cs)
        return run

    loops = {} if args.no_plain else {"plain": lambda: plain(hf, prompts, hf.batch_size, args.max_new_tokens,
                                                                  args.n)}
    loops["transformers"] = ours
    for name in engines:
        loops[name] = native(name)
    if args.unshared and "llamacpp" in engines:
        loops["llamacpp-unshared"] = native("llamacpp", share=False)
    ratios = [("transformers", "plain"), *((name, "transformers") for name in engines),
              ("llamacpp", "llamacpp-unshared"), ("llamacpp", "llamacpp-plain-layouts"),
              ("llamacpp", "llamacpp-unwidened")]
    ratios = [(a, b) for a, b in ratios if a in loops and b in loops]
    print(f"model {Path(args.model).name}, {len(prompts)} {args.style} MBPP {args.step} prompts x {args.n} samples, "
          f"max {args.max_new_tokens} new tokens, {args.threads} threads, "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')}, load average {os.getloadavg()[0]:.1f}")
    if "llamacpp" in engines:
        amx = {None: "none in this build (or none of the model's tensors)", True: "working", False: "failing"}
        cpp = engines["llamacpp"]
        print(f"llama.cpp: AMX kernels {amx[cpp.amx]}; extra weight layouts {'on' if cpp.extra_layouts else 'off'}; "
              f"Q5_0 tensors {'widened to Q8_0' if cpp.weights != Path(args.model) else 'as they are (or none)'}")
    print("| batch | " + " | ".join(f"{name} tok/s" for name in loops) + " | "
          + " | ".join(f"{a} / {b}" for a, b in ratios) + " |")
    print("| ---: " * (1 + len(loops) + len(ratios)) + "|")
    for batch in (int(b) for b in args.batch.split(",")):
        hf.batch_size = batch
        for cpp in engines.values():
            cpp.parallel = batch
        rates: dict[str, list[float]] = {name: [] for name in loops}
        for r in range(args.rounds):
            # alternate the order so that a warm-up or a burst of load does not favour one loop
            for name in (list(loops) if r % 2 == 0 else list(loops)[::-1]):
                seconds, tokens = timed(loops[name])
                rates[name].append(tokens / seconds)
                print(f"batch {batch} round {r + 1} {name}: {tokens} tokens in {seconds:.1f} s, "
                      f"load average {os.getloadavg()[0]:.1f}", file=sys.stderr, flush=True)
        med = {name: statistics.median(v) for name, v in rates.items()}
        print(f"| {batch} | " + " | ".join(f"{med[name]:.1f}" for name in loops) + " | "
              + " | ".join(f"{med[a] / med[b]:.2f}x" for a, b in ratios) + " |", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    hf.close()
    for cpp in engines.values():
        cpp.close()

if __name__ == "__main__":
    main()
