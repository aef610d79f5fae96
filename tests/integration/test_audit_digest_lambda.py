"""The digest Lambda handler on moto (S3 Object Lock bucket + KMS RSA key; LastModified on an emulated clock)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta

import pytest
from moto import mock_aws

from flopsmeter.audit.store import AuditStore
from flopsmeter.compliance.verify import BucketSource, verify
from tests.support.trail import (
    ACCOUNT,
    BUCKET,
    REGION,
    T0,
    Clock,
    Trail,
    install_clock,
    make_bucket,
    make_signing_key,
)


@dataclass
class Context:
    function_name: str = "flopsmeter-digest"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:flopsmeter-digest"
    aws_request_id: str = "6f2b3c1e-0000-4000-8000-000000000001"


def scheduled(at) -> dict:
    return {
        "version": "0",
        "id": "e1",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT,
        "time": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [],
        "detail": {},
    }


@pytest.fixture
def deployed(monkeypatch):
    from flopsmeter.aws import clients
    from lambdas.digest import handler
    from lambdas.shared import settings

    with mock_aws():
        clock = Clock()
        install_clock(monkeypatch, clock)
        s3, kms = make_bucket()
        key_id = make_signing_key(kms)
        monkeypatch.setenv("AUDIT_BUCKET_NAME", BUCKET)
        monkeypatch.setenv("DIGEST_SIGNING_KEY_ID", key_id)
        for cached in (settings.settings, handler.dependencies, clients.client):
            cached.cache_clear()
        yield Trail(s3, kms, key_id, AuditStore(s3, BUCKET), clock), handler
        for cached in (settings.settings, handler.dependencies, clients.client):
            cached.cache_clear()


def test_hourly_run_closes_the_previous_hour_and_a_rerun_is_a_no_op(deployed):
    trail, handler = deployed
    trail.write("job-a", T0 + timedelta(minutes=10))
    trail.write("job-b", T0 + timedelta(minutes=50))
    trail.clock.set(T0 + timedelta(hours=1, minutes=5))
    reply = handler.lambda_handler(scheduled(T0 + timedelta(hours=1, minutes=5)), Context())
    assert reply["written"] == [f"digests/v1/account={ACCOUNT}/region={REGION}/2026/01/05/09.json"]
    assert reply["records"] == 2
    again = handler.lambda_handler(scheduled(T0 + timedelta(hours=1, minutes=5)), Context())
    assert again["written"] == []
    assert verify(BucketSource(trail.store, kms=trail.kms, now=trail.clock.now)).ok


def test_missed_hours_are_caught_up_in_order(deployed):
    trail, handler = deployed
    trail.write("job-a", T0 + timedelta(minutes=10))
    trail.clock.set(T0 + timedelta(hours=1, minutes=5))
    handler.lambda_handler(scheduled(trail.clock.now), Context())
    trail.write("job-c", T0 + timedelta(hours=2, minutes=30))
    trail.clock.set(T0 + timedelta(hours=4, minutes=5))  # the runs at 11:05 and 12:05 failed
    reply = handler.lambda_handler(scheduled(trail.clock.now), Context())
    assert [k.rsplit("/", 1)[-1] for k in reply["written"]] == ["10.json", "11.json", "12.json"]
    docs = [json.loads(trail.store.get(k).body) for k in reply["written"]]
    assert [d["record_count"] for d in docs] == [0, 1, 0]
    assert verify(BucketSource(trail.store, kms=trail.kms, now=trail.clock.now)).ok


def test_missing_signing_key_setting_fails_loudly(deployed, monkeypatch):
    from lambdas.shared.settings import SettingsError

    _, handler = deployed
    monkeypatch.delenv("DIGEST_SIGNING_KEY_ID")
    with pytest.raises(SettingsError, match="DIGEST_SIGNING_KEY_ID"):
        handler.lambda_handler(scheduled(T0), Context())
