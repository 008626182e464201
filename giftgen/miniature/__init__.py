"""The miniature: an experiment above `giftgen run` that compares GiFT, RFT, RFT+RD and a control on a toy domain.

A tiny base model is pretrained from scratch (``pretrain``), then a grid of runs (``grid``: one per arm and random
seed, each a `giftgen run` through ``giftgen.run``'s public face), whose numbers (``numbers``) and report
(``report``) compare the arms as mean ± sd over seeds. ``recipes/miniature.yaml`` is its recipe. Nothing below
this package imports it; the CLI is the one place that picks a plain run or a grid.
"""

from giftgen.miniature.grid import (
    GRID_SECTIONS,
    GridConfig,
    cell_plan,
    is_grid_recipe,
    load_grid_recipe,
    run_grid,
)
from giftgen.miniature.numbers import ARMS, LABELS, cell_diagnostics, grid_summary, markdown_table, spread
from giftgen.miniature.pretrain import PretrainConfig
from giftgen.miniature.pretrain import pretrain as train_base_model
from giftgen.miniature.report import (
    GridCell,
    control_rows,
    grid_cell,
    is_grid,
    lab_rows,
    write_grid_report,
    write_lab_report,
)

__all__ = [
    "ARMS", "GRID_SECTIONS", "LABELS", "GridCell", "GridConfig", "PretrainConfig", "cell_diagnostics", "cell_plan",
    "grid_cell", "grid_summary", "is_grid", "is_grid_recipe", "load_grid_recipe", "markdown_table", "run_grid",
    "train_base_model", "spread", "write_grid_report", "lab_rows", "control_rows", "write_lab_report",
]
