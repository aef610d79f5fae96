"""The compaction manifest: what one generation of a partition's Parquet copy holds, tied to the JSON records.

One manifest per (account, region, date) partition and generation, stored next to its data
(``keys.compaction_manifest_key``). It lists every record key with the record's own ``sha256`` field, the row
count, a hash over that list, and each data object with its SHA-256 and size, so ``flopsmeter verify`` can check
both directions: the Parquet rows are exactly the listed records, and the listed records are the JSON records.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from flopsmeter.audit.digests import iso, parse_iso
from flopsmeter.audit.keys import parse_compaction_manifest_key
from flopsmeter.audit.record import canonical_json
from flopsmeter.compliance.layout import Partition
from flopsmeter.errors import FlopsMeterError

COMPACTION_FORMAT = "flopsmeter-compaction/1"
RecordHash = tuple[str, str | None]  # (record key, the record's sha256 field)


class ManifestError(FlopsMeterError):
    """A compaction manifest that cannot be read as one."""


@dataclass(frozen=True)
class DataObject:
    key: str
    sha256: str
    bytes: int


@dataclass(frozen=True)
class Manifest:
    partition: Partition
    generation: int
    records: tuple[RecordHash, ...]  # sorted by key
    data: tuple[DataObject, ...]
    engine: str
    created_at: datetime

    @property
    def key(self) -> str:
        return self.partition.manifest_key(self.generation)

    @property
    def keys(self) -> frozenset[str]:
        return frozenset(k for k, _ in self.records)

    def to_bytes(self) -> bytes:
        records = [list(r) for r in self.records]
        return canonical_json(
            {
                "format": COMPACTION_FORMAT,
                "account": self.partition.account,
                "region": self.partition.region,
                "date": self.partition.day.isoformat(),
                "generation": self.generation,
                "row_count": len(records),
                "records_sha256": records_sha256(self.records),
                "records": records,
                "data": [{"key": d.key, "sha256": d.sha256, "bytes": d.bytes} for d in self.data],
                "engine": self.engine,
                "created_at": iso(self.created_at),
            }
        )


def records_sha256(records: tuple[RecordHash, ...] | list[RecordHash]) -> str:
    """One hash over the sorted (key, sha256) list: equal lists, equal hash."""
    return hashlib.sha256(canonical_json({"records": [list(r) for r in sorted(records)]})).hexdigest()


def parse_manifest(key: str, body: bytes) -> Manifest:
    """The manifest stored at ``key``; ManifestError when it is not one, or not the one its key names."""
    try:
        account, region, day, generation = parse_compaction_manifest_key(key)
        document = json.loads(body)
        if not isinstance(document, dict) or document.get("format") != COMPACTION_FORMAT:
            raise ManifestError(f"{key}: not a {COMPACTION_FORMAT} document")
        manifest = _from_document(document)
    except (ValueError, KeyError, TypeError) as err:
        raise ManifestError(f"{key}: {err}") from err
    if manifest.partition != Partition(account, region, day) or manifest.generation != generation:
        raise ManifestError(f"{key}: describes {manifest.key}, not the key it is stored at")
    if document.get("row_count") != len(manifest.records):
        raise ManifestError(f"{key}: row_count {document.get('row_count')} but {len(manifest.records)} records")
    if document.get("records_sha256") != records_sha256(manifest.records):
        raise ManifestError(f"{key}: records_sha256 does not match its record list")
    return manifest


def manifest_listing(body: bytes) -> tuple[frozenset[str], list[str]]:
    """The record keys and data object keys of a manifest, unchecked: a fast read for the query cache (verify
    checks manifests; ``parse_manifest`` for everything else)."""
    try:
        document = json.loads(body)
        return frozenset(key for key, _sha in document["records"]), [str(d["key"]) for d in document["data"]]
    except (ValueError, KeyError, TypeError) as err:
        raise ManifestError(f"not a compaction manifest: {err}") from err


def _from_document(document: dict[str, Any]) -> Manifest:
    records = tuple((str(k), None if s is None else str(s)) for k, s in document["records"])
    data = tuple(DataObject(str(d["key"]), str(d["sha256"]), int(d["bytes"])) for d in document["data"])
    partition = Partition(str(document["account"]), str(document["region"]), date.fromisoformat(document["date"]))
    return Manifest(
        partition,
        int(document["generation"]),
        records,
        data,
        str(document["engine"]),
        parse_iso(document["created_at"]),
    )


@dataclass(frozen=True)
class Plan:
    """What to do with one partition: nothing (``up_to_date``), refuse (``refused`` says why), or write
    ``generation``."""

    generation: int
    up_to_date: bool = False
    refused: str | None = None


def plan(current: Manifest | None, keys: set[str] | frozenset[str], *, highest_generation: int = 0) -> Plan:
    """Idempotence and safety in one place: the same records leave a partition alone; new records make the next
    generation (after ``highest_generation``, which counts data left by an interrupted run); records that the last
    compaction listed but are gone now make no new generation (that would hide the loss)."""
    if current is not None and current.keys == keys:
        return Plan(current.generation, up_to_date=True)
    if current is not None and not current.keys <= keys:
        lost = sorted(current.keys - keys)
        return Plan(current.generation, refused=f"{len(lost)} compacted record(s) no longer present, e.g. {lost[0]}")
    return Plan(max(highest_generation, current.generation if current else 0) + 1)
