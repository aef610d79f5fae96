"""AuditStore against moto's S3 (emulated: Object Lock COMPLIANCE and If-None-Match are enforced by moto)."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from flopsmeter.audit.keys import record_key
from flopsmeter.aws.store import AuditStore
from tests.support.records import make_record

BUCKET = "flopsmeter-audit-test"


@pytest.fixture
def s3():
    with mock_aws():
        client = boto3.client("s3", region_name="eu-west-1")
        client.create_bucket(
            Bucket=BUCKET,
            ObjectLockEnabledForBucket=True,
            CreateBucketConfiguration={"LocationConstraint": "eu-west-1"},
        )
        client.put_object_lock_configuration(
            Bucket=BUCKET,
            ObjectLockConfiguration={
                "ObjectLockEnabled": "Enabled",
                "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Years": 10}},
            },
        )
        yield client


def _key(record):
    return record_key(record.job.account_id, record.job.region, record.job.end_time, record.job.name)


def test_first_write_wins_and_a_duplicate_is_a_no_op(s3):
    store = AuditStore(s3, BUCKET)
    first = make_record(flops=1e21)
    second = make_record(flops=9e24)  # same job, different content: must not replace the first
    assert store.put_record(_key(first), first).written
    again = store.put_record(_key(second), second)
    assert not again.written
    assert store.get_record(_key(first)) == first
    assert len(list(store.list_versions(_key(first)))) == 1


def test_records_are_locked_in_compliance_mode_for_the_retention_period(s3):
    store = AuditStore(s3, BUCKET, retention_years=10)
    record = make_record()
    result = store.put_record(_key(record), record)
    head = s3.head_object(Bucket=BUCKET, Key=_key(record))
    assert head["ObjectLockMode"] == "COMPLIANCE"
    assert head["ObjectLockRetainUntilDate"].year >= record.recorded_at.year + 10
    assert head["Metadata"]["sha256"] == record.sha256
    with pytest.raises(ClientError):
        s3.delete_object(Bucket=BUCKET, Key=_key(record), VersionId=result.version_id)


def test_list_keys_sees_every_record_in_key_order(s3):
    store = AuditStore(s3, BUCKET)
    names = [f"job-{i:03d}" for i in range(5)]
    for name in reversed(names):
        rec = make_record(name)
        store.put_record(_key(rec), rec)
    keys = [o["Key"] for o in store.list_keys("records/v1/")]
    assert [k.rsplit("/", 1)[-1] for k in keys] == [f"{n}.json" for n in names]
