"""The documentation draft's HTML in real headless Chromium: renders without console errors or failed loads.
Slow (starts a browser): `make test-slow` / `pytest -m slow`."""

from __future__ import annotations

import shutil

import pytest

from flopsmeter.compliance.documentation import write_documentation
from tests.support.browser import check_and_screenshot
from tests.support.lineages import systemic_lineage
from tests.support.records import write_mirror

pytestmark = [pytest.mark.slow, pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium not installed")]


def test_documentation_draft_renders_cleanly_and_is_screenshotted(tmp_path):
    root = write_mirror(tmp_path / "records", systemic_lineage())
    markdown, page = write_documentation(root, "ft-405b-2", tmp_path / "out" / "ft-405b-2")
    assert "Notification to the Commission due by" in markdown.read_text()
    png = tmp_path / "documentation.png"
    check_and_screenshot(page, png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
