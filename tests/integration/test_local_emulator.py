"""The local emulator end to end: provisioning like the stack, replay through EventBridge -> SQS -> the real
classifier handler, the dead-letter path, and the detached ``flopsmeter local up|status|down`` lifecycle.

Emulated (moto + flopsmeter.local.moto_ext): DescribeTrainingJob's lifecycle, CloudTrail LookupEvents, and
the Lambda event source mapping (flopsmeter.local.runner). SQS redrive to the DLQ is moto's own; a permanent
failure is sent to the DLQ by the real handler (DEAD_LETTER_QUEUE_URL) with its reason as message attributes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flopsmeter.audit.record import AuditRecord, stored_sha256_matches
from flopsmeter.cli.main import main
from flopsmeter.contract import LAMBDA_ENV
from flopsmeter.local.clients import client
from flopsmeter.local.emulator import Emulator, read_state
from flopsmeter.local.provision import LocalResources
from flopsmeter.local.replay import DOCS_EXAMPLE, load_event, replay


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator() as emu:
        yield emu


@pytest.fixture
def resources(emulator: Emulator, tmp_path: Path) -> LocalResources:
    emulator.reset()
    return emulator.provision()


def _client(resources: LocalResources, service: str) -> Any:
    return client(service, resources.endpoint, resources.region)


def test_provision_mirrors_the_stack_and_is_idempotent(emulator: Emulator, resources: LocalResources) -> None:
    s3, sqs, events, kms = (_client(resources, s) for s in ("s3", "sqs", "events", "kms"))

    lock = s3.get_object_lock_configuration(Bucket=resources.audit_bucket)["ObjectLockConfiguration"]
    versioning = s3.get_bucket_versioning(Bucket=resources.audit_bucket)
    redrive = json.loads(
        sqs.get_queue_attributes(QueueUrl=resources.queue_url, AttributeNames=["RedrivePolicy"])["Attributes"][
            "RedrivePolicy"
        ]
    )
    pattern = json.loads(events.describe_rule(Name=resources.rule_name)["EventPattern"])
    targets = events.list_targets_by_rule(Rule=resources.rule_name)["Targets"]
    key = kms.describe_key(KeyId=resources.signing_key_id)["KeyMetadata"]

    retention = lock["Rule"]["DefaultRetention"]
    assert (retention["Mode"], retention["Years"]) == ("COMPLIANCE", resources.retention_years)
    assert versioning["Status"] == "Enabled"
    assert redrive == {"deadLetterTargetArn": resources.dlq_arn, "maxReceiveCount": resources.max_receive_count}
    assert pattern["source"] == ["aws.sagemaker"]
    assert pattern["detail-type"] == ["SageMaker Training Job State Change"]
    assert sorted(pattern["detail"]["TrainingJobStatus"]) == ["Completed", "Failed", "Stopped"]
    assert [t["Arn"] for t in targets] == [resources.queue_arn]
    assert (key["KeySpec"], key["KeyUsage"]) == ("RSA_2048", "SIGN_VERIFY")
    assert emulator.provision() == resources


def test_replay_of_the_aws_docs_example_writes_one_record_through_the_real_handler(
    resources: LocalResources, tmp_path: Path
) -> None:
    event = load_event(DOCS_EXAMPLE)
    unchanged = json.loads(DOCS_EXAMPLE.read_text())

    first = replay(resources, event, log_path=tmp_path / "classifier.log")
    again = replay(resources, event, log_path=tmp_path / "classifier.log")

    assert event == unchanged
    assert first.registered and "did not exist in the emulator" in first.notes[0]
    assert first.matched_rule and [a.ok for a in first.report.attempts] == [True]
    [key] = first.record_keys
    assert key.endswith("/date=2020-03-10/89c96cc8-dded-4739-afcc-6f1dc936701d.json")
    s3 = _client(resources, "s3")
    document = json.loads(s3.get_object(Bucket=resources.audit_bucket, Key=key)["Body"].read())
    record = AuditRecord.model_validate(document)
    assert stored_sha256_matches(document)
    assert record.job.status == "Completed" and record.job.instance_count == 3
    assert record.flops.method == "hardware_ceiling"  # no meter ran: the ceiling is the conservative figure
    assert {c.policy for c in record.classifications} >= {record.primary_policy}
    assert record.cloudtrail.status == "found"  # registering the job recorded its CreateTrainingJob call
    # a redelivered event is a no-op: same key, still one version
    assert not again.registered and again.record_keys == [key] and all(a.ok for a in again.report.attempts)
    versions = s3.list_object_versions(Bucket=resources.audit_bucket, Prefix=key).get("Versions", [])
    assert len(versions) == 1


def test_non_terminal_event_is_filtered_by_the_rule(resources: LocalResources, tmp_path: Path) -> None:
    event = load_event(DOCS_EXAMPLE)
    event["detail"]["TrainingJobStatus"] = "InProgress"

    result = replay(resources, event, register_missing=False, log_path=tmp_path / "classifier.log")

    assert not result.matched_rule and result.report.attempts == []
    assert any("did not match" in note for note in result.notes)


def test_malformed_event_is_dead_lettered_on_its_first_delivery_with_its_reason(
    resources: LocalResources, tmp_path: Path
) -> None:
    event = load_event(DOCS_EXAMPLE)
    event["detail"]["TrainingJobName"] = "not a valid job name!"

    result = replay(resources, event, log_path=tmp_path / "classifier.log", deadline_s=60)

    [attempt] = result.report.attempts  # one delivery, not maxReceiveCount
    assert attempt.receive_count == 1 and attempt.ok and attempt.dead_lettered
    assert attempt.reason and attempt.reason.startswith("MalformedEvent: ") and "TrainingJobName" in attempt.reason
    [dead] = result.report.dead_lettered
    assert dead["source_message_id"] == attempt.message_id and dead["job_name"] == "not a valid job name!"
    assert (dead["error"], dead["deliveries"]) == ("MalformedEvent", 1) and "TrainingJobName" in dead["reason"]
    assert json.loads(dead["body"])["detail"] == event["detail"]  # the original body
    assert result.record_keys == [] and result.report.remaining == 0


def test_the_emulated_classifier_gets_the_dead_letter_queue_like_the_stack(resources: LocalResources) -> None:
    env = resources.lambda_env()
    assert env["DEAD_LETTER_QUEUE_URL"] == resources.dlq_url
    assert set(env) - {"AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION"} - {
        "POWERTOOLS_SERVICE_NAME",
        "POWERTOOLS_METRICS_NAMESPACE",
    } <= set(LAMBDA_ENV)


def test_detached_up_status_replay_down(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state_dir = tmp_path / "state"
    assert main(["local", "--state-dir", str(state_dir), "up"]) == 0
    try:
        state = read_state(state_dir)
        assert state.endpoint.startswith("http://127.0.0.1:")
        assert main(["local", "--state-dir", str(state_dir), "status"]) == 0
        assert main(["local", "--state-dir", str(state_dir), "replay"]) == 0
        out = capsys.readouterr().out
        assert "running" in out and "89c96cc8-dded-4739-afcc-6f1dc936701d" in out and "hardware_ceiling" in out
    finally:
        assert main(["local", "--state-dir", str(state_dir), "down"]) == 0
    assert not (state_dir / "emulator.json").exists()
    assert main(["local", "--state-dir", str(state_dir), "status"]) == 1
