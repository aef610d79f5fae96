"""Render the audit report and check it in real headless Chromium; save a PNG screenshot.

Records: ``--dir`` (e.g. a mirror of the demo's bucket pulled with ``flopsmeter query --bucket B --pull --dir D``),
else a small realistic synthetic set (real AuditRecords, as in bench/query.py). Chromium (Debian's ``chromium``)
is driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``, no extra Python package): the run
fails on any console error, uncaught exception or failed resource load, then a full-page PNG is written.

    python -m bench.report_screenshot [--dir D] [--out out/report.png] [--html out/report.html]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--hide-scrollbars",
)
WIDTH, MAX_HEIGHT = 1100, 7000


class BrowserCheckError(RuntimeError):
    """The page logged errors or failed to load something."""


class DevTools:
    """Minimal Chrome DevTools protocol client over ``--remote-debugging-pipe`` (fd 3 in, fd 4 out, NUL-framed)."""

    def __init__(self, chromium: str, user_data_dir: str) -> None:
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()

        def wire() -> None:  # in the child: the protocol's fds 3 and 4 (dup first: the originals may be 3 or 4)
            read_end, write_end = os.dup(to_child_r), os.dup(from_child_w)
            os.dup2(read_end, 3)
            os.dup2(write_end, 4)

        self.proc = subprocess.Popen(
            [chromium, *CHROMIUM_FLAGS, "--remote-debugging-pipe", f"--user-data-dir={user_data_dir}", "about:blank"],
            close_fds=False,
            preexec_fn=wire,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_child_r)
        os.close(from_child_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []

    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            if time.monotonic() > deadline:
                raise TimeoutError("no reply from Chromium")
            chunk = os.read(self._from_child, 1 << 16)
            if not chunk:
                raise BrowserCheckError("Chromium exited")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return dict(json.loads(raw))

    def call(
        self, method: str, params: dict[str, Any] | None = None, session: str | None = None, timeout: float = 30.0
    ) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_child, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise BrowserCheckError(f"{method}: {reply['error']}")
                return dict(reply.get("result", {}))
            self.events.append(reply)

    def wait_for(self, method: str, timeout: float = 30.0) -> dict[str, Any]:
        for event in self.events:
            if event.get("method") == method:
                return event
        deadline = time.monotonic() + timeout
        while True:
            event = self._read_message(deadline)
            self.events.append(event)
            if event.get("method") == method:
                return event

    def close(self) -> None:
        with contextlib.suppress(Exception):  # closing a browser that is already gone is fine
            self.call("Browser.close", timeout=5)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        for fd in (self._to_child, self._from_child):
            with contextlib.suppress(OSError):
                os.close(fd)


def page_problems(events: list[dict[str, Any]]) -> list[str]:
    """Console errors, uncaught exceptions and failed loads among the DevTools events."""
    problems = []
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.exceptionThrown":
            problems.append(f"exception: {params.get('exceptionDetails', {}).get('text')}")
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            problems.append(f"console.{params.get('type')}: {[a.get('value') for a in params.get('args', [])]}")
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            problems.append(f"log: {params['entry'].get('text')} {params['entry'].get('url', '')}".strip())
        elif method == "Network.loadingFailed":
            problems.append(f"failed load: {params.get('errorText')} ({params.get('type')})")
    return problems


def check_and_screenshot(html: Path, png: Path, *, chromium: str = "chromium") -> list[str]:
    """Load ``html`` in headless Chromium; raise BrowserCheckError on problems, else write a full-page PNG."""
    binary = shutil.which(chromium) or chromium
    if not Path(binary).exists():
        raise BrowserCheckError(f"{chromium} not found (Debian: apt-get install -y chromium)")
    with tempfile.TemporaryDirectory(prefix="flopsmeter-chromium-") as profile:
        tools = DevTools(binary, profile)
        try:
            target = tools.call("Target.createTarget", {"url": "about:blank"})["targetId"]
            session = tools.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            for domain in ("Page", "Runtime", "Log", "Network"):
                tools.call(f"{domain}.enable", session=session)
            tools.call(
                "Emulation.setDeviceMetricsOverride",
                {"width": WIDTH, "height": 900, "deviceScaleFactor": 1, "mobile": False},
                session=session,
            )
            tools.call("Page.navigate", {"url": html.resolve().as_uri()}, session=session)
            tools.wait_for("Page.loadEventFired")
            time.sleep(0.3)  # let late console messages arrive
            tools.call("Runtime.evaluate", {"expression": "1"}, session=session)
            problems = page_problems(tools.events)
            if problems:
                raise BrowserCheckError("; ".join(problems))
            height = tools.call("Page.getLayoutMetrics", session=session)["cssContentSize"]["height"]
            tools.call(
                "Emulation.setDeviceMetricsOverride",
                {"width": WIDTH, "height": int(min(height, MAX_HEIGHT)), "deviceScaleFactor": 1, "mobile": False},
                session=session,
            )
            shot = tools.call("Page.captureScreenshot", {"format": "png"}, session=session)
            top = tools.call(
                "Page.captureScreenshot",
                {
                    "format": "png",
                    "clip": {"x": 0, "y": 0, "width": WIDTH, "height": min(1500, int(height)), "scale": 1},
                },
                session=session,
            )
        finally:
            tools.close()
    png.parent.mkdir(parents=True, exist_ok=True)
    png.write_bytes(base64.b64decode(shot["data"]))
    png.with_name(png.stem + "-top.png").write_bytes(base64.b64decode(top["data"]))
    return []


def synthetic_records(root: Path, count: int = 40) -> Path:
    """A small realistic record set (real AuditRecords), with a few jobs near and over the line."""
    from bench.query import synthetic_record
    from flopsmeter.audit.keys import record_key
    from flopsmeter.audit.query import ratio_of

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
    from flopsmeter.audit.report import write_report
    from flopsmeter.audit.verify import DirSource, verify

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
    if __package__ in (None, ""):
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.exit(main())
