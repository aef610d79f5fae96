"""Compaction in AWS: Athena copies each settled date partition of the records table into Parquet.

The body of a scheduled function (the schedule and the Glue table of the compacted data are wired by infra):
for each day in ``[now - settle - lookback, now - settle)``, one query lists the records of that day (key and
``sha256``); per (account, region) partition whose record set differs from its newest manifest, an ``UNLOAD``
writes the next generation's Parquet under ``keys.compaction_data_prefix`` (a prefix of its own, so nothing is
ever replaced), the manifest is written write-once through the store, and the compacted table's partition is
pointed at the new generation. Both queries read only objects written before the run started
(``"$file_modified_time"``), so the manifest and the Parquet describe the same records. Idempotent: a re-run
finds every partition up to date. The decisions are ``manifest.plan``'s, shared with the local compaction.

Deployment notes: the compacted objects are written by Athena (``UNLOAD``) without ``If-None-Match``, so the
compacted prefix (or a bucket of its own, ``compacted_store``) must accept such writes from the compaction role;
the compacted table has the records table's columns plus ``_key``, ``STORED AS PARQUET``, partitioned by
``account``, ``region``, ``date`` (strings), without partition projection (its partitions move between
generations).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from flopsmeter.audit.digests import iso
from flopsmeter.audit.keys import parse_compaction_data_key, parse_compaction_manifest_key
from flopsmeter.aws.store import AuditStore
from flopsmeter.aws.athena import AthenaTarget, Polling, run_query
from flopsmeter.compliance.compaction.local import CompactionRun, PartitionResult
from flopsmeter.compliance.compaction.manifest import DataObject, Manifest, parse_manifest, plan
from flopsmeter.compliance.layout import Partition
from flopsmeter.compliance.schema import column_list, record_columns

RunSql = Callable[[str], tuple[list[str], list[tuple[Any, ...]]]]
KEY_SQL = "regexp_replace(\"$path\", '^s3://[^/]+/', '')"  # the object key of a row's record file


@dataclass(frozen=True)
class CompactionSettings:
    records_table: str = "records"
    compacted_table: str = "records_compacted"
    settle_days: int = 2  # a day is compacted once late records for it are unlikely
    lookback_days: int = 7  # days re-examined each run (late records make a new generation)


def athena_runner(athena: Any, target: AthenaTarget, polling: Polling | None = None) -> RunSql:
    """``run_sql`` over Athena (``flopsmeter.aws.athena``)."""
    return lambda sql: run_query(athena, sql, target, polling)


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


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
    """Register the partition (first generation) and point it at ``location`` (every generation)."""
    spec = (
        f"account = {_literal(partition.account)}, region = {_literal(partition.region)}, "
        f"date = {_literal(partition.day.isoformat())}"
    )
    table = f'"{settings.compacted_table}"'
    return [
        f"ALTER TABLE {table} ADD IF NOT EXISTS PARTITION ({spec}) LOCATION {_literal(location)}",
        f"ALTER TABLE {table} PARTITION ({spec}) SET LOCATION {_literal(location)}",
    ]


def compact_with_athena(
    run_sql: RunSql,
    compacted_store: AuditStore,
    settings: CompactionSettings | None = None,
    *,
    now: datetime | None = None,
) -> CompactionRun:
    """Compact the settled days in the lookback window; see the module docstring."""
    settings = settings or CompactionSettings()
    cutoff = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    last_day = (cutoff - timedelta(days=settings.settle_days)).date()
    run = CompactionRun()
    for offset in range(settings.lookback_days, 0, -1):
        day = last_day - timedelta(days=offset)
        for partition, records in sorted(_record_sets(run_sql, settings, day, cutoff).items()):
            _compact_partition(run_sql, compacted_store, settings, partition, records, cutoff, run)
    return run


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
    run_sql: RunSql,
    store: AuditStore,
    settings: CompactionSettings,
    partition: Partition,
    records: dict[str, str | None],
    cutoff: datetime,
    run: CompactionRun,
) -> None:
    current, highest = _stored_state(store, partition)
    step = plan(current, set(records), highest_generation=highest)
    if step.refused:
        run.errors.append((partition.path, step.refused))
        return
    if step.up_to_date:
        run.results.append(PartitionResult(partition, step.generation, False, len(records)))
        return
    prefix = partition.data_prefix(step.generation)
    location = f"s3://{store.bucket}/{prefix}"
    run_sql(unload_sql(settings, partition, location, cutoff))
    data = tuple(_data_object(store, obj["Key"]) for obj in store.list_keys(prefix))
    manifest = Manifest(partition, step.generation, tuple(sorted(records.items())), data, "athena", cutoff)
    store.put_immutable(manifest.key, manifest.to_bytes())
    for sql in point_partition_sql(settings, partition, location):
        run_sql(sql)
    run.results.append(PartitionResult(partition, step.generation, True, len(records)))


def _data_object(store: AuditStore, key: str) -> DataObject:
    body = store.get(key).body
    return DataObject(key, hashlib.sha256(body).hexdigest(), len(body))
