"""The report in real headless Chromium (Debian's chromium): renders without errors; the checker itself catches
console errors and failed loads. Slow (starts a browser): `make report-screenshot` / `pytest -m slow`."""

from __future__ import annotations

import shutil

import pytest

from bench.report_screenshot import BrowserCheckError, check_and_screenshot, synthetic_records
from flopsmeter.audit.report import write_report

pytestmark = [pytest.mark.slow, pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium not installed")]


def test_report_renders_cleanly_and_is_screenshotted(tmp_path):
    root = synthetic_records(tmp_path / "records", count=12)
    html, png = tmp_path / "report.html", tmp_path / "report.png"
    write_report(root, html)
    check_and_screenshot(html, png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_checker_fails_on_console_errors_and_failed_loads(tmp_path):
    page = tmp_path / "bad.html"
    page.write_text('<html><body><img src="missing.png"><script>console.error("boom")</script></body></html>')
    with pytest.raises(BrowserCheckError, match="boom") as err:
        check_and_screenshot(page, tmp_path / "bad.png")
    assert "failed load" in str(err.value) or "ERR_FILE_NOT_FOUND" in str(err.value)
