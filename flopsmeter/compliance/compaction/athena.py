"""Compaction in AWS: Athena copies each settled date partition of the records table into Parquet.

The body of the scheduled compaction function (``flopsmeter.functions.compaction``; the schedule, the Glue table
of the compacted data and the grants are in ``infra/constructs/compaction.py``): for each day in
``[now - settle - lookback, now - settle)``, one query lists the records of that day (key and ``sha256``); per
(account, region) partition whose record set differs from its newest manifest:

1. ``UNLOAD`` writes the partition's rows as Parquet to a fresh *staging* prefix of the Athena results bucket
   (Athena cannot send ``If-None-Match``, which the audit bucket's policy requires of every write, nor is it
   documented to send the checksum S3 requires for writes into an Object Lock bucket);
2. the function copies each staged object into the audit bucket under the next generation's
   ``keys.compaction_data_prefix`` with ``If-None-Match`` and COMPLIANCE retention (``AuditStore.put_immutable``),
   like every other audit object: nothing is ever replaced, and the staged copy expires with the results bucket;
3. the manifest (record keys and hashes, data objects and their hashes) is written write-once, last;
4. the compacted table's partition is pointed at the new generation (``ALTER TABLE`` in Athena's Hive DDL:
   names in backticks, ``date`` escaped).

A partition whose newest manifest already lists exactly its records is left alone, unless the catalog
(``PartitionCatalog``, read once per day) does not point it at that manifest's generation: a run that stopped
between writing the manifest and ``ALTER TABLE`` (a crash, a timeout, a refused DDL) is finished by the next run,
which registers or re-points the partition.

Both queries read only objects written before the run started (``"$file_modified_time"``), so the manifest and the
Parquet describe the same records. Idempotent: a re-run finds every partition up to date and pointed at, and a run
stopped before its manifest (time budget, crash) leaves at most data without a manifest, which the next run skips
(a new generation).
The decisions are ``manifest.plan``'s, shared with the local compaction.

The compacted table has the records table's columns plus ``_key``, ``STORED AS PARQUET``, partitioned by
``account``, ``region``, ``date`` (strings), without partition projection (its partitions move between
generations).
"""

from __future__ import annotations

import hashlib
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from flopsmeter.audit.digests import iso
from flopsmeter.audit.keys import parse_compaction_data_key, parse_compaction_manifest_key
from flopsmeter.aws.athena import AthenaTarget, Polling, run_query
from flopsmeter.aws.store import AuditStore
from flopsmeter.compliance.compaction.local import CompactionRun, PartitionResult
from flopsmeter.compliance.compaction.manifest import DataObject, Manifest, parse_manifest, plan
from flopsmeter.compliance.layout import Partition
from flopsmeter.compliance.schema import column_list, record_columns
from flopsmeter.ports import PartitionCatalog

RunSql = Callable[[str], tuple[list[str], list[tuple[Any, ...]]]]
KEY_SQL = "regexp_replace(\"$path\", '^s3://[^/]+/', '')"  # the object key of a row's record file


PARQUET_CONTENT_TYPE = "application/vnd.apache.parquet"
TimeLeft = Callable[[], float]  # seconds this run may still spend (Lambda: the context's remaining time)


@dataclass(frozen=True)
class CompactionSettings:
    records_table: str = "records"
    compacted_table: str = "records_compacted"
    settle_days: int = 2  # a day is compacted once late records for it are unlikely
    lookback_days: int = 7  # days re-examined each run (late records make a new generation)
    seconds_per_partition: float = 120.0  # no partition is started with less time left than this


@dataclass(frozen=True)
class Staging:
    """Where ``UNLOAD`` writes before the copy into the audit bucket: a store over the Athena results bucket
    (not locked; its lifecycle expires what a run leaves there) and the prefix of this function's staging."""

    store: AuditStore
    prefix: str = "compaction-staging/"


