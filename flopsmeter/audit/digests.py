"""Hash-chained, KMS-signed digests of the audit bucket, modelled on CloudTrail log file integrity validation.

A digest covers a period ``[period_start, period_end)`` of one account/region chain and lists every record object
version whose S3 ``LastModified`` lies in it: key, version id, SHA-256 of the object bytes and the record's own
``sha256`` field. It also lists every version written in the ``LATE_LOOKBACK`` before its period that no earlier digest
lists: a write stamped just before an hour's end can land after that hour's digest listed the bucket, and the next
digest then covers it (its entry's ``last_modified`` lies before ``period_start``). It names the previous digest (key +
SHA-256 of its stored bytes), so the digests form a chain whose periods tile time; the first digest of a chain says so
(``previous_digest: null``). An empty period still gets a digest (continuity, as CloudTrail does).

The signature is RSASSA-PSS SHA-256 by an asymmetric KMS key over a short signing string that contains the digest's key,
its period end and the SHA-256 of the canonical JSON of the digest body (everything but ``signature``). KMS is called
with ``MessageType=RAW`` (KMS hashes the string itself), so anyone holding the public key verifies offline with
``cryptography``.

Keys: the hourly digest of hour H (covering up to H+1h) is ``keys.digest_key(account, region, H)``
(``…/YYYY/MM/DD/HH.json``). An on-demand digest (``flopsmeter local digest``) ending mid-hour at hh:mm:ss is
``…/YYYY/MM/DD/hh-mmss.json``: key order is chronological order in both cases.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from flopsmeter.audit.record import body_sha256, canonical_json
from flopsmeter.contract import SIGNING_ALGORITHM

DIGEST_FORMAT = "flopsmeter-digest/1"
HOUR = timedelta(hours=1)
# How far before its period a digest looks for versions no earlier digest lists (a write that landed after the
# digest of its hour listed the bucket). A write lands within a Lambda's 15 minutes of its LastModified: 3 h is
# ample, and bounds what each hourly run reads (the digests of the last 3 hours).
LATE_LOOKBACK = timedelta(hours=3)
# The longest a record write takes to land after its LastModified (a Lambda runs at most 15 minutes): verify
# counts a record no digest lists as extra once a digest listed the bucket this long after the record's time.
MAX_WRITE_LANDING = timedelta(minutes=15)


# ---------------------------------------------------------------------------------------------------------------
# time helpers


def iso(moment: datetime) -> str:
    """UTC ISO 8601 with a ``Z`` (the form used in digests and signing strings)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_iso(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def floor_hour(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


# ---------------------------------------------------------------------------------------------------------------
# canonical form and signatures


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def digest_body(document: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in document.items() if k != "signature"}


def signing_string(key: str, period_end: str, body_hash: str) -> bytes:
    """What KMS signs (RAW; KMS applies SHA-256): format, location, period end and the body's hash."""
    return f"{DIGEST_FORMAT}\n{key}\n{period_end}\n{body_hash}".encode()


def public_key_fingerprint(der: bytes) -> str:
    """SHA-256 of the DER SubjectPublicKeyInfo, as KMS GetPublicKey returns it."""
    return sha256_hex(der)


def load_public_key(data: bytes) -> Any:
    """A public key from DER (KMS GetPublicKey) or PEM bytes."""
    from cryptography.hazmat.primitives import serialization

    if data.lstrip().startswith(b"-----BEGIN"):
        return serialization.load_pem_public_key(data)
    return serialization.load_der_public_key(data)


def public_key_der(key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return bytes(key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo))


def public_key_pem(der: bytes) -> bytes:
    """PEM of a DER SubjectPublicKeyInfo (standard library only: the digest Lambda has no ``cryptography``)."""
    text = base64.b64encode(der).decode()
    lines = [text[i : i + 64] for i in range(0, len(text), 64)]
    return ("-----BEGIN PUBLIC KEY-----\n" + "\n".join(lines) + "\n-----END PUBLIC KEY-----\n").encode()


def signature_valid(document: dict[str, Any], key: str, public_key: Any) -> bool:
    """True when the digest's signature verifies for its stored location ``key`` under ``public_key``."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    signature = document.get("signature")
    if not isinstance(signature, dict) or signature.get("algorithm") != SIGNING_ALGORITHM:
        return False
    try:
        value = base64.b64decode(str(signature.get("value", "")), validate=True)
        message = signing_string(key, str(document.get("period_end")), body_sha256(digest_body(document)))
        # KMS uses a 32-byte salt; AUTO also accepts other salt lengths (moto signs with the maximum).
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO)
        public_key.verify(value, message, pss, hashes.SHA256())
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


# ---------------------------------------------------------------------------------------------------------------
# building a digest


@dataclass(frozen=True)
class RecordVersion:
    """One record object version as listed in the bucket."""

    key: str
    version_id: str | None
    last_modified: datetime


def entry_for(version: RecordVersion, body: bytes) -> dict[str, Any]:
    try:
        document = json.loads(body)
        claimed = document.get("sha256") if isinstance(document, dict) else None
    except ValueError:
        claimed = None
    return {
        "key": version.key,
        "version_id": version.version_id,
        "last_modified": iso(version.last_modified),
        "object_sha256": sha256_hex(body),
        "record_sha256": claimed if isinstance(claimed, str) else None,
    }


def entry_sort_key(entry: dict[str, Any]) -> tuple[str, str, str]:
    return str(entry.get("key")), str(entry.get("last_modified")), str(entry.get("version_id"))


class Signer(Protocol):
    """What signs a digest: KMS in the service (``KmsSigner``), a local key in tests."""

    @property
    def key_arn(self) -> str: ...

    def public_key_der(self) -> bytes: ...

    def sign(self, message: bytes) -> bytes: ...


@dataclass(frozen=True)
class DigestScope:
    """Which digest: where it is stored, the chain it belongs to, the period it covers, when it was made."""

    key: str
    account_id: str
    region: str
    period_start: datetime | None
    period_end: datetime
    created_at: datetime


def build_digest(
    scope: DigestScope, entries: Iterable[dict[str, Any]], previous: dict[str, Any] | None, signer: Signer
) -> bytes:
    """The signed digest document, as the bytes to store."""
    records = sorted(entries, key=entry_sort_key)
    der = signer.public_key_der()
    body: dict[str, Any] = {
        "format": DIGEST_FORMAT,
        "digest_key": scope.key,
        "account_id": scope.account_id,
        "region": scope.region,
        "period_start": None if scope.period_start is None else iso(scope.period_start),
        "period_end": iso(scope.period_end),
        "created_at": iso(scope.created_at),
        "previous_digest": previous,
        "chain_note": "first digest of this chain" if previous is None else None,
        "record_count": len(records),
        "records": records,
    }
    body_hash = body_sha256(body)
    signature = signer.sign(signing_string(scope.key, body["period_end"], body_hash))
    document = {
        **body,
        "signature": {
            "algorithm": SIGNING_ALGORITHM,
            "key_id": signer.key_arn,
            "public_key_sha256": public_key_fingerprint(der),
            "body_sha256": body_hash,
            "value": base64.b64encode(signature).decode(),
        },
    }
    return canonical_json(document)
