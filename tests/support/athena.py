"""Athena emulated over a moto bucket with DuckDB (moto's Athena accepts queries but runs no SQL).

``EmulatedAthena`` answers the three statements the compaction function sends, as Athena would over the Glue
tables the stack defines: the record-set ``SELECT`` (one day's records written before the cutoff: account,
region, key, sha256, read from the JSON objects and their ``LastModified``), ``UNLOAD`` (that partition's records
as Parquet, written where the statement says, with no condition, as Athena writes) and ``ALTER TABLE`` (kept in
``partitions``: the compacted table's catalog). What is emulated: the engine; the objects, buckets and Object
Lock are moto's.
"""

from __future__ import annotations

import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from flopsmeter.audit.keys import records_prefix
from flopsmeter.compliance.ndjson import write_ndjson
from flopsmeter.compliance.schema import column_list, record_columns, struct_spec

_LITERAL = r"'((?:[^']|'')*)'"
_CUTOFF = re.compile(r"from_iso8601_timestamp\('([^']+)'\)")


def _literal(sql: str, name: str) -> str:
    match = re.search(rf"\b{name} = {_LITERAL}", sql)
    assert match, f"no {name} literal in {sql[:200]}"
    return match.group(1).replace("''", "'")


class EmulatedAthena:
    """``run_sql`` for ``compact_with_athena``: ``(columns, rows)`` per statement; every statement is logged."""

    def __init__(self, s3: Any, bucket: str) -> None:
        self.s3, self.bucket = s3, bucket
        self.sql: list[str] = []
        self.partitions: dict[tuple[str, str, str], str] = {}  # (account, region, date) -> location

    def __call__(self, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        self.sql.append(sql)
        if sql.startswith("SELECT account"):
            return ["account", "region", "key", "sha256"], self._record_set(sql)
        if sql.startswith("UNLOAD"):
            self._unload(sql)
        elif sql.startswith("ALTER TABLE"):
            spec = (_literal(sql, "account"), _literal(sql, "region"), _literal(sql, "date"))
            location = re.search(rf"LOCATION {_LITERAL}", sql)
            assert location, sql
            if "ADD IF NOT EXISTS" not in sql or spec not in self.partitions:
                self.partitions[spec] = location.group(1)
        else:
            raise AssertionError(f"unexpected statement: {sql[:200]}")
        return [], []

    def _records(self, sql: str, account: str | None = None, region: str | None = None) -> list[dict[str, Any]]:
        """The JSON records of the statement's day (and partition), written before its cutoff."""
        day = _literal(sql, "date")
        cutoff_match = _CUTOFF.search(sql)
        assert cutoff_match, sql
        cutoff = datetime.fromisoformat(cutoff_match.group(1).replace("Z", "+00:00"))
        found = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix="records/v1/"):
            for obj in page.get("Contents", []):
                key = obj["Key"]
                if f"/date={day}/" not in key or obj["LastModified"].astimezone(UTC) >= cutoff:
                    continue
                acct = key.split("account=")[1].split("/")[0]
                reg = key.split("region=")[1].split("/")[0]
                if account is not None and (acct, reg) != (account, region):
                    continue
                found.append({"account": acct, "region": reg, "key": key})
        return found

    def _record_set(self, sql: str) -> list[tuple[Any, ...]]:
        import json

        rows = []
        for found in self._records(sql):
            body = self.s3.get_object(Bucket=self.bucket, Key=found["key"])["Body"].read()
            rows.append((found["account"], found["region"], found["key"], json.loads(body).get("sha256")))
        return rows

    def _unload(self, sql: str) -> None:
        account, region = _literal(sql, "account"), _literal(sql, "region")
        target = re.search(rf" TO {_LITERAL}", sql)
        assert target, sql
        bucket, prefix = target.group(1).removeprefix("s3://").split("/", 1)
        found = self._records(sql, account, region)
        assert all(f["key"].startswith(records_prefix()) for f in found)
        columns = record_columns()
        with tempfile.TemporaryDirectory() as tmp:
            files = []
            for index, item in enumerate(found):
                path = Path(tmp, f"{index}.json")
                path.write_bytes(self.s3.get_object(Bucket=self.bucket, Key=item["key"])["Body"].read())
                files.append((item["key"], path))
            ndjson, parquet = Path(tmp, "rows.ndjson"), Path(tmp, "out.parquet")
            write_ndjson(ndjson, files)
            spec = struct_spec({"_key": "VARCHAR", **columns})
            con = duckdb.connect(":memory:")
            try:
                con.execute(
                    f"COPY (SELECT _key, {column_list(columns)} FROM read_json(?, format='newline_delimited', "
                    f"columns={spec}) ORDER BY _key) TO '{parquet}' (FORMAT PARQUET)",
                    [str(ndjson)],
                )
            finally:
                con.close()
            # Athena names its files <query id>_<n>; one file here
            self.s3.put_object(Bucket=bucket, Key=f"{prefix}20260101_000000_00001_emulated", Body=parquet.read_bytes())
