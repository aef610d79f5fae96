"""The compacted partitions: each one's newest manifest ties its Parquet rows to the JSON records.

For the newest generation of every compacted partition: the manifest is readable and stored where it says; each
data object it lists is there with the listed SHA-256; the Parquet rows are exactly the listed (key, sha256)
pairs; every listed record exists with that ``sha256``; and every record written before the compaction is
listed. Records written after it are counted as not yet compacted (not a failure: the next run adds them).
"""

from __future__ import annotations

import tempfile
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from flopsmeter.audit.digests import iso, sha256_hex
from flopsmeter.audit.keys import parse_compaction_data_key, parse_compaction_manifest_key, parse_record_key
from flopsmeter.compliance.compaction.manifest import Manifest, ManifestError, RecordHash, parse_manifest
from flopsmeter.compliance.layout import Partition
from flopsmeter.compliance.verify.findings import VerifyReport
from flopsmeter.compliance.verify.sources import Source

RECORDED_AT_GRACE = timedelta(minutes=15)  # as for digests: recorded_at precedes the write a little


@dataclass(frozen=True)
class SeenRecord:
    """What the record checks read of a record: its ``sha256`` field and when it was written (if known)."""

    sha256: str | None
    written: datetime | None
    exact_time: bool  # written is S3's LastModified (else the record's own recorded_at)


SeenLookup = Callable[[str], "SeenRecord | None"]  # a record's key -> what it says now (None: no such record)


def check_compaction(
    source: Source, report: VerifyReport, record_keys: Iterable[str], lookup: SeenLookup
) -> dict[Partition, tuple[int, str]]:
    """Check the newest generation of every compacted partition against ``record_keys`` (the current records);
    return each partition's newest (generation, manifest key)."""
    newest: dict[Partition, tuple[int, str]] = {}
    for key in source.compaction_keys():
        try:
            account, region, day, generation = parse_compaction_manifest_key(key)
        except ValueError:
            if not _is_data_key(key):
                report.fail(key, "unexpected_object", "object under compacted/ that is neither a manifest nor data")
            continue
        partition = Partition(account, region, day)
        if partition not in newest or generation > newest[partition][0]:
            newest[partition] = (generation, key)
    if not newest:
        return newest
    present = _keys_by_partition(record_keys)
    for partition, (_generation, key) in sorted(newest.items()):
        report.compacted_partitions_checked += 1
        manifest = _read_manifest(source, report, key)
        if manifest is not None:
            _check_data(source, report, manifest)
            _check_against_records(report, manifest, present.get(partition, []), lookup)
    return newest


def _is_data_key(key: str) -> bool:
    try:
        parse_compaction_data_key(key)
    except ValueError:
        return False
    return True


def _keys_by_partition(record_keys: Iterable[str]) -> dict[Partition, list[str]]:
    grouped: dict[Partition, list[str]] = defaultdict(list)
    for key in record_keys:
        try:
            parts = parse_record_key(key)
        except ValueError:
            continue  # reported by the record checks
        grouped[Partition(parts["account"], parts["region"], date.fromisoformat(parts["date"]))].append(key)
    return grouped


def _read_manifest(source: Source, report: VerifyReport, key: str) -> Manifest | None:
    body = source.read(key)
    if body is None:
        report.fail(key, "compaction_unreadable", "listed but cannot be read")
        return None
    try:
        return parse_manifest(key, body)
    except ManifestError as err:
        report.fail(key, "compaction_unreadable", str(err))
        return None


def _check_data(source: Source, report: VerifyReport, manifest: Manifest) -> None:
    """Each data object is intact, and together they hold exactly the listed rows."""
    rows: list[RecordHash] = []
    with tempfile.TemporaryDirectory() as tmp:
        for index, data in enumerate(manifest.data):
            body = source.read(data.key)
            if body is None:
                report.fail(data.key, "compaction_data_missing", f"listed in {manifest.key} but cannot be read")
                return
            if sha256_hex(body) != data.sha256:
                report.fail(data.key, "compaction_data_altered", f"bytes differ from those {manifest.key} lists")
                return
            path = Path(tmp, f"{index}.parquet")
            path.write_bytes(body)
            rows.extend(_parquet_rows(path))
    rows.sort()
    if rows != sorted(manifest.records):
        differ = sorted(set(rows) ^ set(manifest.records))
        report.fail(
            manifest.key,
            "compaction_rows_mismatch",
            f"the Parquet holds {len(rows)} row(s), the manifest lists {len(manifest.records)}"
            + (f"; first difference: {differ[0][0]}" if differ else ""),
        )


def _parquet_rows(path: Path) -> list[RecordHash]:
    import duckdb

    con = duckdb.connect(":memory:")
    try:
        return [(str(k), s) for k, s in con.execute("SELECT _key, sha256 FROM read_parquet(?)", [str(path)]).fetchall()]
    except duckdb.Error:
        return []
    finally:
        con.close()


def _check_against_records(report: VerifyReport, manifest: Manifest, present: list[str], lookup: SeenLookup) -> None:
    """Both directions: every listed row is a record with that hash; every record made before it is listed."""
    for key, sha256 in manifest.records:
        record = lookup(key)
        if record is None:
            report.fail(key, "compaction_extra_row", f"listed in {manifest.key}, but there is no such record")
        elif record.sha256 != sha256:
            report.fail(
                key,
                "compaction_hash_mismatch",
                f"{manifest.key} holds sha256 {str(sha256)[:16]}…, the record says {str(record.sha256)[:16]}…",
            )
    listed = manifest.keys
    for key in sorted(present):
        record = None if key in listed else lookup(key)
        if record is None:
            continue
        grace = timedelta(0) if record.exact_time else RECORDED_AT_GRACE
        if record.written is not None and record.written + grace < manifest.created_at:
            report.fail(
                key,
                "compaction_missing_row",
                f"written at {iso(record.written)}, before {manifest.key} was made ({iso(manifest.created_at)}), "
                "but not in it",
            )
        else:
            report.not_yet_compacted += 1
