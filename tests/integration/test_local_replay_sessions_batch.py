"""``flopsmeter local replay`` of a training session's and an AWS Batch service job's event (issue 26 point 4).

A Batch service job whose attempt was replayed first writes the record the classifier writes for the same job run
directly (world A) - the attempt summed from its own record; AWS's documented Batch example (attempt unknown to
the emulator) is recorded at the attempt's hardware ceiling and the replay says why; a session's Stop call, which
names only the session, is recorded on the conservative side and the replay says what it assumed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from flopsmeter import contract
from flopsmeter.local import moto_ext
from flopsmeter.local.clients import client
from flopsmeter.local.emulator import Emulator
from flopsmeter.local.provision import LocalResources
from flopsmeter.local.replay import replay
from flopsmeter.local.replay_sessions_batch import BATCH_JOB_READS, SESSION_READS
from flopsmeter.local.runner import drain, put_state_change
from tests.support.replay_events import NOT_CARRIED, keys_read, records, training_event

DOCS_BATCH = Path(__file__).parents[1] / "events" / "batch_service_job_state_change_aws_docs.json"
ATTEMPT = "AWSBatchreplayed-ft-a1"


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator() as emu:
        yield emu


def _run_attempt(r: LocalResources, end: datetime) -> None:
    """The attempt: a training job without a meter on two p4d for two hours."""
    sm = client("sagemaker", r.endpoint, r.region)
    sm.create_training_job(
        TrainingJobName=ATTEMPT, RoleArn=f"arn:aws:iam::{r.account_id}:role/BatchServiceRole",
        AlgorithmSpecification={"TrainingImage": "img", "TrainingInputMode": "File"},
        OutputDataConfig={"S3OutputPath": "s3://replay-out/"}, StoppingCondition={"MaxRuntimeInSeconds": 86400},
        ResourceConfig={"InstanceType": "ml.p4d.24xlarge", "InstanceCount": 2, "VolumeSizeInGB": 100},
        Environment={contract.ENV_BASE_MODEL: "meta-llama/Llama-3.1-8B"},
    )  # fmt: skip
    moto_ext.set_training_job_state(
        ATTEMPT, moto_ext.JobState(status="Completed", start=end - timedelta(hours=2), end=end),
        account_id=r.account_id, region=r.region, endpoint=r.endpoint,
    )  # fmt: skip


def _run_service_job(r: LocalResources, end: datetime) -> str:
    """The service job whose one attempt that was."""
    sm = client("sagemaker", r.endpoint, r.region)
    payload = {"ResourceConfig": {"InstanceType": "ml.p4d.24xlarge", "InstanceCount": 2}}
    job_id = str(client("batch", r.endpoint, r.region).submit_service_job(
        jobName="replayed-ft", jobQueue="gpu-queue", serviceJobType="SAGEMAKER_TRAINING",
        serviceRequestPayload=json.dumps(payload))["jobId"])  # fmt: skip
    arn = sm.describe_training_job(TrainingJobName=ATTEMPT)["TrainingJobArn"]
    where = {"account_id": r.account_id, "region": r.region, "endpoint": r.endpoint}
    moto_ext.set_service_job_state(job_id, moto_ext.ServiceJobState(status="RUNNING", attempt_started=arn,
                                   at=end - timedelta(hours=2)), **where)  # fmt: skip
    moto_ext.set_service_job_state(job_id, moto_ext.ServiceJobState(
        status="SUCCEEDED", attempt_stopped_reason="Received status from SageMaker: Training job completed", at=end),
        **where)  # fmt: skip
    return job_id


def _batch_event(r: LocalResources, job_id: str) -> dict[str, Any]:
    """AWS Batch's event: ``detail`` is DescribeServiceJob less tags and serviceRequestPayload."""
    job = client("batch", r.endpoint, r.region).describe_service_job(jobId=job_id)
    detail = {k: v for k, v in job.items() if k not in ("ResponseMetadata", "tags", "serviceRequestPayload")}
    return {"source": contract.BATCH_EVENT_SOURCE, "detail-type": contract.BATCH_SERVICE_JOB_STATE_CHANGE,
            "account": r.account_id, "region": r.region, "resources": [job["jobArn"]], "detail": detail}  # fmt: skip


@pytest.fixture(scope="module")
def batch_worlds(emulator: Emulator, tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, ...]:
    log = tmp_path_factory.mktemp("replay") / "classifier.log"
    emulator.reset()
    a = emulator.provision()
    end = datetime.now(UTC) - timedelta(minutes=30)
    _run_attempt(a, end)
    attempt_event = training_event(a, ATTEMPT)
    put_state_change(a, attempt_event)
    drain(a, log_path=log, deadline_s=60)
    job_id = _run_service_job(a, end)
    drain(a, log_path=log, deadline_s=60)  # the emulator's own Batch events
    events = [attempt_event, _batch_event(a, job_id)]
    direct = records(a, (ATTEMPT, job_id))
    emulator.reset()
    b = emulator.provision()
    results = [replay(b, json.loads(json.dumps(event)), log_path=log, deadline_s=60) for event in events]
    return job_id, direct, records(b, (ATTEMPT, job_id)), results


