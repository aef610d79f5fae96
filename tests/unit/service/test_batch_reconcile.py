"""The reconciler's AWS Batch pass on fakes (issue 26): a service job whose terminal event was lost is recorded with
its attempts summed, as the event would have recorded it; one already recorded, running, or ended before the window
is left alone; a listing it cannot read is said, never passed over."""

from __future__ import annotations

from datetime import timedelta

import boto3
import pytest
from botocore.stub import Stubber

from flopsmeter.audit.keys import batch_record_key
from flopsmeter.aws.batch import BatchServiceJobs
from flopsmeter.aws.cursor import RotationCursor
from flopsmeter.contract import ServiceMetric
from flopsmeter.errors import JobNotSettled, PermanentError, TransientError
from flopsmeter.service.batch import classify_batch_service_job
from flopsmeter.service.batch_reconcile import DESCRIBE_JOB_QUEUES
from flopsmeter.service.dependencies import ClassifyRequest
from flopsmeter.service.reconcile import reconcile
from flopsmeter.service.rotation import RotationPlan, reconcile_accounts
from tests.support.fakes import ACCOUNT, END, REGION, FakeBatch, World

ATTEMPTS = ["AWSBatchft-j1-a1", "AWSBatchft-j1-a2"]


def _world() -> World:
    world = World()
    world.deps.batch = world.batch = FakeBatch()  # type: ignore[attr-defined]
    return world


def _lost_job(world: World, job_id: str = "j1", attempts: list[str] = ATTEMPTS, **kw: object) -> dict:
    """A preempted-then-resumed service job whose attempts' training jobs ran (their own events may be lost too)."""
    job = world.batch.add(job_id, attempts, preempted=(attempts[0],), **kw)  # type: ignore[attr-defined]
    for i, name in enumerate(attempts):
        end = END - timedelta(hours=len(attempts) - 1 - i)
        world.jobs.add(name, status="Stopped" if i < len(attempts) - 1 else "Completed", hours=1, end=end)
        world.trail.add(name, end - timedelta(hours=1, minutes=5))
    world.trail.hits[job["jobArn"]] = world.trail.add(job["jobArn"])  # SubmitServiceJob: who submitted
    return job


def test_a_lost_service_job_is_recorded_summed_over_its_attempts_as_the_event_would() -> None:
    world = _world()
    _lost_job(world)  # the first attempt ended 80 minutes ago: past the wait for a service job to name it
    report = reconcile(world.deps, world.config, lookback_hours=24)
    # listed first, its attempts indexed: the training-job pass records each attempt naming its service job
    assert sorted(report.recorded) == ATTEMPTS and report.batch["queues"] == 1
    assert report.batch["recorded"] == ["j1"] and report.batch["unreadable"] == {} and report.batch["deferred"] == {}
    record = world.store.records()[batch_record_key(ACCOUNT, REGION, END, "j1")]
    assert record.batch is not None
    attempts = [world.store.records()[a.record_key] for a in record.batch.attempts if a.record_key]
    assert len(attempts) == 2 and all(a.batch and a.batch.service_job_id == "j1" for a in attempts)
    summed = sum(a.flops.classified_flops for a in attempts)
    assert record.flops.classified_flops == pytest.approx(summed) and record.batch.summed_flops == pytest.approx(summed)
    assert record.batch.preempted_attempts == 1 and record.eventbridge_event_id is None
    assert record.warnings[0].startswith("reconciled:") and record.cloudtrail.status == "found"
    # the same record the event path writes: its key, its sum (an event now is a duplicate)
    again = classify_batch_service_job(ClassifyRequest("j1", "late-event"), world.deps, world.config)
    assert again.status == "duplicate" and again.key == batch_record_key(ACCOUNT, REGION, END, "j1")
    assert world.metrics.counts[ServiceMetric.JOBS_RECONCILED] == 3


def test_a_service_job_whose_attempt_is_not_settled_is_retried_next_run() -> None:
    world = _world()
    arn = _lost_job(world)["jobArn"]
    del world.trail.hits[arn]  # CloudTrail has not delivered SubmitServiceJob yet: who submitted is not known
    first = reconcile(world.deps, world.config, lookback_hours=24)
    assert ATTEMPTS[1] in first.deferred and "j1" in first.batch["deferred"]  # type: ignore[operator]
    assert world.store.records() == {f: r for f, r in world.store.records().items() if ATTEMPTS[0] in f}
    # the attempts' lineage entries are written before their wait: an entry without a record is "not yet", not an
    # unreadable record (the event path too)
    with pytest.raises(JobNotSettled, match="has no record yet"):
        classify_batch_service_job(ClassifyRequest("j1", "event"), world.deps, world.config)
    world.trail.add(arn)
    second = reconcile(world.deps, world.config, lookback_hours=24)
    assert ATTEMPTS[1] in second.recorded and second.batch["recorded"] == ["j1"]


def test_recorded_running_and_old_service_jobs_are_left_alone() -> None:
    world = _world()
    _lost_job(world)
    reconcile(world.deps, world.config, lookback_hours=24)
    world.batch.add("running", ["AWSBatchft-running-a1"], status="RUNNING")  # type: ignore[attr-defined]
    world.batch.add("old", ["AWSBatchft-old-a1"], end=END - timedelta(days=3))  # type: ignore[attr-defined]
    writes = world.store.writes
    report = reconcile(world.deps, world.config, lookback_hours=24).batch
    assert report["seen"] == 1 and report["already_recorded"] == 1 and report["recorded"] == []
    assert report["deferred"] == {} and report["failed"] == {} and world.store.writes == writes
    assert {status for _, status in world.batch.listed} == {"SUCCEEDED", "FAILED"}  # type: ignore[attr-defined]
    assert {queue for queue, _ in world.batch.listed} == {FakeBatch.QUEUE}  # type: ignore[attr-defined]


