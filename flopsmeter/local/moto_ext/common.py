"""What the per-service patches share: the control-plane paths, the error type, time helpers, HTTP to a server."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

from flopsmeter.errors import FlopsMeterError

DEFAULT_ACCOUNT_ID = "123456789012"  # moto's default account
CONTROL_PREFIX = "/moto-api/flopsmeter"
STATE_PATH = f"{CONTROL_PREFIX}/training-job-state"
LAG_PATH = f"{CONTROL_PREFIX}/cloudtrail-lag"
CLEAR_PATH = f"{CONTROL_PREFIX}/cloudtrail-clear"


class EmulatorError(FlopsMeterError):
    """A control request the emulator cannot honour (unknown job, bad status, emulator unreachable)."""


def parse_time(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(float(value), UTC)
    text = str(value)
    try:
        return datetime.fromtimestamp(float(text), UTC)
    except ValueError:
        return aware(datetime.fromisoformat(text.replace("Z", "+00:00")))


def naive(value: datetime | None) -> datetime | None:
    return None if value is None else aware(value).astimezone(UTC).replace(tzinfo=None)


def aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def default_account() -> str:
    return os.environ.get("MOTO_ACCOUNT_ID", DEFAULT_ACCOUNT_ID)


def default_region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


def post(endpoint: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    data = json.dumps(body, default=lambda v: v.isoformat() if isinstance(v, datetime) else str(v)).encode()
    request = urllib.request.Request(
        endpoint.rstrip("/") + path, data=data, method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:  # noqa: S310 - loopback emulator only
            return dict(json.loads(reply.read().decode() or "{}"))
    except urllib.error.HTTPError as err:
        try:
            reason = json.loads(err.read().decode()).get("error") or str(err)
        except ValueError:
            reason = str(err)
        raise EmulatorError(reason) from err
    except OSError as err:
        raise EmulatorError(f"emulator at {endpoint} is unreachable: {err}") from err


def utc(value: datetime | None = None, **delta: float) -> datetime:
    """A timezone-aware UTC time (now by default), shifted by ``timedelta(**delta)``: handy for job times."""
    return (value or datetime.now(UTC)) + timedelta(**delta)


def backend_store(backend: Any, name: str) -> dict[str, dict[str, Any]]:
    """What moto_ext keeps on a moto backend under ``name`` (created empty on first use; reset with the backend)."""
    if not hasattr(backend, name):
        setattr(backend, name, {})
    found: dict[str, dict[str, Any]] = getattr(backend, name)
    return found
