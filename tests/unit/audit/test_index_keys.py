"""The lineage index's key layout and entries: builders round-trip through their parsers, keys sort in time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flopsmeter.audit.keys import (
    ARTIFACT_INDEX_PREFIX,
    artifact_index_key,
    artifact_index_prefix,
    job_index_key,
    location_digest,
    model_package_index_key,
    parse_artifact_index_key,
    parse_index_key,
)
from flopsmeter.audit.lineage_index import IndexEntry

job_names = st.from_regex(r"\A[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}\Z")
moments = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(UTC)).map(
    lambda m: m.replace(microsecond=0)
)
LOCATION = "s3://bucket-1/out/job/output/model.tar.gz"


@given(moments, job_names)
def test_artifact_index_key_round_trips(end, job):
    key = artifact_index_key(LOCATION, end, job)
    assert key.startswith(artifact_index_prefix(LOCATION))
    assert key.startswith(ARTIFACT_INDEX_PREFIX)
    assert parse_artifact_index_key(key) == (location_digest(LOCATION), end, job)


@given(moments, moments)
def test_artifact_index_keys_sort_by_end_time(a, b):
    keys = [artifact_index_key(LOCATION, a, "job-a"), artifact_index_key(LOCATION, b, "job-b")]
    if a != b:
        assert (keys[0] < keys[1]) == (a < b)


def test_artifact_index_key_is_in_utc_and_refuses_bad_names():
    local = datetime(2026, 3, 1, 14, tzinfo=timezone(timedelta(hours=2)))
    assert "/20260301T120000Z-job.json" in artifact_index_key(LOCATION, local, "job")
    with pytest.raises(ValueError, match="training job name"):
        artifact_index_key(LOCATION, local, "../x")


def test_locations_differ_by_digest():
    assert artifact_index_prefix("s3://bucket-1/a") != artifact_index_prefix("s3://bucket-1/b")
    assert len(location_digest("s3://bucket-1/a")) == 64


@pytest.mark.parametrize(("builder", "kind"), [(model_package_index_key, "model-packages"), (job_index_key, "jobs")])
def test_single_index_keys_round_trip(builder, kind):
    arn = "arn:aws:sagemaker:eu-west-1:111122223333:model-package/group/3"
    assert parse_index_key(builder(arn)) == (kind, location_digest(arn))


@pytest.mark.parametrize(
    "key",
    [
        "index/v1/artifacts/abc/20260301T120000Z-job.json",
        "index/v1/artifacts/" + "0" * 64 + "/2026-03-01-job.json",
        "records/v1/x.json",
    ],
)
def test_parsers_refuse_other_keys(key):
    with pytest.raises(ValueError):
        parse_artifact_index_key(key)
    with pytest.raises(ValueError):
        parse_index_key(key)


def _entry(kind="artifact", location=LOCATION):
    return IndexEntry(
        kind=kind,
        role="model_artifacts" if kind == "artifact" else kind,
        location=location,
        job_name="job",
        job_arn="arn:aws:sagemaker:eu-west-1:111122223333:training-job/job",
        account_id="111122223333",
        region="eu-west-1",
        end_time=datetime(2026, 3, 1, 12, tzinfo=UTC),
        record_key="records/v1/account=111122223333/region=eu-west-1/date=2026-03-01/job.json",
    )


def test_entry_round_trips_and_names_its_key():
    entry = _entry()
    assert IndexEntry.from_json_bytes(entry.to_json_bytes()) == entry
    assert entry.key() == artifact_index_key(LOCATION, entry.end_time, "job")
    package = _entry("model_package", "arn:aws:sagemaker:eu-west-1:111122223333:model-package/g/1")
    assert package.key() == model_package_index_key(package.location)
    job = _entry("job", "arn:aws:sagemaker:eu-west-1:111122223333:training-job/job")
    assert job.key() == job_index_key(job.location)


def test_entry_refuses_other_documents():
    with pytest.raises(ValueError):
        IndexEntry.from_json_bytes(b'{"kind": "artifact"}')
