"""``flopsmeter query``: SQL over the audit records, DuckDB locally or Athena on the deployed Glue table.

The records are exposed as a table named ``records`` whose columns are the ``AuditRecord`` fields, nested as
structs, with the types derived from the model (FLOP counts ``DOUBLE``; timestamps ``TIMESTAMP``, UTC), plus
the key's partition columns ``account``, ``region`` and ``date``. The Glue table follows the same field names,
so one SQL subset runs on both engines (see docs/audit.md): dotted struct access, ``filter(list, c -> …)[1]``,
``CROSS JOIN UNNEST(list) AS t(c)``, ``CAST``, ``substr``, ``replace``, aggregates, ``ORDER BY``/``LIMIT``.

Local reads go through a DuckDB cache file next to the records (``.flopsmeter-query.duckdb``), refreshed
incrementally by key: new files are loaded, removed files dropped, so a query over 100 000 records takes
milliseconds once cached.
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from flopsmeter.audit.keys import RECORDS_PREFIX, valid_job_name
from flopsmeter.audit.record import AuditRecord
from flopsmeter.domain.errors import FlopsMeterError

CACHE_NAME = ".flopsmeter-query.duckdb"
CACHE_FORMAT = "records-cache/1"
PARTITION_COLUMNS = {"account": "VARCHAR", "region": "VARCHAR", "date": "DATE"}
LOAD_BATCH = 20_000
ATHENA_TERMINAL = frozenset({"SUCCEEDED", "FAILED", "CANCELLED"})


class QueryError(FlopsMeterError):
    """A query could not run (bad SQL, engine failure)."""


# ---------------------------------------------------------------------------------------------------------------
# schema: from the pydantic model, so the columns cannot drift from the records


def _scalar_type(annotation: Any) -> str:
    if annotation is bool:
        return "BOOLEAN"
    if annotation is int:
        return "BIGINT"
    if annotation is float:
        return "DOUBLE"
    if annotation is datetime:
        return "TIMESTAMP"
    return "VARCHAR"


def duckdb_type(annotation: Any) -> str:
    """DuckDB type of a pydantic field annotation (Optional unwrapped; Literal and str are VARCHAR)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return duckdb_type(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return duckdb_type(args[0]) if len(args) == 1 else "VARCHAR"
    if origin is list:
        return duckdb_type(typing.get_args(annotation)[0]) + "[]"
    if origin is typing.Literal:
        values = typing.get_args(annotation)
        return "BIGINT" if all(isinstance(v, int) for v in values) else "VARCHAR"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        inner = ", ".join(f'"{n}" {duckdb_type(f.annotation)}' for n, f in annotation.model_fields.items())
        return f"STRUCT({inner})"
    return _scalar_type(annotation)


def record_columns() -> dict[str, str]:
    """Top-level column name -> DuckDB type, in AuditRecord field order."""
    return {name: duckdb_type(f.annotation) for name, f in AuditRecord.model_fields.items()}


# ---------------------------------------------------------------------------------------------------------------
# presets


def ratio_of(record: AuditRecord) -> float:
    """The record's primary-policy ratio (FLOPs / threshold)."""
    return next((c.ratio for c in record.classifications if c.policy == record.primary_policy), 0.0)


@dataclass(frozen=True)
class Preset:
    exceeding: bool = False
    job: str | None = None
    since: str | None = None  # YYYY-MM-DD or YYYY-MM-DD HH:MM:SS (UTC)
    by_base_model: bool = False
    limit: int | None = None


LIST_COLUMNS = (
    "job.name AS job",
    "CAST(job.end_time AS VARCHAR) AS end_time",
    "base_model.model_id AS base_model",
    "flops.method AS method",
    "flops.classified_flops AS flops",
    "lineage.cumulative_flops AS cumulative_flops",
    "primary_policy",
    "filter(classifications, c -> c.policy = primary_policy)[1].threshold AS threshold",
    "filter(classifications, c -> c.policy = primary_policy)[1].ratio AS ratio",
    "outcome",
)


def normalise_since(value: str) -> str:
    """A date or date-time literal safe to inline (``YYYY-MM-DD`` or ``YYYY-MM-DD HH:MM:SS``), else QueryError."""
    text = value.strip().replace("T", " ").removesuffix("Z")
    for fmt, out in (
        ("%Y-%m-%d", "%Y-%m-%d"),
        ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M:%S"),
        ("%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:00"),
    ):
        try:
            return datetime.strptime(text, fmt).strftime(out)
        except ValueError:
            continue
    raise QueryError(f"--since wants a date like 2026-05-01 (UTC), got {value[:40]!r}")


def preset_sql(preset: Preset, *, table: str = "records") -> str:
    """The SQL a preset stands for; it uses only the subset shared by DuckDB and Athena."""
    where = []
    if preset.exceeding:
        where.append("outcome = 'exceeds'")
    if preset.job is not None:
        if not valid_job_name(preset.job):
            raise QueryError(f"not a SageMaker training job name: {preset.job[:80]!r}")
        where.append(f"job.name = '{preset.job}'")
    if preset.since is not None:
        # engine-neutral: a timestamp or an ISO string both cast to 'YYYY-MM-DD HH:MM:SS…' once 'T' is replaced
        where.append(
            f"replace(substr(CAST(job.end_time AS VARCHAR), 1, 19), 'T', ' ') >= '{normalise_since(preset.since)}'"
        )
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    if preset.by_base_model:
        sql = (
            "SELECT coalesce(base_model.model_id, '(unknown)') AS base_model, count(*) AS jobs, "
            "sum(flops.classified_flops) AS total_flops, max(lineage.cumulative_flops) AS max_cumulative_flops, "
            "sum(CASE WHEN outcome = 'exceeds' THEN 1 ELSE 0 END) AS exceeding, "
            "sum(CASE WHEN outcome = 'approaching' THEN 1 ELSE 0 END) AS approaching "
            f"FROM {table}{clause} GROUP BY 1 ORDER BY total_flops DESC"
        )
    else:
        sql = f"SELECT {', '.join(LIST_COLUMNS)} FROM {table}{clause} ORDER BY end_time DESC, job"
    if preset.limit:
        sql += f" LIMIT {int(preset.limit)}"
    return sql


# ---------------------------------------------------------------------------------------------------------------
# DuckDB


@dataclass(frozen=True)
class Result:
    columns: list[str]
    rows: list[tuple[Any, ...]]
    seconds: float


def _records_files(root: Path) -> dict[str, float]:
    """key -> file mtime of every record file under ``root`` (scandir: 100 000 files in well under a second)."""
    found: dict[str, float] = {}
    stack = [(str(root / RECORDS_PREFIX), RECORDS_PREFIX)]
    while stack:
        path, prefix = stack.pop()
        try:
            entries = list(os.scandir(path))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                stack.append((entry.path, f"{prefix}{entry.name}/"))
            elif entry.name.endswith(".json"):
                found[prefix + entry.name] = entry.stat().st_mtime
    return found


def _quoted(columns: dict[str, str]) -> list[str]:
    return [f'"{name}"' for name in columns]


def _struct_select(columns: dict[str, str]) -> str:
    return ", ".join(_quoted(columns))


def connect(root: Path, *, cache: bool = True) -> Any:
    """A DuckDB connection with the view ``records`` over the mirror at ``root`` (refreshing the cache)."""
    import duckdb

    if not root.is_dir():
        raise QueryError(f"{root} is not a directory")
    columns = record_columns()
    all_columns = {**columns, **PARTITION_COLUMNS}
    database = str(root / CACHE_NAME) if cache else ":memory:"
    try:
        con = duckdb.connect(database)
    except duckdb.Error:  # cache locked or unreadable: query without it
        con = duckdb.connect(":memory:")
    con.execute("SET enable_progress_bar = false")
    con.execute("SET preserve_insertion_order = false")
    try:
        _refresh(con, root, columns, all_columns)
    except duckdb.Error as err:
        raise QueryError(f"reading records under {root}: {err}") from err
    return con


def _load_table(con: Any, name: str, columns: dict[str, str], rows: Any) -> None:
    """A temp table from many rows via a CSV file (binding long Python lists as parameters is slow in DuckDB)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, f"{name}.csv")
        with open(path, "w", newline="") as handle:
            csv.writer(handle).writerows(rows)
        spec = "{" + ", ".join(f"'{n}': '{t}'" for n, t in columns.items()) + "}"
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM read_csv(?, header=false, columns={spec}, "
            "quote='\"', escape='\"')",
            [path],
        )


def _record_line(key: str, mtime: float, body: bytes) -> bytes:
    """One NDJSON line: the record with its key and file time added (records are canonical one-line JSON)."""
    text = body.strip()
    if b"\n" in text or not text.startswith(b"{"):
        try:
            document = json.loads(text)
        except ValueError:
            document = None
        text = json.dumps(document if isinstance(document, dict) else {}, separators=(",", ":")).encode()
    head = json.dumps({"_key": key, "_mtime": mtime}, separators=(",", ":")).encode()[:-1]
    return head + (b"}" if text == b"{}" else b"," + text[1:])


def _load_records(
    con: Any,
    root: Path,
    fresh: list[str],
    files: dict[str, float],
    columns: dict[str, str],
    all_columns: dict[str, str],
) -> None:
    """Load records in batches through one NDJSON file each: DuckDB reads one big file far faster (and in far
    less memory) than 100 000 small ones."""
    import tempfile

    spec = "{" + ", ".join(f"'{n}': '{t}'" for n, t in {"_key": "VARCHAR", "_mtime": "DOUBLE", **columns}.items()) + "}"
    partitions = (
        "regexp_extract(_key, 'account=([^/]+)/', 1) AS account, regexp_extract(_key, 'region=([^/]+)/', 1) AS region, "
        "TRY_CAST(regexp_extract(_key, 'date=([0-9-]+)/', 1) AS DATE) AS date"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for start in range(0, len(fresh), LOAD_BATCH):
            path = os.path.join(tmp, f"batch-{start}.ndjson")
            with open(path, "wb") as out:
                for key in fresh[start : start + LOAD_BATCH]:
                    out.write(_record_line(key, files[key], (root / key).read_bytes()) + b"\n")
            con.execute(
                f"INSERT INTO cached_records SELECT _key, _mtime, {_struct_select(columns)}, {partitions} "
                f"FROM read_json(?, format='newline_delimited', columns={spec})",
                [path],
            )


def _refresh(con: Any, root: Path, columns: dict[str, str], all_columns: dict[str, str]) -> None:
    schema = json.dumps(all_columns, sort_keys=True)
    existing = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'cached_records'"
    ).fetchone()
    if existing and existing[0]:
        meta = con.execute("SELECT value FROM cache_meta WHERE name = 'schema'").fetchone()
        if not meta or meta[0] != schema:
            con.execute("DROP TABLE cached_records")
            existing = (0,)
    if not (existing and existing[0]):
        spec = ", ".join(f'"{n}" {t}' for n, t in all_columns.items())
        con.execute(f"CREATE OR REPLACE TABLE cached_records (_key VARCHAR, _mtime DOUBLE, {spec})")
        con.execute("CREATE OR REPLACE TABLE cache_meta (name VARCHAR PRIMARY KEY, value VARCHAR)")
        con.execute("INSERT INTO cache_meta VALUES ('format', ?), ('schema', ?)", [CACHE_FORMAT, schema])
    files = _records_files(root)
    cached = dict(con.execute("SELECT _key, _mtime FROM cached_records").fetchall())
    stale = [k for k, m in cached.items() if files.get(k) != m]
    fresh = [k for k, m in files.items() if cached.get(k) != m]
    if stale:
        _load_table(con, "_drop", {"k": "VARCHAR"}, ([k] for k in stale))
        con.execute("DELETE FROM cached_records WHERE _key IN (SELECT k FROM _drop)")
    if fresh:
        _load_records(con, root, fresh, files, columns, all_columns)
    con.execute(f"CREATE OR REPLACE TEMP VIEW records AS SELECT {_struct_select(all_columns)} FROM cached_records")


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


# ---------------------------------------------------------------------------------------------------------------
# Athena (the deployed Glue table): StartQueryExecution -> GetQueryExecution polling -> GetQueryResults


def run_athena(
    athena: Any,
    sql: str,
    *,
    workgroup: str,
    database: str,
    output_location: str | None = None,
    poll_seconds: float = 1.0,
    timeout_seconds: float = 300.0,
    sleep: Any = time.sleep,
) -> Result:
    from botocore.exceptions import BotoCoreError, ClientError

    started = time.perf_counter()
    request: dict[str, Any] = {
        "QueryString": sql,
        "WorkGroup": workgroup,
        "QueryExecutionContext": {"Database": database},
    }
    if output_location:
        request["ResultConfiguration"] = {"OutputLocation": output_location}
    try:
        execution_id = athena.start_query_execution(**request)["QueryExecutionId"]
        waited = 0.0
        while True:
            status = athena.get_query_execution(QueryExecutionId=execution_id)["QueryExecution"]["Status"]
            state = status["State"]
            if state in ATHENA_TERMINAL:
                break
            if waited >= timeout_seconds:
                raise QueryError(f"Athena query {execution_id} still {state} after {timeout_seconds:.0f} s")
            sleep(poll_seconds)
            waited += poll_seconds
        if state != "SUCCEEDED":
            raise QueryError(
                f"Athena query {execution_id} {state}: {status.get('StateChangeReason', 'no reason given')}"
            )
        columns: list[str] = []
        rows: list[tuple[Any, ...]] = []
        kwargs: dict[str, Any] = {"QueryExecutionId": execution_id}
        first = True
        while True:
            page = athena.get_query_results(**kwargs)
            if not columns:
                columns = [c["Name"] for c in page["ResultSet"]["ResultSetMetadata"]["ColumnInfo"]]
            data = page["ResultSet"]["Rows"]
            if first and data:
                data = data[1:]  # the header row
            first = False
            rows.extend(tuple(cell.get("VarCharValue") for cell in row["Data"]) for row in data)
            if not page.get("NextToken"):
                break
            kwargs["NextToken"] = page["NextToken"]
    except (ClientError, BotoCoreError) as err:
        raise QueryError(f"Athena: {err}") from err
    return Result(columns, rows, time.perf_counter() - started)


# ---------------------------------------------------------------------------------------------------------------
# output


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.2e}" if abs(value) >= 1e6 or (value and abs(value) < 1e-3) else f"{value:.4g}"
    if isinstance(value, dict | list):
        return json.dumps(_plain(value))
    return str(_plain(value))


def render(result: Result, fmt: str) -> str:
    if fmt == "json":
        return json.dumps([dict(zip(result.columns, map(_plain, row), strict=True)) for row in result.rows], indent=1)
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(result.columns)
        writer.writerows([[_cell(v) if isinstance(v, dict | list) else _plain(v) for v in row] for row in result.rows])
        return buffer.getvalue()
    return render_table(result.columns, [[_cell(v) for v in row] for row in result.rows])


def render_table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    from rich.console import Console
    from rich.table import Table

    table = Table(show_lines=False, header_style="bold")
    for name in columns:
        table.add_column(name, overflow="fold")
    for row in rows:
        table.add_row(*row)
    console = Console(file=io.StringIO(), width=200, record=True, force_terminal=False, color_system=None)
    console.print(table)
    console.print(f"{len(rows)} row(s)")
    return console.export_text()
