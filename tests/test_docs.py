"""The documentation builds as a site (mkdocs, strict: a broken link or anchor fails), and the docstrings cite
pages that exist."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_the_docs_build_strictly(tmp_path):
    pytest.importorskip("mkdocs", reason="mkdocs is not installed (it is in the dev extra)")
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(REPO / "mkdocs.yml"),
                             "-d", str(tmp_path / "site")], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "site" / "method" / "index.html").exists()


def test_docstrings_cite_pages_that_exist():
    cited = set()
    for path in (REPO / "giftgen").rglob("*.py"):
        text = path.read_text()
        outside = [name for name in ("METHOD", "SANDBOX") if re.search(rf"(?<!docs/){name}\.md", text)]
        assert not outside, f"{path} cites {outside}, files outside the repository"
        cited |= set(re.findall(r"docs/[a-z_-]+\.md", text))
    assert cited, "no docstring cites the docs"
    missing = [page for page in cited if not (REPO / page).is_file()]
    assert not missing, missing
