"""Issue 26 on the emulator: an AWS Batch service job whose terminal event was lost is found by the reconciler
(DescribeJobQueues -> the SAGEMAKER_TRAINING queues, ListServiceJobs in SUCCEEDED and FAILED) and recorded with its
attempts summed, through the real adapters over moto + ``flopsmeter.local.moto_ext``; one already recorded and one
still running are left alone."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import boto3
import pytest

from flopsmeter.audit.keys import batch_record_key
from flopsmeter.aws.batch import BatchServiceJobs
from flopsmeter.local import moto_ext
from flopsmeter.service.batch import classify_batch_service_job
from flopsmeter.service.dependencies import ClassifyRequest, Dependencies
from flopsmeter.service.reconcile import reconcile
from tests.support.moto_world import ACCOUNT, REGION, Aws

QUEUE = "sm-training"


def _deps(aws: Aws) -> Dependencies:
    return replace(aws.deps(), batch=BatchServiceJobs(boto3.client("batch", region_name=REGION)))


def _queue(batch, name: str = QUEUE) -> str:  # type: ignore[no-untyped-def]
    return str(batch.create_job_queue(jobQueueName=name, priority=1, state="ENABLED", jobQueueType="SAGEMAKER_TRAINING",
                                      serviceEnvironmentOrder=[{"order": 1, "serviceEnvironment": "sm-env"}]
                                      )["jobQueueArn"])  # fmt: skip


def _submit(batch, name: str) -> str:  # type: ignore[no-untyped-def]
    payload = {"ResourceConfig": {"InstanceType": "ml.p4d.24xlarge", "InstanceCount": 2}}
    return str(batch.submit_service_job(jobName=name, jobQueue=QUEUE, serviceJobType="SAGEMAKER_TRAINING",
                                        serviceRequestPayload=json.dumps(payload))["jobId"])  # fmt: skip


def _move(aws: Aws, job_id: str, hours: float, **state: object) -> None:
    at = aws.t0 + timedelta(hours=hours)
    moto_ext.set_service_job_state(job_id, moto_ext.ServiceJobState(at=at, **state), region=REGION)  # type: ignore


def _arn(name: str) -> str:
    return f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/{name}"


def test_a_service_job_whose_terminal_event_was_lost_is_recorded_by_the_reconciler(aws: Aws) -> None:
    deps, config = _deps(aws), aws.config
    batch = deps.batch.client  # type: ignore[union-attr]
    _queue(batch)
    # preempted after an hour, resumed, succeeded: its events (and its attempts' own) never reached the service
    lost = _submit(batch, "lost-ft")
    aws.job("AWSBatchlost-ft-a1", status="Stopped", instance_type="ml.p4d.24xlarge", count=2, hours=1)
    _move(aws, lost, 0, status="RUNNING", attempt_started=_arn("AWSBatchlost-ft-a1"))
    _move(aws, lost, 1, status="RUNNABLE", preempted=True, attempt_stopped_reason="Preempted by a higher share")
    aws.job("AWSBatchlost-ft-a2", instance_type="ml.p4d.24xlarge", count=2, hours=2, started_after_hours=1.5)
    _move(aws, lost, 1.5, status="RUNNING", attempt_started=_arn("AWSBatchlost-ft-a2"))
    _move(aws, lost, 3.5, status="SUCCEEDED", attempt_stopped_reason="Training job completed")
    # one whose terminal event was processed: already recorded
    done = _submit(batch, "done-ft")
    _move(aws, done, 0.5, status="FAILED", status_reason="Cancelled before it ran")
    # one still running
    running = _submit(batch, "running-ft")
    aws.job("AWSBatchrunning-ft-a1", status="InProgress", instance_type="ml.p4d.24xlarge")
    _move(aws, running, 2, status="RUNNING", attempt_started=_arn("AWSBatchrunning-ft-a1"))
    aws.now = aws.t0 + timedelta(hours=4)
    recorded = classify_batch_service_job(ClassifyRequest(done, "ev-done"), deps, config)
    assert recorded.status == "recorded" and recorded.key is not None
    writes_before = len(list(aws.store.list_keys("records/")))

    report = reconcile(deps, config, lookback_hours=24)

    assert report.batch["queues"] == 1 and report.batch["unreadable"] == {}
    assert report.batch["recorded"] == [lost] and report.batch["already_recorded"] == 1
    assert report.batch["seen"] == 2  # the running one is never listed as ended
    assert sorted(report.recorded) == ["AWSBatchlost-ft-a1", "AWSBatchlost-ft-a2"]  # each naming its service job
    end = aws.t0 + timedelta(hours=3.5)
    record = aws.store.get_record(batch_record_key(ACCOUNT, REGION, end, lost))
    assert record.batch is not None and record.eventbridge_event_id is None
    assert record.warnings[0].startswith("reconciled:") and record.cloudtrail.status == "found"
    attempts = [aws.store.get_record(a.record_key) for a in record.batch.attempts if a.record_key]
    assert [a.source for a in record.batch.attempts] == ["record", "record"]
    assert all(a.batch is not None and a.batch.service_job_id == lost for a in attempts)
    summed = sum(a.flops.classified_flops for a in attempts)
    assert record.flops.classified_flops == pytest.approx(summed) and record.batch.preempted_attempts == 1
    assert record.job.training_seconds == pytest.approx(3 * 3600)
    # the recorded one untouched; the running one unrecorded; a second run finds nothing to do
    assert aws.store.get_record(recorded.key).eventbridge_event_id == "ev-done"
    keys = [k["Key"] for k in aws.store.list_keys("records/")]
    assert len(keys) == writes_before + 3 and not any(running in k for k in keys)
    again = reconcile(deps, config, lookback_hours=24).batch
    assert again["recorded"] == [] and again["already_recorded"] == 2


def test_the_emulator_lists_queues_and_service_jobs_in_botocore_shapes_page_by_page(aws: Aws) -> None:
    batch = boto3.client("batch", region_name=REGION)
    arns = [_queue(batch, "q-a"), _queue(batch, QUEUE)]
    pages = list(batch.get_paginator("describe_job_queues").paginate(PaginationConfig={"PageSize": 1}))
    assert [q["jobQueueArn"] for p in pages for q in p["jobQueues"]] == arns and len(pages) == 2
    assert {q["jobQueueType"] for p in pages for q in p["jobQueues"]} == {"SAGEMAKER_TRAINING"}
    assert BatchServiceJobs(batch).sagemaker_training_queues() == arns
    ids = [_submit(batch, f"ft-{i}") for i in range(3)]
    for job_id in ids[:2]:
        moto_ext.set_service_job_state(job_id, moto_ext.ServiceJobState(status="SUCCEEDED"), region=REGION)
    listed = batch.get_paginator("list_service_jobs").paginate(jobQueue=arns[1], jobStatus="SUCCEEDED",
                                                               PaginationConfig={"PageSize": 1})  # fmt: skip
    summaries = [s for page in listed for s in page["jobSummaryList"]]
    assert sorted(s["jobId"] for s in summaries) == sorted(ids[:2]) and all("stoppedAt" in s for s in summaries)
    assert [s["jobId"] for s in batch.list_service_jobs(jobQueue=QUEUE)["jobSummaryList"]] == []  # RUNNING only
    with pytest.raises(batch.exceptions.ClientException, match="already exists"):
        _queue(batch, QUEUE)
