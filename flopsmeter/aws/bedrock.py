"""Amazon Bedrock facts of a model customization job: GetModelCustomizationJob, its tags, and who created it
(CloudTrail's ``CreateModelCustomizationJob`` management event, via LookupEvents, as for training jobs).

IAM the classifier needs: ``bedrock:GetModelCustomizationJob``, ``bedrock:ListTagsForResource`` and
``cloudtrail:LookupEvents`` (already granted for training jobs); the reconciler also
``bedrock:ListModelCustomizationJobs``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from flopsmeter import contract
from flopsmeter.aws.errors import is_unknown_resource, translate
from flopsmeter.domain.times import as_utc
from flopsmeter.errors import JobNotFound
from flopsmeter.ports import TrailHit

WINDOW_BEFORE = timedelta(minutes=15)  # clock skew between Bedrock's creationTime and CloudTrail's eventTime
WINDOW_AFTER = timedelta(minutes=60)
MAX_PAGES = 40
MAX_TEXT = 512
# ListModelCustomizationJobs filters on creation time only: a job that ended in the reconciler's window was created
# at most this long before it (our assumption; Bedrock documents no maximum job duration).
MAX_JOB_AGE = timedelta(days=30)


class BedrockJobs:
    """GetModelCustomizationJob, ListTagsForResource and the job's CreateModelCustomizationJob CloudTrail event."""

    def __init__(self, bedrock: Any, cloudtrail: Any) -> None:
        self.bedrock = bedrock
        self.cloudtrail = cloudtrail

    def get_job(self, job_identifier: str) -> Mapping[str, Any]:
        try:
            reply = self.bedrock.get_model_customization_job(jobIdentifier=job_identifier)
        except ClientError as err:
            if is_unknown_resource(err):
                raise JobNotFound(f"model customization job {job_identifier} does not exist: {err}") from err
            raise translate(err, f"GetModelCustomizationJob {job_identifier}") from err
        except BotoCoreError as err:
            raise translate(err, f"GetModelCustomizationJob {job_identifier}") from err
        reply.pop("ResponseMetadata", None)
        return dict(reply)

    def tags(self, job_arn: str) -> dict[str, str]:
        try:
            reply = self.bedrock.list_tags_for_resource(resourceARN=job_arn)
        except (ClientError, BotoCoreError) as err:
            raise translate(err, f"ListTagsForResource {job_arn}") from err
        return {str(t["key"]): str(t.get("value", "")) for t in reply.get("tags", [])}

    def recent_terminal_jobs(self, since: datetime) -> Iterator[Mapping[str, Any]]:
        """Terminal jobs created within ``MAX_JOB_DAYS`` before ``since`` (the API filters on creation, not end)."""
        paginator = self.bedrock.get_paginator("list_model_customization_jobs")
        for status in contract.BEDROCK_TERMINAL_STATUSES:
            try:
                for page in paginator.paginate(
                    statusEquals=status, creationTimeAfter=since - MAX_JOB_AGE, PaginationConfig={"PageSize": 100}
                ):
                    yield from page.get("modelCustomizationJobSummaries", [])
            except (ClientError, BotoCoreError) as err:
                raise translate(err, f"ListModelCustomizationJobs {status}") from err

    def find_create_job(self, job_name: str, job_arn: str, created: datetime) -> TrailHit | None:
        pages = self.cloudtrail.get_paginator("lookup_events").paginate(
            LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": contract.CREATE_MODEL_CUSTOMIZATION_JOB}],
            StartTime=created - WINDOW_BEFORE,
            EndTime=created + WINDOW_AFTER,
            PaginationConfig={"MaxItems": MAX_PAGES * 50, "PageSize": 50},
        )
        try:
            for page in pages:
                for event in page.get("Events", []):
                    hit = match_create_job_event(event, job_name, job_arn)
                    if hit is not None:
                        return hit
        except (ClientError, BotoCoreError) as err:
            raise translate(
                err, f"CloudTrail LookupEvents {contract.CREATE_MODEL_CUSTOMIZATION_JOB} {job_name}"
            ) from err
        return None


def match_create_job_event(event: Mapping[str, Any], job_name: str, job_arn: str) -> TrailHit | None:
    """A ``TrailHit`` when this LookupEvents entry created the Bedrock job (its name in the request, or its ARN in
    the response); others give None."""
    try:
        detail = json.loads(event.get("CloudTrailEvent") or "{}")
    except (TypeError, ValueError):
        return None
    if not isinstance(detail, dict) or detail.get("errorCode"):  # a refused call created nothing
        return None
    request = detail.get("requestParameters")
    response = detail.get("responseElements")
    named = isinstance(request, dict) and request.get("jobName") == job_name
    arn = response.get("jobArn") if isinstance(response, dict) else None
    if not named and not (job_arn and arn == job_arn):
        return None
    identity = detail.get("userIdentity")
    return TrailHit(
        event_id=str(event.get("EventId") or detail.get("eventID") or ""),
        event_time=as_utc(event.get("EventTime") or detail.get("eventTime")),
        principal_arn=_text(identity.get("arn") if isinstance(identity, dict) else None),
        source_ip=_text(detail.get("sourceIPAddress")),
        user_agent=_text(detail.get("userAgent")),
    )


def _text(value: Any) -> str | None:
    return None if value is None else str(value)[:MAX_TEXT]
