"""DuckDB over a local directory of records, through a cache file refreshed incrementally.

The cache (``.flopsmeter-query.duckdb`` next to the records) holds one row per record file, keyed by the file's
key and modification time: new or changed files are loaded, removed ones dropped, so a query over 100 000
records takes milliseconds once cached. The view ``records`` exposes the columns of ``schema``.
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from flopsmeter.compliance.layout import RecordFile, record_files
from flopsmeter.compliance.query.presets import QueryError
from flopsmeter.compliance.query.render import Result
from flopsmeter.compliance.query.schema import all_columns, column_list, record_columns, struct_spec

CACHE_NAME = ".flopsmeter-query.duckdb"
CACHE_FORMAT = "records-cache/1"
LOAD_BATCH = 20_000
# Partition columns from the key in a mirror; in a flat folder (no account=… in the key) from the record itself.
PARTITIONS_SQL = (
    "coalesce(nullif(regexp_extract(_key, 'account=([^/]+)/', 1), ''), job.account_id) AS account, "
    "coalesce(nullif(regexp_extract(_key, 'region=([^/]+)/', 1), ''), job.region) AS region, "
    "coalesce(TRY_CAST(regexp_extract(_key, 'date=([0-9-]+)/', 1) AS DATE), CAST(job.end_time AS DATE)) AS date"
)


def connect(root: Path, *, cache: bool = True) -> Any:
    """A DuckDB connection with the view ``records`` over the records at ``root`` (refreshing the cache)."""
    import duckdb

    files = record_files(root)
    database = str(root / CACHE_NAME) if cache else ":memory:"
    try:
        con = duckdb.connect(database)
    except duckdb.Error:  # cache locked or unreadable: query without it
        con = duckdb.connect(":memory:")
    con.execute("SET enable_progress_bar = false")
    con.execute("SET preserve_insertion_order = false")
    try:
        _refresh(con, files)
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


def _prepare(con: Any) -> None:
    """Create the cache tables, or drop them when they were made for another schema."""
    schema = json.dumps(all_columns(), sort_keys=True)
    existing = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'cached_records'")
    if existing.fetchone()[0]:
        meta = con.execute("SELECT value FROM cache_meta WHERE name = 'schema'").fetchone()
        if meta and meta[0] == schema:
            return
        con.execute("DROP TABLE cached_records")
    spec = ", ".join(f'"{n}" {t}' for n, t in all_columns().items())
    con.execute(f"CREATE OR REPLACE TABLE cached_records (_key VARCHAR, _mtime DOUBLE, {spec})")
    con.execute("CREATE OR REPLACE TABLE cache_meta (name VARCHAR PRIMARY KEY, value VARCHAR)")
    con.execute("INSERT INTO cache_meta VALUES ('format', ?), ('schema', ?)", [CACHE_FORMAT, schema])


def _refresh(con: Any, files: dict[str, RecordFile]) -> None:
    _prepare(con)
    cached = dict(con.execute("SELECT _key, _mtime FROM cached_records").fetchall())
    stale = [k for k, m in cached.items() if k not in files or files[k].mtime != m]
    fresh = [k for k, f in files.items() if cached.get(k) != f.mtime]
    if stale:
        _load_table(con, "_drop", {"k": "VARCHAR"}, ([k] for k in stale))
        con.execute("DELETE FROM cached_records WHERE _key IN (SELECT k FROM _drop)")
    if fresh:
        _load_records(con, fresh, files)
    con.execute(f"CREATE OR REPLACE TEMP VIEW records AS SELECT {column_list(all_columns())} FROM cached_records")


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


def record_line(key: str, mtime: float, body: bytes) -> bytes:
    """One NDJSON line: the record with its key and file time added (records are canonical one-line JSON).

    A file in a flat folder (its key has no ``/``) must be a record: anything else is refused, naming it.
    """
    text = body.strip()
    if "/" not in key or b"\n" in text or not text.startswith(b"{"):
        try:
            document = json.loads(text)
        except ValueError:
            document = None
        if "/" not in key and not (isinstance(document, dict) and isinstance(document.get("job"), dict)):
            raise QueryError(f"{key} is not an audit record (a JSON object with a 'job' field)")
        text = json.dumps(document if isinstance(document, dict) else {}, separators=(",", ":")).encode()
    head = json.dumps({"_key": key, "_mtime": mtime}, separators=(",", ":")).encode()[:-1]
    return head + (b"}" if text == b"{}" else b"," + text[1:])


def _load_records(con: Any, fresh: list[str], files: dict[str, RecordFile]) -> None:
    """Load records in batches through one NDJSON file each: DuckDB reads one big file far faster (and in far
    less memory) than 100 000 small ones."""
    columns = record_columns()
    spec = struct_spec({"_key": "VARCHAR", "_mtime": "DOUBLE", **columns})
    with tempfile.TemporaryDirectory() as tmp:
        for start in range(0, len(fresh), LOAD_BATCH):
            path = os.path.join(tmp, f"batch-{start}.ndjson")
            with open(path, "wb") as out:
                for key in fresh[start : start + LOAD_BATCH]:
                    out.write(record_line(key, files[key].mtime, files[key].path.read_bytes()) + b"\n")
            con.execute(
                f"INSERT INTO cached_records SELECT _key, _mtime, {column_list(columns)}, {PARTITIONS_SQL} "
                f"FROM read_json(?, format='newline_delimited', columns={spec})",
                [path],
            )
