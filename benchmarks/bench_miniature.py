"""Wall time of the miniature (recipes/miniature.yaml), per stage: the README's "about ten minutes on 2 cores".

Runs ``giftgen run recipes/miniature.yaml`` as a user does (a fresh run directory; the base model is pretrained
into a fresh folder too unless ``--model`` names a cached one), then prints, from the run directory's markers:
the pretraining time, the base evaluations, and per arm the mean wall time of each stage over seeds, the grid's
total, and the machine's load average before and after (on a shared machine the figures are upper bounds: say so
when quoting them), and each self-training arm's round time as a multiple of the control's (the baseline measured
in the same run: the same fine-tuning and evaluations without a chain). The measured pass@1 table is printed too.

    python benchmarks/bench_miniature.py                          # the full recipe, fresh model
    python benchmarks/bench_miniature.py --model runs/miniature-base  # reuse a pretrained model (cached)
    python benchmarks/bench_miniature.py --set "grid.random_seeds=[0]" --set "grid.arms=[gift,control]"
    taskset -c 0,1 python benchmarks/bench_miniature.py           # 2 cores of a larger machine
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", help="run directory (default: a fresh temporary one)")
    parser.add_argument("--model", help="base model folder (default: a fresh one, so pretraining is timed)")
    parser.add_argument("--set", action="append", default=[], help="recipe override, as `giftgen run --set`")
    args = parser.parse_args()

    from giftgen.miniature.numbers import grid_summary, markdown_table, timing_rows
    from giftgen.tables import table_lines

    tmp = tempfile.TemporaryDirectory(prefix="bench-miniature-")
    run_dir = Path(args.run_dir or Path(tmp.name) / "run")
    model = args.model or str(Path(tmp.name) / "base")
    command = [sys.executable, "-m", "giftgen.cli", "run", str(ROOT / "recipes" / "miniature.yaml"),
               "--run-dir", str(run_dir), "--model", model]
    for item in args.set:
        command += ["--set", item]
    load_before = os.getloadavg()
    start = time.perf_counter()
    proc = subprocess.run(command, stdout=subprocess.DEVNULL, cwd=ROOT)
    total = time.perf_counter() - start
    load_after = os.getloadavg()
    if proc.returncode != 0:
        print(f"giftgen run failed with exit code {proc.returncode}", file=sys.stderr)
        return proc.returncode

    summary = grid_summary(run_dir)
    base_s = math.fsum((summary["base"] or {}).get("seconds", {}).values())
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"miniature: {total:.0f} s wall in all on {cores} core(s); load average {load_before[0]:.1f} before, "
          f"{load_after[0]:.1f} after")
    print(f"pretrain: {summary['pretrain_s'] or 0:.0f} s (cached model: 0)" if args.model else
          f"pretrain: {summary['pretrain_s'] or 0:.0f} s")
    print(f"base evaluations: {base_s:.0f} s")
    header, rows = timing_rows(summary)
    seeds = max((len(a["cells"]) for a in summary["arms"].values()), default=0)
    print(f"per arm, one run (mean over {seeds} seeds), seconds:")
    print("\n".join(table_lines(header, rows)))
    control = summary["arms"].get("control")
    if control:  # the baseline measured in the same run: the same fine-tuning and evaluations, no chain
        base_round = math.fsum(control["seconds"].values())
        ratios = ", ".join(f"{data['label']} {math.fsum(data['seconds'].values()) / base_round:.1f}x"
                           for arm, data in summary["arms"].items() if arm != "control")
        print(f"a self-training round against the control's round (same fine-tuning, no chain): {ratios}")
    print()
    print(markdown_table(summary))
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
