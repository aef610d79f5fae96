"""Athena emulated over moto (a bucket, the Glue catalog) with DuckDB (moto's Athena accepts queries but runs no SQL).

``EmulatedAthena`` first parses each statement by Athena's grammar (``tests.support.athena_sql``: Hive DDL, Trino
DML, Athena's UNLOAD), then answers the three statements the compaction function sends, as Athena would over the
Glue tables the stack defines: the record-set ``SELECT`` (one day's records written before the cutoff: account,
region, key, sha256, read from the JSON objects and their ``LastModified``), ``UNLOAD`` (that partition's records
as Parquet, written where the statement says, with no condition, as Athena writes) and ``ALTER TABLE`` (applied to
moto's Glue catalog, the compacted table's partitions: ``GlueCatalog`` reads them back). Every value it acts on
comes from the parsed statement. What is emulated: the engine; the objects, buckets, catalog and Object Lock are
moto's.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
from sqlglot import exp

from flopsmeter.audit.keys import records_prefix
from flopsmeter.compliance.ndjson import write_ndjson
from flopsmeter.compliance.schema import column_list, record_columns, struct_spec
from tests.support.athena_sql import parse_athena, parse_unload

DATABASE = "flopsmeter_test"
COMPACTED_TABLE = "records_compacted"
PARTITION_KEYS = ("account", "region", "date")


def make_compacted_table(glue: Any, database: str = DATABASE, table: str = COMPACTED_TABLE) -> None:
    """The compacted table's catalog entry as the stack defines it (Parquet, partitioned by account/region/date)."""
    glue.create_database(DatabaseInput={"Name": database})
    glue.create_table(
        DatabaseName=database,
        TableInput={
            "Name": table,
            "TableType": "EXTERNAL_TABLE",
            "PartitionKeys": [{"Name": k, "Type": "string"} for k in PARTITION_KEYS],
            "StorageDescriptor": {
                "Columns": [{"Name": "_key", "Type": "string"}],
                "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
                "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"},
            },
        },
    )


def equalities(tree: exp.Expression) -> dict[str, str]:
    """``column = 'literal'`` pairs of a parsed statement (its WHERE clause, or an ALTER TABLE's partition spec)."""
    return {
        eq.this.name: eq.expression.name
        for eq in tree.find_all(exp.EQ)
        if isinstance(eq.this, exp.Column) and isinstance(eq.expression, exp.Literal)
    }


def cutoff_of(tree: exp.Expression) -> datetime:
    """The ``"$file_modified_time" < from_iso8601_timestamp('…')`` bound of a parsed query."""
    for lt in tree.find_all(exp.LT):
        if isinstance(lt.this, exp.Column) and lt.this.name == "$file_modified_time":
            literal = next(lt.expression.find_all(exp.Literal))
            return datetime.fromisoformat(literal.name.replace("Z", "+00:00"))
    raise AssertionError(f"no $file_modified_time bound in {tree.sql('trino')[:200]}")


def apply_ddl(glue: Any, database: str, tree: exp.Expression) -> None:
    """An ``ALTER TABLE … ADD IF NOT EXISTS PARTITION … LOCATION`` or ``… PARTITION … SET LOCATION`` on moto's Glue."""
    assert isinstance(tree, exp.Alter), tree.sql("hive")
    table = tree.this.name
    [action] = tree.args["actions"]
    if isinstance(action, exp.AddPartition):
        spec, location = equalities(action.this), action.args["location"].this.name
    else:
        assert isinstance(action, exp.AlterSet) and tree.this.args.get("partition") is not None, tree.sql("hive")
        spec, location = equalities(tree.this.args["partition"]), action.args["location"].name
    values = [spec[k] for k in PARTITION_KEYS]
    partition = {"Values": values, "StorageDescriptor": {"Location": location}}
    existing = glue.batch_get_partition(DatabaseName=database, TableName=table, PartitionsToGet=[{"Values": values}])
    if not existing["Partitions"]:
        if isinstance(action, exp.AddPartition):
            glue.create_partition(DatabaseName=database, TableName=table, PartitionInput=partition)
            return
        raise AssertionError(f"SET LOCATION on a partition that does not exist: {values}")  # Athena fails it too
    if not isinstance(action, exp.AddPartition):  # ADD IF NOT EXISTS leaves an existing partition alone
        glue.update_partition(
            DatabaseName=database, TableName=table, PartitionValueList=values, PartitionInput=partition
        )


class EmulatedAthena:
    """``run_sql`` for ``compact_with_athena``: ``(columns, rows)`` per statement; every statement is logged."""

    def __init__(self, s3: Any, bucket: str, glue: Any, database: str = DATABASE) -> None:
        self.s3, self.bucket, self.glue, self.database = s3, bucket, glue, database
        self.sql: list[str] = []

    def __call__(self, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        tree = parse_athena(sql)  # what Athena would refuse fails the test here
        self.sql.append(sql)
        if sql.startswith("UNLOAD"):
            query, location = parse_unload(sql)
            self._unload(query, location)
        elif isinstance(tree, exp.Alter):
            apply_ddl(self.glue, self.database, tree)
        elif isinstance(tree, exp.Select) and [c.alias_or_name for c in tree.expressions][:2] == ["account", "region"]:
            return ["account", "region", "key", "sha256"], self._record_set(tree)
        else:
            raise AssertionError(f"unexpected statement: {sql[:200]}")
        return [], []

    @property
    def partitions(self) -> dict[tuple[str, str, str], str]:
        """The compacted table's partitions in the catalog: (account, region, date) -> location."""
        pages = self.glue.get_paginator("get_partitions").paginate(
            DatabaseName=self.database, TableName=COMPACTED_TABLE
        )
        return {
            tuple(p["Values"]): p["StorageDescriptor"]["Location"]  # type: ignore[misc]
            for page in pages
            for p in page["Partitions"]
        }

    def _records(self, query: exp.Expression, partition: bool = False) -> list[dict[str, Any]]:
        """The JSON records of the query's day (and, with ``partition``, its account and region), written before
        its cutoff."""
        where = equalities(query)
        day, cutoff = where["date"], cutoff_of(query)
        account, region = (where["account"], where["region"]) if partition else (None, None)
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

    def _record_set(self, query: exp.Expression) -> list[tuple[Any, ...]]:
        import json

        rows = []
        for found in self._records(query):
            body = self.s3.get_object(Bucket=self.bucket, Key=found["key"])["Body"].read()
            rows.append((found["account"], found["region"], found["key"], json.loads(body).get("sha256")))
        return rows

    def _unload(self, query: exp.Expression, location: str) -> None:
        bucket, prefix = location.removeprefix("s3://").split("/", 1)
        found = self._records(query, partition=True)
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
