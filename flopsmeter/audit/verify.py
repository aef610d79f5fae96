"""``flopsmeter verify``: check the audit trail against its signed digest chain (like CloudTrail validate-logs).

For each account/region chain it checks every digest (its location, its body hash, its signature, the link to
the previous digest and that periods tile with no gap), then every record (its own ``sha256``, that it is
listed in a digest with the same version and hashes, that it was written once) and every digest entry (that
its record still exists). Records written after the newest digest are listed as not yet covered: not a
failure by itself, but their own hash is still checked. Each problem names the object and says why.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from flopsmeter.audit.digests import (
    DIGEST_FORMAT,
    PUBLIC_KEYS_PREFIX,
    digest_body,
    entry_sort_key,
    iso,
    load_public_key,
    parse_chain,
    parse_iso,
    public_key_der,
    public_key_fingerprint,
    public_key_object_key,
    sha256_hex,
    signature_valid,
)
from flopsmeter.audit.keys import DIGESTS_PREFIX, RECORDS_PREFIX, parse_record_key
from flopsmeter.audit.mirror import key_path, read_manifest
from flopsmeter.audit.record import body_sha256, stored_sha256_matches
from flopsmeter.aws.store import AuditStore, AuditStoreError

DEFAULT_MAX_DIGEST_AGE = timedelta(hours=2)  # hourly digests, written a few minutes after the hour, plus slack
RECORDED_AT_GRACE = timedelta(minutes=15)  # mirrors without write times: recorded_at precedes the write a little


# ---------------------------------------------------------------------------------------------------------------
# sources: the bucket itself, or a local mirror


@dataclass(frozen=True)
class ObjectVersion:
    key: str
    version_id: str | None
    last_modified: datetime | None
    is_latest: bool = True
    is_delete_marker: bool = False


class Source(Protocol):
    description: str
    as_of: datetime | None  # "now" for staleness checks; None: unknown (no check)
    has_versions: bool

    def record_versions(self) -> list[ObjectVersion]: ...

    def digest_keys(self) -> list[str]: ...

    def digest_versions(self) -> list[ObjectVersion]: ...

    def read(self, key: str, version_id: str | None = None) -> bytes | None: ...

    def public_key(self, key_id: str, fingerprint: str) -> tuple[Any | None, str]: ...


def _supplied_key(path: Path | None) -> tuple[Any, str] | None:
    if path is None:
        return None
    key = load_public_key(path.read_bytes())
    return key, public_key_fingerprint(public_key_der(key))


class BucketSource:
    """The audit bucket through an AuditStore; public keys from KMS (or a supplied PEM)."""

    has_versions = True

    def __init__(
        self, store: AuditStore, *, kms: Any = None, public_key_file: Path | None = None, now: datetime | None = None
    ) -> None:
        self.store = store
        self.kms = kms
        self.supplied = _supplied_key(public_key_file)
        self.description = f"s3://{store.bucket}"
        self.as_of = now or datetime.now(UTC)
        self._keys: dict[str, tuple[Any | None, str]] = {}

    def _versions(self, prefix: str) -> list[ObjectVersion]:
        return [
            ObjectVersion(
                v["Key"],
                v.get("VersionId"),
                v["LastModified"].astimezone(UTC),
                bool(v.get("IsLatest")),
                bool(v.get("IsDeleteMarker")),
            )
            for v in self.store.list_versions(prefix)
        ]

    def record_versions(self) -> list[ObjectVersion]:
        return self._versions(RECORDS_PREFIX)

    def digest_keys(self) -> list[str]:
        return [o["Key"] for o in self.store.list_keys(DIGESTS_PREFIX) if not o["Key"].startswith(PUBLIC_KEYS_PREFIX)]

    def digest_versions(self) -> list[ObjectVersion]:
        return self._versions(DIGESTS_PREFIX)

    def read(self, key: str, version_id: str | None = None) -> bytes | None:
        try:
            return self.store.get(key, version_id).body
        except AuditStoreError:
            return None

    def public_key(self, key_id: str, fingerprint: str) -> tuple[Any | None, str]:
        if self.supplied is not None:
            return (
                (self.supplied[0], "supplied with --public-key")
                if self.supplied[1] == fingerprint
                else (None, f"signed by key {fingerprint[:16]}…, not the supplied public key")
            )
        if fingerprint not in self._keys:
            self._keys[fingerprint] = self._fetch(key_id, fingerprint)
        return self._keys[fingerprint]

    def _fetch(self, key_id: str, fingerprint: str) -> tuple[Any | None, str]:
        if self.kms is not None:
            try:
                der = bytes(self.kms.get_public_key(KeyId=key_id)["PublicKey"])
            except Exception as err:  # noqa: BLE001 - any KMS failure falls back to the copy in the bucket, said so
                reason = f"KMS GetPublicKey failed ({type(err).__name__})"
            else:
                if public_key_fingerprint(der) == fingerprint:
                    return load_public_key(der), f"from KMS ({key_id})"
                reason = f"KMS key {key_id} has a different public key"
        else:
            reason = "no KMS client"
        body = self.read(public_key_object_key(fingerprint))
        if body is not None and public_key_fingerprint(public_key_der(load_public_key(body))) == fingerprint:
            return load_public_key(body), f"copy stored in the bucket ({reason}); not an independent trust anchor"
        return None, f"public key {fingerprint[:16]}… not available ({reason})"


class DirSource:
    """A local mirror (same key layout as files); versions and write times from its manifest when present."""

    def __init__(self, root: Path, *, public_key_file: Path | None = None) -> None:
        if not root.is_dir():
            raise AuditStoreError(f"{root} is not a directory")
        self.root = root
        self.supplied = _supplied_key(public_key_file)
        manifest = read_manifest(root)
        self.objects: dict[str, Any] = dict(manifest.get("objects", {})) if manifest else {}
        self.has_versions = manifest is not None
        self.as_of = parse_iso(manifest["pulled_at"]) if manifest and manifest.get("pulled_at") else None
        self.description = f"{root} (mirror{'' if manifest else ' without manifest: no version ids or write times'})"

    def _keys_under(self, prefix: str) -> list[str]:
        base = self.root / prefix
        if not base.is_dir():
            return []
        keys = []
        for dirpath, _dirs, files in os.walk(base):
            for name in files:
                if name.endswith(".json"):
                    keys.append(Path(dirpath, name).relative_to(self.root).as_posix())
        return sorted(keys)

    def record_versions(self) -> list[ObjectVersion]:
        out = []
        for key in self._keys_under(RECORDS_PREFIX):
            meta = self.objects.get(key, {})
            modified = parse_iso(meta["last_modified"]) if meta.get("last_modified") else None
            out.append(ObjectVersion(key, meta.get("version_id"), modified))
        return out

    def digest_keys(self) -> list[str]:
        return [k for k in self._keys_under(DIGESTS_PREFIX) if not k.startswith(PUBLIC_KEYS_PREFIX)]

    def digest_versions(self) -> list[ObjectVersion]:
        return []  # a mirror holds current objects only

    def read(self, key: str, version_id: str | None = None) -> bytes | None:
        path = key_path(self.root, key)
        if not path.is_file():
            return None
        known = self.objects.get(key, {}).get("version_id")
        if version_id and known and known != version_id:
            return None
        return path.read_bytes()

    def public_key(self, key_id: str, fingerprint: str) -> tuple[Any | None, str]:
        if self.supplied is not None:
            return (
                (self.supplied[0], "supplied with --public-key")
                if self.supplied[1] == fingerprint
                else (None, f"signed by key {fingerprint[:16]}…, not the supplied public key")
            )
        body = self.read(public_key_object_key(fingerprint))
        if body is not None and public_key_fingerprint(public_key_der(load_public_key(body))) == fingerprint:
            return load_public_key(body), (
                "copy in the mirror; not an independent trust anchor: compare its "
                f"fingerprint {fingerprint} with `aws kms get-public-key` or pass --public-key"
            )
        return None, f"public key {fingerprint[:16]}… not in the mirror (pass --public-key)"


# ---------------------------------------------------------------------------------------------------------------
# the report


@dataclass(frozen=True)
class Finding:
    object: str
    problem: str
    detail: str


@dataclass
class VerifyReport:
    source: str
    period: dict[str, str | None]
    records_checked: int = 0
    digests_checked: int = 0
    chains: list[str] = field(default_factory=list)
    failures: list[Finding] = field(default_factory=list)
    not_yet_covered: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def fail(self, obj: str, problem: str, detail: str) -> None:
        self.failures.append(Finding(obj, problem, detail))

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, **asdict(self)}


@dataclass
class _Digest:
    key: str
    body: bytes | None
    document: dict[str, Any] | None
    period_start: datetime | None = None
    period_end: datetime | None = None


@dataclass
class _Chain:
    name: str
    digests: list[_Digest] = field(default_factory=list)
    covered_from: datetime | None = None  # None with digests: from the beginning of time
    covered_to: datetime | None = None
    has_digests: bool = False


def key_period_end(key: str) -> datetime | None:
    """The period end a digest key implies (``…/HH.json`` ends at HH+1h; ``…/hh-mmss.json`` at hh:mm:ss)."""
    try:
        y, m, d, last = key.rsplit("/", 4)[-4:]
        stem = last[: -len(".json")]
        if "-" in stem:
            hh, mmss = stem.split("-")
            return datetime(int(y), int(m), int(d), int(hh), int(mmss[:2]), int(mmss[2:]), tzinfo=UTC)
        return datetime(int(y), int(m), int(d), int(stem), tzinfo=UTC) + timedelta(hours=1)
    except ValueError:
        return None


def _in_range(moment: datetime | None, start: datetime | None, end: datetime | None) -> bool:
    if moment is None:
        return True
    return (start is None or moment >= start) and (end is None or moment < end)


def verify(
    source: Source,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    max_digest_age: timedelta | None = DEFAULT_MAX_DIGEST_AGE,
) -> VerifyReport:
    """Verify records and digests written in ``[start, end)`` (all when None). Read-only."""
    report = VerifyReport(source.description, {"from": iso(start) if start else None, "to": iso(end) if end else None})
    _check_digest_versions(source, report)
    chains = _load_chains(source, report, start, end)
    entries = _check_chains(source, report, chains, start, end, max_digest_age)
    _check_records(source, report, chains, entries, start, end, max_digest_age)
    return report


def _check_digest_versions(source: Source, report: VerifyReport) -> None:
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


def _load_chains(
    source: Source, report: VerifyReport, start: datetime | None, end: datetime | None
) -> dict[str, _Chain]:
    by_chain: dict[str, list[str]] = defaultdict(list)
    for key in source.digest_keys():
        chain = parse_chain(key)
        if chain is None:
            report.fail(key, "unexpected_object", "object under digests/ that is not a digest key")
            continue
        by_chain[f"account={chain[0]}/region={chain[1]}"].append(key)
    chains: dict[str, _Chain] = {}
    for name, keys in sorted(by_chain.items()):
        keys.sort()
        chosen = [k for k in keys if _key_overlaps(k, start, end)]
        if chosen and keys.index(chosen[0]) > 0:  # the digest just before the range, to check the first link
            chosen.insert(0, keys[keys.index(chosen[0]) - 1])
        current = _Chain(name, has_digests=bool(keys))
        for key in chosen:
            body = source.read(key)
            document = None
            if body is not None:
                try:
                    parsed = json.loads(body)
                    document = parsed if isinstance(parsed, dict) else None
                except ValueError:
                    document = None
            digest = _Digest(key, body, document)
            if document is not None:
                try:
                    digest.period_end = parse_iso(str(document["period_end"]))
                    ps = document.get("period_start")
                    digest.period_start = None if ps is None else parse_iso(str(ps))
                except (KeyError, ValueError):
                    digest.period_end = None
            current.digests.append(digest)
        chains[name] = current
    report.chains = sorted(chains)
    return chains


def _key_overlaps(key: str, start: datetime | None, end: datetime | None) -> bool:
    period_end = key_period_end(key)
    if period_end is None:
        return True
    # a digest's period ends at period_end and starts at most an hour (or a catch-up) earlier: keep generously
    return (start is None or period_end > start) and (end is None or period_end - timedelta(hours=1) < end)


def _check_chains(
    source: Source,
    report: VerifyReport,
    chains: dict[str, _Chain],
    start: datetime | None,
    end: datetime | None,
    max_age: timedelta | None,
) -> dict[str, list[tuple[dict[str, Any], str]]]:
    entries: dict[str, list[tuple[dict[str, Any], str]]] = defaultdict(list)
    for chain in chains.values():
        previous: _Digest | None = None
        first = True
        for digest in chain.digests:
            report.digests_checked += 1
            _check_one_digest(source, report, digest)
            _check_link(source, report, chain, digest, previous, first)
            if digest.document is not None:
                for entry in digest.document.get("records") or []:
                    if isinstance(entry, dict) and isinstance(entry.get("key"), str):
                        entries[entry["key"]].append((entry, digest.key))
                if digest.period_end is not None:
                    chain.covered_to = max(filter(None, (chain.covered_to, digest.period_end)))
            previous, first = digest, False
        if chain.digests:
            head = chain.digests[0]
            chain.covered_from = head.period_start if head.document else None
        if (
            chain.covered_to
            and max_age is not None
            and end is None
            and source.as_of is not None
            and chain.covered_to + max_age < source.as_of
        ):
            report.fail(
                chain.digests[-1].key,
                "digest_overdue",
                f"newest digest of {chain.name} ends at {iso(chain.covered_to)}, more than "
                f"{max_age} before {iso(source.as_of)}: later digests are missing (deleted, or the digest "
                "function is not running)",
            )
    return entries


def _check_one_digest(source: Source, report: VerifyReport, digest: _Digest) -> None:
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
    records = doc.get("records")
    if not isinstance(records, list) or doc.get("record_count") != len(records):
        report.fail(key, "digest_altered", "record_count does not match the number of entries")
    elif [entry_sort_key(e) for e in records if isinstance(e, dict)] != sorted(
        entry_sort_key(e) for e in records if isinstance(e, dict)
    ):
        report.fail(key, "digest_entries_reordered", "record entries are not in canonical (key, time) order")
    signature: dict[str, Any] = doc["signature"] if isinstance(doc.get("signature"), dict) else {}
    body_hash = body_sha256(digest_body(doc))
    if signature.get("body_sha256") != body_hash:
        report.fail(
            key,
            "digest_altered",
            f"body hashes to {body_hash[:16]}… but was signed as {str(signature.get('body_sha256'))[:16]}…",
        )
        return
    public_key, how = source.public_key(str(signature.get("key_id")), str(signature.get("public_key_sha256")))
    if public_key is None:
        report.fail(key, "no_public_key", how)
        return
    if f"public key: {how}" not in report.notes:
        report.notes.append(f"public key: {how}")
    fingerprints = {n for n in report.notes if n.startswith("signing key sha256: ")}
    note = f"signing key sha256: {signature.get('public_key_sha256')}"
    if fingerprints and note not in fingerprints:
        report.fail(
            key,
            "signing_key_changed",
            f"signed by key {str(signature.get('public_key_sha256'))[:16]}…, "
            f"other digests by {sorted(fingerprints)[0][len('signing key sha256: ') :][:16]}…",
        )
    elif not fingerprints:
        report.notes.append(note)
    if not signature_valid(doc, key, public_key):
        report.fail(key, "bad_signature", f"signature does not verify with the public key ({how})")


def _check_link(
    source: Source, report: VerifyReport, chain: _Chain, digest: _Digest, previous: _Digest | None, first: bool
) -> None:
    doc = digest.document
    if doc is None:
        return
    link = doc.get("previous_digest")
    if previous is None:
        if link is None:
            return  # the chain starts here
        if not isinstance(link, dict) or source.read(str(link.get("key"))) is None:
            report.fail(
                str(link.get("key") if isinstance(link, dict) else link),
                "digest_missing",
                f"the previous digest named by {digest.key} is missing (deleted?)",
            )
        return
    if not isinstance(link, dict):
        report.fail(digest.key, "chain_broken", f"claims to start a new chain, but {previous.key} precedes it")
        return
    if link.get("key") != previous.key:
        if source.read(str(link.get("key"))) is None:
            report.fail(
                str(link.get("key")),
                "digest_missing",
                f"the previous digest named by {digest.key} is missing (deleted?)",
            )
        else:
            report.fail(
                digest.key,
                "chain_broken",
                f"names {link.get('key')} as previous, but the preceding digest is {previous.key}",
            )
        return
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


def _recorded_at(document: dict[str, Any] | None) -> datetime | None:
    try:
        return parse_iso(str(document["recorded_at"])) if document else None
    except (KeyError, ValueError):
        return None


def _check_records(
    source: Source,
    report: VerifyReport,
    chains: dict[str, _Chain],
    entries: dict[str, list[tuple[dict[str, Any], str]]],
    start: datetime | None,
    end: datetime | None,
    max_age: timedelta | None,
) -> None:
    versions: dict[str, list[ObjectVersion]] = defaultdict(list)
    for version in source.record_versions():
        versions[version.key].append(version)
    for key in sorted(versions):
        _check_record(source, report, chains, key, versions[key], entries.get(key, []), start, end, max_age)
    for key, listed in sorted(entries.items()):
        if key in versions:
            continue
        for entry, digest_key in listed:
            if _in_range(_entry_time(entry), start, end):
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


def _check_record(
    source: Source,
    report: VerifyReport,
    chains: dict[str, _Chain],
    key: str,
    versions: list[ObjectVersion],
    listed: list[tuple[dict[str, Any], str]],
    start: datetime | None,
    end: datetime | None,
    max_age: timedelta | None,
) -> None:
    try:
        parsed_key = parse_record_key(key)
    except ValueError:
        report.fail(key, "unexpected_object", "object under records/ that is not a record key")
        return
    objects = sorted((v for v in versions if not v.is_delete_marker), key=lambda v: v.last_modified or datetime.min)
    latest = next((v for v in versions if v.is_latest), versions[-1])
    first_write = objects[0].last_modified if objects else latest.last_modified
    if not _in_range(first_write, start, end):
        return
    report.records_checked += 1
    if latest.is_delete_marker:
        kept = ", ".join(str(v.version_id) for v in objects) or "none"
        report.fail(
            key,
            "record_deleted",
            f"deleted (delete marker at {latest.last_modified and iso(latest.last_modified)}); "
            f"locked version(s) still present: {kept}",
        )
        return
    if len(objects) > 1:
        report.fail(
            key,
            "record_overwritten",
            f"{len(objects)} versions (records are written once): "
            + ", ".join(f"{v.version_id} at {v.last_modified and iso(v.last_modified)}" for v in objects),
        )
    body = source.read(key, latest.version_id)
    if body is None:
        report.fail(key, "record_missing", "listed but cannot be read")
        return
    try:
        document = json.loads(body)
    except ValueError:
        document = None
    if not isinstance(document, dict):
        report.fail(key, "record_unreadable", "not a JSON object")
        document = None
    matching = [(e, d) for e, d in listed if not (source.has_versions and e.get("version_id") != latest.version_id)]
    entry, digest_key = matching[0] if matching else (listed[0] if listed else (None, None))
    claimed = document.get("sha256") if document else None
    self_consistent = document is not None and stored_sha256_matches(document)
    if document is not None and entry is not None:
        recorded = str(entry.get("record_sha256"))
        if claimed != entry.get("record_sha256"):
            if self_consistent:
                report.fail(
                    key,
                    "record_resealed",
                    f"body changed and its sha256 field recomputed: digest {digest_key} "
                    f"recorded sha256 {recorded[:16]}…, the object now says {str(claimed)[:16]}…",
                )
            else:
                report.fail(
                    key,
                    "record_sha256_altered",
                    f"sha256 field changed from {recorded[:16]}… (digest "
                    f"{digest_key}) to {str(claimed)[:16]}…, and it does not match the body",
                )
        elif not self_consistent:
            report.fail(
                key,
                "record_altered",
                f"body changed after sealing: it no longer matches its sha256 field "
                f"{recorded[:16]}… (as digest {digest_key} recorded it)",
            )
        elif sha256_hex(body) != entry.get("object_sha256"):
            report.fail(
                key,
                "record_altered",
                f"object bytes differ from those digest {digest_key} recorded (same sha256 field: re-serialised)",
            )
    elif document is not None and not self_consistent:
        report.fail(key, "record_altered", "body does not match its sha256 field (changed after sealing)")
    if matching:
        return
    if listed:  # the content was compared with the digested version above
        report.fail(
            key,
            "record_overwritten",
            f"current version {latest.version_id} is not the version "
            f"{listed[0][0].get('version_id')} digested in {listed[0][1]}",
        )
        return
    chain = chains.get(f"account={parsed_key['account']}/region={parsed_key['region']}")
    written = latest.last_modified or _recorded_at(document)
    grace = timedelta(0) if latest.last_modified else RECORDED_AT_GRACE
    if source.as_of and written and written > source.as_of + timedelta(minutes=5):
        report.fail(key, "not_in_digest", f"claims to be written at {iso(written)}, in the future")
        return
    if (
        chain
        and chain.covered_to
        and written
        and written + grace < chain.covered_to
        and (chain.covered_from is None or written >= chain.covered_from)
    ):
        report.fail(
            key,
            "not_in_digest",
            f"written at {iso(written)}, inside the period the digests cover "
            f"(to {iso(chain.covered_to)}), but listed in no digest (an extra record)",
        )
        return
    no_chain = chain is None or not chain.has_digests
    as_of = source.as_of
    if no_chain and max_age is not None and end is None and as_of and written and written + max_age < as_of:
        report.fail(
            key,
            "digest_overdue",
            f"written at {iso(written)} and no digest covers "
            f"account={parsed_key['account']}/region={parsed_key['region']} yet",
        )
        return
    report.not_yet_covered.append(key)


def render_text(report: VerifyReport) -> str:
    lines = [
        f"Verified {report.source}: {report.records_checked} records, {report.digests_checked} digests, "
        f"{len(report.chains)} chain(s)"
    ]
    if report.period["from"] or report.period["to"]:
        lines.append(f"Period: {report.period['from'] or 'beginning'} to {report.period['to'] or 'now'}")
    lines.extend(f"  note: {note}" for note in report.notes)
    for finding in report.failures:
        lines.append(f"FAIL {finding.object}: {finding.problem}: {finding.detail}")
    if report.not_yet_covered:
        lines.append(
            f"Not yet covered by a digest (written after the newest digest; own hash checked): "
            f"{len(report.not_yet_covered)}"
        )
        lines.extend(f"  {key}" for key in report.not_yet_covered[:50])
        if len(report.not_yet_covered) > 50:
            lines.append(f"  … and {len(report.not_yet_covered) - 50} more")
    lines.append("Result: OK" if report.ok else f"Result: FAILED ({len(report.failures)} problem(s))")
    return "\n".join(lines)


def summarise(findings: Iterable[Finding]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for finding in findings:
        counts[finding.problem] += 1
    return dict(counts)
