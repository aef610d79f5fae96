"""Issue 26 in the synthesized template: training-session calls and AWS Batch service-job events reach the
classifier queue, SubmitServiceJob and CreateTrainingSession reach the provenance function, and the classifier and
reconciler may read sessions and service jobs (and nothing broader)."""

from __future__ import annotations

import json

import pytest

from flopsmeter.contract import (
    batch_service_job_state_change_pattern,
    training_launch_pattern,
    training_session_end_pattern,
    work_launch_patterns,
)
from infra.constructs.service import RECONCILER_BATCH_READS
from tests.infra.template import Synthesized, allowed, classifier_queue, function, role_of, role_statements

pytestmark = pytest.mark.infra


def _rules_with(synth: Synthesized, pattern: dict) -> list[dict]:
    return [r["Properties"] for r in synth.of_type("AWS::Events::Rule").values()
            if r["Properties"].get("EventPattern") == pattern]  # fmt: skip


@pytest.mark.parametrize("pattern", [training_session_end_pattern, batch_service_job_state_change_pattern])
def test_session_end_calls_and_batch_service_jobs_reach_the_classifier_queue(synth: Synthesized, pattern) -> None:
    (rule,) = _rules_with(synth, pattern())
    (target,) = rule["Targets"]
    assert synth.resources[target["Arn"]["Fn::GetAtt"][0]] == classifier_queue(synth)
    assert "DeadLetterConfig" in target and "EventBusName" not in rule


def test_the_patterns_are_the_documented_ones() -> None:
    session = training_session_end_pattern()["detail"]
    assert session["eventName"] == ["StopTrainingSession", "DeleteTrainingSession"]
    assert session["errorCode"] == [{"exists": False}]
    batch = batch_service_job_state_change_pattern()
    assert (batch["source"], batch["detail-type"]) == (["aws.batch"], ["Batch Service Job State Change"])
    assert batch["detail"]["status"] == ["SCHEDULED", "STARTING", "RUNNING", "RUNNABLE", "SUCCEEDED", "FAILED"]
    assert "CreateTrainingSession" in training_launch_pattern()["detail"]["eventName"]
    _, submit = work_launch_patterns()
    assert submit["detail"]["eventSource"] == ["batch.amazonaws.com"]
    assert submit["detail"]["eventName"] == ["SubmitServiceJob"]


def test_create_training_session_and_submit_service_job_reach_the_provenance_function(synth: Synthesized) -> None:
    function_id, _ = function(synth, "provenance")
    for pattern in work_launch_patterns():
        (rule,) = _rules_with(synth, pattern)
        (target,) = rule["Targets"]
        assert target["Arn"] == {"Fn::GetAtt": [function_id, "Arn"]} and "DeadLetterConfig" in target


@pytest.mark.parametrize("name", ["classifier", "reconciler"])
def test_sessions_and_service_jobs_are_read_with_the_narrowest_grant(synth: Synthesized, name: str) -> None:
    pairs = allowed(role_statements(synth, role_of(synth, name)))
    sessions = {r for a, r in pairs if a == "sagemaker:DescribeTrainingSession"}
    assert sessions == {"arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:training-session/*"}
    unscoped = ("sagemaker:ListTrainingSessions", "sagemaker:ListModelPackages", "batch:DescribeServiceJob")
    for action in (*unscoped, *({"reconciler": RECONCILER_BATCH_READS}.get(name, ()))):
        assert {r for a, r in pairs if a == action} == {"*"}  # no resource-level permissions for these
    text = json.dumps(role_statements(synth, role_of(synth, name)))
    for broader in (
        "batch:*",
        "sagemaker:*",
        "sagemaker:Describe*",
        "batch:Describe*",
        "batch:List*",
        "sagemaker:List*",
    ):
        assert f'"{broader}"' not in text
    lists = {"reconciler": {"batch:DescribeJobQueues", "batch:ListServiceJobs"}}.get(name, set())
    assert {a for a, _ in pairs if a.startswith("batch:")} == {"batch:DescribeServiceJob", *lists}
    sessions_reads = ("sagemaker:DescribeTrainingSession", "sagemaker:ListTrainingSessions")
    assert not any("TrainingSession" in a and a not in sessions_reads for a, _ in pairs)
