"""Hash-chained, KMS-signed digests of the audit bucket, modelled on CloudTrail log file integrity validation.

A digest covers a period ``[period_start, period_end)`` of one account/region chain and lists every record
object version whose S3 ``LastModified`` lies in it: key, version id, SHA-256 of the object bytes and the
record's own ``sha256`` field. It names the previous digest (key + SHA-256 of its stored bytes), so the digests
form a chain whose periods tile time; the first digest of a chain says so (``previous_digest: null``). An empty
period still gets a digest (continuity, as CloudTrail does).

The signature is RSASSA-PSS SHA-256 by an asymmetric KMS key over a short signing string that contains the
digest's key, its period end and the SHA-256 of the canonical JSON of the digest body (everything but
``signature``). KMS is called with ``MessageType=RAW`` (KMS hashes the string itself), so anyone holding the
public key verifies offline with ``cryptography``.

Keys: the hourly digest of hour H (covering up to H+1h) is ``keys.digest_key(account, region, H)``
(``…/YYYY/MM/DD/HH.json``). An on-demand digest (``flopsmeter local digest``) ending mid-hour at hh:mm:ss is
``…/YYYY/MM/DD/hh-mmss.json``: key order is chronological order in both cases.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from flopsmeter.audit.keys import (
    DIGESTS_PREFIX,
    chain_prefix,
    digest_key,
    on_demand_digest_key,
    parse_chain,
    parse_record_key,
    public_key_object_key,
    records_prefix,
)
from flopsmeter.audit.record import body_sha256, canonical_json
from flopsmeter.audit.store import AuditStore, is_transient
from flopsmeter.contract import SIGNING_ALGORITHM
from flopsmeter.domain.errors import FlopsMeterError

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient

DIGEST_FORMAT = "flopsmeter-digest/1"
MAX_CATCH_UP_HOURS = 24 * 31  # one run writes at most a month of missed hourly digests, oldest first
HOUR = timedelta(hours=1)


class DigestError(FlopsMeterError):
    """Signing or writing a digest failed."""


class TransientDigestError(DigestError):
    """Throttling or a 5xx from KMS: retry later."""


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


class KmsSigner:
    """Signs digest strings with an asymmetric KMS key (RSA, SIGN_VERIFY)."""

    def __init__(self, kms: KMSClient, key_id: str) -> None:
        self.kms = kms
        self.key_id = key_id
        self._der: bytes | None = None
        self._arn: str | None = None

    def _call(self, what: str, **kwargs: Any) -> dict[str, Any]:
        try:
            return dict(getattr(self.kms, what)(**kwargs))
        except (ClientError, BotoCoreError) as err:
            cls = TransientDigestError if is_transient(err) else DigestError
            raise cls(f"KMS {what} with key {self.key_id}: {err}") from err

    def public_key_der(self) -> bytes:
        if self._der is None:
            reply = self._call("get_public_key", KeyId=self.key_id)
            self._der, self._arn = bytes(reply["PublicKey"]), str(reply.get("KeyId") or self.key_id)
        return self._der

    @property
    def key_arn(self) -> str:
        self.public_key_der()
        return self._arn or self.key_id

    def sign(self, message: bytes) -> bytes:
        reply = self._call(
            "sign", KeyId=self.key_id, Message=message, MessageType="RAW", SigningAlgorithm=SIGNING_ALGORITHM
        )
        return bytes(reply["Signature"])


# ---------------------------------------------------------------------------------------------------------------
# building a digest


@dataclass(frozen=True)
class RecordVersion:
    """One record object version as listed in the bucket."""

    key: str
    version_id: str | None
    last_modified: datetime


@dataclass(frozen=True)
class DigestResult:
    key: str
    written: bool  # False: a digest already existed at the key (a re-run), nothing changed
    account_id: str
    region: str
    period_start: datetime | None
    period_end: datetime
    record_count: int
    sha256: str  # of the stored digest bytes (what the next digest chains to)


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


# ---------------------------------------------------------------------------------------------------------------
# reading the chain from the bucket


@dataclass(frozen=True)
class StoredDigest:
    key: str
    body: bytes
    document: dict[str, Any]

    @property
    def sha256(self) -> str:
        return sha256_hex(self.body)

    @property
    def period_end(self) -> datetime:
        return parse_iso(str(self.document["period_end"]))


def latest_digest(store: AuditStore, account_id: str, region: str, *, before: str | None = None) -> StoredDigest | None:
    """The newest digest of a chain (greatest key, which is chronological), optionally with key < ``before``."""
    keys = [o["Key"] for o in store.list_keys(chain_prefix(account_id, region)) if o["Key"].endswith(".json")]
    if before is not None:
        keys = [k for k in keys if k < before]
    if not keys:
        return None
    key = max(keys)
    body = store.get(key).body
    return StoredDigest(key, body, json.loads(body))


def record_versions(store: AuditStore, account_id: str, region: str) -> list[RecordVersion]:
    """Every record object version (no delete markers) of one account/region."""
    return [
        RecordVersion(v["Key"], v.get("VersionId"), v["LastModified"].astimezone(UTC))
        for v in store.list_versions(records_prefix(account_id, region))
        if not v.get("IsDeleteMarker") and v["Key"].endswith(".json")
    ]


def discover_chains(store: AuditStore) -> list[tuple[str, str]]:
    """Every (account, region) that has records or digests in the bucket."""
    chains: set[tuple[str, str]] = set()
    for obj in store.list_keys(records_prefix()):
        try:
            parsed = parse_record_key(obj["Key"])
        except ValueError:
            continue
        chains.add((parsed["account"], parsed["region"]))
    for obj in store.list_keys(DIGESTS_PREFIX):
        chain = parse_chain(obj["Key"])
        if chain:
            chains.add(chain)
    return sorted(chains)


def periods_to_write(
    previous_end: datetime | None, hour: datetime | None, now: datetime
) -> Iterator[tuple[datetime | None, datetime, str | None]]:
    """(start, end, hour-or-None) of each digest still due, oldest first.

    ``hour`` given: the hourly digests up to and including that hour (catching up missed hours). ``hour`` None:
    one on-demand digest from the previous end to ``now`` (whole seconds).
    """
    if hour is None:
        end = now.astimezone(UTC).replace(microsecond=0)
        if previous_end is None or previous_end < end:
            yield previous_end, end, None
        return
    target_end = floor_hour(hour) + HOUR
    if previous_end is None:
        yield None, target_end, "hour"
        return
    start = previous_end
    end = floor_hour(start) + HOUR
    count = 0
    while end <= target_end and count < MAX_CATCH_UP_HOURS:
        yield start, end, "hour"
        start, end, count = end, end + HOUR, count + 1


def write_digest(
    store: AuditStore,
    kms: KMSClient,
    key_id: str,
    hour: datetime | None = None,
    *,
    account_id: str | None = None,
    region: str | None = None,
    now: datetime | None = None,
) -> list[DigestResult]:
    """Write the digest(s) due for each chain; idempotent (what is already covered is left alone).

    ``hour``: the hour to close (the hourly Lambda passes the previous hour); earlier missed hours are written
    first so the chain has no gaps. ``hour=None``: an on-demand digest up to ``now``. ``account_id``/``region``
    None: every chain found in the bucket. Returns one result per digest written or found already present.
    """
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    if account_id is not None and region is not None:
        chains = [(account_id, region)]
    else:
        chains = [
            c
            for c in discover_chains(store)
            if (account_id is None or c[0] == account_id) and (region is None or c[1] == region)
        ]
    signer = KmsSigner(kms, key_id)
    results: list[DigestResult] = []
    for account, chain_region in chains:
        results.extend(_write_chain(store, signer, account, chain_region, hour, moment))
    return results


def _write_chain(
    store: AuditStore, signer: KmsSigner, account: str, region: str, hour: datetime | None, now: datetime
) -> list[DigestResult]:
    previous = latest_digest(store, account, region)
    previous_end = previous.period_end if previous else None
    due = list(periods_to_write(previous_end, hour, now))
    if not due:
        if previous is None:
            return []
        doc = previous.document
        return [
            DigestResult(
                previous.key,
                False,
                account,
                region,
                None if doc.get("period_start") is None else parse_iso(str(doc["period_start"])),
                previous.period_end,
                int(doc.get("record_count", 0)),
                previous.sha256,
            )
        ]
    versions = record_versions(store, account, region)
    _publish_public_key(store, signer)
    results = []
    for start, end, kind in due:
        key = digest_key(account, region, end - HOUR) if kind else on_demand_digest_key(account, region, end)
        if store.exists(key):
            existing = store.get(key).body
            doc = json.loads(existing)
            results.append(
                DigestResult(
                    key, False, account, region, start, end, int(doc.get("record_count", 0)), sha256_hex(existing)
                )
            )
            previous = StoredDigest(key, existing, doc)
            continue
        in_period = [v for v in versions if (start is None or v.last_modified >= start) and v.last_modified < end]
        entries = [entry_for(v, store.get(v.key, v.version_id).body) for v in in_period]
        link = (
            None
            if previous is None
            else {"key": previous.key, "sha256": previous.sha256, "period_end": iso(previous.period_end)}
        )
        body = build_digest(DigestScope(key, account, region, start, end, now), entries, link, signer)
        written, _version, _until = store.put_immutable(key, body, metadata={"sha256": sha256_hex(body)})
        if not written:  # a concurrent run won the race: chain to what is stored
            body = store.get(key).body
        previous = StoredDigest(key, body, json.loads(body))
        results.append(DigestResult(key, written, account, region, start, end, len(entries), sha256_hex(body)))
    return results


def _publish_public_key(store: AuditStore, signer: KmsSigner) -> None:
    """Store the signing key's public half next to the digests (convenience for offline mirrors, not a trust anchor)."""
    der = signer.public_key_der()
    key = public_key_object_key(public_key_fingerprint(der))
    if not store.exists(key):
        store.put_immutable(key, public_key_pem(der), content_type="application/x-pem-file")