def athena_runner(athena: Any, target: AthenaTarget, polling: Polling | None = None) -> RunSql:
    """``run_sql`` over Athena (``flopsmeter.aws.athena``)."""
    return lambda sql: run_query(athena, sql, target, polling)


def _literal(value: str) -> str:
    """A Trino (DML) string literal."""
    return "'" + value.replace("'", "''") + "'"


def _hive_literal(value: str) -> str:
    """A Hive (DDL) string literal: Hive escapes with a backslash (two quotes would be two literals)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def record_set_sql(settings: CompactionSettings, day: date, cutoff: datetime) -> str:
    """The records of one day, written before ``cutoff``: account, region, key, sha256."""
    return (
        f'SELECT account, region, {KEY_SQL} AS key, sha256 FROM "{settings.records_table}" '
        f"WHERE date = {_literal(day.isoformat())} "
        f'AND "$file_modified_time" < from_iso8601_timestamp({_literal(iso(cutoff))})'
    )


def unload_sql(settings: CompactionSettings, partition: Partition, location: str, cutoff: datetime) -> str:
    """One partition's records, written before ``cutoff``, as Parquet at ``location`` (key order)."""
    return (
        f'UNLOAD (SELECT {KEY_SQL} AS _key, {column_list(record_columns())} FROM "{settings.records_table}" '
        f"WHERE account = {_literal(partition.account)} AND region = {_literal(partition.region)} "
        f"AND date = {_literal(partition.day.isoformat())} "
        f'AND "$file_modified_time" < from_iso8601_timestamp({_literal(iso(cutoff))}) ORDER BY 1) '
        f"TO {_literal(location)} WITH (format = 'PARQUET', compression = 'SNAPPY')"
    )


def point_partition_sql(settings: CompactionSettings, partition: Partition, location: str) -> list[str]:
    """Register the partition (first generation) and point it at ``location`` (every generation): Hive DDL, names
    in backticks (``date`` is reserved in Athena DDL), literals with backslash escapes."""
    spec = (
        f"`account` = {_hive_literal(partition.account)}, `region` = {_hive_literal(partition.region)}, "
        f"`date` = {_hive_literal(partition.day.isoformat())}"
    )
    table = f"`{settings.compacted_table}`"
    return [
        f"ALTER TABLE {table} ADD IF NOT EXISTS PARTITION ({spec}) LOCATION {_hive_literal(location)}",
        f"ALTER TABLE {table} PARTITION ({spec}) SET LOCATION {_hive_literal(location)}",
    ]


def compact_with_athena(
    run_sql: RunSql,
    store: AuditStore,
    staging: Staging,
    settings: CompactionSettings | None = None,
    *,
    catalog: PartitionCatalog,
    now: datetime | None = None,
    time_left: TimeLeft | None = None,
) -> CompactionRun:
    """Compact the settled days in the lookback window into ``store`` (the audit bucket), registering or
    re-pointing in ``catalog`` what an earlier run left unpointed; see the module docstring.

    With ``time_left``, a partition is started only while at least ``settings.seconds_per_partition`` remain;
    the partitions left are listed in ``run.deferred`` (the next run takes them up)."""
    settings = settings or CompactionSettings()
    cutoff = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    last_day = (cutoff - timedelta(days=settings.settle_days)).date()
    run = CompactionRun()
    for offset in range(settings.lookback_days, 0, -1):
        day = last_day - timedelta(days=offset)
        if time_left is not None and time_left() < settings.seconds_per_partition:
            run.deferred.append(day.isoformat())
            continue
        record_sets = _record_sets(run_sql, settings, day, cutoff)
        served = catalog.locations(_values(p) for p in record_sets) if record_sets else {}
        for partition, records in sorted(record_sets.items()):
            if time_left is not None and time_left() < settings.seconds_per_partition:
                run.deferred.append(partition.path)
                continue
            target = _Target(store, staging, settings, cutoff, served.get(_values(partition)))
            _compact_partition(run_sql, target, partition, records, run)
    return run


