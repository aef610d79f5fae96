"""The record's issue-23 fields: additive, so a record written before them reads and hashes as it did."""

from __future__ import annotations

import json

import pytest

from flopsmeter.audit.keys import addenda_prefix, addendum_key, original_of, parse_record_key
from flopsmeter.audit.record import AuditRecord, body_sha256, stored_sha256_matches
from tests.support.records import key_of, make_record


def test_a_record_written_before_lineage_graphs_reads_and_hashes_as_it_did():
    document = json.loads(make_record("old-job").to_json_bytes())
    assert "ancestors" not in document["lineage"] and "addendum" not in document
    record = AuditRecord.model_validate(document)
    assert record.lineage.ancestors is None and record.addendum is None
    assert (
        record.sealed().sha256
        == document["sha256"]
        == body_sha256({k: v for k, v in document.items() if k != "sha256"})
    )
    assert stored_sha256_matches(document)


def test_an_addendum_sits_beside_its_original_and_names_it():
    original = key_of(make_record("dpo"))
    key = addendum_key(original, "0123456789abcdef")
    assert (
        key.startswith(addenda_prefix(original)) and original_of(key) == original and original_of(original) == original
    )
    assert parse_record_key(key)["account"] == parse_record_key(original)["account"]  # digests and mirrors carry it
    with pytest.raises(ValueError):
        addendum_key(key, "0123456789abcdef")  # an addendum of an addendum names the original instead
