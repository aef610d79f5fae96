"""moto_ext.s3_listing: a prefix listing reads only the keys under the prefix, and answers exactly as moto's own
listing does (versions, delete markers, delimiters, markers, truncation), in-process and through boto3."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from flopsmeter.local import moto_ext
from flopsmeter.local.moto_ext.s3_listing import moto_list_objects

REGION, BUCKET = "eu-west-1", "listing-check"


@pytest.fixture
def s3() -> Iterator[Any]:
    moto_ext.install()
    with mock_aws():
        client = boto3.client("s3", region_name=REGION)
        client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        yield client


def _backend_and_bucket() -> tuple[Any, Any]:
    from moto.s3.models import s3_backends

    backend = s3_backends["123456789012"]["global"]
    return backend, backend.get_bucket(BUCKET)


def _names(result: tuple[Any, ...]) -> tuple[Any, ...]:
    keys, folders, truncated, marker = result
    return [k.name for k in keys], list(folders), truncated, marker


def test_a_listing_answers_as_moto_s_own_on_a_versioned_bucket(s3: Any) -> None:
    for i in range(60):
        s3.put_object(Bucket=BUCKET, Key=f"index/v1/reads/{i % 7:02d}/2026-12-0{i % 9 + 1}/job-{i}.json", Body=b"{}")
    for i in range(0, 60, 5):  # a second version of some, a delete marker on others
        s3.put_object(Bucket=BUCKET, Key=f"index/v1/reads/{i % 7:02d}/2026-12-0{i % 9 + 1}/job-{i}.json", Body=b"[]")
    for i in range(1, 60, 6):
        s3.delete_object(Bucket=BUCKET, Key=f"index/v1/reads/{i % 7:02d}/2026-12-0{i % 9 + 1}/job-{i}.json")
    s3.put_object(Bucket=BUCKET, Key="records/v1/one.json", Body=b"{}")
    backend, bucket = _backend_and_bucket()
    cases = [("index/v1/reads/03/", None, None, None), ("index/v1/reads/", "/", None, None),
             ("index/", None, None, 5), ("index/v1/reads/0", "/", None, 2), ("nothing/", None, None, None),
             ("index/v1/reads/01/2026-12-02/", None, "index/v1/reads/01/2026-12-02/job-10.json", None)]  # fmt: skip
    for prefix, delimiter, marker, max_keys in cases:
        ours = backend.list_objects(bucket, prefix, delimiter, marker, max_keys)
        assert _names(ours) == _names(moto_list_objects(backend, bucket, prefix, delimiter, marker, max_keys))
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="index/v1/reads/03/")["Contents"]
    assert listed and all(o["Key"].startswith("index/v1/reads/03/") for o in listed)
    assert not any(o["Key"].endswith("job-1.json") for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"])


def test_a_prefix_listing_costs_what_it_returns_not_the_bucket_size(s3: Any) -> None:
    from moto.s3.models import FakeKey

    backend, bucket = _backend_and_bucket()
    for i in range(20_000):  # straight into the store: 20 000 PutObject calls would take half a minute
        name = f"index/v1/contains/{i:05d}/x.json"
        bucket.keys[name] = FakeKey(name, b"{}", account_id="123456789012", region_name=REGION)
    started = time.perf_counter()
    for _ in range(50):
        backend.list_objects(bucket, "index/v1/reads/nobody/", None, None, None)
    ours = (time.perf_counter() - started) / 50
    started = time.perf_counter()
    for _ in range(5):
        moto_list_objects(backend, bucket, "index/v1/reads/nobody/", None, None, None)
    theirs = (time.perf_counter() - started) / 5
    assert ours < theirs / 3, (ours, theirs)  # measured here: ~1 ms against ~15 ms
