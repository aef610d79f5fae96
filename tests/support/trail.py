"""Builds a real audit trail on moto (S3 Object Lock bucket + asymmetric KMS key) on an emulated clock.

moto stamps ``LastModified`` with ``moto.s3.models.utcnow``; the ``Clock`` replaces it so that records and
digests land in chosen hours without sleeping (emulated: real S3 stamps the time of the write).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3

from flopsmeter.audit.record import AuditRecord
from flopsmeter.aws.kms import KmsSigner
from flopsmeter.aws.store import AuditStore
from flopsmeter.service.digests import write_digest
from tests.support.records import key_of, make_record

BUCKET = "flopsmeter-audit-test"
ACCOUNT = "123456789012"
REGION = "eu-west-1"
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@dataclass
class Clock:
    now: datetime = T0

    def set(self, moment: datetime) -> None:
        self.now = moment

    def naive(self) -> datetime:
        return self.now.astimezone(UTC).replace(tzinfo=None)


def install_clock(monkeypatch: Any, clock: Clock) -> None:
    import moto.s3.models

    monkeypatch.setattr(moto.s3.models, "utcnow", clock.naive)


def make_bucket(region: str = REGION) -> tuple[Any, Any]:
    s3 = boto3.client("s3", region_name=region)
    s3.create_bucket(
        Bucket=BUCKET, ObjectLockEnabledForBucket=True, CreateBucketConfiguration={"LocationConstraint": region}
    )
    s3.put_object_lock_configuration(
        Bucket=BUCKET,
        ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Years": 10}},
        },
    )
    kms = boto3.client("kms", region_name=region)
    return s3, kms


def make_signing_key(kms: Any) -> str:
    return kms.create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY", Description="flopsmeter digests")["KeyMetadata"][
        "KeyId"
    ]


@dataclass
class Trail:
    """Hour 9: three records; hour 10: two; hour 11: none; hour 12: one (not yet digested)."""

    s3: Any
    kms: Any
    key_id: str
    store: AuditStore
    clock: Clock
    records: dict[str, AuditRecord] = field(default_factory=dict)
    digests: list[str] = field(default_factory=list)

    def write(self, name: str, at: datetime, **kwargs: Any) -> str:
        self.clock.set(at)
        record = make_record(name, end=at - timedelta(minutes=5), **kwargs)
        key = key_of(record)
        assert self.store.put_record(key, record).written
        self.records[name] = record
        return key

    def digest(self, hour: datetime, at: datetime) -> list[str]:
        self.clock.set(at)
        results = write_digest(
            self.store, KmsSigner(self.kms, self.key_id), hour, account_id=ACCOUNT, region=REGION, now=at
        )
        keys = [r.key for r in results if r.written]
        self.digests.extend(keys)
        return keys

    def key(self, name: str) -> str:
        return key_of(self.records[name])


def build_trail(monkeypatch: Any) -> Trail:
    clock = Clock()
    install_clock(monkeypatch, clock)
    s3, kms = make_bucket()
    trail = Trail(s3, kms, make_signing_key(kms), AuditStore(s3, BUCKET), clock)
    h = T0
    trail.write("job-a", h + timedelta(minutes=10), flops=1.0e21)
    trail.write("job-b", h + timedelta(minutes=20), flops=4.0e23, pretrain=1.5e24)
    trail.write("job-c", h + timedelta(minutes=30), flops=5.0e22, pretrain=None)
    trail.digest(h, h + timedelta(hours=1, minutes=5))
    trail.write("job-d", h + timedelta(hours=1, minutes=15), flops=2.0e22, pretrain=None)
    trail.write("job-e", h + timedelta(hours=1, minutes=40), flops=1.0e20)
    trail.digest(h + timedelta(hours=1), h + timedelta(hours=2, minutes=5))
    trail.digest(h + timedelta(hours=2), h + timedelta(hours=3, minutes=5))
    trail.write("job-f", h + timedelta(hours=3, minutes=20), flops=3.0e21)
    clock.set(h + timedelta(hours=3, minutes=30))
    return trail


def tamper_digest(trail: Trail, key: str, change: Any, *, resign: bool = False) -> None:
    """Overwrite a digest with a changed copy (a new object version). ``resign``: an insider re-signs it with
    the real KMS key and fixes its body hash, so only the chain can tell."""
    import base64
    import json

    from flopsmeter.audit.digests import digest_body, signing_string
    from flopsmeter.audit.record import body_sha256, canonical_json

    document = json.loads(trail.store.get(key).body)
    change(document)
    if resign:
        body_hash = body_sha256(digest_body(document))
        signature = KmsSigner(trail.kms, trail.key_id).sign(signing_string(key, document["period_end"], body_hash))
        document["signature"]["body_sha256"] = body_hash
        document["signature"]["value"] = base64.b64encode(signature).decode()
    trail.s3.put_object(Bucket=BUCKET, Key=key, Body=canonical_json(document))
