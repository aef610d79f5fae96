"""The one union of inbound events: each kind parses to its own model by ``detail-type``; a function refuses the
kinds another function reads, with a short reason that says which events it takes."""

from __future__ import annotations

import json

import pytest

from flopsmeter.errors import MalformedEvent
from flopsmeter.functions.inbound import (
    TAGS,
    BatchServiceJobStateChange,
    LaunchCall,
    ModelCustomizationJobStateChange,
    TrainingJobStateChange,
    TrainingSessionEnded,
    parse_inbound,
)
from tests.support.lambda_context import event_text
from tests.support.launches import SWEEP, launch_event

DOCUMENTED = {
    TrainingJobStateChange: event_text("sagemaker_training_job_state_change_aws_docs.json"),
    ModelCustomizationJobStateChange: event_text("bedrock_model_customization_job_state_change_aws_docs.json"),
    LaunchCall: json.dumps(launch_event("CreateHyperParameterTuningJob", {"hyperParameterTuningJobArn": SWEEP})),
    TrainingSessionEnded: json.dumps(
        {
            **(stop := launch_event("StopTrainingSession", {})),
            "detail": {**stop["detail"], "requestParameters": {"trainingSessionName": "rl-session"}},
        }
    ),  # fmt: skip
    # AWS Batch User Guide, "Service job state change events" (its example, completed from DescribeServiceJob)
    BatchServiceJobStateChange: event_text("batch_service_job_state_change_aws_docs.json"),
}


def test_every_member_of_the_union_has_a_documented_event_that_parses_to_it() -> None:
    assert set(DOCUMENTED) == set(TAGS)
    for member, body in DOCUMENTED.items():
        assert type(parse_inbound(body)) is member
        assert type(parse_inbound(json.loads(body))) is member  # an already decoded event (a direct invocation)


def test_a_launch_call_becomes_the_value_the_service_takes() -> None:
    call = parse_inbound(DOCUMENTED[LaunchCall], accept=(LaunchCall,)).to_call()
    assert (call.event_name, call.event_id) == ("CreateHyperParameterTuningJob", "evt-CreateHyperParameterTuningJob")
    assert call.event_time is not None and call.event_time.isoformat() == "2026-11-20T09:00:00+00:00"
    assert call.response == {"hyperParameterTuningJobArn": SWEEP} and call.identity["type"] == "AssumedRole"


def test_a_function_refuses_the_events_another_function_reads() -> None:
    jobs = (TrainingJobStateChange, ModelCustomizationJobStateChange)
    with pytest.raises(MalformedEvent, match="'AWS API Call via CloudTrail' events are read by another function"):
        parse_inbound(DOCUMENTED[LaunchCall], accept=jobs)
    with pytest.raises(MalformedEvent, match="^not an AWS API Call via CloudTrail event: 'SageMaker Training"):
        parse_inbound(DOCUMENTED[TrainingJobStateChange], accept=(LaunchCall,))


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        ({"detail-type": "Scheduled Event", "detail": {}}, "unknown or missing detail-type"),
        (launch_event("DeleteTrainingJob", {}), "detail.eventName: Value error, must be one of"),
        (launch_event("CreateTrainingJob", {}, error="AccessDenied"), "the call was refused: it created nothing"),
        ({**launch_event("CreateTrainingJob", {}), "detail": {"eventSource": "s3.amazonaws.com"}}, "eventSource"),
    ],
)
def test_what_is_not_a_successful_sagemaker_launch_call_is_malformed(event: dict, reason: str) -> None:
    with pytest.raises(MalformedEvent, match="^not an AWS API Call via CloudTrail event: ") as refused:
        parse_inbound(event, accept=(LaunchCall,))
    assert reason in str(refused.value) and "AccessDenied" not in str(refused.value)  # the input is not echoed


def test_the_documented_batch_event_names_its_job_by_id_and_is_terminal() -> None:
    event = parse_inbound(DOCUMENTED[BatchServiceJobStateChange])
    assert (event.job_name, event.status, event.is_terminal) == (
        "0bb17543-ece6-4480-b1a7-a556d344746b",
        "SUCCEEDED",
        True,
    )
    assert event.detail.attempts[0]["serviceResourceId"]["name"] == "TrainingJobArn"


def test_a_session_call_is_told_from_a_launch_call_by_its_event_name() -> None:
    ended = parse_inbound(DOCUMENTED[TrainingSessionEnded])
    assert isinstance(ended, TrainingSessionEnded) and ended.job_name == "rl-session" and ended.is_terminal
    opened = launch_event("CreateTrainingSession", {"trainingSessionArn": "arn:aws:sagemaker:eu-west-1:1:x"})
    assert isinstance(parse_inbound(opened), LaunchCall)  # who opened it: the provenance function's
    with pytest.raises(MalformedEvent, match="read by another function"):
        parse_inbound(DOCUMENTED[TrainingSessionEnded], accept=(LaunchCall,))


def test_the_documented_batch_event_detail_is_describe_service_job_shaped() -> None:
    from flopsmeter.local.moto_ext.shapes import shaped

    detail = json.loads(DOCUMENTED[BatchServiceJobStateChange])["detail"]
    assert shaped("batch", "DescribeServiceJob", detail) == detail  # every field is botocore's, none dropped


def test_a_session_call_with_an_invalid_session_name_is_malformed_without_echoing_it() -> None:
    event = json.loads(DOCUMENTED[TrainingSessionEnded])
    event["detail"]["requestParameters"] = {"trainingSessionName": "../../etc/passwd"}
    with pytest.raises(MalformedEvent, match="no valid trainingSessionName") as refused:
        _ = parse_inbound(event).job_name
    assert "passwd" not in str(refused.value)
