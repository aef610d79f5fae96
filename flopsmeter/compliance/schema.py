"""The ``records`` table's columns, derived from the pydantic model so they cannot drift from the records.

Top-level columns are the ``AuditRecord`` fields, nested as structs (FLOP counts ``DOUBLE``; timestamps
``TIMESTAMP``, UTC), plus the partition columns ``account``, ``region`` and ``date``. The Glue table follows the
same field names (tests/infra/test_query_alignment.py), so one SQL subset runs on DuckDB and Athena.
"""

from __future__ import annotations

import types
import typing
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from flopsmeter.audit.record import AuditRecord

PARTITION_COLUMNS = {"account": "VARCHAR", "region": "VARCHAR", "date": "DATE"}
_SCALARS: dict[Any, str] = {bool: "BOOLEAN", int: "BIGINT", float: "DOUBLE", datetime: "TIMESTAMP"}


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
    return _SCALARS.get(annotation, "VARCHAR")


def record_columns() -> dict[str, str]:
    """Top-level column name -> DuckDB type, in AuditRecord field order."""
    return {name: duckdb_type(f.annotation) for name, f in AuditRecord.model_fields.items()}


def all_columns() -> dict[str, str]:
    """The ``records`` table: the record's columns, then the partition columns."""
    return {**record_columns(), **PARTITION_COLUMNS}


def column_list(columns: dict[str, str]) -> str:
    return ", ".join(f'"{name}"' for name in columns)


def struct_spec(columns: dict[str, str]) -> str:
    """DuckDB's ``columns={...}`` argument of read_json / read_csv."""
    return "{" + ", ".join(f"'{n}': '{t}'" for n, t in columns.items()) + "}"
