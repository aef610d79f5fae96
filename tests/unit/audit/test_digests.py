"""Digest building blocks: which periods are due and offline signature checks (no AWS)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from flopsmeter.audit.digests import (
    digest_body,
    signature_valid,
    signing_string,
)
from flopsmeter.audit.record import body_sha256
from flopsmeter.contract import SIGNING_ALGORITHM
from flopsmeter.service.digests import periods_to_write

H = datetime(2026, 3, 1, 10, tzinfo=UTC)
HOUR = timedelta(hours=1)


def test_first_digest_covers_everything_before_the_end_of_its_hour():
    assert list(periods_to_write(None, H, H + HOUR + timedelta(minutes=5))) == [(None, H + HOUR, "hour")]


def test_missed_hours_are_written_oldest_first_with_no_gap():
    due = list(periods_to_write(H - 2 * HOUR, H, H + HOUR))
    assert [(s, e) for s, e, _ in due] == [(H - 2 * HOUR, H - HOUR), (H - HOUR, H), (H, H + HOUR)]


def test_an_hour_already_covered_is_a_no_op():
    assert list(periods_to_write(H + HOUR, H, H + 2 * HOUR)) == []


def test_hourly_digest_after_an_on_demand_one_covers_the_rest_of_the_hour():
    mid = H + timedelta(minutes=20, seconds=5)
    assert list(periods_to_write(mid, H, H + HOUR)) == [(mid, H + HOUR, "hour")]


def test_on_demand_digest_ends_at_whole_seconds_and_only_moves_forward():
    now = H + timedelta(minutes=7, seconds=3, microseconds=900)
    assert list(periods_to_write(H, None, now)) == [(H, H + timedelta(minutes=7, seconds=3), None)]
    assert list(periods_to_write(now.replace(microsecond=0), None, now)) == []


def _signed(private_key, key: str) -> dict:
    document = {
        "format": "flopsmeter-digest/1",
        "digest_key": key,
        "period_end": "2026-03-01T11:00:00Z",
        "records": [],
        "record_count": 0,
    }
    message = signing_string(key, document["period_end"], body_sha256(digest_body(document)))
    # what KMS does for RSASSA_PSS_SHA_256 with MessageType RAW: SHA-256 and a 32-byte salt
    value = private_key.sign(message, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32), hashes.SHA256())
    document["signature"] = {"algorithm": SIGNING_ALGORITHM, "value": base64.b64encode(value).decode()}
    return document


def test_signature_verifies_offline_and_binds_body_and_location():
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key = "digests/v1/account=1/region=r/2026/03/01/10.json"
    document = _signed(private, key)
    assert signature_valid(document, key, private.public_key())
    assert not signature_valid(document, key.replace("/10.json", "/11.json"), private.public_key())
    document["record_count"] = 1
    assert not signature_valid(document, key, private.public_key())
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert not signature_valid(_signed(private, key), key, other.public_key())


def test_public_key_pem_matches_cryptography_without_needing_it():
    from cryptography.hazmat.primitives import serialization

    from flopsmeter.audit.digests import public_key_der, public_key_pem

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    expected = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert public_key_pem(public_key_der(key)) == expected
