"""The two ways the emulator runs, for tests that check a ``moto_ext`` gap-filler in both: in this process
(``mock_aws``, endpoint None) and as a moto server reached over HTTP (its endpoint)."""

from __future__ import annotations

import contextlib
import urllib.request
from collections.abc import Iterator

from moto import mock_aws
from moto.server import ThreadedMotoServer

from flopsmeter.local import moto_ext

MODES = ["in_process", "server"]


@contextlib.contextmanager
def emulated(mode: str) -> Iterator[str | None]:
    moto_ext.install()
    if mode == "in_process":
        with mock_aws():
            yield None
        return
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    urllib.request.urlopen(urllib.request.Request(f"http://{host}:{port}/moto-api/reset", method="POST"), timeout=10)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()
