"""Rows as `giftgen chain` + `giftgen verify` write them, built from MBPP for the score/select/finetune tests."""

from __future__ import annotations

from itertools import islice
from pathlib import Path


def seed_rows(data_dir: Path, n: int = 4) -> list[dict]:
    """The first n MBPP (sanitized) problems as `giftgen seeds mbpp` writes them."""
    from giftgen.seeds import load_seeds

    return list(islice(load_seeds("mbpp", str(data_dir / "mbpp-sanitized.json"), "all"), n))


def chain_rows(seed: dict, codes: list[str], ppls: list[float | None] | None = None,
               passed: list[bool] | None = None, kept: list[bool] | None = None) -> list[dict]:
    """One verified chain row per code (step i + 1, sample 0); ``ppls`` adds the columns of `giftgen score`.

    ``kept`` is the chain's mark (default: every passing code kept).
    """
    passed = passed or [True] * len(codes)
    kept = kept or passed
    rows = []
    for i, (code, ok) in enumerate(zip(codes, passed, strict=True)):
        row = {**seed, "code": code, "gen_description": f"paraphrase {i} of the task: {seed['description']}",
               "chain_id": f"{seed['problem_id']}#0", "step": i + 1, "sample": 0, "kept": kept[i], "passed": ok,
               "status": "passed" if ok else "failed"}
        if ppls is not None:
            row["ppl"] = ppls[i]
        rows.append(row)
    return rows


def variants(seed: dict, n: int) -> list[str]:
    """n distinct programs of a problem: its reference plus a distinct trailing statement."""
    return [seed["reference"] + f"# variant {i}\nVARIANT = {i}\n" for i in range(n)]
