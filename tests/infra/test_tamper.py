"""Issues 12.8 and 24.2: tampering with the evidence's keys, the audit bucket's configuration, or the trail that
sees both alerts the topic; the rules are matched against CloudTrail envelopes as EventBridge delivers them."""

from __future__ import annotations

import json
from typing import Any

import pytest
from moto.events.models import EventPattern

from infra.constructs.tamper import BUCKET_TAMPERING, KEY_TAMPERING, TRAIL_TAMPERING
from tests.infra.policy import Request, denying_statements
from tests.infra.template import Synthesized, audit_bucket, function, key_policy

pytestmark = pytest.mark.infra

BUCKET = "flopsmeter-prod-auditbucket-1a2b3c4d5e6f"
ACCOUNT = "111122223333"
ADMIN = f"arn:aws:iam::{ACCOUNT}:role/Admin"


def _rule(synth: Synthesized, source: str) -> dict[str, Any]:
    (rule,) = [
        r["Properties"]
        for r in synth.of_type("AWS::Events::Rule").values()
        if r["Properties"].get("EventPattern", {}).get("source") == [source]
        and r["Properties"]["EventPattern"].get("detail-type") == ["AWS API Call via CloudTrail"]
        and "Targets" in r["Properties"]
        and "Lambda" not in json.dumps(r["Properties"]["Targets"])
    ]
    return rule


def _alerts_topic_target(synth: Synthesized, rule: dict[str, Any]) -> None:
    topic_id, _ = synth.one("AWS::SNS::Topic")
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Ref": topic_id}
    assert rule["State"] == "ENABLED" and "EventBusName" not in rule  # the default bus, where CloudTrail delivers


def _keys(synth: Synthesized) -> tuple[str, str]:
    """The logical ids of the audit key and the digest signing key."""
    _, bucket = audit_bucket(synth)
    audit_key = bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
        "ServerSideEncryptionByDefault"
    ]["KMSMasterKeyID"]["Fn::GetAtt"][0]
    _, digest = function(synth, "digest")
    return audit_key, digest["Properties"]["Environment"]["Variables"]["DIGEST_SIGNING_KEY_ID"]["Ref"]


def _concrete(pattern: Any, names: dict[str, str]) -> Any:
    """The rule's pattern with the stack's references replaced by deployed names (``names``: logical id -> name)."""
    if isinstance(pattern, dict) and set(pattern) == {"Ref"}:
        return names[pattern["Ref"]]
    if isinstance(pattern, dict) and set(pattern) == {"Fn::GetAtt"}:
        return names[pattern["Fn::GetAtt"][0]]
    if isinstance(pattern, dict):
        return {k: _concrete(v, names) for k, v in pattern.items()}
    if isinstance(pattern, list):
        return [_concrete(v, names) for v in pattern]
    return pattern


def _api_call(service: str, name: str, request: dict[str, Any], resources: list[dict[str, str]]) -> dict[str, Any]:
    """An "AWS API Call via CloudTrail" event as EventBridge delivers it (CloudTrail record in ``detail``)."""
    return {
        "version": "0",
        "id": "6f8a3c2e-0000-4000-8000-000000000000",
        "detail-type": "AWS API Call via CloudTrail",
        "source": f"aws.{service}",
        "account": ACCOUNT,
        "time": "2026-03-01T12:00:00Z",
        "region": "eu-west-1",
        "resources": [],
        "detail": {
            "eventVersion": "1.09",
            "userIdentity": {"type": "AssumedRole", "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/Admin/jane"},
            "eventTime": "2026-03-01T12:00:00Z",
            "eventSource": f"{service}.amazonaws.com",
            "eventName": name,
            "awsRegion": "eu-west-1",
            "requestParameters": request,
            "responseElements": None,
            "resources": resources,
            "readOnly": False,
            "eventType": "AwsApiCall",
            "managementEvent": True,
            "recipientAccountId": ACCOUNT,
        },
    }


def _one_resource(event: dict[str, Any]) -> dict[str, Any]:
    """``detail.resources`` is an array of objects; EventBridge matches a pattern's ``resources.ARN`` against each
    element (arrays in event patterns), moto's matcher only against an object: give it the one element."""
    (resource,) = event["detail"]["resources"]
    return {**event, "detail": {**event["detail"], "resources": resource}}


def _matches(rule: dict[str, Any], event: dict[str, Any], names: dict[str, str]) -> bool:
    return bool(EventPattern.load(json.dumps(_concrete(rule["EventPattern"], names))).matches_event(event))


