"""The digest function on moto (S3 Object Lock bucket + KMS RSA key; LastModified on an emulated clock)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from moto import mock_aws

from flopsmeter.aws.store import AuditStore
from flopsmeter.compliance.verify import BucketSource, verify
from flopsmeter.functions import digest
from flopsmeter.functions.container import DigestContainer, build_digest
from flopsmeter.functions.settings import DigestSettings, SettingsError
from tests.support.lambda_context import lambda_context, scheduled_event
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


@pytest.fixture
def deployed(monkeypatch):
    """The digest function over a container built from its settings, with clients on moto."""
    with mock_aws():
        clock = Clock()
        install_clock(monkeypatch, clock)
        s3, kms = make_bucket()
        key_id = make_signing_key(kms)
        settings = DigestSettings.from_env({"AUDIT_BUCKET_NAME": BUCKET, "DIGEST_SIGNING_KEY_ID": key_id})
        container = build_digest(settings, {"s3": s3, "kms": kms}.__getitem__)
        yield Trail(s3, kms, key_id, AuditStore(s3, BUCKET), clock), digest.handler_for(lambda: container)


def test_hourly_run_closes_the_previous_hour_and_a_rerun_is_a_no_op(deployed):
    trail, handler = deployed
    trail.write("job-a", T0 + timedelta(minutes=10))
    trail.write("job-b", T0 + timedelta(minutes=50))
    trail.clock.set(T0 + timedelta(hours=1, minutes=5))
    reply = handler(scheduled_event(T0 + timedelta(hours=1, minutes=5)), lambda_context("flopsmeter-digest"))
    assert reply["written"] == [f"digests/v1/account={ACCOUNT}/region={REGION}/2026/01/05/09.json"]
    assert reply["records"] == 2
    again = handler(scheduled_event(T0 + timedelta(hours=1, minutes=5)), lambda_context("flopsmeter-digest"))
    assert again["written"] == []
    assert verify(BucketSource(trail.store, kms=trail.kms, now=trail.clock.now)).ok


def test_missed_hours_are_caught_up_in_order(deployed):
    trail, handler = deployed
    trail.write("job-a", T0 + timedelta(minutes=10))
    trail.clock.set(T0 + timedelta(hours=1, minutes=5))
    handler(scheduled_event(trail.clock.now), lambda_context("flopsmeter-digest"))
    trail.write("job-c", T0 + timedelta(hours=2, minutes=30))
    trail.clock.set(T0 + timedelta(hours=4, minutes=5))  # the runs at 11:05 and 12:05 failed
    reply = handler(scheduled_event(trail.clock.now), lambda_context("flopsmeter-digest"))
    assert [k.rsplit("/", 1)[-1] for k in reply["written"]] == ["10.json", "11.json", "12.json"]
    docs = [json.loads(trail.store.get(k).body) for k in reply["written"]]
    assert [d["record_count"] for d in docs] == [0, 1, 0]
    assert verify(BucketSource(trail.store, kms=trail.kms, now=trail.clock.now)).ok


def test_missing_signing_key_setting_fails_loudly(monkeypatch):
    """The real entry point builds its container from the environment: no signing key, no run (and no cache)."""
    monkeypatch.setenv("AUDIT_BUCKET_NAME", BUCKET)
    monkeypatch.delenv("DIGEST_SIGNING_KEY_ID", raising=False)
    with pytest.raises(SettingsError, match="DIGEST_SIGNING_KEY_ID"):
        digest.lambda_handler(scheduled_event(T0), lambda_context("flopsmeter-digest"))
    assert digest.process_container.cache_info().currsize == 0


def test_a_403_for_a_missing_digest_is_not_a_failure(deployed):
    """A role whose ListBucket grant is conditioned on s3:prefix gets 403 for a HEAD of a missing digest key (a HEAD
    carries no prefix): the writer goes on, and If-None-Match keeps a re-run from writing twice."""
    from tests.support.moto_world import WithoutListBucket

    trail, _ = deployed
    store = AuditStore(WithoutListBucket(trail.s3), BUCKET)
    handler = digest.handler_for(lambda: DigestContainer(store, trail.kms, trail.key_id))
    trail.write("job-a", T0 + timedelta(minutes=10))
    trail.clock.set(T0 + timedelta(hours=1, minutes=5))
    reply = handler(scheduled_event(trail.clock.now), lambda_context("flopsmeter-digest"))
    assert len(reply["written"]) == 1 and reply["records"] == 1
    assert handler(scheduled_event(trail.clock.now), lambda_context("flopsmeter-digest"))["written"] == []
    assert verify(BucketSource(trail.store, kms=trail.kms, now=trail.clock.now)).ok
