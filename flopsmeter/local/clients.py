"""boto3 clients for the emulator: fake credentials, one shared session (service models load once), cached."""

from __future__ import annotations

import functools
from typing import Any

FAKE_ACCESS_KEY = "testing"  # the emulator accepts any key; never a real credential


@functools.cache
def _session(region: str) -> Any:
    import boto3

    return boto3.session.Session(
        aws_access_key_id=FAKE_ACCESS_KEY, aws_secret_access_key=FAKE_ACCESS_KEY, region_name=region
    )


@functools.cache
def client(service: str, endpoint: str, region: str) -> Any:
    """A client for ``service`` on the emulator at ``endpoint`` (cached per service, endpoint and region)."""
    return _session(region).client(service, endpoint_url=endpoint)
