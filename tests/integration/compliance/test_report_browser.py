"""The report in real headless Chromium (Debian's chromium): renders without errors; the checker itself catches
console errors and failed loads. Slow (starts a browser): `make report-screenshot` / `pytest -m slow`."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime

import pytest

from flopsmeter.compliance.report import write_report
from tests.support.browser import BrowserCheckError, check_and_screenshot
from tests.support.records import make_record, write_mirror

pytestmark = [pytest.mark.slow, pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium not installed")]


def test_report_renders_cleanly_and_is_screenshotted(tmp_path):
    records = [  # below, approaching and over the line, with and without a known base model
        make_record(f"job-{i}", flops=flops, pretrain=pretrain, end=datetime(2026, 3, 1 + i, tzinfo=UTC))
        for i, (flops, pretrain) in enumerate([(1e20, 1.5e24), (4e23, 1.5e24), (5e22, None), (9e23, 1.5e24)] * 3)
    ]
    root = write_mirror(tmp_path / "records", records)
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
