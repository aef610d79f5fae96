"""Tampering with a written audit record: every attempt is refused, by S3 Object Lock (checked on moto) or by the
audit bucket's policy (checked on the synthesized ``infra.constructs.audit_bucket.AuditBucket``).

moto enforces Object Lock COMPLIANCE on version deletes and ``If-None-Match: *`` on writes. It does not enforce
bucket policies at all, and it wrongly accepts ``PutObjectRetention`` that shortens a COMPLIANCE retention (its
GetObjectRetention even answers 500, so HeadObject is used). For each attempt the test records what moto did and
what the bucket policy decides (``tests/infra/policy.py``: an evaluator of the policy's explicit Deny statements,
emulated IAM); an attempt passes only if at least one refuses it and the record's original version is intact.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.infra.policy import Request, denying_statements
from tests.support.moto_world import BUCKET, state_change

pytestmark = pytest.mark.infra  # synthesizes the AuditBucket construct (a few seconds of jsii)

RETENTION_YEARS = 10
ADMIN = "arn:aws:iam::123456789012:role/Admin"
CLASSIFIER = "arn:aws:iam::123456789012:role/Classifier"


@pytest.fixture(scope="module")
def bucket_policy() -> dict[str, Any]:
    """The audit bucket's policy as the stack synthesizes it (the construct alone: no asset, no cdk-nag)."""
    import aws_cdk as cdk
    from aws_cdk.assertions import Template

    from infra.constructs.audit_bucket import AuditBucket
    from infra.synth import cdk_json_context

    app = cdk.App(context={k: v for k, v in cdk_json_context().items() if k.startswith("@aws-cdk/")})  # flags
    stack = cdk.Stack(app, "ImmutabilityProbe")
    audit = AuditBucket(stack, "Audit", retention_years=RETENTION_YEARS, access_log_retention_days=30)
    del audit  # its deny-for-everyone statements are what matter here; who may *extend* retention: tests/infra
    template = Template.from_stack(stack).to_json()
    bucket_id = next(
        k
        for k, v in template["Resources"].items()
        if v["Type"] == "AWS::S3::Bucket" and "Audit" in k and "Logs" not in k
    )
    (policy,) = [
        v["Properties"]["PolicyDocument"]
        for v in template["Resources"].values()
        if v["Type"] == "AWS::S3::BucketPolicy" and v["Properties"]["Bucket"] == {"Ref": bucket_id}
    ]
    return {"document": policy, "bucket_arn": f"<{bucket_id}.Arn>"}


@pytest.fixture
def written(harness) -> dict[str, Any]:
    """A record written by the real handler (on moto), with its version, body and retention."""
    harness.aws.job("job-locked")
    harness.send(state_change("job-locked"))
    harness.drain()
    ((key, record),) = harness.records().items()
    head = harness["s3"].head_object(Bucket=BUCKET, Key=key)
    body = harness["s3"].get_object(Bucket=BUCKET, Key=key, VersionId=head["VersionId"])["Body"].read()
    return {
        "key": key,
        "version": head["VersionId"],
        "body": body,
        "until": head["ObjectLockRetainUntilDate"],
        "record": record,
    }


def _moto_refuses(call: Callable[[], Any]) -> tuple[bool, str]:
    try:
        reply = call()
    except ClientError as err:
        return True, err.response["Error"]["Code"]
    errors = reply.get("Errors") if isinstance(reply, dict) else None
    return bool(errors), (errors[0]["Code"] if errors else "accepted")


