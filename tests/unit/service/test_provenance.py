"""Capture at launch and look up by key: the provenance object, the launch chain of service-launched jobs, and the
throttle-aware LookupEvents fallback (never failing a record for throttling)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from flopsmeter.audit.keys import provenance_key_for_arn
from flopsmeter.contract import TAG_PIPELINE_EXECUTION_ARN, training_launch_pattern
from flopsmeter.errors import CloudTrailPending, CloudTrailThrottled, MalformedEvent, PermanentError, TransientError
from flopsmeter.service.classifier import classify_and_record
from flopsmeter.service.dependencies import ClassifyRequest
from flopsmeter.service.provenance import capture_launch, read_provenance
from tests.support.launches import CAROL, PIPELINE, SWEEP, launch_call, launch_event


def test_capture_rule_pattern_is_successful_sagemaker_launch_calls() -> None:
    assert training_launch_pattern() == {
        "source": ["aws.sagemaker"],
        "detail-type": ["AWS API Call via CloudTrail"],
        "detail": {
            "eventSource": ["sagemaker.amazonaws.com"],
            "eventName": [
                "CreateTrainingJob",
                "CreateHyperParameterTuningJob",
                "StartPipelineExecution",
                "CreateAutoMLJob",
                "CreateAutoMLJobV2",
                "CreateTrainingSession",  # issue 26: who opened a training session
            ],
            "errorCode": [{"exists": False}],
        },
    }


def test_capture_stores_one_immutable_object_by_key_and_the_first_write_wins(world) -> None:
    event = launch_event("CreateHyperParameterTuningJob", {"hyperParameterTuningJobArn": SWEEP})
    first = capture_launch(launch_call(event), world.store, world.now)
    again = capture_launch(launch_call(event), world.store, world.now + timedelta(minutes=1))
    assert first.written and not again.written and first.key == provenance_key_for_arn(SWEEP)
    stored = read_provenance(world.store, SWEEP)
    assert stored == first.provenance and stored.principal_arn == CAROL
    assert stored.session_issuer_arn.endswith(":role/MLEngineer") and stored.kind == "hyper-parameter-tuning-job"
    assert stored.request == {
        "hyperParameterTuningJobName": "sweep-1",
        "hyperParameterTuningJobConfig.resourceLimits.maxNumberOfTrainingJobs": "20",
    }


@pytest.mark.parametrize(
    "event",
    [
        {"detail-type": "SageMaker Training Job State Change", "detail": {}},
        launch_event("DeleteTrainingJob", {}),
        launch_event("CreateHyperParameterTuningJob", {"hyperParameterTuningJobArn": SWEEP}, error="AccessDenied"),
        launch_event("CreateHyperParameterTuningJob", {"hyperParameterTuningJobArn": "arn:aws:s3:::nope"}),
        launch_event("CreateHyperParameterTuningJob", None),
    ],
)
def test_capture_refuses_what_is_not_a_successful_launch(world, event) -> None:
    with pytest.raises(MalformedEvent):
        capture_launch(launch_call(event), world.store, world.now)
    assert world.store.objects == {}


def test_a_tampered_provenance_object_is_not_trusted(world) -> None:
    result = capture_launch(
        launch_call(launch_event("CreateHyperParameterTuningJob", {"hyperParameterTuningJobArn": SWEEP})), world.store
    )
    world.store.objects[result.key] = world.store.objects[result.key].replace(b"carol", b"mallory")
    assert read_provenance(world.store, SWEEP) is None


def classify(world, name):
    return classify_and_record(ClassifyRequest(name, "evt"), world.deps, world.config).record


def test_a_directly_launched_job_is_read_by_key_without_lookup_events(world) -> None:
    job = world.jobs.add("job-direct")
    launched = launch_event("CreateTrainingJob", {"trainingJobArn": job["TrainingJobArn"]})
    capture_launch(launch_call(launched), world.store, world.now)
    world.trail.faults.add("find_create_training_job", AssertionError("LookupEvents must not be called"))
    record = classify(world, "job-direct")
    assert record.cloudtrail.status == "found" and record.cloudtrail.source == "provenance"
    assert record.cloudtrail.principal_arn == CAROL and record.cloudtrail.chain == []


def test_a_tuning_trial_keeps_the_chain_to_the_person_who_started_the_sweep(world) -> None:
    world.jobs.add("sweep-1-001-abc")["TuningJobArn"] = SWEEP
    sweep = launch_event("CreateHyperParameterTuningJob", {"hyperParameterTuningJobArn": SWEEP})
    capture_launch(launch_call(sweep), world.store)
    ref = classify(world, "sweep-1-001-abc").cloudtrail
    assert ref.status == "found" and ref.principal_arn == CAROL and ref.source == "provenance"
    [parent] = ref.chain
    assert (parent.kind, parent.arn, parent.event_name) == (
        "hyper-parameter-tuning-job",
        SWEEP,
        "CreateHyperParameterTuningJob",
    )
    assert parent.principal_arn == CAROL and parent.event_id == "evt-CreateHyperParameterTuningJob"


def test_a_pipeline_step_without_capture_falls_back_to_its_execution_in_cloudtrail(world) -> None:
    job = world.jobs.add("pipe-step-train", tags={TAG_PIPELINE_EXECUTION_ARN: PIPELINE})
    world.jobs.pipeline_steps[PIPELINE] = [job["TrainingJobArn"].upper()]  # compared case-insensitively
    world.trail.add(PIPELINE)  # FakeTrail keys launch hits by the parent's ARN
    ref = classify(world, "pipe-step-train").cloudtrail
    assert ref.status == "found" and ref.source == "lookup_events"
    assert [(link.kind, link.event_name) for link in ref.chain] == [("pipeline-execution", "StartPipelineExecution")]


def test_a_pipeline_tag_the_execution_does_not_confirm_is_not_trusted(world) -> None:
    """Anyone who may tag a job can write the tag: a job claiming someone else's pipeline keeps its own launcher."""
    world.jobs.pipeline_steps[PIPELINE] = ["arn:aws:sagemaker:eu-west-1:123456789012:training-job/the-real-step"]
    world.jobs.add("spoofed", tags={TAG_PIPELINE_EXECUTION_ARN: PIPELINE})
    world.trail.add("spoofed")  # its own CreateTrainingJob, by the person who made it
    world.trail.add(PIPELINE)
    record = classify(world, "spoofed")
    assert record.cloudtrail.chain == [] and record.cloudtrail.event_id == "ct-spoofed"
    assert any("not trusted" in w and PIPELINE in w for w in record.warnings)


