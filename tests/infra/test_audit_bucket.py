"""The audit bucket: Object Lock, encryption, and its policy evaluated statement by statement."""

from __future__ import annotations

import json

import pytest

from flopsmeter.contract import RETENTION_DAYS_PER_YEAR
from infra.constructs.audit_bucket import INDEX_ROOT, NOTIFICATIONS_ROOT, RETENTION_MARGIN_DAYS, max_retention_days
from tests.infra.policy import Request, allows, denying_statements, identity_allows
from tests.infra.template import (
    BREAK_GLASS,
    LEGAL_HOLD,
    RETENTION_YEARS,
    Synthesized,
    audit_bucket,
    bucket_policy,
    role_arn,
    role_of,
    role_statements,
)

pytestmark = pytest.mark.infra


def test_audit_bucket_locks_every_object_in_compliance_mode_for_the_configured_years(synth: Synthesized) -> None:
    _, bucket = audit_bucket(synth)
    lock = bucket["Properties"]["ObjectLockConfiguration"]
    assert lock == {
        "ObjectLockEnabled": "Enabled",
        "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Years": RETENTION_YEARS}},
    }
    assert bucket["Properties"]["VersioningConfiguration"] == {"Status": "Enabled"}


def test_audit_bucket_is_kms_encrypted_private_logged_and_retained(synth: Synthesized) -> None:
    bucket_id, bucket = audit_bucket(synth)
    props = bucket["Properties"]
    sse = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert sse["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    key_id = sse["ServerSideEncryptionByDefault"]["KMSMasterKeyID"]["Fn::GetAtt"][0]
    key = synth.resources[key_id]
    assert key["Properties"]["EnableKeyRotation"] is True
    assert key["DeletionPolicy"] == "Retain"
    assert props["PublicAccessBlockConfiguration"] == dict.fromkeys(
        ["BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"], True
    )
    log_target = props["LoggingConfiguration"]["DestinationBucketName"]["Ref"]
    assert log_target != bucket_id and synth.resources[log_target]["Type"] == "AWS::S3::Bucket"
    assert bucket["DeletionPolicy"] == "Retain" and bucket["UpdateReplacePolicy"] == "Retain"


def test_audit_key_cannot_be_scheduled_for_deletion_or_disabled(synth: Synthesized) -> None:
    _, bucket = audit_bucket(synth)
    key_id = bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
        "ServerSideEncryptionByDefault"
    ]["KMSMasterKeyID"]["Fn::GetAtt"][0]
    document = synth.resources[key_id]["Properties"]["KeyPolicy"]
    for action in ("kms:ScheduleKeyDeletion", "kms:DisableKey"):
        assert denying_statements(document, Request("arn:aws:iam::111122223333:root", action, "*"))


def test_audit_bucket_policy_requires_tls(synth: Synthesized) -> None:
    bucket_id, _ = audit_bucket(synth)
    document = bucket_policy(synth, bucket_id)
    reader = "arn:aws:iam::111122223333:role/Auditor"
    key = f"<{bucket_id}.Arn>/records/v1/x.json"
    assert denying_statements(document, Request(reader, "s3:GetObject", key, {"aws:SecureTransport": "false"}))
    assert not denying_statements(document, Request(reader, "s3:GetObject", key, {"aws:SecureTransport": "true"}))


@pytest.mark.parametrize("action", ["s3:DeleteObject", "s3:DeleteObjectVersion", "s3:BypassGovernanceRetention"])
@pytest.mark.parametrize("who", ["classifier", "reconciler", "digest", "admin"])
def test_nobody_may_delete_or_unlock_audit_objects(synth: Synthesized, action: str, who: str) -> None:
    bucket_id, _ = audit_bucket(synth)
    principal = "arn:aws:iam::111122223333:role/Admin" if who == "admin" else role_arn(synth, who)
    for key in ("records/v1/account=1/region=r/date=2026-01-01/job.json", "digests/v1/x.json", "other"):
        request = Request(principal, action, f"<{bucket_id}.Arn>/{key}", {"aws:SecureTransport": "true"})
        assert denying_statements(bucket_policy(synth, bucket_id), request), f"{who} may {action} {key}"


def _write(
    principal: str,
    action: str,
    resource: str,
    *,
    mode: str = "COMPLIANCE",
    days: int = 366 * RETENTION_YEARS,
    conditional: bool = True,
) -> Request:
    context = {
        "aws:SecureTransport": "true",
        "s3:object-lock-mode": mode,
        "s3:object-lock-remaining-retention-days": str(days),
        "s3:ObjectCreationOperation": "true",
    }
    if conditional:
        context["s3:if-none-match"] = "*"
    return Request(principal, action, resource, context)


