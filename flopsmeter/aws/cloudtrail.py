"""Who created a training job: CloudTrail's ``CreateTrainingJob`` management event, via LookupEvents.

LookupEvents takes one attribute per request; the event name plus a narrow time window around the job's
creation keeps it to a page or two, and the job name is matched in the event's ``requestParameters``.
CloudTrail delivers events ~15 minutes late: ``None`` means "not there (yet)"; the service decides how long
to wait. LookupEvents allows 2 requests per second per account and region: throttling is normal there and
is retried (botocore, then the queue).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from flopsmeter.aws.errors import translate
from flopsmeter.service.facts import as_utc
from flopsmeter.service.ports import TrailHit

WINDOW_BEFORE = timedelta(minutes=15)  # clock skew between SageMaker's CreationTime and CloudTrail's eventTime
WINDOW_AFTER = timedelta(minutes=60)
MAX_PAGES = 40  # 50 events a page: 2 000 CreateTrainingJob calls within the window before giving up


class CreateTrainingJobTrail:
    def __init__(self, client: Any) -> None:
        self.client = client

    def find_create_training_job(self, job_name: str, created: datetime) -> TrailHit | None:
        paginator = self.client.get_paginator("lookup_events")
        pages = paginator.paginate(
            LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "CreateTrainingJob"}],
            StartTime=created - WINDOW_BEFORE,
            EndTime=created + WINDOW_AFTER,
            PaginationConfig={"MaxItems": MAX_PAGES * 50, "PageSize": 50},
        )
        try:
            for page in pages:
                for event in page.get("Events", []):
                    hit = match_event(event, job_name)
                    if hit is not None:
                        return hit
        except (ClientError, BotoCoreError) as err:
            raise translate(err, f"CloudTrail LookupEvents CreateTrainingJob {job_name}") from err
        return None


def match_event(event: dict[str, Any], job_name: str) -> TrailHit | None:
    """A ``TrailHit`` when this LookupEvents entry created ``job_name``; unreadable entries are skipped."""
    try:
        detail = json.loads(event.get("CloudTrailEvent") or "{}")
    except (TypeError, ValueError):
        return None
    if not isinstance(detail, dict):
        return None
    request = detail.get("requestParameters") or {}
    response = detail.get("responseElements") or {}
    named = isinstance(request, dict) and request.get("trainingJobName") == job_name
    arn = response.get("trainingJobArn", "") if isinstance(response, dict) else ""
    if not named and not (isinstance(arn, str) and arn.lower().endswith(f":training-job/{job_name.lower()}")):
        return None
    if detail.get("errorCode"):  # a refused CreateTrainingJob did not create this job
        return None
    identity = detail.get("userIdentity") or {}
    return TrailHit(
        event_id=str(event.get("EventId") or detail.get("eventID") or ""),
        event_time=as_utc(event.get("EventTime") or detail.get("eventTime")),
        principal_arn=_text(identity.get("arn") if isinstance(identity, dict) else None),
        source_ip=_text(detail.get("sourceIPAddress")),
        user_agent=_text(detail.get("userAgent")),
    )


def _text(value: Any, limit: int = 512) -> str | None:
    return None if value is None else str(value)[:limit]
