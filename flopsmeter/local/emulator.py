"""The embedded AWS emulator: a moto server on 127.0.0.1 with ``moto_ext`` installed, provisioned like the stack.

In process (tests, ``flopsmeter demo``)::

    with Emulator() as emu:                # a free port on 127.0.0.1
        resources = emu.provision()
        ... boto3 clients with endpoint_url=emu.endpoint ...

Detached (``flopsmeter local up|status|down``): ``up`` starts ``python -m flopsmeter.local.emulator serve`` in
its own session, waits until it has provisioned, and leaves ``.local/emulator.json`` (endpoint, pid, resource
names); ``down`` stops exactly that pid (after checking it is our server) and removes the file.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flopsmeter.errors import FlopsMeterError
from flopsmeter.local import moto_ext
from flopsmeter.local.provision import LocalResources, provision

DEFAULT_STATE_DIR = Path(".local")
STATE_FILE = "emulator.json"
LOG_FILE = "emulator.log"
DEFAULT_REGION = "us-east-1"  # moto's default; also the region of the AWS documentation's example events
_SERVE_MARK = "flopsmeter.local.emulator"


class EmulatorNotRunning(FlopsMeterError):
    """No emulator state, or the recorded process is gone."""


class Emulator:
    """A moto ThreadedMotoServer in this process, with the gap-fillers installed."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, region: str = DEFAULT_REGION) -> None:
        self.host, self.port, self.region = host, port, region
        self._server: Any = None
        self.resources: LocalResources | None = None

    def start(self) -> Emulator:
        from moto.server import ThreadedMotoServer

        moto_ext.install()
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
        self._server = ThreadedMotoServer(ip_address=self.host, port=self.port, verbose=False)
        self._server.start()
        self.host, self.port = self._server.get_host_and_port()
        _wait_until_serving(self.endpoint)
        return self

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def provision(self, **kwargs: Any) -> LocalResources:
        self.resources = provision(self.endpoint, region=self.region, **kwargs)
        return self.resources

    def reset(self) -> None:
        """Forget every resource (moto's own reset; the server shares this process's backends)."""
        _post(self.endpoint + "/moto-api/reset")
        self.resources = None

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _post(url: str) -> None:
    with urllib.request.urlopen(urllib.request.Request(url, method="POST"), timeout=10):  # noqa: S310 - loopback
        pass


def _wait_until_serving(endpoint: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(endpoint + "/moto-api/data.json", timeout=5):  # noqa: S310 - loopback
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


# ------------------------------------------------------------------------------------------ detached lifecycle


@dataclass(frozen=True)
class EmulatorState:
    pid: int
    endpoint: str
    started_at: float
    resources: LocalResources

    def to_json(self) -> str:
        return json.dumps(
            {
                "pid": self.pid,
                "endpoint": self.endpoint,
                "started_at": self.started_at,
                "resources": json.loads(self.resources.to_json()),
            },
            indent=2,
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> EmulatorState:
        data = json.loads(text)
        return cls(
            int(data["pid"]),
            str(data["endpoint"]),
            float(data["started_at"]),
            LocalResources.from_dict(data["resources"]),
        )


def state_path(state_dir: Path | str = DEFAULT_STATE_DIR) -> Path:
    return Path(state_dir) / STATE_FILE


def read_state(state_dir: Path | str = DEFAULT_STATE_DIR) -> EmulatorState:
    path = state_path(state_dir)
    if not path.exists():
        raise EmulatorNotRunning(f"no local emulator: {path} does not exist (run `flopsmeter local up`)")
    state = EmulatorState.from_json(path.read_text())
    if not _is_our_server(state.pid):
        raise EmulatorNotRunning(
            f"the local emulator (pid {state.pid}) is not running; remove {path} or run `flopsmeter local down`"
        )
    return state


def _is_our_server(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True  # no /proc (macOS): alive is the best we can tell
    return _SERVE_MARK in cmdline and " serve" in cmdline


def up(
    state_dir: Path | str = DEFAULT_STATE_DIR, *, port: int = 0, region: str = DEFAULT_REGION, timeout_s: float = 60.0
) -> EmulatorState:
    """Start a detached emulator (or return the running one) and wait until it has provisioned."""
    directory = Path(state_dir)
    path = state_path(directory)
    if path.exists():
        try:
            return read_state(directory)
        except EmulatorNotRunning:
            path.unlink()
    directory.mkdir(parents=True, exist_ok=True)
    log = (directory / LOG_FILE).open("ab")
    process = subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
        [
            sys.executable,
            "-m",
            _SERVE_MARK,
            "serve",
            "--state-dir",
            str(directory),
            "--port",
            str(port),
            "--region",
            region,
        ],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise FlopsMeterError(f"the emulator exited with status {process.returncode}; see {directory / LOG_FILE}")
        if path.exists():
            try:
                state = EmulatorState.from_json(path.read_text())
            except (ValueError, KeyError):
                state = None  # being written
            if state is not None and state.pid == process.pid:
                return state
        time.sleep(0.1)
    process.terminate()
    raise FlopsMeterError(f"the emulator did not come up within {timeout_s:.0f} s; see {directory / LOG_FILE}")


def down(state_dir: Path | str = DEFAULT_STATE_DIR, *, timeout_s: float = 20.0) -> int | None:
    """Stop the detached emulator recorded in the state file; returns its pid (None if none was running)."""
    path = state_path(state_dir)
    if not path.exists():
        return None
    state = EmulatorState.from_json(path.read_text())
    if _is_our_server(state.pid):
        os.kill(state.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while _is_our_server(state.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _is_our_server(state.pid):
            os.kill(state.pid, signal.SIGKILL)
    path.unlink(missing_ok=True)
    return state.pid


def serve(state_dir: Path | str, *, port: int = 0, region: str = DEFAULT_REGION) -> None:
    """Foreground server for ``up``: start, provision, write the state file, run until SIGTERM/SIGINT."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    emulator = Emulator(port=port, region=region).start()
    try:
        resources = emulator.provision()
        state = EmulatorState(os.getpid(), emulator.endpoint, time.time(), resources)
        path = state_path(state_dir)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(state.to_json())
        tmp.replace(path)
        print(f"flopsmeter local emulator serving on {emulator.endpoint} (pid {os.getpid()})", flush=True)
        stop.wait()
    finally:
        emulator.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flopsmeter.local.emulator")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("serve", help="run the emulator in the foreground (what `flopsmeter local up` detaches)")
    run.add_argument("--state-dir", default=str(DEFAULT_STATE_DIR))
    run.add_argument("--port", type=int, default=0)
    run.add_argument("--region", default=DEFAULT_REGION)
    args = parser.parse_args(argv)
    serve(args.state_dir, port=args.port, region=args.region)
    return 0


if __name__ == "__main__":
    sys.exit(main())
