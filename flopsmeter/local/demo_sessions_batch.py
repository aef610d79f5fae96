"""Demo scenario (issue 26): fine-tuning compute the service could not see before.

* a SageMaker training session on Llama 3.1 405B (a systemic-risk base): no state-change event exists, so the
  scheduled pass re-assesses it while it runs; the second pass finds it over the threshold and raises the alert with
  the Art. 52(1) due date before the session ends; StopTrainingSession (a CloudTrail call) then reaches the queue
  and the record dates the clock from the crossing, not the end;
* an AWS Batch service job whose first attempt is preempted and whose second completes: each attempt is its own
  ``AWSBatch…`` training job with its own record; the service job's record sums both (the preempted attempt's
  compute was spent) and names the person who submitted it, not Batch's service role.

Each is self-checked (``Demo.check``). Emulated: the session's token usage and the service job's attempts are set
through ``moto_ext``; nothing runs.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from rich.table import Table

from flopsmeter.audit.record import AuditRecord
from flopsmeter.aws.store import AuditStore
from flopsmeter.domain.deadlines import notification_due
from flopsmeter.local import moto_ext
from flopsmeter.local.demo_session import Demo, drain_inbox
from flopsmeter.local.runner import local_clients, put_state_change
from flopsmeter.local.show import records_table

SESSION = "demo-session-405b-rl"
BASE_405B = "arn:aws:sagemaker:{region}:aws:hub-content/SageMakerPublicHub/Model/meta-textgeneration-llama-3-1-405b-instruct-fp8/2.0.0"  # noqa: E501
SERVICE_JOB = "demo-queued-finetune"
PAYLOAD = {"ResourceConfig": {"InstanceType": "ml.p4d.24xlarge", "InstanceCount": 2, "VolumeSizeInGB": 100}}
WHO = "dave"


def _watch(demo: Demo) -> dict[str, object]:
    """One scheduled pass over the training sessions (the reconciler's session pass, on the stack's settings)."""
    from flopsmeter.functions.container import build_reconciler
    from flopsmeter.functions.observability import logger, metrics
    from flopsmeter.functions.settings import ReconcilerSettings
    from flopsmeter.service.session_watch import watch_sessions

    settings = ReconcilerSettings.from_env(demo.resources.lambda_env())
    container = build_reconciler(settings, local_clients(demo.resources), metrics=metrics, log=logger)
    return watch_sessions(container.deps, container.config, lookback_hours=container.lookback_hours).as_dict()


def _session_state(demo: Demo, **state: Any) -> None:
    moto_ext.set_training_session_state(SESSION, moto_ext.SessionState(**state), account_id=demo.resources.account_id,
                                        region=demo.resources.region, endpoint=demo.resources.endpoint)  # fmt: skip


def _records(demo: Demo, *markers: str) -> dict[str, AuditRecord]:
    """The records whose key holds one of ``markers``, by job name (a service job's as ``batch:<name>``)."""
    store = AuditStore(demo.aws("s3"), demo.resources.audit_bucket)
    found: dict[str, AuditRecord] = {}
    for obj in store.list_keys("records/"):
        if any(marker in str(obj["Key"]) for marker in markers):
            record = store.get_record(str(obj["Key"]))
            service_job = record.batch is not None and record.batch.role == "service_job"
            found[f"batch:{record.batch.service_job_name}" if service_job and record.batch else record.job.name] = (
                record
            )
    return found


def run_session(demo: Demo) -> None:
    demo.section("A SageMaker training session that crosses while it runs")
    region, account = demo.resources.region, demo.resources.account_id
    demo.caller(WHO).create_training_session(
        TrainingSessionName=SESSION, LoraConfig={"Rank": 64, "Alpha": 128},
        ModelConfig={"BaseModelArn": BASE_405B.format(region=region), "AcceptEula": True},
        RoleArn=f"arn:aws:iam::{account}:role/TrainingSessionRole",
        OutputConfig={"S3Location": {"Path": "s3://demo-session-output/"}},
        ModelPackageGroupArn=f"arn:aws:sagemaker:{region}:{account}:model-package-group/demo-session-checkpoints",
    )  # fmt: skip
    _session_state(demo, status="Running", creation=datetime.now(UTC) - timedelta(hours=6), training_tokens=10**9,
                   sample_tokens=10**8)  # fmt: skip
    first = _watch(demo)
    _session_state(demo, training_tokens=15 * 10**11, sample_tokens=2 * 10**11, prefill_tokens=10**11, checkpoints=1)
    second = _watch(demo)
    alerts = [json.loads(b) for b in drain_inbox(demo.aws("sqs"), demo.resources.alert_inbox_url)]
    crossing = [a for a in alerts if SESSION in str(a.get("Subject", ""))]
    demo.out.print(f"scheduled pass 1: assessed {first['assessed']}, crossed {first['crossed']}; "
                   f"pass 2: assessed {second['assessed']}, crossed {second['crossed']}")  # fmt: skip
    for alert in crossing:
        demo.out.print(f"[yellow]alert while running:[/] {alert['Subject']}")
    demo.caller(WHO).stop_training_session(TrainingSessionName=SESSION)  # CloudTrail -> EventBridge -> the queue
    demo.run_classifier("a training session stopped")
    record = _records(demo, f"session.{SESSION}").get(SESSION)
    if record is not None:
        demo.out.print(records_table([record], title="The training session's record"))
    block = record.session if record else None
    obligations = record.obligations if record else None
    demo.check(
        "a running training session is re-assessed and its crossing alerted once, before it ends",
        first["crossed"] == [] and second["crossed"] == [SESSION] and len(crossing) == 1
        and "notify the Commission by" in crossing[0]["Subject"],
    )  # fmt: skip
    demo.check(
        "the session's record (estimated from its token usage) dates the Art. 52(1) clock from the crossing",
        record is not None and block is not None and record.flops.method == "estimated"
        and block.crossed_while_running_at is not None and obligations is not None
        and obligations.crossed_at == block.crossed_while_running_at
        and obligations.notification_due_at == notification_due(block.crossed_while_running_at)
        and len(block.checkpoints) == 1 and record.cloudtrail.status == "found" and WHO in str(
            record.cloudtrail.principal_arn),
    )  # fmt: skip


def _attempt(demo: Demo, name: str, *, status: str, start: datetime, end: datetime) -> str:
    """The training job Batch's service role starts for one attempt (created with the submitted request)."""
    sagemaker = demo.aws("sagemaker")  # the service role, not the person
    sagemaker.create_training_job(
        TrainingJobName=name, RoleArn=f"arn:aws:iam::{demo.resources.account_id}:role/SageMakerExecution",
        AlgorithmSpecification={"TrainingImage": "763104351884.dkr.ecr.us-east-1.amazonaws.com/hf:latest",
                                "TrainingInputMode": "File"},
        OutputDataConfig={"S3OutputPath": "s3://demo-training-output/"}, ResourceConfig=PAYLOAD["ResourceConfig"],
        StoppingCondition={"MaxRuntimeInSeconds": 86400},
    )  # fmt: skip
    demo.set_state(name, status="InProgress", creation=start - timedelta(minutes=3), start=start)
    demo.set_state(name, status=status, end=end)
    return str(sagemaker.describe_training_job(TrainingJobName=name)["TrainingJobArn"])


def _service_job(demo: Demo, job_id: str, **state: Any) -> None:
    moto_ext.set_service_job_state(job_id, moto_ext.ServiceJobState(**state), account_id=demo.resources.account_id,
                                   region=demo.resources.region, endpoint=demo.resources.endpoint)  # fmt: skip


def run_batch(demo: Demo) -> None:
    demo.section("An AWS Batch service job preempted once: its attempts summed into one modification")
    submitted = demo.caller(WHO, "batch").submit_service_job(
        jobName=SERVICE_JOB, jobQueue="demo-gpu-queue", serviceJobType="SAGEMAKER_TRAINING",
        serviceRequestPayload=json.dumps(PAYLOAD), schedulingPriority=10, shareIdentifier="research",
    )  # fmt: skip
    job_id = str(submitted["jobId"])
    now = datetime.now(UTC)
    _service_job(demo, job_id, status="RUNNABLE", created=now - timedelta(hours=6))  # queued for an hour
    starts, ends = (now - timedelta(hours=5), now - timedelta(hours=2, minutes=30)), (now - timedelta(hours=3), now)
    first = _attempt(demo, f"AWSBatch{SERVICE_JOB}a1", status="Stopped", start=starts[0], end=ends[0])
    _service_job(demo, job_id, status="RUNNING", attempt_started=first, at=starts[0])
    _service_job(demo, job_id, status="RUNNABLE", preempted=True, at=ends[0],
                 attempt_stopped_reason="Preempted by a job of a higher-priority share; checkpoint lost")  # fmt: skip
    second = _attempt(demo, f"AWSBatch{SERVICE_JOB}a2", status="Completed", start=starts[1], end=ends[1])
    _service_job(demo, job_id, status="RUNNING", attempt_started=second, at=starts[1])
    for name in (f"AWSBatch{SERVICE_JOB}a1", f"AWSBatch{SERVICE_JOB}a2"):
        put_state_change(demo.resources, demo.state_change_event(name))
    demo.run_classifier("the service job's two attempts (training jobs)")
    _service_job(demo, job_id, status="SUCCEEDED", at=ends[1],
                 attempt_stopped_reason="Received status from SageMaker: Training job completed")  # fmt: skip
    demo.run_classifier("the service job ended (aws.batch 'Batch Service Job State Change')")
    records = _records(demo, f"AWSBatch{SERVICE_JOB}", f"/batch.{job_id}.json")
    demo.out.print(records_table(records.values(), title="The attempts and the service job in the audit trail"))
    summed = records.get(f"batch:{SERVICE_JOB}")
    attempts = [records.get(f"AWSBatch{SERVICE_JOB}a{i}") for i in (1, 2)]
    if summed is not None and summed.batch is not None:
        demo.out.print(_attempts_table(summed))
    demo.check(
        "a preempted Batch service job is one modification: its attempts summed, the preempted one counted",
        summed is not None and summed.batch is not None and all(attempts)
        and [a.preempted for a in summed.batch.attempts] == [True, False]
        and abs(summed.flops.classified_flops - sum(a.flops.classified_flops for a in attempts if a)) < 1.0,
    )  # fmt: skip
    demo.check(
        "the service job's and each attempt's record name who submitted it (SubmitServiceJob), not the service role",
        summed is not None and summed.cloudtrail.status == "found" and WHO in str(summed.cloudtrail.principal_arn)
        and all(a is not None and a.batch is not None and a.batch.service_job_id == job_id
                and WHO in str(a.cloudtrail.principal_arn) for a in attempts),
    )  # fmt: skip


def _attempts_table(record: AuditRecord) -> Table:
    assert record.batch is not None
    table = Table("attempt (training job)", "start..stop", "preempted", "FLOPs", "from")
    for a in record.batch.attempts:
        span = f"{a.started_at:%H:%M}..{a.stopped_at:%H:%M}" if a.started_at and a.stopped_at else "?"
        table.add_row(a.training_job_arn.rsplit("/", 1)[-1], span, "yes" if a.preempted else "-", f"{a.flops:.2e}",
                      f"{a.method} ({a.source})")  # fmt: skip
    table.add_row("service job (sum)", "", str(record.batch.preempted_attempts), f"{record.flops.classified_flops:.2e}",
                  record.outcome)  # fmt: skip
    return table


def run_sessions_and_batch_scenario(demo: Demo) -> None:
    run_session(demo)
    run_batch(demo)
