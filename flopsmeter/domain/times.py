"""Time helpers shared by every layer: the current moment and any AWS-shaped timestamp as an aware UTC datetime.

Every moment the package keeps is timezone-aware and in UTC. ``as_utc`` reads what AWS APIs and events hand over
(datetime, epoch seconds or milliseconds, ISO 8601 text) and gives None for what it cannot read; ``to_utc`` is the
strict form for moments that decide a deadline (a naive one is refused rather than guessed).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from flopsmeter.domain.errors import InvalidMoment


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: Any) -> datetime | None:
    """A describe/list timestamp (datetime, epoch seconds, ISO string) as an aware UTC datetime."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return datetime.fromtimestamp(value / 1000 if value > 1e11 else value, UTC)
    if isinstance(value, str):
        try:
            return as_utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
        except ValueError:
            return None
    return None


def to_utc(moment: datetime) -> datetime:
    """``moment`` in UTC; a naive datetime is refused rather than guessed."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidMoment(f"moment {moment.isoformat()} has no time zone")
    return moment.astimezone(UTC)