@pytest.mark.parametrize(
    ("who", "prefix"),
    [
        ("classifier", "records/"),
        ("reconciler", "records/"),
        ("classifier", NOTIFICATIONS_ROOT),
        ("classifier", INDEX_ROOT),
        ("reconciler", INDEX_ROOT),
        ("digest", "digests/"),
    ],
)
def test_writers_may_put_locked_objects_under_their_own_prefix(synth: Synthesized, who: str, prefix: str) -> None:
    bucket_id, _ = audit_bucket(synth)
    resource = f"<{bucket_id}.Arn>/{prefix}v1/some-key.json"
    for action in ("s3:PutObject", "s3:PutObjectRetention"):  # PutObject with lock headers authorises both
        denied = denying_statements(bucket_policy(synth, bucket_id), _write(role_arn(synth, who), action, resource))
        assert denied == [], f"{who} {action} under {prefix} denied by {denied}"


@pytest.mark.parametrize(
    ("who", "prefix"),
    [
        ("classifier", "digests/"),
        ("reconciler", "digests/"),
        ("digest", "records/"),
        ("digest", NOTIFICATIONS_ROOT),
        ("digest", INDEX_ROOT),
        ("classifier", "elsewhere/"),
    ],
)
def test_writers_may_not_set_retention_outside_their_prefix(synth: Synthesized, who: str, prefix: str) -> None:
    bucket_id, _ = audit_bucket(synth)
    request = _write(role_arn(synth, who), "s3:PutObjectRetention", f"<{bucket_id}.Arn>/{prefix}v1/k.json")
    assert denying_statements(bucket_policy(synth, bucket_id), request)


def test_no_one_else_may_set_retention_anywhere(synth: Synthesized) -> None:
    bucket_id, _ = audit_bucket(synth)
    for principal in ("arn:aws:iam::111122223333:root", "arn:aws:iam::111122223333:role/Admin"):
        for prefix in ("records/", "digests/", NOTIFICATIONS_ROOT):
            request = _write(principal, "s3:PutObjectRetention", f"<{bucket_id}.Arn>/{prefix}v1/k.json")
            assert "DenyRetentionExceptWriters" in denying_statements(bucket_policy(synth, bucket_id), request)


def test_writes_must_be_conditional_compliance_and_long_enough(synth: Synthesized) -> None:
    bucket_id, _ = audit_bucket(synth)
    document = bucket_policy(synth, bucket_id)
    classifier = role_arn(synth, "classifier")
    resource = f"<{bucket_id}.Arn>/records/v1/job.json"
    assert denying_statements(document, _write(classifier, "s3:PutObject", resource, conditional=False))
    assert denying_statements(document, _write(classifier, "s3:PutObject", resource, mode="GOVERNANCE"))
    short = 365 * RETENTION_YEARS - 1
    assert denying_statements(document, _write(classifier, "s3:PutObjectRetention", resource, days=short))
    exactly = 365 * RETENTION_YEARS
    assert not denying_statements(document, _write(classifier, "s3:PutObjectRetention", resource, days=exactly))
    # A conditional write without lock headers gets the bucket's default retention and is allowed.
    plain = Request(
        classifier,
        "s3:PutObject",
        resource,
        {"aws:SecureTransport": "true", "s3:if-none-match": "*", "s3:ObjectCreationOperation": "true"},
    )
    assert not denying_statements(document, plain)


@pytest.mark.parametrize("action", ["s3:PutObject", "s3:PutObjectRetention"])
@pytest.mark.parametrize("who", ["classifier", "digest"])
def test_no_one_may_extend_a_retention_beyond_the_configured_years(synth: Synthesized, action: str, who: str) -> None:
    """Issue 12.7: COMPLIANCE retention can never be shortened again, and the records hold personal data."""
    bucket_id, _ = audit_bucket(synth)
    document = bucket_policy(synth, bucket_id)
    prefix = "digests/" if who == "digest" else "records/"
    resource = f"<{bucket_id}.Arn>/{prefix}v1/k.json"
    asked = RETENTION_DAYS_PER_YEAR * RETENTION_YEARS  # what the writers ask for (AuditStore.retain_until)
    assert RETENTION_DAYS_PER_YEAR == 366
    assert not denying_statements(document, _write(role_arn(synth, who), action, resource, days=asked))
    at_limit = max_retention_days(RETENTION_YEARS)
    assert at_limit == asked + RETENTION_MARGIN_DAYS
    assert not denying_statements(document, _write(role_arn(synth, who), action, resource, days=at_limit))
    denied = denying_statements(document, _write(role_arn(synth, who), action, resource, days=at_limit + 1))
    assert denied == ["DenyLongRetention"]
    decades = denying_statements(document, _write(role_arn(synth, who), action, resource, days=365 * 100))
    assert "DenyLongRetention" in decades


