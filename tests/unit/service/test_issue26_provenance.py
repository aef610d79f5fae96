"""Who opened a training session and who submitted a Batch service job: captured at launch, by key."""

from __future__ import annotations

from flopsmeter.audit.keys import parse_launch_arn, provenance_key_for_arn
from flopsmeter.service.provenance import capture_launch
from tests.support.fakes import FakeStore
from tests.support.launches import CAROL, launch_call, launch_event

SESSION = "arn:aws:sagemaker:eu-west-1:123456789012:training-session/rl-session"
SERVICE_JOB = "arn:aws:batch:eu-west-1:123456789012:service-job/0bb17543-ece6-4480-b1a7-a556d344746b"


def test_create_training_session_is_captured_under_the_sessions_arn() -> None:
    store = FakeStore()
    result = capture_launch(launch_call(launch_event("CreateTrainingSession", {"trainingSessionArn": SESSION})), store)
    assert result.written and result.key == provenance_key_for_arn(SESSION)
    assert result.provenance.kind == "training-session" and result.provenance.principal_arn == CAROL


def test_submit_service_job_is_captured_under_the_service_jobs_arn() -> None:
    event = launch_event("SubmitServiceJob", {"jobArn": SERVICE_JOB, "jobId": "0bb17543", "jobName": "ft"})
    event = {**event, "source": "aws.batch", "detail": {**event["detail"], "eventSource": "batch.amazonaws.com"}}
    result = capture_launch(launch_call(event), FakeStore())
    assert result.provenance.kind == "batch-service-job" and result.provenance.principal_arn == CAROL
    assert parse_launch_arn(SERVICE_JOB)[2:] == ("batch-service-job", "0bb17543-ece6-4480-b1a7-a556d344746b")
