"""The records: each one's own ``sha256``, that a digest lists it with the same version and hashes, that it was
written once and not deleted; and that every record a digest lists still exists.

A record no digest lists is "not yet covered" (unverified, never OK; its own hash is still checked) while a later
digest may still list it: written after the newest digest's period, or just before its end and possibly landed
after that digest listed the bucket (``audit.digests.LATE_LOOKBACK``). Otherwise it is an extra record (a
failure), and so is any record of a chain no digest has covered for longer than the allowed digest age.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flopsmeter.audit.digests import LATE_LOOKBACK, MAX_WRITE_LANDING, iso, parse_iso, sha256_hex
from flopsmeter.audit.keys import parse_sealed_key
from flopsmeter.audit.record import stored_sha256_matches
from flopsmeter.compliance.verify.chains import Chain, Entries, chain_name
from flopsmeter.compliance.verify.compaction import SeenRecord
from flopsmeter.compliance.verify.findings import VerifyReport, Window
from flopsmeter.compliance.verify.sources import ObjectVersion, Source

RECORDED_AT_GRACE = timedelta(minutes=15)  # mirrors without write times: recorded_at precedes the write a little
FUTURE_SLACK = timedelta(minutes=5)  # clock skew tolerated before a write time counts as "in the future"


@dataclass(frozen=True)
class Stored:
    """The current version of one record key as read for checking."""

    key: str
    latest: ObjectVersion
    body: bytes
    document: dict[str, Any] | None

    @property
    def self_consistent(self) -> bool:
        return self.document is not None and stored_sha256_matches(self.document)

    @property
    def seen(self) -> SeenRecord:
        claimed = self.document.get("sha256") if self.document else None
        written = self.latest.last_modified or _recorded_at(self.document)
        return SeenRecord(claimed if isinstance(claimed, str) else None, written, self.latest.last_modified is not None)


def record_versions_by_key(source: Source) -> dict[str, list[ObjectVersion]]:
    versions: dict[str, list[ObjectVersion]] = defaultdict(list)
    for version in source.record_versions():
        versions[version.key].append(version)
    return versions


def check_records(
    source: Source,
    report: VerifyReport,
    chains: dict[str, Chain],
    entries: Entries,
    window: Window,
    versions: dict[str, list[ObjectVersion]],
    seen: dict[str, SeenRecord],
) -> None:
    """Check every record in ``window``; note what was read of each in ``seen``."""
    for key in sorted(versions):
        check_record(source, report, chains, versions[key], entries.get(key, []), window, seen)
    for key, listed in sorted(entries.items()):
        if key not in versions:
            _check_listed_record_missing(report, key, listed, window)


def _check_listed_record_missing(
    report: VerifyReport, key: str, listed: list[tuple[dict[str, Any], str]], window: Window
) -> None:
    for entry, digest_key in listed:
        if window.contains(_entry_time(entry)):
            report.fail(
                key,
                "record_missing",
                f"version {entry.get('version_id')} listed in digest {digest_key} no longer exists",
            )


def _entry_time(entry: dict[str, Any]) -> datetime | None:
    try:
        return parse_iso(str(entry["last_modified"]))
    except (KeyError, ValueError):
        return None


def check_record(
    source: Source,
    report: VerifyReport,
    chains: dict[str, Chain],
    versions: list[ObjectVersion],
    listed: list[tuple[dict[str, Any], str]],
    window: Window,
    seen: dict[str, SeenRecord],
) -> None:
    """Every check of one record key (all its versions), in the order a reader would ask them."""
    key = versions[0].key
    try:
        account, region = parse_sealed_key(key)
    except ValueError:
        report.fail(key, "unexpected_object", "object under records/ or clusters/ that is not a record key")
        return
    objects = sorted((v for v in versions if not v.is_delete_marker), key=lambda v: v.last_modified or datetime.min)
    latest = next((v for v in versions if v.is_latest), versions[-1])
    if not window.contains(objects[0].last_modified if objects else latest.last_modified):
        return
    report.records_checked += 1
    if not _written_once(report, key, latest, objects):
        return
    stored = _read(source, report, key, latest)
    if stored is None:
        return
    seen[key] = stored.seen
    matching = [(e, d) for e, d in listed if not (source.has_versions and e.get("version_id") != latest.version_id)]
    listing = matching[0] if matching else (listed[0] if listed else None)
    if listing is None:
        _check_own_hash(report, stored)
    else:
        _check_against_digest(report, stored, *listing)
    if matching:
        report.records_covered += 1
        return
    if listed:  # the content was compared with the digested version above
        report.fail(
            key,
            "record_overwritten",
            f"current version {latest.version_id} is not the version {listed[0][0].get('version_id')} "
            f"digested in {listed[0][1]}",
        )
        return
    name = chain_name(account, region)
    _check_coverage(source, report, name, chains.get(name), stored, window)


def _written_once(report: VerifyReport, key: str, latest: ObjectVersion, objects: list[ObjectVersion]) -> bool:
    """Fails on a delete marker (returns False: nothing more to read) or on more than one version."""
    if latest.is_delete_marker:
        kept = ", ".join(str(v.version_id) for v in objects) or "none"
        report.fail(
            key,
            "record_deleted",
            f"deleted (delete marker at {latest.last_modified and iso(latest.last_modified)}); "
            f"locked version(s) still present: {kept}",
        )
        return False
    if len(objects) > 1:
        report.fail(
            key,
            "record_overwritten",
            f"{len(objects)} versions (records are written once): "
            + ", ".join(f"{v.version_id} at {v.last_modified and iso(v.last_modified)}" for v in objects),
        )
    return True


def _read(source: Source, report: VerifyReport, key: str, latest: ObjectVersion) -> Stored | None:
    body = source.read(key, latest.version_id)
    if body is None:
        report.fail(key, "record_missing", "listed but cannot be read")
        return None
    try:
        document = json.loads(body)
    except ValueError:
        document = None
    if not isinstance(document, dict):
        report.fail(key, "record_unreadable", "not a JSON object")
        document = None
    return Stored(key, latest, body, document)


def _check_own_hash(report: VerifyReport, stored: Stored) -> None:
    if stored.document is not None and not stored.self_consistent:
        report.fail(stored.key, "record_altered", "body does not match its sha256 field (changed after sealing)")


def _check_against_digest(report: VerifyReport, stored: Stored, entry: dict[str, Any], digest_key: str) -> None:
    """The record's sha256 field and bytes against what the digest recorded for it."""
    if stored.document is None:
        return
    key, claimed, recorded = stored.key, stored.document.get("sha256"), str(entry.get("record_sha256"))
    if claimed != entry.get("record_sha256"):
        if stored.self_consistent:
            report.fail(
                key,
                "record_resealed",
                f"body changed and its sha256 field recomputed: digest {digest_key} recorded sha256 "
                f"{recorded[:16]}…, the object now says {str(claimed)[:16]}…",
            )
        else:
            report.fail(
                key,
                "record_sha256_altered",
                f"sha256 field changed from {recorded[:16]}… (digest {digest_key}) to {str(claimed)[:16]}…, "
                "and it does not match the body",
            )
    elif not stored.self_consistent:
        report.fail(
            key,
            "record_altered",
            f"body changed after sealing: it no longer matches its sha256 field {recorded[:16]}… "
            f"(as digest {digest_key} recorded it)",
        )
    elif sha256_hex(stored.body) != entry.get("object_sha256"):
        report.fail(
            key,
            "record_altered",
            f"object bytes differ from those digest {digest_key} recorded (same sha256 field: re-serialised)",
        )


