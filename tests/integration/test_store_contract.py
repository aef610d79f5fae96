"""One contract, two stores: the in-memory fake the unit tests use (tests.support.fakes.FakeStore) and the real
AuditStore on moto's S3 (emulated: Object Lock COMPLIANCE and If-None-Match are moto's) pass the same scenarios."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from flopsmeter.audit.keys import record_key
from flopsmeter.aws.store import AuditStore
from flopsmeter.errors import AuditStoreError
from tests.support.fakes import FakeStore
from tests.support.records import make_record

BUCKET = "flopsmeter-audit-contract"


def _moto_store() -> Iterator[AuditStore]:
    with mock_aws():
        s3 = boto3.client("s3", region_name="eu-west-1")
        s3.create_bucket(
            Bucket=BUCKET,
            ObjectLockEnabledForBucket=True,
            CreateBucketConfiguration={"LocationConstraint": "eu-west-1"},
        )
        yield AuditStore(s3, BUCKET)


@pytest.fixture(params=["fake", "moto"])
def store(request: pytest.FixtureRequest) -> Iterator[Any]:
    if request.param == "fake":
        yield FakeStore(BUCKET)
    else:
        yield from _moto_store()


def test_put_immutable_first_write_wins_and_a_duplicate_is_a_no_op(store: Any) -> None:
    assert store.put_immutable("notifications/v1/a.json", b"first")[0] is True
    assert store.put_immutable("notifications/v1/a.json", b"second")[0] is False
    assert store.get("notifications/v1/a.json").body == b"first"
    assert store.exists("notifications/v1/a.json")


def test_put_record_then_get_it_back_and_a_redelivery_changes_nothing(store: Any) -> None:
    record = make_record()
    key = record_key(record.job.account_id, record.job.region, record.job.end_time, record.job.name)
    first = store.put_record(key, record)
    assert first.written and first.sha256 == record.sealed().sha256
    assert store.get_record(key) == record.sealed()
    again = store.put_record(key, make_record(record.job.name, flops=9e21))
    assert again.written is False
    assert store.get_record(key) == record.sealed()


def test_list_keys_yields_every_key_under_a_prefix_in_key_order(store: Any) -> None:
    for key in ("records/v1/b.json", "records/v1/a.json", "digests/v1/c.json"):
        store.put_immutable(key, b"{}")
    assert [item["Key"] for item in store.list_keys("records/")] == ["records/v1/a.json", "records/v1/b.json"]
    assert list(store.list_keys("compacted/")) == []


def test_a_missing_key_reads_as_absent_and_fails_get_with_the_store_error(store: Any) -> None:
    assert store.exists("records/v1/missing.json") is False
    with pytest.raises(AuditStoreError):
        store.get("records/v1/missing.json")
    with pytest.raises(AuditStoreError):
        store.get_record("records/v1/missing.json")
