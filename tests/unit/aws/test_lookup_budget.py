"""The throttle-aware LookupEvents fallback: paced, capped, backing off with jitter, never failing for throttling."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import boto3
import pytest
from botocore.stub import Stubber

from flopsmeter.aws.cloudtrail import CreateTrainingJobTrail
from flopsmeter.aws.lookup_budget import LookupBudget
from flopsmeter.errors import CloudTrailThrottled, TransientError

CREATED = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
TUNING_ARN = "arn:aws:sagemaker:eu-west-1:123456789012:hyper-parameter-tuning-job/sweep-1"


class SimulatedTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def budget(time: SimulatedTime, **kwargs: float) -> LookupBudget:
    return LookupBudget(clock=time.clock, sleep=time.sleep, jitter=lambda: 0.5, **kwargs)  # type: ignore[arg-type]


def tuning_event(arn: str) -> dict:
    detail = {
        "eventName": "CreateHyperParameterTuningJob",
        "eventID": "id-sweep",
        "eventTime": "2026-11-20T09:00:00Z",
        "userIdentity": {"type": "AssumedRole", "arn": "arn:aws:sts::123456789012:assumed-role/MLEngineer/carol"},
        "sourceIPAddress": "198.51.100.9",
        "userAgent": "Boto3",
        "responseElements": {"hyperParameterTuningJobArn": arn},
    }
    return {"EventId": "id-sweep", "EventName": "CreateHyperParameterTuningJob", "CloudTrailEvent": json.dumps(detail)}


@pytest.fixture
def cloudtrail():
    client = boto3.client("cloudtrail", region_name="eu-west-1")
    with Stubber(client) as stub:
        yield client, stub


def test_calls_are_paced_by_the_token_bucket() -> None:
    time = SimulatedTime()
    paced = budget(time, rate_per_second=0.5, burst=2)
    assert [paced.take() for _ in range(4)] == [0.0, 0.0, 2.0, 2.0]  # the burst, then one call every 2 s
    assert time.now == 4.0


def test_a_throttled_call_backs_off_with_jitter_and_then_succeeds(cloudtrail) -> None:
    client, stub = cloudtrail
    time = SimulatedTime()
    stub.add_client_error("lookup_events", service_error_code="ThrottlingException", http_status_code=400)
    stub.add_client_error("lookup_events", service_error_code="ThrottlingException", http_status_code=400)
    stub.add_response("lookup_events", {"Events": [tuning_event(TUNING_ARN)]})
    trail = CreateTrainingJobTrail(client, budget(time, backoff_base_seconds=1.0))
    hit = trail.find_launch("CreateHyperParameterTuningJob", TUNING_ARN, CREATED)
    assert hit is not None and hit.principal_arn is not None and hit.principal_arn.endswith("/carol")
    assert time.sleeps[:2] == [0.5, 1.0]  # jitter 0.5 x 1 s x 2**attempt
    stub.assert_no_pending_responses()


def test_persistent_throttling_is_transient_never_a_failure(cloudtrail) -> None:
    client, stub = cloudtrail
    time = SimulatedTime()
    for _ in range(3):
        stub.add_client_error("lookup_events", service_error_code="ThrottlingException", http_status_code=400)
    trail = CreateTrainingJobTrail(client, budget(time, max_retries=2, rate_per_second=100.0))
    with pytest.raises(CloudTrailThrottled) as raised:
        trail.find_create_training_job("job-a", CREATED)
    assert isinstance(raised.value, TransientError)  # the message is retried; the record is not failed
    assert time.sleeps == [0.5, 1.0]  # two back-offs, then it gave up


def test_a_lookup_stops_at_its_call_cap(cloudtrail) -> None:
    client, stub = cloudtrail
    time = SimulatedTime()
    for page in range(3):
        stub.add_response("lookup_events", {"Events": [], "NextToken": f"p{page}"})
    trail = CreateTrainingJobTrail(client, budget(time, max_calls=3, rate_per_second=100.0))
    with pytest.raises(CloudTrailThrottled, match="cap"):
        trail.find_create_training_job("job-a", CREATED)
    stub.assert_no_pending_responses()


def test_a_lookup_never_waits_past_its_bound(cloudtrail) -> None:
    client, stub = cloudtrail
    time = SimulatedTime()
    stub.add_response("lookup_events", {"Events": [], "NextToken": "p1"})
    trail = CreateTrainingJobTrail(client, budget(time, rate_per_second=0.01, burst=1, max_wait_seconds=10.0))
    with pytest.raises(CloudTrailThrottled, match="budget"):
        trail.find_create_training_job("job-a", CREATED)
    assert time.now == 0.0  # it gave up instead of sleeping 100 s


def test_launch_lookup_matches_only_the_call_that_created_the_parent(cloudtrail) -> None:
    client, stub = cloudtrail
    stub.add_response("lookup_events", {"Events": [tuning_event(TUNING_ARN.replace("sweep-1", "sweep-2"))]})
    trail = CreateTrainingJobTrail(client, budget(SimulatedTime()))
    assert trail.find_launch("CreateHyperParameterTuningJob", TUNING_ARN, CREATED) is None