def _recorded_at(document: dict[str, Any] | None) -> datetime | None:
    try:
        return parse_iso(str(document["recorded_at"])) if document else None
    except (KeyError, ValueError):
        return None


def _check_coverage(
    source: Source, report: VerifyReport, name: str, chain: Chain | None, stored: Stored, window: Window
) -> None:
    """A record no digest lists: in the future, inside a covered period (extra), overdue, or not yet covered."""
    key, latest = stored.key, stored.latest
    written = latest.last_modified or _recorded_at(stored.document)
    grace = timedelta(0) if latest.last_modified else RECORDED_AT_GRACE
    as_of = source.as_of
    if as_of and written and written > as_of + FUTURE_SLACK:
        report.fail(key, "not_in_digest", f"claims to be written at {iso(written)}, in the future")
    elif chain and chain.covered_to and written and _missed_for_good(chain, chain.covered_to, written, grace):
        report.fail(
            key,
            "not_in_digest",
            f"written at {iso(written)}, inside the period the digests cover (to {iso(chain.covered_to)}), "
            "but listed in no digest (an extra record)",
        )
    elif _overdue(chain, written, window, as_of):
        report.fail(
            key,
            "digest_overdue",
            f"written at {iso(written) if written else '?'} and no digest covers {name} yet",
        )
    else:
        report.not_yet_covered.append(key)


def _missed_for_good(chain: Chain, covered_to: datetime, written: datetime, grace: timedelta) -> bool:
    """Inside the covered period and no later digest can list it: too old for the next digest's look back, or
    already there when the newest digest listed the bucket (which would then have listed it)."""
    if not (written + grace < covered_to and (chain.covered_from is None or written >= chain.covered_from)):
        return False
    if written + grace < covered_to - LATE_LOOKBACK:
        return True
    return chain.listed_at is not None and written + grace + MAX_WRITE_LANDING <= chain.listed_at


def _overdue(chain: Chain | None, written: datetime | None, window: Window, as_of: datetime | None) -> bool:
    """A chain with no digest at all, holding a record older than the allowed digest age."""
    no_chain = chain is None or not chain.has_digests
    max_age = window.max_digest_age
    return bool(
        no_chain and max_age is not None and window.end is None and as_of and written and written + max_age < as_of
    )


def read_seen(source: Source, versions: list[ObjectVersion]) -> SeenRecord | None:
    """What a record's current version says (for records the checks above skipped), None when it is gone."""
    latest = next((v for v in versions if v.is_latest), versions[-1])
    if latest.is_delete_marker:
        return None
    body = source.read(latest.key, latest.version_id)
    if body is None:
        return None
    try:
        document = json.loads(body)
    except ValueError:
        document = None
    return Stored(latest.key, latest, body, document if isinstance(document, dict) else None).seen
