"""Headless Chromium as a page checker: load an HTML file over the DevTools protocol (``--remote-debugging-pipe``,
no extra Python package), fail on any console error, uncaught exception or failed resource load, then write a
full-page PNG. Used by tests/integration/compliance/test_report_browser.py and ``make report-screenshot``.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
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
