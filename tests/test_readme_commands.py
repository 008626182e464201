"""CI runs exactly the README's commands: its install (CPU-only torch from PyTorch's CPU index) and its tests."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _bash_blocks(text: str) -> list[str]:
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S)]


def _ci_lines() -> list[str]:
    lines = (REPO / ".ci" / "run").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith(("#", "set ", "cd ",
                                                                                             "export "))]


def test_ci_installs_as_the_readme_says_and_runs_its_test_command():
    readme = (REPO / "README.md").read_text()
    main_job, tests = _bash_blocks(readme)[:2]
    *installs, job = main_job.split(" && ")
    assert job.startswith("giftgen run recipes/") and installs
    *ci_installs, ci_tests = _ci_lines()
    assert [[word for word in shlex.split(line) if word != "-q"] for line in ci_installs] == list(
        map(shlex.split, installs))
    assert ci_tests == tests


def test_the_install_takes_torch_from_the_cpu_index():
    install = _bash_blocks((REPO / "README.md").read_text())[0].partition(" && ")[0]
    words = shlex.split(install)
    assert words[words.index("--extra-index-url") + 1] == "https://download.pytorch.org/whl/cpu"
    assert "torch==2.13.0" in words