@pytest.mark.parametrize(
    ("tag", "fault", "why"),
    [
        (PIPELINE, PermanentError("AccessDenied: not allowed"), "cannot confirm"),
        ("arn:aws:sagemaker:eu-west-1:123456789012:training-job/other", None, "not a pipeline execution ARN"),
        ("not an arn", None, "not a pipeline execution ARN"),
    ],
)
def test_an_unconfirmable_pipeline_tag_falls_back_to_the_jobs_own_launch(world, tag, fault, why) -> None:
    job = world.jobs.add("claimed", tags={TAG_PIPELINE_EXECUTION_ARN: tag})
    world.jobs.pipeline_steps[PIPELINE] = [job["TrainingJobArn"]]
    if fault is not None:
        world.jobs.faults.add("pipeline_step_jobs", fault)
    world.trail.add("claimed")
    record = classify(world, "claimed")
    assert record.cloudtrail.chain == [] and record.cloudtrail.status == "found"
    assert any(why in w for w in record.warnings)


def test_a_throttled_confirmation_is_retried_not_decided(world) -> None:
    job = world.jobs.add("pipe-step-train", tags={TAG_PIPELINE_EXECUTION_ARN: PIPELINE})
    world.jobs.pipeline_steps[PIPELINE] = [job["TrainingJobArn"]]
    world.jobs.faults.add("pipeline_step_jobs", TransientError("ThrottlingException"))
    with pytest.raises(TransientError):
        classify(world, "pipe-step-train")
    assert world.store.records() == {}


def test_throttling_within_the_wait_is_retried_not_recorded(world) -> None:
    world.jobs.add("job-throttled")
    world.trail.faults.add("find_create_training_job", CloudTrailThrottled("throttled"))
    with pytest.raises(CloudTrailThrottled):
        classify(world, "job-throttled")
    assert world.store.records() == {}


def test_throttling_after_the_wait_writes_the_record_as_not_found_saying_why(world) -> None:
    world.jobs.add("job-throttled")
    world.now += timedelta(seconds=world.config.cloudtrail_max_wait_seconds)
    world.trail.faults.add("find_create_training_job", CloudTrailThrottled("still throttled"))
    ref = classify(world, "job-throttled").cloudtrail
    assert ref.status == "not_found" and "throttled" in ref.reason


def test_a_parent_neither_captured_nor_in_cloudtrail_waits_then_is_not_found(world) -> None:
    world.jobs.add("sweep-1-002-def")["TuningJobArn"] = SWEEP
    with pytest.raises(CloudTrailPending):
        classify(world, "sweep-1-002-def")
    world.now += timedelta(hours=1)
    ref = classify(world, "sweep-1-002-def").cloudtrail
    assert ref.status == "not_found" and SWEEP in ref.reason and ref.chain[0].principal_arn is None