def test_a_replayed_batch_job_writes_the_record_of_the_job_run_directly(batch_worlds: tuple[Any, ...]) -> None:
    job_id, direct, replayed, results = batch_worlds
    record = replayed[job_id]

    assert record == direct[job_id]
    assert record["batch"]["attempts"][0]["source"] == "record" and record["flops"]["method"] == "hardware_ceiling"
    assert record["flops"]["classified_flops"] == replayed[ATTEMPT]["flops"]["classified_flops"]
    batch = results[1].registration
    assert batch is not None and batch.kind == "AWS Batch service job"
    assert {"attempts", "createdAt", "stoppedAt", "status", "jobQueue"} <= set(batch.registered)
    assert any(item.startswith("serviceRequestPayload ('{}')") for item in batch.assumed) and not batch.said


def test_the_documented_batch_example_replays_and_says_its_attempt_is_bounded(
    emulator: Emulator, tmp_path: Path
) -> None:
    emulator.reset()
    r = emulator.provision()
    event = json.loads(DOCS_BATCH.read_text())
    event["detail"]["jobArn"] = event["detail"]["jobArn"].replace(
        ":us-east-1:123456789012:", ":eu-west-1:210987654321:"
    )

    result = replay(r, event, log_path=tmp_path / "classifier.log", deadline_s=60)

    reg = result.registration
    assert reg is not None and result.matched_rule and len(result.record_keys) == 1
    assert "/batch.0bb17543-ece6-4480-b1a7-a556d344746b.json" in result.record_keys[0]
    assert any("has no such training job" in line and "1e25 presumption" in line for line in reg.said)
    assert any("account 210987654321 in eu-west-1" in line for line in reg.said)
    document = json.loads(
        client("s3", r.endpoint, r.region).get_object(Bucket=r.audit_bucket, Key=result.record_keys[0])["Body"].read()
    )
    [attempt] = document["batch"]["attempts"]
    assert attempt["method"] == "hardware_ceiling" and attempt["source"] == "submitted_request"
    assert document["job"]["account_id"] == r.account_id
    # the event carries no request (no instance count): unbounded, so counted at the presumption, never below
    assert document["outcome"] == "exceeds" and attempt["flops"] == pytest.approx(1e25)


def _stop_call(name: str, when: datetime) -> dict[str, Any]:
    """A successful StopTrainingSession as EventBridge delivers it from CloudTrail (another account's caller)."""
    detail = {
        "eventVersion": "1.09", "eventSource": contract.SAGEMAKER_API_EVENT_SOURCE, "eventName": "StopTrainingSession",
        "eventTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"), "awsRegion": "us-east-1", "eventID": "evt-stop",
        "userIdentity": {"type": "AssumedRole", "arn": "arn:aws:sts::123456789012:assumed-role/MLEngineer/carol"},
        "requestParameters": {"trainingSessionName": name}, "responseElements": None,
        "recipientAccountId": "123456789012", "eventType": "AwsApiCall", "managementEvent": True,
    }  # fmt: skip
    return {"source": contract.SAGEMAKER_EVENT_SOURCE, "detail-type": contract.CLOUDTRAIL_API_CALL, "detail": detail}


def test_a_replayed_session_stop_is_recorded_on_the_conservative_side_and_says_so(
    emulator: Emulator, tmp_path: Path
) -> None:
    emulator.reset()
    r = emulator.provision()
    when = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)

    result = replay(r, _stop_call("rl-session", when), log_path=tmp_path / "classifier.log", deadline_s=60)

    reg = result.registration
    assert reg is not None and reg.kind == "training session" and result.matched_rule
    assert [item.split(" ", 1)[0] for item in reg.assumed] == ["ModelConfig", "LoraConfig", "RoleArn", "OutputConfig",
                                                               "CreationTime"]  # fmt: skip
    assert "BillableTokenUsage" in reg.absent and any("1e25" in line for line in reg.said)
    [key] = result.record_keys
    assert key.endswith("/session.rl-session.json")
    document = json.loads(client("s3", r.endpoint, r.region).get_object(Bucket=r.audit_bucket, Key=key)["Body"].read())
    assert document["flops"]["method"] == "estimated" and document["flops"]["classified_flops"] >= 1e25
    assert document["customization"]["estimate"]["tokens_known"] is False
    assert document["job"]["status"] == "Stopped" and document["job"]["end_time"].startswith(when.date().isoformat())
    assert document["obligations"]["notification_due_at"]  # presumed high-impact: the Art. 52(1) clock runs


def test_the_lists_of_fields_the_service_reads_follow_the_service() -> None:
    package = Path(contract.__file__).parent
    session = keys_read(package / "service" / "sessions.py", {"detail"}) | keys_read(
        package / "domain" / "sessions.py", {"detail"}
    )
    batch = keys_read(package / "service" / "batch.py", {"job"}) | keys_read(
        package / "service" / "batch_attempts.py", {"job"}
    )

    assert {k for k in session if k[:1].isupper()} <= set(SESSION_READS)
    assert batch <= set(BATCH_JOB_READS)
    assert NOT_CARRIED  # the same fields a replay cannot carry as for training and Bedrock jobs
