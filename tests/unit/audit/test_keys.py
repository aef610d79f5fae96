"""The bucket's key layout: every builder has a parser that gives back the same parts, and keys sort in time."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flopsmeter.audit.keys import (
    COMPACTED_PREFIX,
    DIGESTS_PREFIX,
    PROVENANCE_KINDS,
    PUBLIC_KEYS_PREFIX,
    RECORDS_PREFIX,
    bedrock_record_key,
    chain_prefix,
    compaction_data_prefix,
    compaction_manifest_key,
    digest_key,
    on_demand_digest_key,
    parse_chain,
    parse_compaction_data_key,
    parse_compaction_manifest_key,
    parse_digest_key,
    parse_launch_arn,
    parse_provenance_key,
    parse_public_key_object_key,
    parse_record_key,
    partition_path,
    provenance_key,
    provenance_key_for_arn,
    public_key_object_key,
    record_key,
    records_prefix,
)

H = datetime(2026, 3, 1, 10, tzinfo=UTC)
HOUR = timedelta(hours=1)

accounts = st.from_regex(r"\A[0-9]{12}\Z")
regions = st.from_regex(r"\A[a-z]{2}-[a-z]{4,9}-[1-9]\Z")
job_names = st.from_regex(r"\A[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}\Z")
moments = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(UTC)).map(
    lambda m: m.replace(microsecond=0)
)


@given(accounts, regions, moments, job_names)
def test_record_key_round_trips(account, region, end, job):
    key = record_key(account, region, end, job)
    assert parse_record_key(key) == {"account": account, "region": region, "date": end.date().isoformat(), "job": job}
    assert key.startswith(records_prefix(account, region, end.date()))
    assert key.startswith(records_prefix(account, region)) and key.startswith(records_prefix(account))
    assert key.startswith(records_prefix()) and records_prefix() == RECORDS_PREFIX


@given(accounts, regions, moments)
def test_hourly_digest_key_round_trips_to_the_end_of_its_hour(account, region, hour):
    key = digest_key(account, region, hour)
    floor = hour.replace(minute=0, second=0)
    assert parse_digest_key(key) == (account, region, floor + HOUR)
    assert parse_chain(key) == (account, region)
    assert key.startswith(chain_prefix(account, region)) and key.startswith(DIGESTS_PREFIX)


@given(accounts, regions, moments)
def test_on_demand_digest_key_round_trips_to_its_end(account, region, end):
    key = on_demand_digest_key(account, region, end)
    assert parse_digest_key(key) == (account, region, end)
    assert parse_chain(key) == (account, region)


@given(st.binary(min_size=1, max_size=64))
def test_public_key_object_key_round_trips(der):
    import hashlib

    fingerprint = hashlib.sha256(der).hexdigest()
    key = public_key_object_key(fingerprint)
    assert key.startswith(PUBLIC_KEYS_PREFIX)
    assert parse_public_key_object_key(key) == fingerprint
    assert parse_chain(key) is None  # a public key is not a chain digest


def test_digest_keys_sort_in_time_order():
    earlier = digest_key("1", "r", H - HOUR)  # covers up to H
    partial = on_demand_digest_key("1", "r", H + timedelta(minutes=20, seconds=5))
    hourly = digest_key("1", "r", H)  # covers up to H + 1h
    later = on_demand_digest_key("1", "r", H + HOUR + timedelta(seconds=1))
    assert sorted([later, hourly, partial, earlier]) == [earlier, partial, hourly, later]
    assert on_demand_digest_key("1", "r", H) == earlier  # a whole-hour end is the hourly key


@pytest.mark.parametrize(
    ("parse", "key"),
    [
        (parse_record_key, "records/v1/account=1/region=r/2026-03-01/job.json"),  # no date=
        (parse_record_key, "records/v1/account=1/region=r/date=2026-03-01/job.txt"),
        (parse_record_key, "digests/v1/account=1/region=r/2026/03/01/10.json"),
        (parse_digest_key, "digests/v1/account=1/region=r/2026/03/01/notes.json"),
        (parse_digest_key, "digests/v1/account=1/2026/03/01/10.json"),
        (parse_digest_key, "records/v1/account=1/region=r/date=2026-03-01/job.json"),
        (parse_public_key_object_key, "digests/v1/public-keys/not-a-fingerprint.pem"),
    ],
)
def test_parsers_refuse_keys_of_another_layout(parse, key):
    with pytest.raises(ValueError, match="not a"):
        parse(key)


def test_record_key_refuses_a_name_sagemaker_would_refuse():
    with pytest.raises(ValueError, match="not a SageMaker training job name"):
        record_key("1", "r", date(2026, 3, 1), "../escape")


bedrock_job_names = st.from_regex(r"\A[a-zA-Z0-9][a-zA-Z0-9+.-]{0,62}\Z")


@given(accounts, regions, moments, bedrock_job_names, job_names)
def test_bedrock_record_key_round_trips_and_never_meets_a_training_job_key(account, region, end, job, training_job):
    key = bedrock_record_key(account, region, end, job)
    assert parse_record_key(key)["job"] == f"bedrock.{job}"
    assert key.startswith(records_prefix(account, region, end.date()))
    assert key != record_key(account, region, end, training_job)


@pytest.mark.parametrize("name", ["", "../escape", "a/b", "-leading", "x" * 64])
def test_bedrock_record_key_refuses_a_name_bedrock_would_refuse(name):
    with pytest.raises(ValueError, match="not a Bedrock model customization job name"):
        bedrock_record_key("1", "r", date(2026, 3, 1), name)


# ------------------------------------------------------------------ provenance (capture at launch)

names = st.from_regex(r"\A[a-zA-Z0-9](-?[a-zA-Z0-9]){0,30}\Z")


@given(accounts, st.sampled_from(["us-east-1", "eu-west-1"]), st.sampled_from(PROVENANCE_KINDS), names, names)
def test_provenance_key_round_trips(account: str, region: str, kind: str, name: str, execution: str) -> None:
    full = f"{name}/{execution}" if kind == "pipeline-execution" else name
    key = provenance_key(account, region, kind, full)
    assert parse_provenance_key(key) == {"account": account, "region": region, "kind": kind, "name": full.lower()}


@pytest.mark.parametrize(
    ("arn", "expected"),
    [
        (
            "arn:aws:sagemaker:eu-west-1:123456789012:training-job/My-Job",
            "provenance/v1/account=123456789012/region=eu-west-1/training-job/my-job.json",
        ),
        (
            "arn:aws:sagemaker:eu-west-1:123456789012:hyper-parameter-tuning-job/sweep-1",
            "provenance/v1/account=123456789012/region=eu-west-1/hyper-parameter-tuning-job/sweep-1.json",
        ),
        (
            "arn:aws:sagemaker:eu-west-1:123456789012:automl-job/auto-1",
            "provenance/v1/account=123456789012/region=eu-west-1/automl-job/auto-1.json",
        ),
        (
            "arn:aws:sagemaker:eu-west-1:123456789012:pipeline/train-pipe/execution/abc123xyz",
            "provenance/v1/account=123456789012/region=eu-west-1/pipeline-execution/train-pipe/abc123xyz.json",
        ),
    ],
)
def test_provenance_key_of_each_launch_arn(arn: str, expected: str) -> None:
    assert provenance_key_for_arn(arn) == expected
    parts = parse_provenance_key(expected)
    assert parse_launch_arn(arn) == (parts["account"], parts["region"], parts["kind"], parts["name"])


@pytest.mark.parametrize(
    "bad",
    [
        "arn:aws:sagemaker:eu-west-1:123456789012:model/m",
        "arn:aws:s3:::bucket/training-job/x",
        "arn:aws:sagemaker:eu-west-1:12345:training-job/x",
        "arn:aws:sagemaker:eu-west-1:123456789012:training-job/../x",
    ],
)
def test_provenance_key_refuses_other_arns(bad: str) -> None:
    with pytest.raises(ValueError):
        provenance_key_for_arn(bad)


def test_provenance_key_parser_refuses_other_keys() -> None:
    for key in ("records/v1/account=1/region=r/date=2026-01-01/j.json", "provenance/v1/account=123456789012/x.json"):
        with pytest.raises(ValueError):
            parse_provenance_key(key)


@given(accounts, regions, moments, st.integers(min_value=1, max_value=999_999))
def test_compaction_keys_round_trip(account, region, moment, generation):
    day = moment.date()
    manifest = compaction_manifest_key(account, region, day, generation)
    data = compaction_data_prefix(account, region, day, generation) + "data.parquet"
    assert parse_compaction_manifest_key(manifest) == (account, region, day, generation)
    assert parse_compaction_data_key(data) == (account, region, day, generation)
    assert manifest.startswith(COMPACTED_PREFIX + partition_path(account, region, day) + "/")
    # the same partition path as the record keys of that day
    assert record_key(account, region, day, "job").startswith(RECORDS_PREFIX + partition_path(account, region, day))


def test_compaction_generations_sort_in_order():
    keys = [compaction_manifest_key("1", "r", date(2026, 3, 1), g) for g in (10, 2, 1)]
    assert sorted(keys) == keys[::-1]
