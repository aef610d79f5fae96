"""Render the audit report and check it in real headless Chromium; save a PNG screenshot.

Records: ``--dir`` (e.g. a mirror of the demo's bucket pulled with ``flopsmeter query --bucket B --pull --dir D``),
else a small realistic synthetic set (real AuditRecords, as in bench/query.py). Chromium (Debian's ``chromium``)
is driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``, no extra Python package; the checker
is ``tests/support/browser.py``, shared with its test): the run fails on any console error, uncaught exception
or failed resource load, then a full-page PNG is written.

    python -m bench.report_screenshot [--dir D] [--out out/report.png] [--html out/report.html]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from tests.support.browser import BrowserCheckError, check_and_screenshot


def synthetic_records(root: Path, count: int = 40) -> Path:
    """A small realistic record set (real AuditRecords), with a few jobs near and over the line."""
    from bench.query import synthetic_record
    from flopsmeter.audit.keys import record_key
    from flopsmeter.compliance.query import ratio_of

    rng = random.Random(11)
    start = datetime(2025, 11, 1, tzinfo=UTC)
    pool = sorted((synthetic_record(i, rng, start) for i in range(count * 25)), key=ratio_of, reverse=True)
    chosen = pool[:8] + rng.sample(pool[8:], count - 8)  # the jobs nearest the line, and a random rest
    for record in chosen:
        path = root / record_key(record.job.account_id, record.job.region, record.job.end_time, record.job.name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(record.to_json_bytes())
    return root


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, help="records directory (a bucket mirror); default: synthetic records")
    parser.add_argument("--out", type=Path, default=Path("out/report.png"))
    parser.add_argument("--html", type=Path, default=Path("out/report.html"))
    parser.add_argument("--chromium", default="chromium")
    args = parser.parse_args(argv)
    from flopsmeter.compliance.report import write_report
    from flopsmeter.compliance.verify import DirSource, verify

    root = args.dir
    if root is None:
        root = Path(".local/report-screenshot")
        shutil.rmtree(root, ignore_errors=True)
        synthetic_records(root)
    verification = verify(DirSource(root), max_digest_age=None) if (root / "digests").is_dir() else None
    data = write_report(root, args.html, source=str(root), verification=verification)
    started = time.perf_counter()
    try:
        check_and_screenshot(args.html, args.out, chromium=args.chromium)
    except BrowserCheckError as err:
        print(json.dumps({"ok": False, "html": str(args.html), "problems": str(err)}))
        return 1
    print(
        json.dumps(
            {
                "ok": True,
                "html": str(args.html),
                "png": str(args.out),
                "jobs": len(data.jobs),
                "html_bytes": args.html.stat().st_size,
                "png_bytes": args.out.stat().st_size,
                "browser_seconds": round(time.perf_counter() - started, 2),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