def test_key_policy_changes_disabling_and_deletion_of_the_evidence_keys_alert(synth: Synthesized) -> None:
    rule = _rule(synth, "aws.kms")
    pattern = rule["EventPattern"]
    assert pattern["detail"]["eventSource"] == ["kms.amazonaws.com"]
    assert tuple(pattern["detail"]["eventName"]) == KEY_TAMPERING
    audit_key, signing_key = _keys(synth)
    assert pattern["detail"]["resources"]["ARN"] == [
        {"Fn::GetAtt": [audit_key, "Arn"]},
        {"Fn::GetAtt": [signing_key, "Arn"]},
    ]
    _alerts_topic_target(synth, rule)
    arns = {key: f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/{n}" for n, key in enumerate((audit_key, signing_key))}
    for key_arn in arns.values():
        for name in KEY_TAMPERING:
            event = _api_call("kms", name, {"keyId": "alias/x"}, [{"type": "AWS::KMS::Key", "ARN": key_arn}])
            assert _matches(rule, _one_resource(event), arns), name
    other = _api_call("kms", "ScheduleKeyDeletion", {}, [{"ARN": f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/other"}])
    assert not _matches(rule, _one_resource(other), arns)


@pytest.mark.parametrize("which", ["audit", "signing"])
def test_no_one_may_schedule_the_deletion_of_or_disable_an_evidence_key(synth: Synthesized, which: str) -> None:
    """Issue 24.2: a key policy Deny for every principal (root included); not a lockout: the account may still
    change the key policy (CDK's default statement), and that change alerts (PutKeyPolicy above)."""
    audit_key, signing_key = _keys(synth)
    document = key_policy(synth, audit_key if which == "audit" else signing_key)
    for principal in (f"arn:aws:iam::{ACCOUNT}:root", ADMIN):
        for action in ("kms:ScheduleKeyDeletion", "kms:DisableKey"):
            assert denying_statements(document, Request(principal, action, "*")) == ["DenyKeyDestruction"]
        assert not denying_statements(document, Request(principal, "kms:PutKeyPolicy", "*"))
    root = [s for s in document["Statement"] if s["Effect"] == "Allow" and s["Action"] == "kms:*"]
    assert root, "the account keeps kms:* (PutKeyPolicy included): no lockout"


@pytest.mark.parametrize("name", BUCKET_TAMPERING)
def test_audit_bucket_policy_lock_encryption_lifecycle_replication_and_ownership_changes_alert(
    synth: Synthesized, name: str
) -> None:
    rule = _rule(synth, "aws.s3")
    pattern = rule["EventPattern"]
    assert pattern["detail"]["eventSource"] == ["s3.amazonaws.com"]
    assert {
        "PutBucketPolicy",
        "DeleteBucketPolicy",
        "PutObjectLockConfiguration",
        "PutBucketEncryption",
        "PutBucketLifecycle",
        "PutBucketLifecycleConfiguration",
        "DeleteBucketLifecycle",
        "PutBucketReplication",
        "PutBucketOwnershipControls",
    } <= set(pattern["detail"]["eventName"])
    bucket_id, _ = audit_bucket(synth)
    assert pattern["detail"]["requestParameters"] == {"bucketName": [{"Ref": bucket_id}]}
    _alerts_topic_target(synth, rule)
    names = {bucket_id: BUCKET}
    request = {"bucketName": BUCKET, "Host": f"{BUCKET}.s3.eu-west-1.amazonaws.com"}
    assert _matches(rule, _api_call("s3", name, request, []), names)
    elsewhere = {**request, "bucketName": "some-other-bucket"}
    assert not _matches(rule, _api_call("s3", name, elsewhere, []), names)


@pytest.mark.parametrize("name", TRAIL_TAMPERING)
def test_silencing_a_trail_alerts(synth: Synthesized, name: str) -> None:
    """Every tamper rule above depends on a trail: stopping, deleting or re-scoping any trail of the account alerts
    (CloudTrail records StopLogging before it stops)."""
    rule = _rule(synth, "aws.cloudtrail")
    _alerts_topic_target(synth, rule)
    event = _api_call("cloudtrail", name, {"name": f"arn:aws:cloudtrail:eu-west-1:{ACCOUNT}:trail/org"}, [])
    assert _matches(rule, event, {})
    assert not _matches(rule, _api_call("cloudtrail", "LookupEvents", {}, []), {})


def test_the_alert_topic_accepts_every_tamper_rule(synth: Synthesized) -> None:
    topic_id, _ = synth.one("AWS::SNS::Topic")
    (document,) = [
        p["Properties"]["PolicyDocument"]
        for p in synth.of_type("AWS::SNS::TopicPolicy").values()
        if {"Ref": topic_id} in p["Properties"]["Topics"]
    ]
    (statement,) = [s for s in document["Statement"] if s.get("Sid") == "TamperAlertRules"]
    rules = {
        k
        for k, r in synth.of_type("AWS::Events::Rule").items()
        if r["Properties"].get("Targets", [{}])[0].get("Arn") == {"Ref": topic_id}
    }
    assert {a["Fn::GetAtt"][0] for a in statement["Condition"]["ArnEquals"]["aws:SourceArn"]} == rules
    assert len(rules) == 3
