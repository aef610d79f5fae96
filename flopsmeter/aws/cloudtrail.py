"""Who created a training job (or the tuning job, pipeline execution or AutoML job that launched it): CloudTrail's
management event, via LookupEvents. The fallback when no provenance was captured at launch.

LookupEvents takes one attribute per request; the event name plus a narrow time window around the job's
creation keeps it to a page or two, and the job name is matched in the event's ``requestParameters``.
CloudTrail delivers events ~15 minutes late: ``None`` means "not there (yet)"; the service decides how long
to wait. LookupEvents allows 2 requests per second per account and region: calls are paced and capped, and
throttling is backed off with jitter (``flopsmeter.aws.lookup_budget``), then left to the queue's retry.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from flopsmeter.aws.errors import is_throttling, translate
from flopsmeter.aws.lookup_budget import LookupAllowance, LookupBudget
from flopsmeter.contract import BATCH_CREATED_ARN_FIELD, CREATED_ARN_FIELD
from flopsmeter.domain.times import as_utc
from flopsmeter.ports import TrailHit

WINDOW_BEFORE = timedelta(minutes=15)  # clock skew between SageMaker's CreationTime and CloudTrail's eventTime
WINDOW_AFTER = timedelta(minutes=60)
MAX_PAGES = 40  # 50 events a page: 2 000 CreateTrainingJob calls within the window before giving up
PAGE_SIZE = 50
PARENT_LOOKBACK = timedelta(hours=24)  # a tuning job or pipeline may launch jobs for hours after it was started


class CreateTrainingJobTrail:
    """LookupEvents, throttle-aware (``flopsmeter.aws.lookup_budget``): the fallback when no provenance was captured."""

    def __init__(self, client: Any, budget: LookupBudget | None = None) -> None:
        self.client = client
        self.budget = budget or LookupBudget()

    def find_create_training_job(self, job_name: str, created: datetime) -> TrailHit | None:
        return self._find(
            "CreateTrainingJob", created - WINDOW_BEFORE, created + WINDOW_AFTER, lambda e: match_event(e, job_name)
        )

    def find_launch(self, event_name: str, resource_arn: str, before: datetime) -> TrailHit | None:
        """The ``event_name`` call that created ``resource_arn`` (a tuning job, pipeline execution or AutoML job),
        looked for in the ``PARENT_LOOKBACK`` before ``before`` (the creation of a job it launched)."""
        return self._find(
            event_name,
            before - PARENT_LOOKBACK,
            before + WINDOW_BEFORE,
            lambda e: match_launch_event(e, event_name, resource_arn),
        )

    def _find(
        self, event_name: str, start: datetime, end: datetime, match: Callable[[dict[str, Any]], TrailHit | None]
    ) -> TrailHit | None:
        what = f"CloudTrail LookupEvents {event_name}"
        allowance = self.budget.lookup()
        request: dict[str, Any] = {
            "LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": event_name}],
            "StartTime": start,
            "EndTime": end,
            "MaxResults": PAGE_SIZE,
        }
        for _page in range(MAX_PAGES):
            page = self._page(request, allowance, what)
            for event in page.get("Events", []):
                hit = match(event)
                if hit is not None:
                    return hit
            if not page.get("NextToken"):
                return None
            request["NextToken"] = page["NextToken"]
        return None

    def _page(self, request: dict[str, Any], allowance: LookupAllowance, what: str) -> dict[str, Any]:
        while True:
            allowance.before_call(what)
            try:
                return dict(self.client.lookup_events(**request))
            except ClientError as err:
                if not is_throttling(err):
                    raise translate(err, what) from err
                allowance.after_throttle(what)
            except BotoCoreError as err:
                raise translate(err, what) from err


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
    return _hit(event, detail)


def _text(value: Any, limit: int = 512) -> str | None:
    return None if value is None else str(value)[:limit]


def match_launch_event(event: dict[str, Any], event_name: str, resource_arn: str) -> TrailHit | None:
    """A ``TrailHit`` when this entry is the successful ``event_name`` call that created ``resource_arn``."""
    try:
        detail = json.loads(event.get("CloudTrailEvent") or "{}")
    except (TypeError, ValueError):
        return None
    if not isinstance(detail, dict) or detail.get("errorCode") or detail.get("eventName") != event_name:
        return None
    response = detail.get("responseElements")
    field = {**CREATED_ARN_FIELD, **BATCH_CREATED_ARN_FIELD}.get(event_name, "")
    created = response.get(field, "") if isinstance(response, dict) else ""
    if not isinstance(created, str) or created.lower() != resource_arn.lower():
        return None
    return _hit(event, detail)


def _hit(event: dict[str, Any], detail: dict[str, Any]) -> TrailHit:
    identity = detail.get("userIdentity") or {}
    return TrailHit(
        event_id=str(event.get("EventId") or detail.get("eventID") or ""),
        event_time=as_utc(event.get("EventTime") or detail.get("eventTime")),
        principal_arn=_text(identity.get("arn") if isinstance(identity, dict) else None),
        source_ip=_text(detail.get("sourceIPAddress")),
        user_agent=_text(detail.get("userAgent")),
    )
