"""Capture at launch in the template: the rule's pattern is the contract's, the function writes provenance/ once and
nothing else, the classifier reads it, the trail requirement is an output, and the optional trail."""

from __future__ import annotations

from pathlib import Path

import pytest

from flopsmeter.contract import training_launch_pattern
from infra.constructs.provenance import PROVENANCE_ROOT, TRAIL_REQUIREMENT
from tests.infra.policy import Request, allows
from tests.infra.template import (
    Synthesized,
    allowed,
    audit_bucket,
    bucket_policy,
    dead_letter_queue_id,
    function,
    resource_policy,
    role_of,
    role_statements,
    synthesize,
)

pytestmark = pytest.mark.infra


def _rule(synth: Synthesized) -> dict:
    found = [
        r["Properties"]
        for r in synth.of_type("AWS::Events::Rule").values()
        if "EventPattern" in r["Properties"]
        and r["Properties"]["EventPattern"].get("detail-type") == ["AWS API Call via CloudTrail"]
        and r["Properties"]["EventPattern"].get("source") == ["aws.sagemaker"]
        and "CreateTrainingJob" in r["Properties"]["EventPattern"]["detail"]["eventName"]  # not a session's end
    ]
    assert len(found) == 1
    return found[0]


def test_the_capture_rule_matches_the_contracts_launch_pattern(synth: Synthesized) -> None:
    rule = _rule(synth)
    assert rule["EventPattern"] == training_launch_pattern()
    assert "EventBusName" not in rule  # the default bus, where AWS delivers CloudTrail's API-call events
    [target] = rule["Targets"]
    function_id, _ = function(synth, "provenance")
    assert target["Arn"] == {"Fn::GetAtt": [function_id, "Arn"]}
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == 2 and "DeadLetterConfig" in target


def test_the_provenance_function_writes_provenance_once_and_reads_nothing(synth: Synthesized) -> None:
    bucket_id, _ = audit_bucket(synth)
    pairs = allowed(role_statements(synth, role_of(synth, "provenance")))
    s3 = {(a, str(r)) for a, r in pairs if a.startswith("s3:")}
    assert s3 == {
        ("s3:PutObject", f"<{bucket_id}.Arn>/{PROVENANCE_ROOT}*"),
        ("s3:PutObjectRetention", f"<{bucket_id}.Arn>/{PROVENANCE_ROOT}*"),
    }
    assert not {a for a, _ in pairs} & {"cloudtrail:LookupEvents", "sagemaker:DescribeTrainingJob", "s3:GetObject"}


def test_the_classifier_and_reconciler_read_provenance(synth: Synthesized) -> None:
    bucket_id, _ = audit_bucket(synth)
    for name in ("classifier", "reconciler"):
        pairs = allowed(role_statements(synth, role_of(synth, name)))
        assert ("s3:GetObject", f"<{bucket_id}.Arn>/{PROVENANCE_ROOT}*") in pairs


def test_the_provenance_role_is_a_retention_writer_under_its_prefix_only(synth: Synthesized) -> None:
    bucket_id, _ = audit_bucket(synth)
    role = role_of(synth, "provenance")
    statements = bucket_policy(synth, bucket_id)["Statement"]
    [writers] = [s for s in statements if s.get("Sid") == "DenyRetentionExceptWriters"]
    assert {"Fn::GetAtt": [role, "Arn"]} in writers["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]
    own = [
        s
        for s in statements
        if s.get("Sid", "").startswith("DenyRetentionOutsideOwnPrefixes")
        and s["Condition"]["ArnEquals"]["aws:PrincipalArn"] == {"Fn::GetAtt": [role, "Arn"]}
    ]
    assert len(own) == 1 and str(own[0]["NotResource"]).count(PROVENANCE_ROOT) == 1


def test_no_trail_by_default_and_the_requirement_is_an_output(synth: Synthesized) -> None:
    assert synth.of_type("AWS::CloudTrail::Trail") == {}
    assert synth.template["Outputs"]["ProvenanceTrailRequirement"]["Value"] == TRAIL_REQUIREMENT


def test_create_management_trail_adds_a_minimal_write_events_trail(tmp_path: Path) -> None:
    synth = synthesize(tmp_path, create_management_trail=True)
    [(trail_id, trail)] = synth.of_type("AWS::CloudTrail::Trail").items()
    props = trail["Properties"]
    assert props["IsLogging"] is True and props["IsMultiRegionTrail"] is False
    assert props["EnableLogFileValidation"] is True
    assert props["EventSelectors"][0]["ReadWriteType"] == "WriteOnly"
    assert synth.template["Outputs"]["ProvenanceTrailRequirement"]["Value"] == {"Fn::GetAtt": [trail_id, "Arn"]}


def test_launch_calls_dead_letter_into_provenances_own_queue_which_alarms(synth: Synthesized) -> None:
    """Issue 24.4: one dead-letter queue per intake: a documented redrive of the classifier's DLQ must never hand a
    CloudTrail launch call to the classifier (which rejects it)."""
    (target,) = _rule(synth)["Targets"]
    dlq_id = target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]
    assert dlq_id != dead_letter_queue_id(synth)
    queue = synth.resources[dlq_id]["Properties"]
    assert "KmsMasterKeyId" in queue and queue["MessageRetentionPeriod"] == 14 * 24 * 3600
    document = resource_policy(synth, "AWS::SQS::QueuePolicy", "Queues", dlq_id)
    rule_id = next(k for k, r in synth.of_type("AWS::Events::Rule").items() if r["Properties"] == _rule(synth))
    delivery = {"aws:SecureTransport": "true", "aws:SourceArn": f"<{rule_id}.Arn>"}
    assert allows(
        document, Request("events.amazonaws.com", "sqs:SendMessage", f"<{dlq_id}.Arn>", delivery, service=True)
    )
    other = {**delivery, "aws:SourceArn": "arn:aws:events:eu-west-1:111122223333:rule/other"}
    assert not allows(
        document, Request("events.amazonaws.com", "sqs:SendMessage", f"<{dlq_id}.Arn>", other, service=True)
    )
    (alarm,) = [
        a["Properties"]
        for a in synth.of_type("AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("Dimensions") == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [dlq_id, "QueueName"]}}]
    ]
    topic_id, _ = synth.one("AWS::SNS::Topic")
    assert alarm["Threshold"] == 1 and alarm["AlarmActions"] == [{"Ref": topic_id}]
    assert synth.template["Outputs"]["ProvenanceDeadLetterQueueUrl"]["Value"] == {"Ref": dlq_id}
