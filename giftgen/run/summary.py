"""The summary of a run: one line per round from the stage markers in its directory, as JSON and as a table.

Contract. ``round_entry(root, r)`` reads ``RUN_DIR/round-r/<stage>.json`` (the markers ``giftgen.run.rounds``
writes) into one dict (problems the chain solved, codes kept, verified, selected rows, train loss, pass@1, and the
pass@1 of the extra evaluations); ``write_summary`` writes them all to ``RUN_DIR/summary.json``; ``print_rounds``
shows them on stderr.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from giftgen.run.jobs import write_atomic
from giftgen.run.recipe import STAGE_ORDER
from giftgen.tables import print_table
from giftgen.versions import library_versions


def write_summary(root: Path, rounds: int) -> dict[str, Any]:
    """Rounds 0..``rounds`` of the run in ``root`` (those with a marker), written to ``root/summary.json``."""
    entries = [entry for r in range(0, rounds + 1) if (entry := round_entry(root, r))]
    summary = {"run_dir": str(root), "versions": library_versions(), "rounds": entries}
    write_atomic(root / "summary.json", json.dumps(summary, indent=2) + "\n")
    return summary


def round_entry(root: Path, r: int) -> dict[str, Any] | None:
    """Round ``r``'s line of the table, from the stage markers found (None when the round has none)."""
    rd = root / f"round-{r}"
    markers = {}
    for name in STAGE_ORDER:
        path = rd / f"{name}.json"
        if path.exists():
            markers[name] = json.loads(path.read_text())
    if not markers:
        return None

    def get(stage: str, key: str) -> Any:
        return (markers.get(stage) or {}).get("result", {}).get(key)

    if "finetune" in markers:
        model = markers["finetune"]["output"]  # relative to the run directory
    else:
        model = (markers.get("eval") or {}).get("config", {}).get("model")
    return {
        "round": r,
        "model": model,
        "problems": get("chain", "problems"),
        "solved": get("chain", "solved"),
        "kept": get("chain", "kept"),
        "verified": get("verify", "passed"),
        "selected": get("select", "rows"),
        "selected_self": get("select", "self"),
        "train_loss": get("finetune", "train_loss"),
        "pass@1": get("eval", "pass@1"),
        "eval_problems": get("eval", "problems"),
        **{f"pass@1 {label}": json.loads((rd / f"{label}.json").read_text())["result"].get("pass@1")
           for label in ("eval-sampled", "eval2") if (rd / f"{label}.json").exists()},
    }


def print_rounds(summary: Mapping[str, Any], file: Any = None) -> None:
    """The rounds as a table on stderr: chain-solved problems, kept codes, selected rows, pass@1."""
    rows = []
    for e in summary["rounds"]:
        solved = "-" if e["solved"] is None else f"{e['solved']}/{e['problems']}"
        selected = "-" if e["selected"] is None else f"{e['selected']} ({e['selected_self']})"
        loss = "-" if e["train_loss"] is None else f"{e['train_loss']:.4f}"
        p1 = "-" if e["pass@1"] is None else f"{100 * e['pass@1']:.2f}%"
        rows.append([str(e["round"]), solved, _dash(e["kept"]), _dash(e["verified"]), selected, loss, p1])
    print_table(f"giftgen run: {summary['run_dir']}",
                ["round", "solved", "kept", "verified", "selected (self)", "train loss", "pass@1"], rows, file=file,
                left=0)


def _dash(value: Any) -> str:
    return "-" if value is None else str(value)

