"""Start-up cost of the CLI: `giftgen --help` and `giftgen chain --help` against `python -c pass`, same run.

    python benchmarks/bench_startup.py [--runs 20]

Prints median wall times and the ratio to a bare interpreter start. The CLI must not import torch,
transformers, datasets, trl, peft or vllm before a command needs them (tests/test_cli.py checks that).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    exe = shutil.which("giftgen")
    cases = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "giftgen --help": [exe, "--help"] if exe else [sys.executable, "-m", "giftgen", "--help"],
        "giftgen chain --help": [exe, "chain", "--help"] if exe else [sys.executable, "-m", "giftgen", "chain", "--help"],
    }
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.runs):  # interleaved, so that machine noise hits every case alike
        for name, cmd in cases.items():
            times[name].append(timed(cmd))
    base = statistics.median(times["python -c pass"])
    for name, ts in times.items():
        median = statistics.median(ts)
        print(f"{name:24s} median {median * 1000:7.1f} ms   ratio to python -c pass {median / base:5.2f}x")


if __name__ == "__main__":
    main()
