"""Compaction of a local mirror with DuckDB: each date partition's JSON records into one Parquet file.

Output follows the bucket's layout (``keys.compaction_data_prefix`` / ``compaction_manifest_key``), so a mirror
pulled from a bucket compacted by Athena and a directory compacted here read the same way. Idempotent: a
partition whose newest manifest lists exactly the record keys present is left alone; new records make a new
generation holding all of the partition's records. A partition that lost records since its last compaction is
not compacted again (the loss is for ``verify`` to report, not for compaction to hide): it is listed in
``errors``. The manifest is written last, so an interrupted run leaves no manifest pointing at partial data.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from flopsmeter.audit.keys import COMPACTED_PREFIX, RECORDS_PREFIX
from flopsmeter.compliance.compaction.manifest import DataObject, Manifest, ManifestError, parse_manifest, plan
from flopsmeter.compliance.layout import (
    EXPECTED_MIRROR,
    Partition,
    RecordsDirError,
    is_mirror,
    manifest_files,
    partition_dirs,
    record_names,
)
from flopsmeter.compliance.mirror import key_path
from flopsmeter.compliance.ndjson import NotARecordError, blaming_the_file, write_ndjson
from flopsmeter.compliance.schema import column_list, record_columns, struct_spec

DATA_FILE = "data.parquet"
PARQUET_OPTIONS = "FORMAT PARQUET, COMPRESSION SNAPPY"  # reads back ~1.5x faster than ZSTD into the cache


@dataclass(frozen=True)
class PartitionResult:
    partition: Partition
    generation: int
    written: bool  # False: already compacted with exactly these records
    rows: int
    repointed: bool = False  # up to date, but the catalog did not point at it: registered or re-pointed now


@dataclass
class CompactionRun:
    results: list[PartitionResult] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)  # (partition, why it was not compacted)
    deferred: list[str] = field(default_factory=list)  # days or partitions left for the next run (time budget)

    @property
    def written(self) -> list[PartitionResult]:
        return [r for r in self.results if r.written]


def newest_manifest(root: Path, partition: Partition) -> Manifest | None:
    files = manifest_files(root / COMPACTED_PREFIX / partition.path)
    if not files:
        return None
    path = files[-1]
    return parse_manifest(path.relative_to(root).as_posix(), path.read_bytes())


def compact_dir(root: Path, *, now: datetime | None = None, settle_days: int = 0) -> CompactionRun:
    """Compact every partition of the mirror at ``root`` older than ``settle_days`` days (0: all of them)."""
    import duckdb

    if not root.is_dir():
        raise RecordsDirError(f"{root} is not a directory; compact works on {EXPECTED_MIRROR}")
    if not is_mirror(root):
        raise RecordsDirError(f"{root} is not a mirror of the audit bucket; compact works on {EXPECTED_MIRROR}")
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    newest_day = (moment - timedelta(days=settle_days)).date()
    run = CompactionRun()
    con = duckdb.connect(":memory:")
    con.execute("SET enable_progress_bar = false")
    try:
        for partition, directory in sorted(partition_dirs(root, RECORDS_PREFIX).items()):
            if settle_days and partition.day >= newest_day:
                continue
            _compact_partition(con, root, partition, directory, moment, run)
    finally:
        con.close()
    return run


def _compact_partition(
    con: Any, root: Path, partition: Partition, directory: Path, now: datetime, run: CompactionRun
) -> None:
    keys = {partition.records_prefix + name: directory / name for name in record_names(directory)}
    try:
        current = newest_manifest(root, partition)
    except ManifestError as err:
        run.errors.append((partition.path, f"newest manifest unreadable ({err}); not compacted again"))
        return
    step = plan(current, set(keys), highest_generation=_highest_generation(root, partition))
    if step.refused:
        run.errors.append((partition.path, step.refused))
        return
    if step.up_to_date:
        run.results.append(PartitionResult(partition, step.generation, False, len(keys)))
        return
    generation = step.generation
    try:
        manifest = write_generation(con, root, partition, generation, sorted(keys.items()), now)
    except NotARecordError as err:  # a truncated or damaged file: this partition waits until it is mended
        run.errors.append((partition.path, str(err)))
        return
    run.results.append(PartitionResult(partition, generation, True, len(manifest.records)))


def _highest_generation(root: Path, partition: Partition) -> int:
    """The highest generation with data on disk (an interrupted run may leave data without a manifest)."""
    names = [p.name for p in (root / COMPACTED_PREFIX / partition.path).glob("gen-*")]
    return max((int(n.removeprefix("gen-")) for n in names if n.removeprefix("gen-").isdigit()), default=0)


def write_generation(
    con: Any, root: Path, partition: Partition, generation: int, files: list[tuple[str, Path]], now: datetime
) -> Manifest:
    """Parquet of ``files`` (key order) under the generation's prefix, then its manifest (from what was written)."""
    import hashlib

    data_key = partition.data_prefix(generation) + DATA_FILE
    target = key_path(root, data_key)
    target.parent.mkdir(parents=True, exist_ok=True)
    columns = record_columns()
    with tempfile.TemporaryDirectory() as tmp:
        ndjson = Path(tmp, "records.ndjson")
        write_ndjson(ndjson, files)
        staged = Path(tmp, DATA_FILE)
        spec = struct_spec({"_key": "VARCHAR", **columns})
        with blaming_the_file([file for _key, file in files]):
            con.execute(
                f"COPY (SELECT _key, {column_list(columns)} FROM read_json(?, format='newline_delimited', "
                f"columns={spec}) ORDER BY _key) TO '{staged}' ({PARQUET_OPTIONS})",
                [str(ndjson)],
            )
        os.replace(staged, target)
    body = target.read_bytes()
    rows = con.execute("SELECT _key, sha256 FROM read_parquet(?) ORDER BY _key", [str(target)]).fetchall()
    manifest = Manifest(
        partition,
        generation,
        tuple((str(k), s) for k, s in rows),
        (DataObject(data_key, hashlib.sha256(body).hexdigest(), len(body)),),
        "duckdb",
        now,
    )
    with open(key_path(root, manifest.key), "xb") as out:  # never replaces a manifest
        out.write(manifest.to_bytes())
    return manifest
