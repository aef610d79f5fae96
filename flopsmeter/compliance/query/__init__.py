"""``flopsmeter query``: SQL over the audit records, DuckDB locally or Athena on the deployed Glue table.

The records are exposed as a table named ``records`` (``schema``); presets stand for common questions
(``presets``); locally, DuckDB reads a cache refreshed from the record files (``cache``); ``render`` prints the
result as a table, JSON or CSV; Athena runs through ``flopsmeter.aws.athena`` (``athena``). ``run(QueryRequest)``
is the whole use case the CLI calls (``usecase``).
"""

from __future__ import annotations

from flopsmeter.compliance.errors import QueryError
from flopsmeter.compliance.query.athena import run_athena
from flopsmeter.compliance.query.cache import CACHE_NAME, connect, run_duckdb, run_duckdb_csv
from flopsmeter.compliance.query.presets import Preset, preset_sql, ratio_of
from flopsmeter.compliance.query.render import Result, render
from flopsmeter.compliance.query.usecase import AthenaOptions, QueryAnswer, QueryRequest, run
from flopsmeter.compliance.schema import PARTITION_COLUMNS, record_columns

__all__ = [
    "AthenaOptions",
    "QueryAnswer",
    "QueryRequest",
    "CACHE_NAME",
    "PARTITION_COLUMNS",
    "Preset",
    "QueryError",
    "Result",
    "connect",
    "preset_sql",
    "ratio_of",
    "record_columns",
    "render",
    "run",
    "run_athena",
    "run_duckdb",
    "run_duckdb_csv",
]
