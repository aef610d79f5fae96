"""Issue 26 on the emulator: SageMaker training sessions (re-assessed while running, classified when they end, their
checkpoints linking later jobs) and AWS Batch service jobs (attempts summed, the submitter as provenance), through
the real adapters over moto + ``flopsmeter.local.moto_ext``."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from typing import Any

import boto3
import pytest

from flopsmeter import contract
from flopsmeter.aws.batch import BatchServiceJobs
from flopsmeter.aws.training_sessions import TrainingSessions
from flopsmeter.domain.deadlines import notification_due
from flopsmeter.errors import JobNotSettled
from flopsmeter.functions.inbound import BatchServiceJobStateChange, TrainingSessionEnded, parse_inbound
from flopsmeter.local import moto_ext
from flopsmeter.local.moto_ext.batch import service_job_event
from flopsmeter.service.batch import classify_batch_service_job
from flopsmeter.service.classifier import classify_and_record
from flopsmeter.service.dependencies import ClassifyRequest, Dependencies
from flopsmeter.service.reconcile import reconcile
from flopsmeter.service.sessions import classify_training_session
from tests.support.moto_world import ACCOUNT, REGION, Aws

BASE = f"arn:aws:sagemaker:{REGION}:aws:hub-content/SageMakerPublicHub/Model/meta-textgeneration-llama-3-1-8b/2.0.0"
GROUP = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package-group/session-checkpoints"


def _deps(aws: Aws) -> Dependencies:
    batch = boto3.client("batch", region_name=REGION)
    return replace(aws.deps(), sessions=TrainingSessions(aws["sagemaker"]), batch=BatchServiceJobs(batch))


def _open_session(aws: Aws, name: str, *, systemic: bool = False) -> str:
    tags = [{"Key": contract.TAG_SYSTEMIC_RISK_BASE, "Value": "true"}] if systemic else []
    arn = aws["sagemaker"].create_training_session(
        TrainingSessionName=name, LoraConfig={"Rank": 16, "Alpha": 32}, ModelConfig={"BaseModelArn": BASE},
        RoleArn=f"arn:aws:iam::{ACCOUNT}:role/SessionRole", OutputConfig={"S3Location": {"Path": "s3://out/s"}},
        ModelPackageGroupArn=GROUP, Tags=tags,
    )["TrainingSessionArn"]  # fmt: skip
    moto_ext.set_training_session_state(name, moto_ext.SessionState(status="Running", creation=aws.t0), region=REGION)
    return str(arn)


def _tokens(aws: Aws, name: str, training: int, **more: Any) -> None:
    state = moto_ext.SessionState(training_tokens=training, **more)
    moto_ext.set_training_session_state(name, state, account_id=ACCOUNT, region=REGION)


def _alerts(aws: Aws) -> list[dict[str, Any]]:
    return aws.messages(aws.alerts_queue)


def test_session_crossing_while_running_alerts_once_and_dates_the_clock(aws: Aws) -> None:
    deps, config = _deps(aws), aws.config
    arn = _open_session(aws, "rl-session", systemic=True)
    _tokens(aws, "rl-session", 10**6, sample_tokens=10**6)
    aws.now = aws.t0 + timedelta(hours=1)
    first = reconcile(deps, config, lookback_hours=24).sessions
    assert first["assessed"] == ["rl-session"] and first["crossed"] == []
    _tokens(aws, "rl-session", 10**13, sample_tokens=10**12)  # the user's loop ran on: far past any threshold
    aws.now = aws.t0 + timedelta(hours=2)
    second = reconcile(deps, config, lookback_hours=24).sessions
    third = reconcile(deps, config, lookback_hours=24).sessions
    assert second["crossed"] == ["rl-session"] and third["crossed"] == []  # the alert goes out once
    alerts = _alerts(aws)
    assert len(alerts) == 1 and "notify the Commission by" in alerts[0]["Subject"]
    assert "still running" in alerts[0]["Message"]
    # the session ends: StopTrainingSession reaches the queue as a CloudTrail call
    aws["sagemaker"].stop_training_session(TrainingSessionName="rl-session")
    moto_ext.set_training_session_state(
        "rl-session", moto_ext.SessionState(end=aws.t0 + timedelta(hours=3)), region=REGION
    )  # the emulator stops it now; the simulated clock is later
    result = classify_training_session(ClassifyRequest("rl-session", "ev-1", arn=arn), deps, config)
    record = result.record
    assert result.status == "recorded" and record is not None and record.session is not None
    assert record.session.crossed_while_running_at == aws.t0 + timedelta(hours=1)  # the last pass below it
    assert record.obligations is not None and record.obligations.crossed_at == aws.t0 + timedelta(hours=1)
    # the due date: the Brussels-time end of the day, fourteen days on
    assert record.obligations.notification_due_at == notification_due(aws.t0 + timedelta(hours=1))
    assert record.session.running_assessments == 2 and record.flops.method == "estimated"
    assert record.customization is not None and record.customization.service == "sagemaker-training-session"
    breakdown = record.customization.estimate.breakdown
    assert breakdown["generation"] > 0 and breakdown["update"] > breakdown["generation"]
    assert record.cloudtrail.status == "found" and record.cloudtrail.principal_arn  # who opened it
    assert record.job.status == "Stopped" and result.key is not None and "/session.rl-session.json" in result.key


def test_session_checkpoints_link_a_later_job_to_the_session(aws: Aws) -> None:
    deps, config = _deps(aws), aws.config
    arn = _open_session(aws, "sft-session")
    _tokens(aws, "sft-session", 10**9, checkpoints=2)
    aws["sagemaker"].delete_training_session(TrainingSessionName="sft-session")
    aws.now = aws.t0 + timedelta(days=1)
    session = classify_training_session(ClassifyRequest("sft-session", "ev", arn=arn), deps, config)
    assert session.record is not None and session.record.session is not None
    checkpoint = session.record.session.checkpoints[-1]
    assert checkpoint.endswith("/session-checkpoints/2") and session.record.job.status == "Deleted"
    aws.job("continues", extra={"ModelPackageConfig": {"ModelPackageGroupArn": GROUP,
                                                       "SourceModelPackageArn": checkpoint}})  # fmt: skip
    child = classify_and_record(ClassifyRequest("continues", "ev-2"), deps, config)
    assert child.record is not None
    assert child.record.lineage.parent_job == "sft-session"
    assert child.record.lineage.parent_cumulative_flops == pytest.approx(session.record.lineage.cumulative_flops)


def test_session_gone_before_described_is_recorded_from_its_last_assessment(aws: Aws) -> None:
    deps, config = _deps(aws), aws.config
    arn = _open_session(aws, "gone-session")
    _tokens(aws, "gone-session", 10**9)
    reconcile(deps, config, lookback_hours=24)
    aws["sagemaker"].delete_training_session(TrainingSessionName="gone-session")
    moto_ext.set_training_session_state("gone-session", moto_ext.SessionState(gone=True), region=REGION)
    aws.now = aws.t0 + timedelta(days=1)
    result = classify_training_session(ClassifyRequest("gone-session", "ev", arn=arn), deps, config)
    assert result.record is not None and result.record.job.status == "Deleted"
    assert any("deleted before it could be described" in w for w in result.record.warnings)


def test_failed_or_expired_session_is_found_by_the_scheduled_pass(aws: Aws) -> None:
    deps, config = _deps(aws), aws.config
    _open_session(aws, "expired-session")
    _tokens(aws, "expired-session", 10**8)
    moto_ext.set_training_session_state("expired-session", moto_ext.SessionState(status="Expired"), region=REGION)
    aws.now = aws.t0 + timedelta(days=1)
    report = reconcile(deps, config, lookback_hours=48).sessions
    assert report["recorded"] == ["expired-session"]
    assert reconcile(deps, config, lookback_hours=48).sessions["already_recorded"] == 1


def test_session_end_call_from_the_trail_parses_as_the_session_event(aws: Aws) -> None:
    _open_session(aws, "call-session")
    aws["sagemaker"].stop_training_session(TrainingSessionName="call-session")
    events = aws["cloudtrail"].lookup_events(
        LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "StopTrainingSession"}]
    )["Events"]
    detail = json.loads(events[0]["CloudTrailEvent"])
    event = parse_inbound({"id": "e", "account": ACCOUNT, "region": REGION,
                           "detail-type": contract.CLOUDTRAIL_API_CALL, "detail": detail})  # fmt: skip
    assert isinstance(event, TrainingSessionEnded) and event.job_name == "call-session"
    assert event.session_arn == f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-session/call-session"


# ---- AWS Batch service jobs --------------------------------------------------------------------------------------


def _submit(deps: Dependencies) -> str:
    batch = deps.batch.client  # type: ignore[union-attr]
    payload = {"ResourceConfig": {"InstanceType": "ml.p4d.24xlarge", "InstanceCount": 2}}
    return str(batch.submit_service_job(jobName="queued-ft", jobQueue="gpu-queue", serviceJobType="SAGEMAKER_TRAINING",
                                        serviceRequestPayload=json.dumps(payload))["jobId"])  # fmt: skip


def _attempt_arn(name: str) -> str:
    return f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/{name}"


def test_preempted_batch_job_is_one_modification_summed_over_its_attempts(aws: Aws) -> None:
    deps, config = _deps(aws), aws.config
    job_id = _submit(deps)
    aws.job("AWSBatchqueued-ft-a1", status="Stopped", instance_type="ml.p4d.24xlarge", count=2, hours=1)
    moto_ext.set_service_job_state(job_id, moto_ext.ServiceJobState(status="RUNNING",
                                   attempt_started=_attempt_arn("AWSBatchqueued-ft-a1")), region=REGION)  # fmt: skip
    moto_ext.set_service_job_state(job_id, moto_ext.ServiceJobState(status="RUNNABLE", preempted=True,
                                   attempt_stopped_reason="Preempted by a higher-priority share"),
                                   region=REGION)  # fmt: skip
    aws.job("AWSBatchqueued-ft-a2", instance_type="ml.p4d.24xlarge", count=2, hours=2, started_after_hours=1.5)
    moto_ext.set_service_job_state(job_id, moto_ext.ServiceJobState(status="RUNNING",
                                   attempt_started=_attempt_arn("AWSBatchqueued-ft-a2")), region=REGION)  # fmt: skip
    moto_ext.set_service_job_state(job_id, moto_ext.ServiceJobState(status="SUCCEEDED",
                                   attempt_stopped_reason="Received status from SageMaker: Training job completed"),
                                   region=REGION)  # fmt: skip
    aws.now = aws.t0 + timedelta(minutes=10)  # the emulator ended the service job at t0 (its clock is real time)
    with pytest.raises(JobNotSettled):  # the attempts have no records yet: retried within the wait
        classify_batch_service_job(ClassifyRequest(job_id, "ev"), deps, config)
    own = [classify_and_record(ClassifyRequest(n, "e"), deps, config).record
           for n in ("AWSBatchqueued-ft-a1", "AWSBatchqueued-ft-a2")]  # fmt: skip
    result = classify_batch_service_job(ClassifyRequest(job_id, "ev"), deps, config)
    record = result.record
    assert record is not None and record.batch is not None and all(own)
    assert [a.preempted for a in record.batch.attempts] == [True, False]
    summed = sum(r.flops.classified_flops for r in own if r)
    assert record.flops.classified_flops == pytest.approx(summed) and record.batch.summed_flops == pytest.approx(summed)
    assert record.batch.preempted_attempts == 1 and record.job.status == "Completed"
    assert record.cloudtrail.status == "found"  # SubmitServiceJob: the person, not Batch's service role
    assert result.key is not None and result.key.endswith(f"/batch.{job_id}.json")


def test_batch_attempt_without_record_counts_at_its_ceiling_after_the_wait(aws: Aws) -> None:
    deps, config = _deps(aws), aws.config
    job_id = _submit(deps)
    lost = _attempt_arn("AWSBatchqueued-ft-lost")  # preempted, and its training job is not describable
    moto_ext.set_service_job_state(job_id, moto_ext.ServiceJobState(status="RUNNING", attempt_started=lost),
                                   region=REGION)  # fmt: skip
    moto_ext.set_service_job_state(job_id, moto_ext.ServiceJobState(status="FAILED", preempted=True,
                                   attempt_stopped_reason="preempted"), region=REGION)  # fmt: skip
    aws.now = aws.t0 + timedelta(days=2)
    record = classify_batch_service_job(ClassifyRequest(job_id, "ev"), deps, config).record
    assert record is not None and record.batch is not None
    assert record.batch.attempts[0].source == "submitted_request" and record.job.status == "Failed"
    assert any("has no record" in w for w in record.warnings)


def test_batch_event_from_the_emulator_parses_as_the_documented_shape(aws: Aws) -> None:
    deps = _deps(aws)
    job_id = _submit(deps)
    described = deps.batch.describe_service_job(job_id)  # type: ignore[union-attr]
    event = service_job_event({**described, "account": ACCOUNT, "region": REGION})
    assert "serviceRequestPayload" not in event["detail"]
    parsed = parse_inbound(event)
    assert isinstance(parsed, BatchServiceJobStateChange) and parsed.job_name == job_id and not parsed.is_terminal
