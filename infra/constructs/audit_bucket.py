"""The audit bucket: Object Lock COMPLIANCE, versioned, KMS, TLS only, access-logged, retained, write-once.

Who may set retention. ``PutObject`` with ``x-amz-object-lock-mode``/``-retain-until-date`` headers is
authorised as ``s3:PutObject`` *and* ``s3:PutObjectRetention`` (the same action as the stand-alone
PutObjectRetention call on an existing object). IAM cannot tell the two apart, so the bucket policy
denies ``s3:PutObjectRetention`` to every principal except the writers, each only under its own prefixes
(the classifier and the reconciler, which runs the same code, under ``records/`` and ``notifications/``;
the digest function under ``digests/``), and denies even those COMPLIANCE-less or shorter-than-configured
retentions. COMPLIANCE mode already forbids anyone (root included) to shorten or remove a retention, so
what stays possible for the writers is extending one, which deletes nothing.
Deleting object versions, bypassing governance retention and writing without ``If-None-Match`` are denied
to everyone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from aws_cdk import Aws, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from flopsmeter.audit.keys import DIGESTS_PREFIX, INDEX_PREFIX, NOTIFICATIONS_PREFIX, RECORDS_PREFIX
from flopsmeter.contract import RETENTION_DAYS_PER_YEAR
from infra.constructs.evidence_keys import deny_key_destruction
from infra.constructs.nag import acknowledge, skip_checkov

RECORDS_ROOT = RECORDS_PREFIX.split("/", 1)[0] + "/"  # "records/"
DIGESTS_ROOT = DIGESTS_PREFIX.split("/", 1)[0] + "/"  # "digests/"
NOTIFICATIONS_ROOT = NOTIFICATIONS_PREFIX.split("/", 1)[0] + "/"  # the classifier's "event/alert sent" markers
INDEX_ROOT = INDEX_PREFIX.split("/", 1)[0] + "/"  # "index/": the classifier's lineage index (issue 18)
ACCESS_LOG_PREFIX = "audit-bucket/"
# Writers ask for RETENTION_DAYS_PER_YEAR (366) days per configured year; a month more covers clock skew and
# rounding. Anything longer is an extension, denied (the records hold
# personal data, and a COMPLIANCE retention can never be shortened again).
RETENTION_MARGIN_DAYS = 31


# Creating an object: PutObject, and CopyObject and the multipart calls, which S3 authorises as s3:PutObject.
OBJECT_WRITES = ("s3:PutObject",)


def max_retention_days(retention_years: int) -> int:
    return RETENTION_DAYS_PER_YEAR * retention_years + RETENTION_MARGIN_DAYS


class AuditBucket(Construct):
    """Exposes ``bucket``, ``key`` (the CMK) and ``log_bucket`` (server access logs of every bucket here), and the
    grants on them: ``grant_write_once``/``grant_read``/``grant_list`` for the functions, ``grant_readers`` for
    people, ``restrict_retention_to`` for the writers' bucket-policy fence."""

    def __init__(
        self, scope: Construct, construct_id: str, *, retention_years: int, access_log_retention_days: int
    ) -> None:
        super().__init__(scope, construct_id)
        self.retention_years = retention_years
        self.key = self._key()
        self.log_bucket = self._access_logs(access_log_retention_days)
        self.bucket = self._locked_bucket(retention_years)
        self._deny_for_everyone()

    def _key(self) -> kms.Key:
        key = kms.Key(
            self,
            "Key",
            description="FLOPs Meter audit records: S3 objects and Athena results",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,  # the records stay for years; so must the key that opens them
        )
        deny_key_destruction(key)  # without it the locked records are unreadable
        return key

    def _access_logs(self, retention_days: int) -> s3.Bucket:
        """The server access logs of every bucket here (SSE-S3: the only encryption S3 logging delivers to)."""
        log_bucket = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,  # S3 server access logging supports SSE-S3 targets only
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[
                s3.LifecycleRule(
                    expiration=Duration.days(retention_days),
                    noncurrent_version_expiration=Duration.days(1),
                )
            ],
            removal_policy=RemovalPolicy.RETAIN,
        )
        # The access logs are evidence too: nobody deletes them (the lifecycle rule, which no policy governs,
        # still expires them after access_log_retention_days).
        log_bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="DenyDeletingAccessLogs",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=["s3:DeleteObject", "s3:DeleteObjectVersion"],
                resources=[log_bucket.arn_for_objects("*")],
            )
        )
        skip_checkov(
            log_bucket,
            "CKV_AWS_18",
            "This is the access-log bucket itself; logging it would log its own log deliveries without end.",
        )
        return log_bucket

    def _locked_bucket(self, retention_years: int) -> s3.Bucket:
        bucket = s3.Bucket(
            self,
            "Bucket",
            object_lock_enabled=True,
            versioned=True,
            encryption=s3.BucketEncryption.KMS,
            encryption_key=self.key,
            bucket_key_enabled=True,  # one KMS call per bucket key, not per object
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.log_bucket,
            server_access_logs_prefix=ACCESS_LOG_PREFIX,
            removal_policy=RemovalPolicy.RETAIN,
        )
        # The L2 construct states a default retention in Days; say Years, as configured (no leap-day drift).
        cfn_bucket = bucket.node.default_child
        assert isinstance(cfn_bucket, s3.CfnBucket)
        cfn_bucket.object_lock_configuration = s3.CfnBucket.ObjectLockConfigurationProperty(
            object_lock_enabled="Enabled",
            rule=s3.CfnBucket.ObjectLockRuleProperty(
                default_retention=s3.CfnBucket.DefaultRetentionProperty(mode="COMPLIANCE", years=retention_years),
            ),
        )
        return bucket

    def objects(self, prefix: str = "") -> str:
        return self.bucket.arn_for_objects(f"{prefix}*")

    def _deny_everyone(
        self,
        sid: str,
        actions: Sequence[str],
        conditions: Mapping[str, Any] | None = None,
        *,
        not_under: Sequence[str] | None = None,
        under: Sequence[str] = ("",),
    ) -> None:
        """A bucket-policy Deny for every principal: on the objects ``under`` those prefixes (default: every object),
        or (``not_under``) outside those prefixes."""
        objects = None if not_under is None else [self.objects(prefix) for prefix in not_under]
        self.bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid=sid,
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=list(actions),
                conditions=conditions,
                resources=[self.objects(prefix) for prefix in under] if objects is None else None,
                not_resources=objects,
            )
        )

    def _deny_for_everyone(self) -> None:
        self._deny_everyone(
            "DenyDeletingOrUnlocking",
            ["s3:DeleteObject", "s3:DeleteObjectVersion", "s3:BypassGovernanceRetention"],
        )
        # Every write must be conditional (If-None-Match: *): the first write of a key wins, nothing is replaced.
        self._deny_everyone(
            "DenyUnconditionalWrites",
            ["s3:PutObject"],
            conditions={"Null": {"s3:if-none-match": "true"}, "Bool": {"s3:ObjectCreationOperation": "true"}},
        )
        # A retention given at write time must be COMPLIANCE mode ...
        self._deny_everyone(
            "DenyNonComplianceLockMode",
            ["s3:PutObject", "s3:PutObjectRetention"],
            conditions={
                "Null": {"s3:object-lock-mode": "false"},
                "StringNotEquals": {"s3:object-lock-mode": "COMPLIANCE"},
            },
        )
        # ... at least the configured number of years ...
        min_days = str(365 * self.retention_years)
        self._deny_everyone(
            "DenyShortRetention",
            ["s3:PutObject", "s3:PutObjectRetention"],
            conditions={"NumericLessThan": {"s3:object-lock-remaining-retention-days": min_days}},
        )
        # ... and not longer than that (plus RETENTION_MARGIN_DAYS): no one may extend a retention.
        self._deny_everyone(
            "DenyLongRetention",
            ["s3:PutObject", "s3:PutObjectRetention"],
            conditions={
                "NumericGreaterThan": {
                    "s3:object-lock-remaining-retention-days": str(max_retention_days(self.retention_years))
                }
            },
        )

    def restrict_writes_to(
        self,
        writers: Sequence[tuple[iam.IRole, Sequence[str]]],
        *,
        break_glass_role_name: str | None = None,
        legal_hold_role_name: str | None = None,
    ) -> None:
        """Who may write where: ``writers`` ((role, prefixes) pairs) are the only principals that may create
        objects under their prefixes, and set retentions there; ``break_glass_role_name`` (a role of this account)
        may create objects under any of those prefixes too; no one may create an object outside them, replicate
        into the bucket, or place a legal hold, but ``legal_hold_role_name``."""
        self._restrict_retention_to(writers)
        break_glass = [self._role_arn(break_glass_role_name)] if break_glass_role_name else []
        owners: dict[str, list[str]] = {}
        for role, prefixes in writers:
            for prefix in prefixes:
                owners.setdefault(prefix, []).append(role.role_arn)
        for prefix, arns in owners.items():
            self._deny_everyone(
                f"DenyWrites{prefix.strip('/').title()}ExceptOwners",
                OBJECT_WRITES,
                conditions={"ArnNotEquals": {"aws:PrincipalArn": [*arns, *break_glass]}},
                under=[prefix],
            )
        self._deny_everyone("DenyWritesOutsidePrefixes", OBJECT_WRITES, not_under=list(owners))
        # Replication writes objects (and delete markers) with the source's lock settings: nothing replicates here.
        self._deny_everyone("DenyReplicationInto", ["s3:ReplicateObject", "s3:ReplicateDelete", "s3:ReplicateTags"])
        # A legal hold keeps an object past its retention for as long as it stands (the records hold personal data).
        self._deny_everyone(
            "DenyLegalHolds",
            ["s3:PutObjectLegalHold"],
            conditions={"ArnNotEquals": {"aws:PrincipalArn": self._role_arn(legal_hold_role_name)}}
            if legal_hold_role_name
            else None,
        )

    @staticmethod
    def _role_arn(name: str) -> str:
        """A role of this account, by name (``path/name`` for a role with a path)."""
        return f"arn:{Aws.PARTITION}:iam::{Aws.ACCOUNT_ID}:role/{name}"

    def _restrict_retention_to(self, writers: Sequence[tuple[iam.IRole, Sequence[str]]]) -> None:
        """Deny ``s3:PutObjectRetention`` to everyone but ``writers`` ((role, prefixes) pairs), each only under its
        own prefixes."""
        self._deny_everyone(
            "DenyRetentionExceptWriters",
            ["s3:PutObjectRetention"],
            conditions={"ArnNotEquals": {"aws:PrincipalArn": [role.role_arn for role, _ in writers]}},
        )
        for index, (role, prefixes) in enumerate(writers):
            self._deny_everyone(
                f"DenyRetentionOutsideOwnPrefixes{index}",
                ["s3:PutObjectRetention"],
                conditions={"ArnEquals": {"aws:PrincipalArn": role.role_arn}},
                not_under=prefixes,
            )

    # ---- grants ----------------------------------------------------------------------------------------------

    def grant_write_once(self, role: iam.IRole, sid: str, *prefixes: str) -> None:
        """``s3:PutObject`` + ``s3:PutObjectRetention`` under ``prefixes`` (a locked write authorises both; the
        bucket policy makes every write conditional) and the key to encrypt with."""
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid=sid,
                actions=["s3:PutObject", "s3:PutObjectRetention"],
                resources=[self.objects(p) for p in prefixes],
            )
        )
        self._grant_key(role)
        self._acknowledge_prefixes(role, prefixes, "One object per key under this prefix; the prefix is the narrowest.")

    def grant_read(self, role: iam.IRole, sid: str, *prefixes: str, actions: Sequence[str] = ("s3:GetObject",)) -> None:
        """Read objects under ``prefixes`` (``actions``: GetObject and, say, its retention or versions), list only
        those prefixes (so a missing key is a 404 for a ``ListObjectsV2``), and the key to decrypt with."""
        role.add_to_principal_policy(
            iam.PolicyStatement(sid=sid, actions=list(actions), resources=[self.objects(p) for p in prefixes])
        )
        versions = "s3:GetObjectVersion" in actions
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ListOwnPrefixes",
                actions=["s3:ListBucket", "s3:ListBucketVersions"] if versions else ["s3:ListBucket"],
                resources=[self.bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{p}*" for p in prefixes]}},
            )
        )
        self._grant_key(role)
        self._acknowledge_prefixes(role, prefixes, "Every object under this prefix is in scope; the narrowest prefix.")

    def grant_query_source(self, role: iam.IRole) -> None:
        """``s3:GetBucketLocation``, which Athena asks of whoever queries a table over this bucket (the compaction
        function; the readers' policy has it in ``ListAudit``)."""
        role.add_to_principal_policy(
            iam.PolicyStatement(sid="LocateAudit", actions=["s3:GetBucketLocation"], resources=[self.bucket.bucket_arn])
        )

    def grant_readers(self, policy: iam.ManagedPolicy) -> None:
        """People who read and verify the records: every object and version, its retention; no write, no delete."""
        policy.add_statements(
            iam.PolicyStatement(
                sid="ReadAudit",
                actions=["s3:GetObject", "s3:GetObjectVersion", "s3:GetObjectRetention"],
                resources=[self.objects()],
            ),
            iam.PolicyStatement(
                sid="ListAudit",
                actions=["s3:ListBucket", "s3:ListBucketVersions", "s3:GetBucketLocation"],
                resources=[self.bucket.bucket_arn],
            ),
            iam.PolicyStatement(
                sid="OpenAudit", actions=["kms:Decrypt", "kms:GenerateDataKey"], resources=[self.key.key_arn]
            ),
        )
        acknowledge(
            policy,
            f"AwsSolutions-IAM5[Resource::<{self.bucket_logical_id}.Arn>/*]",
            "Readers may read every record and digest; the bucket policy forbids writes and deletes.",
        )

    @property
    def bucket_logical_id(self) -> str:
        return Stack.of(self).get_logical_id(self.bucket.node.default_child)  # type: ignore[arg-type]

    def _grant_key(self, role: iam.IRole) -> None:
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="AuditKey", actions=["kms:GenerateDataKey", "kms:Decrypt"], resources=[self.key.key_arn]
            )
        )

    def _acknowledge_prefixes(self, role: iam.IRole, prefixes: Sequence[str], reason: str) -> None:
        for prefix in prefixes:
            acknowledge(role, f"AwsSolutions-IAM5[Resource::<{self.bucket_logical_id}.Arn>/{prefix}*]", reason)
