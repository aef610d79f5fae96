"""The audit record model: canonical hashing, strict validation, deterministic ids and keys."""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime

import pytest
from pydantic import ValidationError

from flopsmeter.audit.keys import parse_record_key, record_key, valid_job_name
from flopsmeter.audit.record import AuditRecord, record_id_for, stored_sha256_matches
from tests.support.records import make_record


def test_sealed_record_hash_verifies_from_stored_bytes_alone():
    record = make_record()
    document = json.loads(record.to_json_bytes())
    assert document["sha256"] == record.sha256
    assert stored_sha256_matches(document)


def test_any_change_to_a_stored_record_breaks_its_hash():
    document = json.loads(make_record(flops=2.0e22).to_json_bytes())
    document["flops"]["classified_flops"] = 1.0e22
    assert not stored_sha256_matches(document)


def test_record_round_trips_through_json_with_the_same_hash():
    record = make_record()
    again = AuditRecord.model_validate_json(record.to_json_bytes())
    assert again == record
    assert again.sealed().sha256 == record.sha256


def test_flop_counts_are_json_numbers_beyond_bigint():
    document = json.loads(make_record(flops=3.3e24).to_json_bytes())
    assert isinstance(document["flops"]["classified_flops"], float)
    assert document["flops"]["classified_flops"] > 2**63


@pytest.mark.parametrize("bad", [math.nan, math.inf, -1.0])
def test_record_refuses_non_finite_or_negative_flops(bad):
    record = make_record()
    payload = record.body()
    payload["flops"]["metered"] = bad
    with pytest.raises(ValidationError):
        AuditRecord.model_validate(payload)


def test_record_refuses_unknown_fields():
    payload = make_record().body()
    payload["surprise"] = 1
    with pytest.raises(ValidationError):
        AuditRecord.model_validate(payload)


def test_record_id_is_deterministic_per_job_arn():
    arn = "arn:aws:sagemaker:eu-west-1:123456789012:training-job/a"
    assert record_id_for(arn) == record_id_for(arn)
    assert record_id_for(arn) != record_id_for(arn + "b")


def test_record_key_derives_from_job_only_and_parses_back():
    key = record_key("123456789012", "eu-west-1", datetime(2026, 11, 20, 23, 59, tzinfo=UTC), "job-1")
    assert key == "records/v1/account=123456789012/region=eu-west-1/date=2026-11-20/job-1.json"
    assert parse_record_key(key) == {
        "account": "123456789012",
        "region": "eu-west-1",
        "date": "2026-11-20",
        "job": "job-1",
    }
    assert record_key("123456789012", "eu-west-1", date(2026, 11, 20), "job-1") == key


@pytest.mark.parametrize("name", ["../etc/passwd", "a/b", "", "-lead", "x" * 64, "job_name", "job.json"])
def test_record_key_refuses_names_sagemaker_would_not_accept(name):
    assert not valid_job_name(name)
    with pytest.raises(ValueError):
        record_key("123456789012", "eu-west-1", date(2026, 11, 20), name)