def _values(partition: Partition) -> tuple[str, str, str]:
    return partition.account, partition.region, partition.day.isoformat()


@dataclass(frozen=True)
class _Target:
    store: AuditStore
    staging: Staging
    settings: CompactionSettings
    cutoff: datetime
    served: str | None = None  # where the catalog points the partition now (None: not registered)


def _record_sets(
    run_sql: RunSql, settings: CompactionSettings, day: date, cutoff: datetime
) -> dict[Partition, dict[str, str | None]]:
    _columns, rows = run_sql(record_set_sql(settings, day, cutoff))
    grouped: dict[Partition, dict[str, str | None]] = defaultdict(dict)
    for account, region, key, sha256 in rows:
        grouped[Partition(str(account), str(region), day)][str(key)] = None if sha256 is None else str(sha256)
    return grouped


def _stored_state(store: AuditStore, partition: Partition) -> tuple[Manifest | None, int]:
    """The newest manifest of a partition and the highest generation with any object (data or manifest)."""
    manifests: list[tuple[int, str]] = []
    highest = 0
    for obj in store.list_keys(partition.compacted_prefix):
        try:
            generation = parse_compaction_manifest_key(obj["Key"])[3]
            manifests.append((generation, obj["Key"]))
        except ValueError:
            try:
                generation = parse_compaction_data_key(obj["Key"])[3]
            except ValueError:
                continue
        highest = max(highest, generation)
    if not manifests:
        return None, highest
    key = max(manifests)[1]
    return parse_manifest(key, store.get(key).body), highest


def _compact_partition(
    run_sql: RunSql, target: _Target, partition: Partition, records: dict[str, str | None], run: CompactionRun
) -> None:
    store = target.store
    current, highest = _stored_state(store, partition)
    step = plan(current, set(records), highest_generation=highest)
    if step.refused:
        run.errors.append((partition.path, step.refused))
        return
    if step.up_to_date:
        location = f"s3://{store.bucket}/{partition.data_prefix(step.generation)}"
        repointed = target.served != location  # an earlier run wrote the manifest but never pointed the table
        if repointed:
            for sql in point_partition_sql(target.settings, partition, location):
                run_sql(sql)
        run.results.append(PartitionResult(partition, step.generation, False, len(records), repointed))
        return
    staged = _staged_prefix(target, partition, step.generation)
    run_sql(unload_sql(target.settings, partition, f"s3://{target.staging.store.bucket}/{staged}", target.cutoff))
    prefix = partition.data_prefix(step.generation)
    data: list[DataObject] = []
    for obj in target.staging.store.list_keys(staged):
        body = target.staging.store.get(obj["Key"]).body
        key = prefix + obj["Key"].removeprefix(staged)
        written, _version, _until = store.put_immutable(key, body, content_type=PARQUET_CONTENT_TYPE)
        if not written:  # only a concurrent run takes the same generation; it owns this partition now
            run.errors.append((partition.path, f"{key} was written by another run; left to it"))
            return
        data.append(DataObject(key, hashlib.sha256(body).hexdigest(), len(body)))
    manifest = Manifest(
        partition, step.generation, tuple(sorted(records.items())), tuple(data), "athena", target.cutoff
    )
    store.put_immutable(manifest.key, manifest.to_bytes())
    for sql in point_partition_sql(target.settings, partition, f"s3://{store.bucket}/{prefix}"):
        run_sql(sql)
    run.results.append(PartitionResult(partition, step.generation, True, len(records)))


def _staged_prefix(target: _Target, partition: Partition, generation: int) -> str:
    """A prefix of its own per attempt (UNLOAD wants an empty location; a retry of the same run gets a new one)."""
    stamp = target.cutoff.strftime("%Y%m%dT%H%M%SZ")
    return f"{target.staging.prefix}{partition.path}/gen-{generation:06d}/{stamp}-{uuid.uuid4().hex[:12]}/"
