"""The Bedrock adapter with botocore's Stubber (real response shapes, no network): GetModelCustomizationJob,
tags, and CloudTrail's CreateModelCustomizationJob as the job's provenance."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import boto3
import pytest
from botocore.stub import Stubber

from flopsmeter.aws.bedrock import BedrockJobs, match_create_job_event
from flopsmeter.errors import JobNotFound, PermanentError, TransientError

CREATED = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
ARN = "arn:aws:bedrock:us-east-1:123456789012:model-customization-job/meta.llama3-1-8b-instruct-v1:0/abcdefghijkl"
JOB = {
    "jobArn": ARN,
    "jobName": "support-bot-ft",
    "outputModelName": "support-bot",
    "roleArn": "arn:aws:iam::123456789012:role/BedrockCustomization",
    "status": "Completed",
    "creationTime": CREATED,
    "endTime": datetime(2026, 11, 20, 12, 0, tzinfo=UTC),
    "baseModelArn": "arn:aws:bedrock:us-east-1::foundation-model/meta.llama3-1-8b-instruct-v1:0",
    "hyperParameters": {"epochCount": "2"},
    "customizationType": "FINE_TUNING",
    "trainingDataConfig": {"s3Uri": "s3://data/train.jsonl"},
    "validationDataConfig": {"validators": []},
    "outputDataConfig": {"s3Uri": "s3://data/out/"},
}


def _clients() -> tuple[object, object]:
    return (boto3.client("bedrock", region_name="us-east-1"), boto3.client("cloudtrail", region_name="us-east-1"))


def _trail_event(job_name: str, *, arn: str = ARN, error: str | None = None) -> dict[str, object]:
    detail: dict[str, object] = {
        "eventTime": "2026-11-20T10:00:02Z",
        "eventSource": "bedrock.amazonaws.com",
        "eventName": "CreateModelCustomizationJob",
        "sourceIPAddress": "198.51.100.7",
        "userAgent": "Boto3/1.40",
        "userIdentity": {"type": "AssumedRole", "arn": "arn:aws:sts::123456789012:assumed-role/MLEngineer/bob"},
        "requestParameters": {"jobName": job_name, "baseModelIdentifier": "meta.llama3-1-8b-instruct-v1:0"},
        "responseElements": None if error else {"jobArn": arn},
        "eventID": f"id-{job_name}",
    }
    if error:
        detail["errorCode"] = error
    return {"EventId": f"id-{job_name}", "EventName": "CreateModelCustomizationJob", "EventTime": CREATED,
            "CloudTrailEvent": json.dumps(detail)}  # fmt: skip


def test_get_job_returns_the_reply_without_metadata() -> None:
    bedrock, cloudtrail = _clients()
    with Stubber(bedrock) as stub:
        stub.add_response("get_model_customization_job", JOB, {"jobIdentifier": "support-bot-ft"})
        job = BedrockJobs(bedrock, cloudtrail).get_job("support-bot-ft")
    assert job["customizationType"] == "FINE_TUNING" and "ResponseMetadata" not in job


@pytest.mark.parametrize(
    ("code", "status", "error"),
    [("ResourceNotFoundException", 404, JobNotFound), ("ThrottlingException", 429, TransientError),
     ("AccessDeniedException", 403, PermanentError)],
)  # fmt: skip
def test_get_job_errors_are_told_apart_by_type(code: str, status: int, error: type[Exception]) -> None:
    bedrock, cloudtrail = _clients()
    with Stubber(bedrock) as stub, pytest.raises(error):
        stub.add_client_error("get_model_customization_job", code, http_status_code=status)
        BedrockJobs(bedrock, cloudtrail).get_job("support-bot-ft")


def test_tags_come_back_as_a_dict() -> None:
    bedrock, cloudtrail = _clients()
    with Stubber(bedrock) as stub:
        stub.add_response("list_tags_for_resource", {"tags": [{"key": "flopsmeter:pretrain-flops", "value": "1e24"}]},
                          {"resourceARN": ARN})  # fmt: skip
        assert BedrockJobs(bedrock, cloudtrail).tags(ARN) == {"flopsmeter:pretrain-flops": "1e24"}


def test_provenance_is_the_create_call_that_named_the_job() -> None:
    bedrock, cloudtrail = _clients()
    with Stubber(cloudtrail) as stub:
        stub.add_response("lookup_events", {"Events": [_trail_event("other-job", arn="x"),
                                                       _trail_event("support-bot-ft")]})  # fmt: skip
        hit = BedrockJobs(bedrock, cloudtrail).find_create_job("support-bot-ft", ARN, CREATED)
    assert hit is not None
    assert (hit.event_id, hit.principal_arn, hit.source_ip) == (
        "id-support-bot-ft", "arn:aws:sts::123456789012:assumed-role/MLEngineer/bob", "198.51.100.7")  # fmt: skip


def test_a_refused_create_call_or_another_job_is_not_provenance() -> None:
    assert (
        match_create_job_event(_trail_event("support-bot-ft", error="ValidationException"), "support-bot-ft", ARN)
        is None
    )
    assert match_create_job_event(_trail_event("other", arn="arn:other"), "support-bot-ft", ARN) is None
    assert match_create_job_event({"CloudTrailEvent": "not json"}, "support-bot-ft", ARN) is None
    assert match_create_job_event(_trail_event("renamed", arn=ARN), "support-bot-ft", ARN) is not None  # by ARN


def test_cloudtrail_throttling_is_transient() -> None:
    bedrock, cloudtrail = _clients()
    with Stubber(cloudtrail) as stub, pytest.raises(TransientError):
        stub.add_client_error("lookup_events", "ThrottlingException", http_status_code=400)
        BedrockJobs(bedrock, cloudtrail).find_create_job("support-bot-ft", ARN, CREATED)