def test_a_failed_service_job_is_recorded_failed() -> None:
    world = _world()
    _lost_job(world, "j2", ["AWSBatchft-j2-a1"], status="FAILED")
    reconcile(world.deps, world.config, lookback_hours=24)
    record = world.store.records()[batch_record_key(ACCOUNT, REGION, END, "j2")]
    assert record.job.status == "Failed" and record.batch is not None and record.batch.status == "FAILED"


def test_an_unreadable_listing_is_said_and_the_rest_is_still_checked() -> None:
    world = _world()
    _lost_job(world, "j3", ["AWSBatchft-j3-a1"], status="FAILED")
    refused = PermanentError("ListServiceJobs sm-training SUCCEEDED: AccessDeniedException")
    world.batch.faults.add("service_jobs", refused)  # type: ignore[attr-defined]  # the first listing: SUCCEEDED
    report = reconcile(world.deps, world.config, lookback_hours=24).batch
    assert report["unreadable"] == {f"{FakeBatch.QUEUE} SUCCEEDED": f"PermanentError: {refused}"}
    assert report["recorded"] == ["j3"]  # the FAILED listing was read
    assert world.metrics.counts[ServiceMetric.RECONCILE_FAILED] == 1


@pytest.mark.parametrize("error", [PermanentError("AccessDeniedException"), TransientError("ThrottlingException")])
def test_queues_that_cannot_be_listed_are_said(error: Exception) -> None:
    world = _world()
    _lost_job(world)
    world.batch.faults.add("sagemaker_training_queues", error)  # type: ignore[attr-defined]
    report = reconcile(world.deps, world.config, lookback_hours=24)
    assert list(report.batch["unreadable"]) == [DESCRIBE_JOB_QUEUES] and report.batch["seen"] == 0
    assert report.as_dict()["batch"]["unreadable"][DESCRIBE_JOB_QUEUES].endswith(str(error))  # type: ignore[index]
    assert world.metrics.counts[ServiceMetric.RECONCILE_FAILED] == 1


def test_the_pass_is_bounded_by_the_limit_and_says_so() -> None:
    world = _world()
    for i in range(3):
        world.batch.add(f"j{i}", [f"AWSBatchft-j{i}-a1"])  # type: ignore[attr-defined]
    report = reconcile(world.deps, world.config, lookback_hours=24, limit=2).batch
    assert report["seen"] == 2 and report["truncated"] is True


def test_without_a_batch_client_there_is_no_batch_pass() -> None:
    world = World()
    assert "batch" not in reconcile(world.deps, world.config, lookback_hours=24).as_dict()


def test_organization_mode_reports_each_member_accounts_batch_pass() -> None:
    world = _world()
    world.batch.faults.add("service_jobs", PermanentError("AccessDeniedException (an older reader role)"))  # type: ignore
    plan = RotationPlan(("111111111111",))
    report = reconcile_accounts(lambda a, r: world.deps, plan, RotationCursor(), world.config, lookback_hours=24,
                                log_deps=world.deps).as_dict()  # fmt: skip
    (unreadable,) = report["batch"]["111111111111/-"]["unreadable"].values()  # type: ignore[index]
    assert "older reader role" in unreadable


# ---- the adapter over botocore's own shapes ----------------------------------------------------------------------


def _client():  # type: ignore[no-untyped-def]
    return boto3.client("batch", region_name=REGION, aws_access_key_id="k", aws_secret_access_key="s")


def _queue(name: str, kind: str) -> dict:
    return {"jobQueueName": name, "jobQueueArn": f"arn:aws:batch:{REGION}:{ACCOUNT}:job-queue/{name}",
            "state": "ENABLED", "priority": 1, "computeEnvironmentOrder": [], "jobQueueType": kind}  # fmt: skip


def test_the_adapter_keeps_only_sagemaker_training_queues_across_pages() -> None:
    client = _client()
    with Stubber(client) as stub:
        stub.add_response("describe_job_queues", {"jobQueues": [_queue("ecs", "ECS")], "nextToken": "t"},
                          {"maxResults": 100})  # fmt: skip
        stub.add_response("describe_job_queues", {"jobQueues": [_queue("sm", "SAGEMAKER_TRAINING")]},
                          {"maxResults": 100, "nextToken": "t"})  # fmt: skip
        assert BatchServiceJobs(client).sagemaker_training_queues() == [_queue("sm", "x")["jobQueueArn"]]


def test_the_adapter_lists_one_queue_in_one_status_and_names_it_when_refused() -> None:
    client = _client()
    summary = {"jobId": "j1", "jobName": "ft", "serviceJobType": "SAGEMAKER_TRAINING", "status": "SUCCEEDED"}
    with Stubber(client) as stub:
        expected = {"jobQueue": "q", "jobStatus": "SUCCEEDED", "maxResults": 100}
        stub.add_response("list_service_jobs", {"jobSummaryList": [summary], "nextToken": "n"}, expected)
        stub.add_client_error("list_service_jobs", "AccessDeniedException", "no", 403, {**expected, "nextToken": "n"})
        listed = BatchServiceJobs(client).service_jobs("q", "SUCCEEDED")
        assert next(listed)["jobId"] == "j1"
        with pytest.raises(PermanentError, match="ListServiceJobs q SUCCEEDED.*AccessDeniedException"):
            next(listed)
