"""AuditStore against moto's S3 (emulated: Object Lock COMPLIANCE and If-None-Match are enforced by moto)."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from flopsmeter.audit.keys import record_key
from flopsmeter.aws.store import AuditStore
from flopsmeter.errors import TransientStoreError
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


# --- a role without s3:ListBucket: a missing key reads as 403, not 404 (issue 12, item 2) ---------------------------


@pytest.mark.parametrize("list_denied", [False, True])
def test_a_403_for_a_missing_key_is_unknown_never_permanent(s3, list_denied):
    from tests.support.moto_world import WithoutListBucket

    store = AuditStore(WithoutListBucket(s3, list_denied=list_denied), BUCKET)
    record = make_record()
    assert store.exists(_key(record)) is False  # 403 on HEAD: looked up by listing, or unknown -> False
    first = store.put_record(_key(record), record)
    assert first.written and store.exists(_key(record))
    again = store.put_record(_key(record), record)  # If-None-Match: 412 -> already recorded, nothing written
    assert again.written is False and again.sha256 == first.sha256
    assert len(s3.list_object_versions(Bucket=BUCKET, Prefix=_key(record))["Versions"]) == 1


def test_exists_looks_a_403_up_by_listing_the_key_as_a_prefix():
    from botocore.stub import Stubber

    client = boto3.client("s3", region_name="eu-west-1")
    key = "records/v1/account=1/region=r/date=2026-01-01/job.json"
    with Stubber(client) as stub:
        stub.add_client_error("head_object", "403", http_status_code=403)
        stub.add_response(
            "list_objects_v2",
            {"Contents": [{"Key": key}], "KeyCount": 1},
            {"Bucket": BUCKET, "Prefix": key, "MaxKeys": 1},
        )
        stub.add_client_error("head_object", "403", http_status_code=403)
        stub.add_response("list_objects_v2", {"Contents": [{"Key": key + ".bak"}], "KeyCount": 1})
        stub.add_client_error("head_object", "403", http_status_code=403)
        stub.add_client_error("list_objects_v2", "AccessDenied", http_status_code=403)
        stub.add_client_error("head_object", "503", http_status_code=503)
        store = AuditStore(client, BUCKET)
        assert store.exists(key) is True
        assert store.exists(key) is False  # only a longer key under the prefix
        assert store.exists(key) is False  # listing refused too: unknown, the caller writes conditionally
        with pytest.raises(TransientStoreError):
            store.exists(key)
        stub.assert_no_pending_responses()


def test_a_412_is_already_recorded_even_when_the_stored_object_cannot_be_read():
    from botocore.stub import ANY, Stubber

    client = boto3.client("s3", region_name="eu-west-1")
    record = make_record()
    with Stubber(client) as stub:
        stub.add_client_error("put_object", "PreconditionFailed", http_status_code=412, expected_params=None)
        stub.add_client_error("head_object", "403", http_status_code=403, expected_params={"Bucket": ANY, "Key": ANY})
        result = AuditStore(client, BUCKET).put_record(_key(record), record)
    assert result.written is False and result.key == _key(record)
