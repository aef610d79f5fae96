"""Alerts on tampering with the evidence: its keys, the audit bucket's configuration, and the trail that sees both.

EventBridge rules on the default bus match CloudTrail's management events ("AWS API Call via CloudTrail") and
publish them, unchanged, to the alert topic:
- KMS ``PutKeyPolicy``, ``ScheduleKeyDeletion``, ``DisableKey`` on every key the evidence depends on, the audit
  key and the digest signing key (matched on the event's ``resources[].ARN``: the key, whatever id or alias the
  caller named it by). Both key policies also deny the deletion and the disabling outright
  (``infra/constructs/evidence_keys.py``): an administrator must change the policy first, which alerts here.
- S3 calls on the audit bucket that change what protects the records or what a listing shows:
  the bucket policy, the Object Lock configuration (a shorter default retention for new objects), the default
  encryption (new records under a key someone may delete), lifecycle rules (expiration adds delete markers that
  hide every record from listings and the CLI; CloudTrail names ``PutBucketLifecycleConfiguration`` calls
  ``PutBucketLifecycle``, both are matched), replication (copies of personal data elsewhere), ownership controls
  (ACLs back on), server access logging (reads no longer logged).
- CloudTrail calls that would silence these rules: stopping, deleting or re-scoping any trail of the account.
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
BUCKET_TAMPERING = (
    "PutBucketPolicy",
    "DeleteBucketPolicy",
    "PutObjectLockConfiguration",
    "PutBucketEncryption",
    "DeleteBucketEncryption",
    "PutBucketLifecycle",
    "PutBucketLifecycleConfiguration",
    "DeleteBucketLifecycle",
    "PutBucketReplication",
    "DeleteBucketReplication",
    "PutBucketOwnershipControls",
    "DeleteBucketOwnershipControls",
    "PutBucketLogging",
)
TRAIL_TAMPERING = ("StopLogging", "DeleteTrail", "UpdateTrail", "PutEventSelectors", "PutAdvancedEventSelectors")


class TamperAlerts(Construct):
    """Exposes ``key_rule``, ``bucket_rule`` and ``trail_rule``; all publish to ``alerts``."""

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
        self.key_rule = self._rule(
            "KeyTampering",
            "the audit or signing key's policy changed, or it was disabled or scheduled for deletion",
            "kms",
            KEY_TAMPERING,
            {"resources": {"ARN": [key.key_arn for key in keys]}},
            target,
        )
        self.bucket_rule = self._rule(
            "BucketTampering",
            "the audit bucket's policy, lock, encryption, lifecycle, replication, ownership or logging changed",
            "s3",
            BUCKET_TAMPERING,
            {"requestParameters": {"bucketName": [bucket.bucket_name]}},
            target,
        )
        self.trail_rule = self._rule(
            "TrailTampering",
            "a CloudTrail trail of this account was stopped, deleted or re-scoped (the tamper alerts depend on it)",
            "cloudtrail",
            TRAIL_TAMPERING,
            {},
            target,
        )
        alerts.allow_rules("TamperAlertRules", self.key_rule, self.bucket_rule, self.trail_rule)

    def _rule(
        self,
        construct_id: str,
        what: str,
        service: str,
        event_names: tuple[str, ...],
        detail: dict[str, object],
        target: RuleTarget,
    ) -> events.Rule:
        """A rule on the default bus for ``service``'s ``event_names`` calls matching ``detail``."""
        return events.Rule(
            self,
            construct_id,
            description=f"FLOPs Meter: {what}",
            event_pattern=events.EventPattern(
                source=[f"aws.{service}"],
                detail_type=[API_CALL],
                detail={"eventSource": [f"{service}.amazonaws.com"], "eventName": list(event_names), **detail},
            ),
            targets=[target],
        )
