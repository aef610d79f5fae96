"""The time of an EventBridge scheduled event, which the scheduled functions use as "now" (a retry of the same
invocation then covers the same hour or the same records)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def scheduled_time(event: dict[str, Any]) -> datetime | None:
    """The event's ``time`` (UTC), or None when it has none (a manual invocation)."""
    raw = event.get("time")
    if not raw:
        return None
    moment = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
