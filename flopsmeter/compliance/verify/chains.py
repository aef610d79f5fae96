"""The digest chains: each digest's location, body hash and signature, the link to the one before, no gaps.

Also: digests are written once (a second version or a delete marker is tampering), and the newest digest of a
chain is recent (else later digests were deleted or the digest function stopped).
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from flopsmeter.audit.digests import (
    DIGEST_FORMAT,
    LATE_LOOKBACK,
    digest_body,
    entry_sort_key,
    iso,
    parse_iso,
    sha256_hex,
    signature_valid,
)
from flopsmeter.audit.keys import parse_chain, parse_digest_key
from flopsmeter.audit.record import body_sha256
from flopsmeter.compliance.verify.findings import VerifyReport, Window
from flopsmeter.compliance.verify.sources import ObjectVersion, Source

SIGNING_KEY_NOTE = "signing key sha256: "

Entries = dict[str, list[tuple[dict[str, Any], str]]]  # record key -> [(digest entry, digest key)]


@dataclass
class Digest:
    key: str
    body: bytes | None
    document: dict[str, Any] | None
    period_start: datetime | None = None
    period_end: datetime | None = None


@dataclass
class Chain:
    name: str
    digests: list[Digest] = field(default_factory=list)
    covered_from: datetime | None = None  # None with digests: from the beginning of time
    covered_to: datetime | None = None
    has_digests: bool = False
    listed_at: datetime | None = None  # when the newest digest listed the bucket (its created_at)


def chain_name(account: str, region: str) -> str:
    return f"account={account}/region={region}"


def check_digest_versions(source: Source, report: VerifyReport) -> None:
    """Digests are written once and never deleted: any delete marker or second version is tampering."""
    by_key: dict[str, list[ObjectVersion]] = defaultdict(list)
    for version in source.digest_versions():
        by_key[version.key].append(version)
    for key, versions in sorted(by_key.items()):
        objects = [v for v in versions if not v.is_delete_marker]
        markers = [v for v in versions if v.is_delete_marker]
        if markers:
            kept = ", ".join(str(v.version_id) for v in objects) or "none"
            report.fail(
                key,
                "digest_deleted",
                f"delete marker at {markers[-1].last_modified and iso(markers[-1].last_modified)}"
                f"; locked version(s) still present: {kept}",
            )
        if len(objects) > 1:
            report.fail(key, "digest_overwritten", f"{len(objects)} versions (digests are written once)")


# ---------------------------------------------------------------------------------------------------------------
# loading


def load_chains(source: Source, report: VerifyReport, window: Window) -> dict[str, Chain]:
    """Each chain with the digests that may cover ``window`` (plus the one before, to check the first link)."""
    by_chain: dict[str, list[str]] = defaultdict(list)
    for key in source.digest_keys():
        chain = parse_chain(key)
        if chain is None:
            report.fail(key, "unexpected_object", "object under digests/ that is not a digest key")
            continue
        by_chain[chain_name(*chain)].append(key)
    chains: dict[str, Chain] = {}
    for name, keys in sorted(by_chain.items()):
        keys.sort()
        chosen = [k for k in keys if _key_overlaps(k, window)]
        if chosen and keys.index(chosen[0]) > 0:
            chosen.insert(0, keys[keys.index(chosen[0]) - 1])
        chains[name] = Chain(name, [_read_digest(source, key) for key in chosen], has_digests=bool(keys))
    report.chains = sorted(chains)
    return chains


def _read_digest(source: Source, key: str) -> Digest:
    body = source.read(key)
    document = None
    if body is not None:
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        document = parsed if isinstance(parsed, dict) else None
    digest = Digest(key, body, document)
    if document is not None:
        try:
            digest.period_end = parse_iso(str(document["period_end"]))
            start = document.get("period_start")
            digest.period_start = None if start is None else parse_iso(str(start))
        except (KeyError, ValueError):
            digest.period_end = None
    return digest


def _key_overlaps(key: str, window: Window) -> bool:
    _account, _region, period_end = parse_digest_key(key)
    # a digest's period ends at period_end and starts at most an hour (or a catch-up) earlier, and it may list a
    # record written up to LATE_LOOKBACK before its period (one that landed late): keep generously
    return (window.start is None or period_end > window.start) and (
        window.end is None or period_end - timedelta(hours=1) - LATE_LOOKBACK < window.end
    )


# ---------------------------------------------------------------------------------------------------------------
# checking


def check_chains(source: Source, report: VerifyReport, chains: dict[str, Chain], window: Window) -> Entries:
    """Check every digest and link; return where each record key is listed."""
    entries: Entries = defaultdict(list)
    for chain in chains.values():
        previous: Digest | None = None
        for digest in chain.digests:
            report.digests_checked += 1
            check_digest(source, report, digest)
            check_link(source, report, digest, previous)
            _collect(chain, digest, entries)
            previous = digest
        if chain.digests:
            head = chain.digests[0]
            chain.covered_from = head.period_start if head.document else None
            report.coverage[chain.name] = {
                "from": iso(chain.covered_from) if chain.covered_from else None,
                "to": iso(chain.covered_to) if chain.covered_to else None,
                "newest_digest": chain.digests[-1].key,
            }
        _check_recent(source, report, chain, window)
    return entries


def _collect(chain: Chain, digest: Digest, entries: Entries) -> None:
    if digest.document is None:
        return
    for entry in digest.document.get("records") or []:
        if isinstance(entry, dict) and isinstance(entry.get("key"), str):
            entries[entry["key"]].append((entry, digest.key))
    if digest.period_end is not None and (chain.covered_to is None or digest.period_end >= chain.covered_to):
        chain.covered_to = digest.period_end
        chain.listed_at = _created_at(digest.document)


def _created_at(document: dict[str, Any]) -> datetime | None:
    try:
        return parse_iso(str(document["created_at"]))
    except (KeyError, ValueError):
        return None


def _check_recent(source: Source, report: VerifyReport, chain: Chain, window: Window) -> None:
    max_age, as_of = window.max_digest_age, source.as_of
    if chain.covered_to is None or max_age is None or window.end is not None or as_of is None:
        return
    if chain.covered_to + max_age < as_of:
        report.fail(
            chain.digests[-1].key,
            "digest_overdue",
            f"newest digest of {chain.name} ends at {iso(chain.covered_to)}, more than "
            f"{max_age} before {iso(as_of)}: later digests are missing (deleted, or the digest "
            "function is not running)",
        )


def check_digest(source: Source, report: VerifyReport, digest: Digest) -> None:
    """One digest: readable, where it says it is, entries consistent, body hash and signature valid."""
    key, doc = digest.key, digest.document
    if digest.body is None:
        report.fail(key, "digest_missing", "listed but cannot be read")
        return
    if doc is None or doc.get("format") != DIGEST_FORMAT:
        report.fail(key, "digest_unreadable", f"not a {DIGEST_FORMAT} JSON document")
        return
    if digest.period_end is None:
        report.fail(key, "digest_unreadable", "period_end missing or not a timestamp")
    if doc.get("digest_key") != key:
        report.fail(key, "digest_moved", f"stored at {key} but says it is {doc.get('digest_key')!r}")
    _check_entries(report, key, doc)
    _check_signature(source, report, key, doc)


def _check_entries(report: VerifyReport, key: str, doc: dict[str, Any]) -> None:
    records = doc.get("records")
    if not isinstance(records, list) or doc.get("record_count") != len(records):
        report.fail(key, "digest_altered", "record_count does not match the number of entries")
        return
    order = [entry_sort_key(e) for e in records if isinstance(e, dict)]
    if order != sorted(order):
        report.fail(key, "digest_entries_reordered", "record entries are not in canonical (key, time) order")


def _check_signature(source: Source, report: VerifyReport, key: str, doc: dict[str, Any]) -> None:
    signature: dict[str, Any] = doc["signature"] if isinstance(doc.get("signature"), dict) else {}
    body_hash = body_sha256(digest_body(doc))
    if signature.get("body_sha256") != body_hash:
        report.fail(
            key,
            "digest_altered",
            f"body hashes to {body_hash[:16]}… but was signed as {str(signature.get('body_sha256'))[:16]}…",
        )
        return
    fingerprint = str(signature.get("public_key_sha256"))
    public_key, how = source.public_key(str(signature.get("key_id")), fingerprint)
    if public_key is None:
        report.fail(key, "no_public_key", how)
        return
    report.note(f"public key: {how}")
    _check_same_signing_key(report, key, fingerprint)
    if not signature_valid(doc, key, public_key):
        report.fail(key, "bad_signature", f"signature does not verify with the public key ({how})")


def _check_same_signing_key(report: VerifyReport, key: str, fingerprint: str) -> None:
    """Every digest in one run is signed by the same key (the first one seen is noted)."""
    seen = sorted(n[len(SIGNING_KEY_NOTE) :] for n in report.notes if n.startswith(SIGNING_KEY_NOTE))
    if not seen:
        report.note(SIGNING_KEY_NOTE + fingerprint)
    elif fingerprint not in seen:
        report.fail(key, "signing_key_changed", f"signed by key {fingerprint[:16]}…, other digests by {seen[0][:16]}…")


def check_link(source: Source, report: VerifyReport, digest: Digest, previous: Digest | None) -> None:
    """The digest names the one before it (by key and hash) and its period starts where that one ended."""
    doc = digest.document
    if doc is None:
        return
    link = doc.get("previous_digest")
    if previous is None:
        if link is not None:
            _check_named_previous_exists(source, report, digest, link)
        return  # else: the chain starts here
    if not isinstance(link, dict):
        report.fail(digest.key, "chain_broken", f"claims to start a new chain, but {previous.key} precedes it")
        return
    if link.get("key") != previous.key:
        if source.read(str(link.get("key"))) is None:
            _missing_previous(report, digest, str(link.get("key")))
        else:
            report.fail(
                digest.key,
                "chain_broken",
                f"names {link.get('key')} as previous, but the preceding digest is {previous.key}",
            )
        return
    _check_link_hash_and_gap(report, digest, previous, link)


def _check_named_previous_exists(source: Source, report: VerifyReport, digest: Digest, link: Any) -> None:
    if not isinstance(link, dict) or source.read(str(link.get("key"))) is None:
        _missing_previous(report, digest, str(link.get("key") if isinstance(link, dict) else link))


def _missing_previous(report: VerifyReport, digest: Digest, named: str) -> None:
    report.fail(named, "digest_missing", f"the previous digest named by {digest.key} is missing (deleted?)")


def _check_link_hash_and_gap(report: VerifyReport, digest: Digest, previous: Digest, link: dict[str, Any]) -> None:
    if previous.body is not None and link.get("sha256") != sha256_hex(previous.body):
        report.fail(
            previous.key,
            "chain_broken",
            f"{digest.key} chains to it with sha256 {str(link.get('sha256'))[:16]}…, but it now hashes to "
            f"{sha256_hex(previous.body)[:16]}… (replaced after the next digest was written)",
        )
    if previous.period_end is not None and digest.period_start != previous.period_end:
        report.fail(
            digest.key,
            "chain_gap",
            f"period starts at {digest.period_start and iso(digest.period_start)} but the previous digest "
            f"ends at {iso(previous.period_end)}",
        )
