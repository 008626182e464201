"""Write recipes/paper/*.yaml (every experiment of the GiFT paper, in the release profile) and their table in
recipes/README.md. The files are generated but committed, so each is a plain recipe a user can read and run;
tests/test_recipes.py checks that they match this script's output, so they cannot drift from it.

    python scripts/paper_recipes.py          # rewrite the files and the table
    python scripts/paper_recipes.py --check  # exit 1 when they differ from what this script writes

Each recipe is five lines: it includes the shared settings (recipes/common/paper.yaml), the dataset, the method,
the model and the release profile for the dataset, and names its run directory.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "recipes"
PAPER = RECIPES / "paper"
README = RECIPES / "README.md"
HEADER = "| recipe | what | command |"  # the one table of recipes/README.md; its paper/ rows are written here

DATASETS = {
    "mbppplus": "MBPP+",
    "codeinsight": "CodeInsight",
    "apps-intro": "APPS+ introductory",
    "apps-interview": "APPS+ interview",
}
METHODS = {"gift": "GiFT", "rft": "RFT", "rftrd": "RFT+RD"}
MODELS = {"deepseek": "DeepSeek-Coder-6.7B-base", "codellama": "CodeLlama-7B"}
# Ablations (DeepSeek-Coder-6.7B-base, every dataset): (name, base method, title, extra sections)
ABLATIONS = (
    (
        "gift-head",
        "gift",
        "GiFT with T = -2 (selection favours the head; T = +2 is GiFT itself)",
        {"select": {"temperature": -2.0}},
    ),
    (
        "gift-noppl",
        "gift",
        "GiFT without perplexity selection (K drawn uniformly from the chain's codes)",
        {"select": {"temperature": 0.0}},
    ),
    (
        "rftrd-onestep",
        "rftrd",
        "RFT+RD with descriptions from one Gibbs step (the paper's Figure 4)",
        {"chain": {"rewrite_from": "code"}},
    ),
)


def recipe(name: str, title: str, method: str, data: str, model: str, extra: dict[str, dict]) -> str:
    includes = ", ".join(
        f"../common/{part}.yaml" for part in ("paper", data, method, model, f"release-{data}")
    )
    text = (
        f"# {title}.\n# Written by scripts/paper_recipes.py; recipes/README.md has the table.\n#\n"
        f"#   giftgen run recipes/paper/{name}.yaml\n#\ninclude: [{includes}]\nrun:\n"
        f"  run_dir: runs/paper/{name}\n"
    )
    for section, values in extra.items():
        text += f"{section}:\n" + "".join(f"  {key}: {value}\n" for key, value in values.items())
    return text


DISTILL = (
    "distill-mbppplus-deepseek",
    "Distillation on MBPP+: DeepSeek-Coder-33B-base (served by vLLM) runs the GiFT chain, the 6.7B student is "
    'scored, fine-tuned and evaluated (recipes/README.md, "Distillation")',
)


def experiments() -> list[tuple[str, str, str]]:
    """(name, what, file text) of every paper recipe, in table order."""
    name, what = DISTILL
    distill = (
        f"# {what}.\n# Written by scripts/paper_recipes.py; recipes/README.md has the table.\n#\n"
        f"#   giftgen run recipes/paper/{name}.yaml\n#\n"
        f"include: [../distill-mbppplus.yaml, ../common/release-mbppplus.yaml]\nrun:\n"
        f"  run_dir: runs/paper/{name}\n"
    )
    out = [(name, what, distill)]
    for data, data_title in DATASETS.items():
        for model, model_title in MODELS.items():
            for method, method_title in METHODS.items():
                name = f"{method}-{data}-{model}"
                what = f"{method_title} on {data_title}, {model_title}"
                out.append((name, what, recipe(name, what, method, data, model, {})))
        for ablation, method, ablation_title, extra in ABLATIONS:
            name = f"{ablation}-{data}-deepseek"
            what = f"{ablation_title}: {data_title}, {MODELS['deepseek']}"
            out.append((name, what, recipe(name, what, method, data, "deepseek", extra)))
    return out


def table() -> str:
    rows = [HEADER, "| --- | --- | --- |"]
    rows += [
        f"| `paper/{name}.yaml` | {what} | `giftgen run recipes/paper/{name}.yaml` |"
        for name, what, _ in experiments()
    ]
    return "\n".join(rows)


def readme_with_table(text: str) -> str:
    """``text`` with the recipe table's ``paper/`` rows replaced by this script's, after its other rows."""
    lines = text.split("\n")
    start = lines.index(HEADER)
    end = start
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    kept = [line for line in lines[start:end] if not line.startswith("| `paper/")]
    return "\n".join(lines[:start] + kept + table().split("\n")[2:] + lines[end:])


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    wanted = {f"{name}.yaml": text for name, _, text in experiments()}
    present = {p.name for p in PAPER.glob("*.yaml")} if PAPER.exists() else set()
    for name, text in wanted.items():
        path = PAPER / name
        if not path.exists() or path.read_text() != text:
            stale.append(name)
            if not check:
                PAPER.mkdir(exist_ok=True)
                path.write_text(text)
    for name in sorted(present - set(wanted)):
        stale.append(name)
        if not check:
            (PAPER / name).unlink()
    readme = README.read_text()
    if readme_with_table(readme) != readme:
        stale.append("README.md table")
        if not check:
            README.write_text(readme_with_table(readme))
    if stale:
        print(("stale: " if check else "wrote: ") + ", ".join(stale), file=sys.stderr)
    return 1 if check and stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
