"""S3 key layout of the audit bucket. Keys derive from the job alone, so redelivery writes the same key."""

from __future__ import annotations

import re
from datetime import date, datetime

RECORDS_PREFIX = "records/v1/"
DIGESTS_PREFIX = "digests/v1/"
_JOB_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")  # SageMaker's own TrainingJobName pattern


def valid_job_name(name: str) -> bool:
    return bool(_JOB_NAME.match(name))


def record_key(account_id: str, region: str, end_time: datetime | date, job_name: str) -> str:
    if not valid_job_name(job_name):
        raise ValueError(f"not a SageMaker training job name: {job_name[:80]!r}")
    day = end_time.date() if isinstance(end_time, datetime) else end_time
    return f"{RECORDS_PREFIX}account={account_id}/region={region}/date={day.isoformat()}/{job_name}.json"


def records_prefix(account_id: str | None = None, region: str | None = None, day: date | None = None) -> str:
    prefix = RECORDS_PREFIX
    if account_id is None:
        return prefix
    prefix += f"account={account_id}/"
    if region is None:
        return prefix
    prefix += f"region={region}/"
    return prefix if day is None else prefix + f"date={day.isoformat()}/"


def parse_record_key(key: str) -> dict[str, str]:
    """``{"account": …, "region": …, "date": …, "job": …}`` for a record key, else ValueError."""
    m = re.match(r"^records/v1/account=([^/]+)/region=([^/]+)/date=(\d{4}-\d{2}-\d{2})/([^/]+)\.json$", key)
    if not m:
        raise ValueError(f"not a record key: {key!r}")
    return dict(zip(("account", "region", "date", "job"), m.groups(), strict=True))


def digest_key(account_id: str, region: str, hour: datetime) -> str:
    return f"{DIGESTS_PREFIX}account={account_id}/region={region}/{hour:%Y/%m/%d/%H}.json"


# One immutable marker per record once its announcement went out (all steps), or per step (``step="event"``).
NOTIFICATIONS_PREFIX = "notifications/v1/"


def notification_key(of_record: str, step: str | None = None) -> str:
    """Marker key of a record's announcement: every step done (no ``step``), or one step done."""
    if not of_record.startswith(RECORDS_PREFIX):
        raise ValueError(f"not a record key: {of_record[:120]!r}")
    marker = NOTIFICATIONS_PREFIX + of_record.removeprefix(RECORDS_PREFIX)
    return marker if step is None else marker.removesuffix(".json") + f".{step}.json"
