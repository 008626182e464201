"""The laboratory: its recipes load strictly (one grid per domain setting), and its table compares GiFT with RFT."""

from __future__ import annotations

from pathlib import Path

import pytest

from giftgen.miniature import control_rows, lab_rows, load_grid_recipe, spread
from giftgen.run import read_run_recipe
from giftgen.seeds.toy import ToyDomain, load_domain

REPO = Path(__file__).resolve().parents[1]
LAB = sorted((REPO / "recipes" / "lab").glob("*.yaml"))
KNOBS = {"calibrated": {}, "coupling": {"style_coupling": 0.8}, "register-gap": {"register_gap": 0.5},
         "faithful": {"code_share": 0.5}, "noisy": {"summary_noise": 0.3},
         "all": {"style_coupling": 0.8, "register_gap": 0.5, "code_share": 0.5}}


def test_the_sweep_has_a_recipe_per_setting():
    assert {p.stem for p in LAB} == set(KNOBS)
    readme = (REPO / "recipes" / "lab" / "README.md").read_text()
    assert all(f"runs/lab/{name}" in readme for name in KNOBS)


@pytest.mark.parametrize("path", LAB, ids=lambda p: p.stem)
def test_a_lab_recipe_loads_strictly_with_its_domain(path, monkeypatch):
    monkeypatch.chdir(REPO)  # recipes name their domain files from the repository's root, as the command runs
    plan = load_grid_recipe(read_run_recipe(path, ()), where=path)
    assert f"giftgen run recipes/lab/{path.name}" in path.read_text()
    grid = plan.extras["grid"]
    assert grid.arms == ["gift", "gift-accept", "rft", "control"] and grid.random_seeds == [0, 1, 2]
    assert plan.run.train_path == plan.run.eval_path == plan.extras["pretrain"].domain
    domain = load_domain(plan.run.train_path)
    calibrated = load_domain("recipes/toy/miniature-domain.yaml")
    for knob in ("style_coupling", "register_gap", "summary_noise", "code_share"):
        want = KNOBS[path.stem].get(knob, getattr(calibrated, knob))
        assert getattr(domain, knob) == want, knob
    assert plan.run.run_dir == f"runs/lab/{path.stem}"
    models = {p.stem: load_grid_recipe(read_run_recipe(p, ()), where=p).run.model for p in LAB}
    assert len(set(models.values())) == len(models)  # a base model per domain (pretraining is cached by it)
    assert isinstance(domain, ToyDomain)


def _arm(label: str, sampled: list[float], greedy: list[float], drift: float, covered: float) -> dict:
    last = {"sampled": spread(sampled), "greedy": spread(greedy), "drift": spread([drift]),
            "covered": spread([covered]), "distinct_per_solved": spread([1.5]), "kept_ppl": spread([1.2])}
    cells = {f"seed-{i}": {"1": {"kept_styles": {"nested": 1.0}, "correct_styles": {"nested": 0.5, "fresh": 0.5}}}
             for i in range(len(sampled))}
    return {"label": label, "last_round": last, "cells": cells}


def test_the_lab_table_gives_the_margin_over_rft_against_the_larger_seed_sd():
    summaries = {"coupling": {"arms": {
        "gift": _arm("GiFT", [0.50, 0.52, 0.54], [0.7, 0.7, 0.7], 0.6, 100),
        "gift-accept": _arm("GiFT+accept", [0.44, 0.45, 0.46], [0.7, 0.7, 0.7], 0.3, 110),
        "rft": _arm("RFT", [0.44, 0.45, 0.46], [0.69, 0.69, 0.69], 0.4, 112),
    }}}
    header, rows = lab_rows(summaries)
    by_arm = {row[1]: dict(zip(header, row, strict=True)) for row in rows}
    assert by_arm["GiFT"]["sampled - RFT"] == "+7.0" and by_arm["GiFT"]["larger sd"] == "+2.0"
    assert by_arm["GiFT"]["beats RFT"] == "yes" and by_arm["GiFT+accept"]["beats RFT"] == "no"
    assert by_arm["GiFT"]["greedy - RFT"] == "+1.0"
    assert by_arm["GiFT"]["kept styles"] == "ne 100" and by_arm["GiFT"]["correct styles"] == "fr 50 ne 50"
    assert by_arm["GiFT+accept"]["drift"] == "30.0" and by_arm["GiFT+accept"]["RFT drift"] == "40.0"


def test_the_control_table_says_in_how_many_grids_each_arm_beats_the_control():
    def grid(gift: list[float], rft: list[float], control: list[float]) -> dict:
        return {"arms": {"gift": _arm("GiFT", gift, gift, 0.7, 90), "rft": _arm("RFT", rft, rft, 0.4, 110),
                         "control": _arm("control", control, control, 0.0, 0)}}

    summaries = {"pseed-0": grid([0.48, 0.50, 0.52], [0.46, 0.47, 0.48], [0.40, 0.41, 0.42]),
                 "pseed-1": grid([0.41, 0.42, 0.43], [0.45, 0.46, 0.47], [0.40, 0.41, 0.42])}
    header, rows = control_rows(summaries)
    table = {(row[0], row[1]): dict(zip(header, row, strict=True)) for row in rows}
    assert table[("pseed-0", "GiFT")]["sampled - control"] == "+9.0"
    assert table[("pseed-0", "GiFT")]["beats control"] == "yes"
    assert table[("pseed-1", "GiFT")]["sampled - control"] == "+1.0"
    assert table[("pseed-1", "GiFT")]["beats control"] == "no"  # the larger sd is 2 points
    assert table[("over 2 grids", "GiFT - control")]["sampled - control"] == "+5.0 (+1.0..+9.0)"
    assert table[("over 2 grids", "GiFT - control")]["beats control"] == "1 of 2"
    assert table[("over 2 grids", "RFT - control")]["beats control"] == "2 of 2"
    assert table[("over 2 grids", "GiFT - RFT")]["sampled - control"] == "-0.5 (-4.0..+3.0)"
    assert table[("over 2 grids", "GiFT - RFT")]["beats control"] == "1 of 2"
    _, single = control_rows({"pseed-0": summaries["pseed-0"]})
    assert not any(row[0].startswith("over") for row in single)  # one grid: no pooled lines
