"""The repository carries the full text of the license that pyproject.toml declares."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_license_file_is_the_full_apache_2_text():
    declared = re.search(r'^license = "([^"]+)"', (REPO / "pyproject.toml").read_text(), re.M).group(1)
    assert declared == "Apache-2.0"
    text = (REPO / "LICENSE").read_text()
    assert text.split()[:4] == ["Apache", "License", "Version", "2.0,"]
    # the whole text, not a stub: all nine sections, the end marker and the appendix
    for section in range(1, 10):
        assert f"\n   {section}. " in text, section
    assert "END OF TERMS AND CONDITIONS" in text and "APPENDIX: How to apply the Apache License" in text
    assert len(text.split()) > 1500

