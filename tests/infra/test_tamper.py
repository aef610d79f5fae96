"""Issue 12.8: tampering with the audit and signing keys or the audit bucket's policy alerts the topic."""

from __future__ import annotations

from typing import Any

import pytest

from infra.constructs.tamper import BUCKET_TAMPERING, KEY_TAMPERING
from tests.infra.template import Synthesized, audit_bucket, function

pytestmark = pytest.mark.infra


def _rule(synth: Synthesized, source: str) -> dict[str, Any]:
    (rule,) = [
        r["Properties"]
        for r in synth.of_type("AWS::Events::Rule").values()
        if r["Properties"].get("EventPattern", {}).get("source") == [source]
    ]
    return rule


def _alerts_topic_target(synth: Synthesized, rule: dict[str, Any]) -> None:
    topic_id, _ = synth.one("AWS::SNS::Topic")
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Ref": topic_id}
    assert rule["State"] == "ENABLED" and "EventBusName" not in rule  # the default bus, where CloudTrail delivers


def test_key_policy_changes_disabling_and_deletion_of_the_evidence_keys_alert(synth: Synthesized) -> None:
    rule = _rule(synth, "aws.kms")
    pattern = rule["EventPattern"]
    assert pattern["detail-type"] == ["AWS API Call via CloudTrail"]
    assert pattern["detail"]["eventSource"] == ["kms.amazonaws.com"]
    assert set(pattern["detail"]["eventName"]) == {"PutKeyPolicy", "ScheduleKeyDeletion", "DisableKey"}
    assert tuple(pattern["detail"]["eventName"]) == KEY_TAMPERING
    _, bucket = audit_bucket(synth)
    audit_key = bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
        "ServerSideEncryptionByDefault"
    ]["KMSMasterKeyID"]
    _, digest = function(synth, "digest")
    signing_key_id = digest["Properties"]["Environment"]["Variables"]["DIGEST_SIGNING_KEY_ID"]["Ref"]
    assert pattern["detail"]["resources"]["ARN"] == [audit_key, {"Fn::GetAtt": [signing_key_id, "Arn"]}]
    _alerts_topic_target(synth, rule)


def test_audit_bucket_policy_and_lock_changes_alert(synth: Synthesized) -> None:
    rule = _rule(synth, "aws.s3")
    pattern = rule["EventPattern"]
    assert pattern["detail-type"] == ["AWS API Call via CloudTrail"]
    assert pattern["detail"]["eventSource"] == ["s3.amazonaws.com"]
    assert {"PutBucketPolicy", "DeleteBucketPolicy"} <= set(pattern["detail"]["eventName"])
    assert tuple(pattern["detail"]["eventName"]) == BUCKET_TAMPERING
    bucket_id, _ = audit_bucket(synth)
    assert pattern["detail"]["requestParameters"] == {"bucketName": [{"Ref": bucket_id}]}
    _alerts_topic_target(synth, rule)