def _attempts(s3: Any, w: dict[str, Any]) -> dict[str, tuple[Callable[[], Any], str, dict[str, str]]]:
    """name -> (the call on moto, the IAM action it is authorised as, the request's condition keys)."""
    key, version = w["key"], w["version"]
    shorter = w["until"] - timedelta(days=3650)
    lock = {"s3:object-lock-mode": "COMPLIANCE", "s3:object-lock-remaining-retention-days": "30"}
    return {
        "delete the record version": (
            lambda: s3.delete_object(Bucket=BUCKET, Key=key, VersionId=version),
            "s3:DeleteObjectVersion",
            {},
        ),
        "delete the version, bypassing governance": (
            lambda: s3.delete_object(Bucket=BUCKET, Key=key, VersionId=version, BypassGovernanceRetention=True),
            "s3:BypassGovernanceRetention",
            {},
        ),
        "batch-delete the version": (
            lambda: s3.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": key, "VersionId": version}]}),
            "s3:DeleteObjectVersion",
            {},
        ),
        "overwrite with If-None-Match": (
            lambda: s3.put_object(Bucket=BUCKET, Key=key, Body=b"{}", IfNoneMatch="*"),
            "s3:PutObject",
            {"s3:if-none-match": "*", "s3:ObjectCreationOperation": "true"},
        ),
        "overwrite without a condition": (
            lambda: s3.put_object(Bucket=BUCKET, Key=key, Body=b'{"outcome": "below"}'),
            "s3:PutObject",
            {"s3:ObjectCreationOperation": "true"},
        ),
        "shorten the retention": (
            lambda: s3.put_object_retention(
                Bucket=BUCKET, Key=key, VersionId=version, Retention={"Mode": "COMPLIANCE", "RetainUntilDate": shorter}
            ),
            "s3:PutObjectRetention",
            lock,
        ),
        "switch the lock to GOVERNANCE": (
            lambda: s3.put_object_retention(
                Bucket=BUCKET,
                Key=key,
                VersionId=version,
                Retention={"Mode": "GOVERNANCE", "RetainUntilDate": w["until"]},
            ),
            "s3:PutObjectRetention",
            {**lock, "s3:object-lock-mode": "GOVERNANCE", "s3:object-lock-remaining-retention-days": "3660"},
        ),
        # Last, because it changes what follows: with a delete marker on top, the key "does not exist", so a
        # conditional write succeeds (moto and S3 alike) and a forged version becomes the current one.
        "hide it behind a delete marker": (lambda: s3.delete_object(Bucket=BUCKET, Key=key), "s3:DeleteObject", {}),
        "then forge a new current version": (
            lambda: s3.put_object(Bucket=BUCKET, Key=key, Body=b'{"outcome": "below"}', IfNoneMatch="*"),
            "s3:PutObject",
            {"s3:if-none-match": "*", "s3:ObjectCreationOperation": "true"},
        ),
    }


WHO = {"an administrator": ADMIN, "the classifier itself": CLASSIFIER}


@pytest.mark.parametrize("who", sorted(WHO))
def test_every_tampering_attempt_is_refused_and_the_record_survives(harness, written, bucket_policy, who):
    s3 = harness["s3"]
    principal = WHO[who]
    resource = f"{bucket_policy['bucket_arn']}/{written['key']}"
    outcomes = {}
    for name, (call, action, context) in _attempts(s3, written).items():
        refused_by_moto, code = _moto_refuses(call)
        request = Request(principal, action, resource, {"aws:SecureTransport": "true", **context})
        denied_by = denying_statements(bucket_policy["document"], request)
        outcomes[name] = (refused_by_moto, code, denied_by)
    chain = "then forge a new current version"
    unrefused = {n: o for n, o in outcomes.items() if not o[0] and not o[2] and n != chain}
    assert unrefused == {}, f"{who} could: {unrefused}"
    # The forgery needs the delete marker first: that step, s3:DeleteObject, is what the policy must deny.
    assert outcomes[chain][:2] == (False, "accepted") and outcomes["hide it behind a delete marker"][2]
    # What the emulator lets through must be denied by the bucket policy (explicit Deny wins over any Allow) ...
    for name in ("hide it behind a delete marker", "overwrite without a condition", "shorten the retention"):
        assert outcomes[name][2], f"{name}: the bucket policy must deny what moto accepts"
    # ... and what moto enforces, it enforces: locked versions cannot be deleted, conditional overwrites fail.
    assert outcomes["delete the record version"][:2] == (True, "AccessDenied")
    assert outcomes["overwrite with If-None-Match"][:2] == (True, "PreconditionFailed")
    # Whatever moto accepted, the original version is still there, byte for byte, and still seals correctly.
    original = s3.get_object(Bucket=BUCKET, Key=written["key"], VersionId=written["version"])["Body"].read()
    assert original == written["body"]
    stored = json.loads(original)
    assert stored["sha256"] == written["record"].sha256 == written["record"].sealed().sha256


def test_the_service_never_overwrites_its_own_record(harness, written):
    """A redelivery, a reconciler run and a direct ``put_record`` all leave the one version there."""
    store = harness.aws.store
    harness.send(state_change("job-locked"))
    harness.drain()
    again = store.put_record(written["key"], written["record"].model_copy(update={"outcome": "below"}))
    assert again.written is False
    versions = list(store.list_versions(written["key"]))
    assert [v["VersionId"] for v in versions] == [written["version"]]
    assert harness.aws.metrics.counts["DuplicateDelivery"] == 1


def test_retention_is_compliance_mode_for_the_configured_years(harness, written):
    head = harness["s3"].head_object(Bucket=BUCKET, Key=written["key"])
    assert head["ObjectLockMode"] == "COMPLIANCE"
    years = (head["ObjectLockRetainUntilDate"] - head["LastModified"]).days / 365.25
    assert years >= RETENTION_YEARS
