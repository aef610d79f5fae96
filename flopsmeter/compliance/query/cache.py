"""DuckDB over a local directory of records, through a cache file refreshed partition by partition.

The cache (``.flopsmeter-query.duckdb`` next to the records) holds one row per record. It is refreshed per date
partition (``account=/region=/date=``; a flat folder is one partition): a partition is reloaded when its
directory changed (a file added, removed or replaced: the directory's modification time) or its newest
compaction manifest changed, so a warm query costs one ``stat`` per partition, not one per record. A
partition's rows come from its compacted Parquet for the records its manifest lists, and from the JSON files
for the rest (records newer than the compaction). Only keys present as JSON files are shown: the JSON records
are the source of truth. A file rewritten in place without touching its directory is not noticed; delete the
cache file to rebuild (``flopsmeter verify`` checks the records themselves, never this cache).
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flopsmeter.audit.keys import COMPACTED_PREFIX, RECORDS_PREFIX
from flopsmeter.compliance.compaction.manifest import ManifestError, manifest_listing
from flopsmeter.compliance.errors import QueryError
from flopsmeter.compliance.layout import (
    EXPECTED_LAYOUT,
    RecordsDirError,
    is_mirror,
    manifest_files,
    partition_dirs,
    record_names,
)
from flopsmeter.compliance.ndjson import NotARecordError, blaming_the_file, write_ndjson
from flopsmeter.compliance.query.render import Result
from flopsmeter.compliance.schema import all_columns, column_list, record_columns, struct_spec

CACHE_NAME = ".flopsmeter-query.duckdb"
CACHE_FORMAT = "records-cache/2"
LOAD_BATCH = 20_000
FLAT = "."  # the one partition of a flat folder
SETTLE_SECONDS = 2.0
CSV_PLAIN_TYPES = frozenset({"VARCHAR", "BIGINT", "INTEGER", "HUGEINT", "DOUBLE", "FLOAT", "BOOLEAN", "DECIMAL"})
PART_FROM_FILENAME = "regexp_extract(filename, '^.*/compacted/v1/(account=[^/]+/region=[^/]+/date=[^/]+)/', 1)"
# Partition columns from the key in a mirror; in a flat folder (no account=… in the key) from the record itself.
PARTITIONS_SQL = (
    "coalesce(nullif(regexp_extract(_key, 'account=([^/]+)/', 1), ''), job.account_id) AS account, "
    "coalesce(nullif(regexp_extract(_key, 'region=([^/]+)/', 1), ''), job.region) AS region, "
    "coalesce(TRY_CAST(regexp_extract(_key, 'date=([0-9-]+)/', 1) AS DATE), CAST(job.end_time AS DATE)) AS date"
)


@dataclass(frozen=True)
class PartitionFiles:
    """One partition as found on disk: its record directory, key prefix and newest compaction manifest."""

    directory: Path
    prefix: str
    manifest: Path | None

    @property
    def state(self) -> str:
        return f"{self.directory.stat().st_mtime_ns}:{self.manifest.name if self.manifest else ''}"

    @property
    def settled(self) -> bool:
        """False while the directory changed too recently for its mtime to tell a later change apart (file
        systems stamp directories at a coarse clock tick): such a partition is checked again next time."""
        return time.time() - self.directory.stat().st_mtime > SETTLE_SECONDS


def partitions(root: Path) -> dict[str, PartitionFiles]:
    """Partition id -> files, for a mirror or a flat folder of records (else RecordsDirError)."""
    if not root.is_dir():
        raise RecordsDirError(f"{root} is not a directory")
    if is_mirror(root):
        compacted = partition_dirs(root, COMPACTED_PREFIX)
        return {
            p.path: PartitionFiles(
                d, p.records_prefix, _newest(manifest_files(compacted[p])) if p in compacted else None
            )
            for p, d in partition_dirs(root, RECORDS_PREFIX).items()
        }
    if not any(name.endswith(".json") and not name.startswith(".") for name in os.listdir(root)):
        raise RecordsDirError(f"{root} holds no audit records; expected {EXPECTED_LAYOUT}")
    return {FLAT: PartitionFiles(root, "", None)}


def _newest(manifests: list[Path]) -> Path | None:
    return manifests[-1] if manifests else None


def connect(root: Path, *, cache: bool = True) -> Any:
    """A DuckDB connection with the view ``records`` over the records at ``root`` (refreshing the cache)."""
    import duckdb

    found = partitions(root)
    database = str(root / CACHE_NAME) if cache else ":memory:"
    try:
        con = duckdb.connect(database)
    except duckdb.Error:  # cache locked or unreadable: query without it
        con = duckdb.connect(":memory:")
    con.execute("SET enable_progress_bar = false")
    con.execute("SET preserve_insertion_order = false")
    try:
        _refresh(con, root, found)
    except duckdb.Error as err:
        raise QueryError(f"reading records under {root}: {err}") from err
    return con


def run_duckdb(root: Path, sql: str, *, cache: bool = True) -> Result:
    import duckdb

    con = connect(root, cache=cache)
    started = time.perf_counter()
    try:
        cursor = con.execute(sql)
        rows = cursor.fetchall()
        columns = [d[0] for d in cursor.description or []]
    except duckdb.Error as err:
        raise QueryError(f"query failed: {err}") from err
    finally:
        con.close()
    return Result(columns, [tuple(r) for r in rows], time.perf_counter() - started)


def run_duckdb_csv(root: Path, sql: str, *, cache: bool = True) -> str | None:
    """The result as CSV written by DuckDB itself (no Python object per value: large results stay fast), or None
    when a column is not plain text, number or boolean (then ``render`` formats it, as for the other formats)."""
    import duckdb

    query = sql.strip().rstrip(";")
    con = connect(root, cache=cache)
    try:
        types = [str(row[1]) for row in con.execute(f"DESCRIBE ({query})").fetchall()]
        if not all(t in CSV_PLAIN_TYPES for t in types):
            return None
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp, "result.csv")
            con.execute(f"COPY ({query}) TO '{path}' (FORMAT CSV, HEADER)")
            return path.read_text()
    except duckdb.Error as err:
        raise QueryError(f"query failed: {err}") from err
    finally:
        con.close()


def _prepare(con: Any) -> None:
    """Create the cache tables, or drop them when they were made for another schema or cache format."""
    schema = json.dumps({"format": CACHE_FORMAT, "columns": all_columns()}, sort_keys=True)
    existing = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'cache_meta'")
    if existing.fetchone()[0]:
        meta = con.execute("SELECT value FROM cache_meta WHERE name = 'schema'").fetchone()
        if meta and meta[0] == schema:
            return
    spec = ", ".join(f'"{n}" {t}' for n, t in all_columns().items())
    con.execute("DROP TABLE IF EXISTS cached_records")
    con.execute(f"CREATE TABLE cached_records (_key VARCHAR, _part VARCHAR, {spec})")
    con.execute("CREATE OR REPLACE TABLE cached_parts (part VARCHAR PRIMARY KEY, state VARCHAR)")
    con.execute("CREATE OR REPLACE TABLE cache_meta (name VARCHAR PRIMARY KEY, value VARCHAR)")
    con.execute("INSERT INTO cache_meta VALUES ('schema', ?)", [schema])


def _refresh(con: Any, root: Path, found: dict[str, PartitionFiles]) -> None:
    _prepare(con)
    cached = dict(con.execute("SELECT part, state FROM cached_parts").fetchall())
    states = {part: files.state for part, files in found.items()}
    changed = sorted(p for p, s in states.items() if cached.get(p) != s)
    dropped = sorted(set(cached) - set(states)) + [p for p in changed if p in cached]
    if dropped:
        _load_table(con, "_drop", {"part": "VARCHAR"}, ([p] for p in dropped))
        con.execute("DELETE FROM cached_records WHERE _part IN (SELECT part FROM _drop)")
        con.execute("DELETE FROM cached_parts WHERE part IN (SELECT part FROM _drop)")
    if changed:
        _load_partitions(con, root, {p: found[p] for p in changed})
        recorded = ([p, states[p] if found[p].settled else "unsettled"] for p in changed)
        _load_table(con, "_parts", {"part": "VARCHAR", "state": "VARCHAR"}, recorded)
        con.execute("INSERT INTO cached_parts SELECT part, state FROM _parts")
    con.execute(f"CREATE OR REPLACE TEMP VIEW records AS SELECT {column_list(all_columns())} FROM cached_records")


def _load_partitions(con: Any, root: Path, changed: dict[str, PartitionFiles]) -> None:
    """Rows of the changed partitions: compacted Parquet for the keys its manifest lists, JSON for the rest.

    At a million records this is the first query's cost, so keys stay strings (no Path per record) and the
    Parquet rows are filtered only when a compacted record is no longer present as a file."""
    parquet: list[str] = []
    gone: list[str] = []  # compacted keys whose JSON file is not there: not shown
    json_files: list[tuple[str, str, Path]] = []  # (key, partition, file)
    for part, files in changed.items():
        listed = {files.prefix + name for name in record_names(files.directory)}
        covered: frozenset[str] = frozenset()
        if files.manifest is not None:
            try:
                covered, data = manifest_listing(files.manifest.read_bytes())
            except ManifestError:  # verify reports it; the partition is read from its JSON records
                covered, data = frozenset(), []
            gone.extend(covered - listed)
            parquet.extend(str(root / key) for key in data)
        json_files.extend((k, part, files.directory / k[len(files.prefix) :]) for k in listed - covered)
    if parquet:
        _insert_parquet(con, parquet, gone)
    if json_files:
        _load_json(con, json_files, strict=FLAT in changed)


def _insert_parquet(con: Any, parquet: list[str], gone: list[str]) -> None:
    where = ""
    if gone:
        _load_table(con, "_gone", {"k": "VARCHAR"}, ([k] for k in gone))
        where = " WHERE _key NOT IN (SELECT k FROM _gone)"
    con.execute(
        f"INSERT INTO cached_records SELECT _key, {PART_FROM_FILENAME}, {column_list(record_columns())}, "
        f"{PARTITIONS_SQL} FROM read_parquet(?, union_by_name=true, filename=true){where}",
        [parquet],
    )


def _load_table(con: Any, name: str, columns: dict[str, str], rows: Iterable[list[str]]) -> None:
    """A temp table from many rows via a CSV file (binding long Python lists as parameters is slow in DuckDB)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, f"{name}.csv")
        with open(path, "w", newline="") as handle:
            csv.writer(handle).writerows(rows)
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM read_csv(?, header=false, "
            f"columns={struct_spec(columns)}, quote='\"', escape='\"')",
            [path],
        )


def _load_json(con: Any, files: list[tuple[str, str, Path]], *, strict: bool) -> None:
    """Record files in batches through one NDJSON file each. In a flat folder every file must be a record."""
    columns = record_columns()
    spec = struct_spec({"_key": "VARCHAR", **columns})
    with tempfile.TemporaryDirectory() as tmp:
        for start in range(0, len(files), LOAD_BATCH):
            batch = files[start : start + LOAD_BATCH]
            path = Path(tmp, f"batch-{start}.ndjson")
            try:
                write_ndjson(path, ((key, file) for key, _part, file in batch), strict=strict)
                _load_table(con, "_batch_parts", {"k": "VARCHAR", "part": "VARCHAR"}, ([k, p] for k, p, _ in batch))
                with blaming_the_file([file for _key, _part, file in batch]):
                    con.execute(
                        f"INSERT INTO cached_records SELECT _key, part, {column_list(columns)}, {PARTITIONS_SQL} "
                        f"FROM read_json(?, format='newline_delimited', columns={spec}) JOIN _batch_parts ON _key = k",
                        [str(path)],
                    )
            except NotARecordError as err:
                raise QueryError(str(err)) from err
