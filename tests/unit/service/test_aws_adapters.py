"""boto3 adapters with botocore's Stubber (real response shapes, no network, no moto)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import boto3
import pytest
from botocore.stub import Stubber

from flopsmeter.aws.cloudtrail import CreateTrainingJobTrail
from flopsmeter.aws.lookup_budget import LookupBudget
from flopsmeter.aws.notifier import Notifier
from flopsmeter.aws.sagemaker import SageMakerJobs
from flopsmeter.errors import JobNotFound, PermanentError, TransientError

CREATED = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def trail_event(job: str, *, error: str | None = None) -> dict:
    detail = {
        "eventVersion": "1.09",
        "eventTime": "2026-11-20T10:00:02Z",
        "eventSource": "sagemaker.amazonaws.com",
        "eventName": "CreateTrainingJob",
        "awsRegion": "eu-west-1",
        "sourceIPAddress": "198.51.100.7",
        "userAgent": "Boto3/1.35.0 md/Botocore#1.35.0",
        "userIdentity": {"type": "AssumedRole", "arn": "arn:aws:sts::123456789012:assumed-role/MLEngineer/bob"},
        "requestParameters": {"trainingJobName": job, "hyperParameters": "HIDDEN_DUE_TO_SECURITY_REASONS"},
        "responseElements": None
        if error
        else {"trainingJobArn": f"arn:aws:sagemaker:eu-west-1:123456789012:training-job/{job}"},
        "eventID": f"id-{job}",
    }
    if error:
        detail["errorCode"] = error
    return {
        "EventId": f"id-{job}",
        "EventName": "CreateTrainingJob",
        "ReadOnly": "false",
        "EventTime": datetime(2026, 11, 20, 10, 0, 2, tzinfo=UTC),
        "EventSource": "sagemaker.amazonaws.com",
        "Username": "bob",
        "Resources": [],
        "CloudTrailEvent": json.dumps(detail),
    }


@pytest.fixture
def cloudtrail():
    client = boto3.client("cloudtrail", region_name="eu-west-1")
    with Stubber(client) as stub:
        yield client, stub


def test_lookup_finds_the_jobs_create_event_across_pages(cloudtrail):
    client, stub = cloudtrail
    stub.add_response(
        "lookup_events",
        {"Events": [trail_event("other-job"), {"EventId": "x", "CloudTrailEvent": "{"}], "NextToken": "page2"},
    )
    stub.add_response(
        "lookup_events", {"Events": [trail_event("job-a", error="ValidationException"), trail_event("job-a")]}
    )
    hit = CreateTrainingJobTrail(client).find_create_training_job("job-a", CREATED)
    assert hit is not None and hit.event_id == "id-job-a" and hit.source_ip == "198.51.100.7"
    assert hit.principal_arn.endswith("assumed-role/MLEngineer/bob") and hit.event_time.tzinfo is not None
    stub.assert_no_pending_responses()


def test_lookup_without_a_match_is_none(cloudtrail):
    client, stub = cloudtrail
    stub.add_response("lookup_events", {"Events": [trail_event("other-job")]})
    assert CreateTrainingJobTrail(client).find_create_training_job("job-a", CREATED) is None


@pytest.mark.parametrize(
    ("code", "status", "raised"),
    [
        ("ThrottlingException", 400, TransientError),
        ("InternalFailure", 500, TransientError),
        ("AccessDeniedException", 400, PermanentError),
    ],
)
def test_lookup_errors_become_our_own(cloudtrail, code, status, raised):
    client, stub = cloudtrail
    stub.add_client_error("lookup_events", service_error_code=code, http_status_code=status)
    with pytest.raises(raised):  # no back-off left: a throttled lookup is CloudTrailThrottled (transient)
        CreateTrainingJobTrail(client, LookupBudget(max_retries=0)).find_create_training_job("job-a", CREATED)


def test_describe_of_a_missing_job_is_job_not_found():
    client = boto3.client("sagemaker", region_name="eu-west-1")
    with Stubber(client) as stub:
        stub.add_client_error(
            "describe_training_job",
            service_error_code="ValidationException",
            service_message="Requested resource not found.",
        )
        with pytest.raises(JobNotFound):
            SageMakerJobs(client).describe("gone")


def test_partially_failed_put_events_is_not_silently_accepted():
    client = boto3.client("events", region_name="eu-west-1")
    with Stubber(client) as stub:
        stub.add_response(
            "put_events",
            {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "ThrottlingException", "ErrorMessage": "Rate exceeded"}]},
        )
        with pytest.raises(TransientError, match="ThrottlingException"):
            Notifier(client, None).recorded({"record_id": "r"}, resources=[])