def _access_log_bucket(synth: Synthesized) -> str:
    _, bucket = audit_bucket(synth)
    return str(bucket["Properties"]["LoggingConfiguration"]["DestinationBucketName"]["Ref"])


@pytest.mark.parametrize("action", ["s3:DeleteObject", "s3:DeleteObjectVersion"])
@pytest.mark.parametrize("who", ["arn:aws:iam::111122223333:root", "arn:aws:iam::111122223333:role/Admin"])
def test_access_logs_cannot_be_deleted(synth: Synthesized, action: str, who: str) -> None:
    """Issue 12.9: the access logs are evidence; only their lifecycle rule (no policy governs it) expires them."""
    logs_id = _access_log_bucket(synth)
    request = Request(
        who, action, f"<{logs_id}.Arn>/audit-bucket/2026-01-01-00-00-00-ABC", {"aws:SecureTransport": "true"}
    )
    assert denying_statements(bucket_policy(synth, logs_id), request) == ["DenyDeletingAccessLogs"]
    (rule,) = synth.resources[logs_id]["Properties"]["LifecycleConfiguration"]["Rules"]
    assert rule["Status"] == "Enabled" and rule["ExpirationInDays"] == 3653


def test_s3_log_delivery_may_write_the_access_logs_for_this_account_only(synth: Synthesized) -> None:
    logs_id = _access_log_bucket(synth)
    bucket_id, _ = audit_bucket(synth)
    document = bucket_policy(synth, logs_id)
    resource = f"<{logs_id}.Arn>/audit-bucket/2026-01-01-00-00-00-ABC"
    ours = {
        "aws:SecureTransport": "true",
        "aws:SourceArn": f"<{bucket_id}.Arn>",
        "aws:SourceAccount": "<AWS::AccountId>",
    }
    assert allows(document, Request("logging.s3.amazonaws.com", "s3:PutObject", resource, ours, service=True))
    theirs = {**ours, "aws:SourceArn": "arn:aws:s3:::someone-elses-bucket", "aws:SourceAccount": "999988887777"}
    assert not allows(document, Request("logging.s3.amazonaws.com", "s3:PutObject", resource, theirs, service=True))


# ---- issue 24.1: who may write where ----------------------------------------------------------------------------

OWNERS = {  # each prefix of the audit bucket and the functions that own it
    "records/": ("classifier", "reconciler"),
    NOTIFICATIONS_ROOT: ("classifier", "reconciler"),
    INDEX_ROOT: ("classifier", "reconciler"),
    "provenance/": ("provenance",),
    "digests/": ("digest",),
    "compacted/": ("compaction",),
    "clusters/": ("hyperpod",),  # HyperPod periods (its records/ keys: tests/infra/test_hyperpod.py)
}
POWER_USER = "arn:aws:iam::111122223333:role/PowerUserAccess"  # identity policy: s3:* on every bucket
ROOT = "arn:aws:iam::111122223333:root"


def _put(synth: Synthesized, principal: str, prefix: str, *, locked: bool = True) -> tuple[list[str], bool]:
    """A conditional write under ``prefix`` (with lock headers, or relying on the default retention): the bucket
    policy's denying Sids, and whether the principal's own role allows it (always, for a non-function principal)."""
    bucket_id, _ = audit_bucket(synth)
    resource = f"<{bucket_id}.Arn>/{prefix}v1/account=1/region=r/date=2026-01-01/job.json"
    request = (
        _write(principal, "s3:PutObject", resource)
        if locked
        else Request(
            principal,
            "s3:PutObject",
            resource,
            {"aws:SecureTransport": "true", "s3:if-none-match": "*", "s3:ObjectCreationOperation": "true"},
        )
    )
    functions = {role_arn(synth, name): name for names in OWNERS.values() for name in names}
    identity = (
        identity_allows(role_statements(synth, role_of(synth, functions[principal])), request)
        if principal in functions
        else True
    )
    return denying_statements(bucket_policy(synth, bucket_id), request), identity


