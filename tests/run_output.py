"""A small real run directory for the card, publishing and report tests, in `giftgen run`'s layout.

Every row is real stage output: `chain` runs the Gibbs chain with the scripted fake backend over three MBPP
problems and verifies in the real sandbox; the kept codes are verified again in the sandbox (what `giftgen verify`
adds: the executor's verdict columns), scored by the tiny model (`giftgen.score`) and drawn by `giftgen.selection`.
Only the model is fake: the fake backend answers code prompts with known passing and failing bodies, so the
numbers the tests expect follow from the script (problem mbpp/4 never passes; mbpp/3 passes 2 of 3 per step;
mbpp/8 1 of 3).

Built once per test process (``build_run``), since the sandbox and the model take seconds to start.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

IDS = ["mbpp/3", "mbpp/4", "mbpp/8"]
STEPS, N = 3, 3
FAIL = "    return None\n"
PASS_A = "    return n > 1 and any(n % i == 0 for i in range(2, int(math.sqrt(n)) + 1))\n"
PASS_B = "    result = False\n    for i in range(2, n):\n        if n % i == 0:\n            result = True\n    return result\n"
HEAP_FAIL = "  return nums[:n]\n"
SQUARE_PASS = " return [x * x for x in nums]\n"
CODES = {"mbpp/3": [FAIL, PASS_A, PASS_B], "mbpp/4": [HEAP_FAIL], "mbpp/8": [SQUARE_PASS, FAIL, FAIL]}

_BUILT: list[Path] = []  # one build per test process, shared by the test modules


def _script(problems: list[dict]) -> list[dict]:
    from giftgen.prompts import code_prompt

    rules: list[dict[str, Any]] = [
        {"match": "###Description of the given code:", "reply": [f"Summary number {k}." for k in range(500)]}]
    for row in problems:
        opening = code_prompt(row).split('"""')[0] + '"""'
        rules.append({"match": opening, "reply": CODES[row["problem_id"]]})
    return rules


def _write(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def build_run(root: Path, data_dir: Path, tiny_model: Path) -> Path:
    """RUN_DIR with recipe.yaml, seeds/train.jsonl and round-1/{chain,verify,score,select}.jsonl (+ markers)."""
    if _BUILT:
        return _BUILT[0]
    import torch

    from giftgen.backends.fake import FakeBackend
    from giftgen.chain import ChainConfig, run_chain
    from giftgen.config import resolve, to_dict
    from giftgen.sandbox import Executor, Limits
    from giftgen.score import ScoreConfig, score_rows
    from giftgen.seeds import load_seeds
    from giftgen.selection import SelectConfig, select_rows

    torch.set_num_threads(1)
    all_seeds = {r["problem_id"]: r for r in load_seeds("mbpp", str(data_dir / "mbpp-sanitized.json"), "all")}
    seeds = [all_seeds[i] for i in IDS]
    run_dir = root / "run"
    rd = run_dir / "round-1"
    chain_cfg = resolve(ChainConfig, None, {"model": "fake", "backend": "fake", "steps": STEPS, "n": N, "workers": 1})
    score_cfg = resolve(ScoreConfig, None, {"model": str(tiny_model), "device": "cpu", "batch_size": 8})
    select_cfg = resolve(SelectConfig, None, {"temperature": 2.0, "k": 4})
    _write(run_dir / "seeds" / "train.jsonl", seeds)
    with Executor(workers=1, limits=Limits()) as executor:
        chain = list(run_chain(seeds, chain_cfg, backend=FakeBackend(_script(seeds)), executor=executor))
        # what `giftgen verify` adds, on the rows a run verifies (the kept ones)
        by_id = {r["problem_id"]: r for r in seeds}
        verify = [{**r, **executor.check(r["code"], by_id[r["problem_id"]]).to_columns()}
                  for r in chain if r["kept"]]
    score = list(score_rows(verify, score_cfg))
    select = list(select_rows(score, select_cfg, seeds))
    for stage, rows, cfg in (("chain", chain, chain_cfg), ("verify", verify, None), ("score", score, score_cfg),
                             ("select", select, select_cfg)):
        _write(rd / f"{stage}.jsonl", rows)
        marker = {"stage": stage, "round": 1, "config": to_dict(cfg) if cfg is not None else {}, "result": {}}
        (rd / f"{stage}.json").write_text(json.dumps(marker))
    recipe = {"run": {"model": str(tiny_model), "rounds": 1}, "chain": to_dict(chain_cfg),
              "score": to_dict(score_cfg), "select": to_dict(select_cfg)}
    (run_dir / "recipe.yaml").write_text(yaml.safe_dump(recipe, sort_keys=False))
    _BUILT.append(run_dir)
    return run_dir
