"""Issue 26 use cases on fakes: what a training session or a Batch attempt cannot settle yet is retried, never
recorded early; what the service cannot read is said."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any

import pytest

from flopsmeter.audit.keys import batch_attempt_index_key
from flopsmeter.errors import JobNotFound, JobNotSettled, PermanentError
from flopsmeter.service.batch_attempts import attempt_block, attempts_of
from flopsmeter.service.dependencies import ClassifyRequest
from flopsmeter.service.facts import facts_from_description
from flopsmeter.service.sessions import classify_training_session
from tests.support.fakes import ACCOUNT, END, REGION, World

ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-session/s1"


class FakeSessions:
    def __init__(self, detail: Mapping[str, Any] | None) -> None:
        self.detail = detail

    def describe_session(self, name: str) -> Mapping[str, Any]:
        if self.detail is None:
            raise JobNotFound(f"training session {name} does not exist")
        return self.detail

    def sessions(self, statuses: tuple[str, ...], since: datetime | None = None) -> Iterator[Mapping[str, Any]]:
        return iter(())

    def checkpoints(self, group_arn: str, start: datetime, end: datetime) -> list[str]:
        return []


def _session(status: str) -> dict[str, Any]:
    return {"TrainingSessionArn": ARN, "TrainingSessionName": "s1", "TrainingSessionStatus": status,
            "CreationTime": END - timedelta(hours=5), "EndTime": END,
            "BillableTokenUsage": {"TrainingTokenCount": 10**8}, "LoraConfig": {"Rank": 8, "Alpha": 16}}  # fmt: skip


def test_a_stopping_session_is_retried_until_it_has_stopped() -> None:
    world = World()
    world.deps.sessions = FakeSessions(_session("Stopping"))
    with pytest.raises(JobNotSettled):
        classify_training_session(ClassifyRequest("s1", "e", arn=ARN), world.deps, world.config)
    world.deps.sessions = FakeSessions(_session("Running"))
    assert classify_training_session(ClassifyRequest("s1", "e"), world.deps, world.config).status == "ignored"


def test_a_session_gone_with_no_assessment_fails_saying_it_cannot_be_read() -> None:
    world = World()
    world.deps.sessions = FakeSessions(None)
    with pytest.raises(JobNotFound, match="no running assessment"):
        classify_training_session(ClassifyRequest("s1", "e", arn=ARN), world.deps, world.config)


def test_a_session_event_without_a_session_client_is_a_permanent_error() -> None:
    world = World()
    with pytest.raises(PermanentError, match="no training-session client"):
        classify_training_session(ClassifyRequest("s1", "e"), world.deps, world.config)


def _attempt_job(name: str) -> Any:
    return facts_from_description({
        "TrainingJobName": name, "TrainingJobArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/{name}",
        "TrainingJobStatus": "Completed", "CreationTime": END - timedelta(hours=1), "TrainingEndTime": END,
    }, {})  # fmt: skip


def test_an_attempt_waits_for_its_service_job_then_is_recorded_alone_with_a_warning() -> None:
    world = World()
    job = _attempt_job("AWSBatchft1")
    with pytest.raises(JobNotSettled):
        attempt_block(job, world.deps, world.config, END + timedelta(minutes=5), [])
    warnings: list[str] = []
    assert attempt_block(job, world.deps, world.config, END + timedelta(hours=2), warnings) is None
    assert "no service job event named it" in warnings[0]
    assert attempt_block(_attempt_job("plain-job"), world.deps, world.config, END, []) is None


def test_an_indexed_attempt_names_its_service_job() -> None:
    world = World()
    job = _attempt_job("AWSBatchft1")
    world.store.put_immutable(batch_attempt_index_key(job.arn),
                              b'{"service_job_arn": "arn:aws:batch:eu-west-1:123456789012:service-job/j1", '
                              b'"service_job_id": "j1", "service_job_name": "ft"}')  # fmt: skip
    block = attempt_block(job, world.deps, world.config, END, [])
    assert block is not None and (block.role, block.service_job_id, block.siblings) == ("attempt", "j1", [])


def test_preempted_attempts_are_read_from_both_lists_once() -> None:
    ref = {"name": "TrainingJobArn", "value": "arn:aws:sagemaker:eu-west-1:1:training-job/AWSBatcha1"}
    job = {"attempts": [{"serviceResourceId": ref, "startedAt": 1, "stoppedAt": 2, "statusReason": "x"}],
           "preemptionSummary": {"recentPreemptedAttempts": [{"serviceResourceId": ref, "startedAt": 1}]}}  # fmt: skip
    (attempt,) = attempts_of(job)
    assert attempt.preempted and attempt.arn.endswith("AWSBatcha1")
