"""Dataset cards: render ``cards/dataset_card.md`` (installed as ``giftgen.cards``) for a pushed dataset.

The card records how the rows were made (the exact command, settings, model) and never any token: commands are
recorded from ``sys.argv`` with the values of secret-looking options masked.
"""

from __future__ import annotations

import shlex
import sys
from importlib import resources
from typing import Any

from giftgen import __version__

_SECRET_FLAGS = ("--token", "--api-key", "--hf-token")


def recorded_command(argv: list[str] | None = None) -> str:
    """The command line that ran, as a copyable shell string, with secret option values masked."""
    argv = list(sys.argv if argv is None else argv)
    if argv:
        argv[0] = "giftgen"
    out: list[str] = []
    mask_next = False
    for arg in argv:
        if mask_next:
            out.append("***")
            mask_next = False
            continue
        flag, eq, _ = arg.partition("=")
        if flag in _SECRET_FLAGS:
            if eq:
                out.append(f"{flag}=***")
            else:
                out.append(arg)
                mask_next = True
            continue
        out.append(arg)
    return shlex.join(out)


def dataset_card(*, stage: str, num_rows: int, command: str | None = None, model: str | None = None,
                 seed_source: str | None = None, seed_license: str | None = None, recipe: str | None = None,
                 details: str = "", pretty_name: str | None = None, **metadata: Any) -> str:
    """Render the dataset card as a string (YAML metadata header + markdown)."""
    from huggingface_hub import DatasetCard, DatasetCardData

    template = resources.files("giftgen.cards").joinpath("dataset_card.md").read_text()
    data = DatasetCardData(pretty_name=pretty_name, tags=["giftgen", "code", "synthetic"], **metadata)
    card = DatasetCard.from_template(
        data, template_str=template, stage=stage, num_rows=num_rows,
        command=command if command is not None else recorded_command(), model=model, seed_source=seed_source,
        seed_license=seed_license, recipe=recipe, details=details, giftgen_version=__version__,
    )
    return str(card)