def test_every_prefix_has_its_owners_and_nothing_else_is_writable(synth: Synthesized) -> None:
    bucket_id, _ = audit_bucket(synth)
    statements = bucket_policy(synth, bucket_id)["Statement"]
    sids = [s.get("Sid", "") for s in statements]
    fenced = {sid for sid in sids if sid.startswith("DenyWrites") and sid.endswith("ExceptOwners")}
    assert fenced == {f"DenyWrites{p.strip('/').title()}ExceptOwners" for p in OWNERS}
    (outside,) = [s for s in statements if s.get("Sid") == "DenyWritesOutsidePrefixes"]
    expected = [{"Fn::Join": ["", [{"Fn::GetAtt": [bucket_id, "Arn"]}, f"/{p}*"]]} for p in OWNERS]
    assert sorted(map(json.dumps, outside["NotResource"])) == sorted(map(json.dumps, expected))
    assert len(json.dumps(bucket_policy(synth, bucket_id))) < 20_480  # S3's bucket-policy size limit


@pytest.mark.parametrize("prefix", [*OWNERS, "elsewhere/", ""])
@pytest.mark.parametrize("who", [POWER_USER, ROOT])
def test_a_power_user_or_root_cannot_write_any_prefix(synth: Synthesized, who: str, prefix: str) -> None:
    """Issue 24.1: a principal with identity-based s3:PutObject cannot pre-seed a record, forge provenance, fork
    the digest chain or the lineage index, with or without lock headers."""
    for locked in (True, False):
        denied, _ = _put(synth, who, prefix, locked=locked)
        assert denied, f"{who} may write {prefix!r}"


@pytest.mark.parametrize(("prefix", "who"), [(p, who) for p, owners in OWNERS.items() for who in owners])
def test_each_owner_may_write_its_own_prefix(synth: Synthesized, prefix: str, who: str) -> None:
    denied, identity = _put(synth, role_arn(synth, who), prefix)
    assert denied == [] and identity, f"{who} cannot write {prefix}: denied by {denied}"


@pytest.mark.parametrize(
    ("prefix", "who"),
    [(p, who) for p in OWNERS for who in ("classifier", "provenance", "digest", "compaction") if who not in OWNERS[p]],
)
def test_no_owner_may_write_another_owners_prefix(synth: Synthesized, prefix: str, who: str) -> None:
    denied, identity = _put(synth, role_arn(synth, who), prefix, locked=False)
    assert f"DenyWrites{prefix.strip('/').title()}ExceptOwners" in denied
    assert not identity  # nor does its own role allow it


def test_the_break_glass_role_may_write_every_prefix_but_nowhere_else(synth: Synthesized) -> None:
    """Optional (``break_glass_role_name``): conditional writes with the bucket's default retention, like anyone's."""
    glass = f"arn:<AWS::Partition>:iam::<AWS::AccountId>:role/{BREAK_GLASS}"
    for prefix in OWNERS:
        assert _put(synth, glass, prefix, locked=False)[0] == []
    assert "DenyWritesOutsidePrefixes" in _put(synth, glass, "elsewhere/", locked=False)[0]
    bucket_id, _ = audit_bucket(synth)
    delete = Request(glass, "s3:DeleteObjectVersion", f"<{bucket_id}.Arn>/records/v1/x.json")
    assert denying_statements(bucket_policy(synth, bucket_id), delete)


@pytest.mark.parametrize("action", ["s3:ReplicateObject", "s3:ReplicateDelete"])
def test_nothing_replicates_into_the_audit_bucket(synth: Synthesized, action: str) -> None:
    """A replication rule elsewhere could write objects (or delete markers) here with a role of its own."""
    bucket_id, _ = audit_bucket(synth)
    request = Request("arn:aws:iam::111122223333:role/replication", action, f"<{bucket_id}.Arn>/records/v1/x.json")
    assert "DenyReplicationInto" in denying_statements(bucket_policy(synth, bucket_id), request)


@pytest.mark.parametrize("who", [POWER_USER, ROOT, "classifier", "digest"])
def test_legal_holds_are_denied_but_to_the_named_role(synth: Synthesized, who: str) -> None:
    """Issue 24.2: a legal hold would keep personal data past its retention for as long as it stands."""
    bucket_id, _ = audit_bucket(synth)
    principal = who if who.startswith("arn:") else role_arn(synth, who)
    resource = f"<{bucket_id}.Arn>/records/v1/x.json"
    document = bucket_policy(synth, bucket_id)
    assert "DenyLegalHolds" in denying_statements(document, Request(principal, "s3:PutObjectLegalHold", resource))
    named = f"arn:<AWS::Partition>:iam::<AWS::AccountId>:role/{LEGAL_HOLD}"
    assert not denying_statements(document, Request(named, "s3:PutObjectLegalHold", resource))
