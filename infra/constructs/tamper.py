"""Alerts on tampering with the evidence: changes to the audit and signing keys and to the audit bucket's policy.

EventBridge rules on the default bus match CloudTrail's management events ("AWS API Call via CloudTrail") and
publish them, unchanged, to the alert topic:
- KMS ``PutKeyPolicy``, ``ScheduleKeyDeletion``, ``DisableKey`` on the audit key or the digest signing key
  (matched on the event's ``resources[].ARN``: the key, whatever id or alias the caller named it by);
- S3 ``PutBucketPolicy``, ``DeleteBucketPolicy``, ``PutObjectLockConfiguration`` (a shorter default retention
  for new objects) on the audit bucket.
EventBridge receives these events only while a CloudTrail trail logs management events in the account and
region (EventBridge user guide, "AWS service events delivered via AWS CloudTrail"); docs/infra.md's first-deploy
checklist confirms one does.
"""

from __future__ import annotations

from aws_cdk import aws_events as events
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.constructs.messaging import RuleTarget
from infra.constructs.monitoring import AlertTopic

API_CALL = "AWS API Call via CloudTrail"
KEY_TAMPERING = ("PutKeyPolicy", "ScheduleKeyDeletion", "DisableKey")
BUCKET_TAMPERING = ("PutBucketPolicy", "DeleteBucketPolicy", "PutObjectLockConfiguration")


class TamperAlerts(Construct):
    """Exposes ``key_rule`` and ``bucket_rule``; both publish to ``alerts``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        keys: list[kms.IKey],
        bucket: s3.IBucket,
        alerts: AlertTopic,
    ) -> None:
        super().__init__(scope, construct_id)
        target = RuleTarget(alerts.topic.topic_arn, retry_attempts=185)
        self.key_rule = events.Rule(
            self,
            "KeyTampering",
            description="FLOPs Meter: the audit or signing key's policy changed, or it was disabled or scheduled "
            "for deletion",
            event_pattern=events.EventPattern(
                source=["aws.kms"],
                detail_type=[API_CALL],
                detail={
                    "eventSource": ["kms.amazonaws.com"],
                    "eventName": list(KEY_TAMPERING),
                    "resources": {"ARN": [key.key_arn for key in keys]},
                },
            ),
            targets=[target],
        )
        self.bucket_rule = events.Rule(
            self,
            "BucketTampering",
            description="FLOPs Meter: the audit bucket's policy or Object Lock configuration changed",
            event_pattern=events.EventPattern(
                source=["aws.s3"],
                detail_type=[API_CALL],
                detail={
                    "eventSource": ["s3.amazonaws.com"],
                    "eventName": list(BUCKET_TAMPERING),
                    "requestParameters": {"bucketName": [bucket.bucket_name]},
                },
            ),
            targets=[target],
        )
        alerts.allow_rules("TamperAlertRules", self.key_rule, self.bucket_rule)
