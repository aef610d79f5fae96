"""The digest writer use case: for each account/region chain, the signed, hash-chained digests still due.

Hourly (the digest function closes the previous hour, catching up missed hours oldest first, so the chain has no gap) or
on demand (``flopsmeter local digest``: up to now). Each digest lists the versions written in its period plus those
written in the ``LATE_LOOKBACK`` before it that no earlier digest lists (a write at an hour's edge that landed after
that hour's digest listed the bucket), so every record the service writes is covered. Idempotent: a digest already
written is left alone and a concurrent writer's digest is chained to. The document format, keys and signing string are
``flopsmeter.audit.digests``; the signature comes from the ``Signer`` handed in (``flopsmeter.aws.kms.KmsSigner`` in the
service).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flopsmeter.audit.digests import (
    HOUR,
    LATE_LOOKBACK,
    DigestScope,
    RecordVersion,
    Signer,
    build_digest,
    entry_for,
    floor_hour,
    iso,
    parse_iso,
    public_key_fingerprint,
    public_key_pem,
    sha256_hex,
)
from flopsmeter.audit.keys import (
    DIGESTS_PREFIX,
    SEALED_PREFIXES,
    chain_prefix,
    digest_key,
    on_demand_digest_key,
    parse_chain,
    parse_digest_key,
    parse_sealed_key,
    public_key_object_key,
    sealed_prefixes,
)
from flopsmeter.ports import DigestStore

MAX_CATCH_UP_HOURS = 24 * 31  # one run writes at most a month of missed hourly digests, oldest first


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


def chain_digest_keys(store: DigestStore, account_id: str, region: str) -> list[str]:
    """Every digest key of a chain, oldest first (key order is chronological)."""
    return sorted(o["Key"] for o in store.list_keys(chain_prefix(account_id, region)) if o["Key"].endswith(".json"))


def latest_digest(
    store: DigestStore,
    account_id: str,
    region: str,
    *,
    before: str | None = None,
    keys: list[str] | None = None,
) -> StoredDigest | None:
    """The newest digest of a chain (greatest key, which is chronological), optionally with key < ``before``
    (``keys``: the chain's digest keys when already listed)."""
    keys = chain_digest_keys(store, account_id, region) if keys is None else keys
    if before is not None:
        keys = [k for k in keys if k < before]
    if not keys:
        return None
    key = max(keys)
    body = store.get(key).body
    return StoredDigest(key, body, json.loads(body))


def record_versions(store: DigestStore, account_id: str, region: str) -> list[RecordVersion]:
    """Every sealed object version (no delete markers) of one account/region: its records and its HyperPod
    cluster-period records."""
    return [
        RecordVersion(v["Key"], v.get("VersionId"), v["LastModified"].astimezone(UTC))
        for prefix in sealed_prefixes(account_id, region)
        for v in store.list_versions(prefix)
        if not v.get("IsDeleteMarker") and v["Key"].endswith(".json")
    ]


def discover_chains(store: DigestStore) -> list[tuple[str, str]]:
    """Every (account, region) that has records, cluster-period records or digests in the bucket."""
    chains: set[tuple[str, str]] = set()
    for obj in (o for prefix in SEALED_PREFIXES for o in store.list_keys(prefix)):
        try:
            chains.add(parse_sealed_key(obj["Key"]))
        except ValueError:
            continue
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
    store: DigestStore,
    signer: Signer,
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
    results: list[DigestResult] = []
    for account, chain_region in chains:
        results.extend(_write_chain(store, signer, account, chain_region, hour, moment))
    return results


def _write_chain(
    store: DigestStore, signer: Signer, account: str, region: str, hour: datetime | None, now: datetime
) -> list[DigestResult]:
    keys = chain_digest_keys(store, account, region)
    previous = latest_digest(store, account, region, keys=keys)
    previous_end = previous.period_end if previous else None
    due = list(periods_to_write(previous_end, hour, now))
    if not due:
        return [] if previous is None else [_already_written(previous, account, region)]
    versions = record_versions(store, account, region)
    first_start = due[0][0]
    listed = set() if first_start is None else _listed_since(store, keys, first_start - LATE_LOOKBACK)
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
            listed.update(_entries_of(doc))
            continue
        covered = [v for v in versions if _due_in(v, start, end, listed)]
        entries = [entry_for(v, store.get(v.key, v.version_id).body) for v in covered]
        listed.update((v.key, v.version_id) for v in covered)
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


def _already_written(previous: StoredDigest, account: str, region: str) -> DigestResult:
    doc = previous.document
    start = None if doc.get("period_start") is None else parse_iso(str(doc["period_start"]))
    return DigestResult(
        previous.key,
        False,
        account,
        region,
        start,
        previous.period_end,
        int(doc.get("record_count", 0)),
        previous.sha256,
    )


def _due_in(version: RecordVersion, start: datetime | None, end: datetime, listed: set[tuple[str, str | None]]) -> bool:
    """Written in ``[start, end)``, or in the lookback before ``start`` and listed by no digest yet (landed late)."""
    if version.last_modified >= end:
        return False
    if start is None or version.last_modified >= start:
        return True
    return version.last_modified >= start - LATE_LOOKBACK and (version.key, version.version_id) not in listed


def _listed_since(store: DigestStore, keys: list[str], since: datetime) -> set[tuple[str, str | None]]:
    """(record key, version id) of every entry in the chain's digests whose period ends after ``since``."""
    listed: set[tuple[str, str | None]] = set()
    for key in keys:
        try:
            period_end = parse_digest_key(key)[2]
        except ValueError:
            continue
        if period_end > since:
            listed.update(_entries_of(json.loads(store.get(key).body)))
    return listed


def _entries_of(document: dict[str, Any]) -> set[tuple[str, str | None]]:
    return {
        (str(e["key"]), e.get("version_id"))
        for e in document.get("records") or []
        if isinstance(e, dict) and "key" in e
    }


def _publish_public_key(store: DigestStore, signer: Signer) -> None:
    """Store the signing key's public half next to the digests (convenience for offline mirrors, not a trust anchor)."""
    der = signer.public_key_der()
    key = public_key_object_key(public_key_fingerprint(der))
    if not store.exists(key):
        store.put_immutable(key, public_key_pem(der), content_type="application/x-pem-file")
