"""``flopsmeter query``: SQL over the audit records, DuckDB locally or Athena on the deployed Glue table.

The records are exposed as a table named ``records`` (``schema``); presets stand for common questions
(``presets``); locally, DuckDB reads a cache refreshed from the record files (``cache``); ``render`` prints the
result as a table, JSON or CSV. Athena runs through ``flopsmeter.aws.athena``.
"""

from __future__ import annotations

from typing import Any

from flopsmeter.aws.athena import AthenaTarget, Polling, run_query
from flopsmeter.compliance.query.cache import CACHE_NAME, connect, run_duckdb, run_duckdb_csv
from flopsmeter.compliance.query.presets import Preset, QueryError, preset_sql, ratio_of
from flopsmeter.compliance.query.render import Result, render
from flopsmeter.compliance.schema import PARTITION_COLUMNS, record_columns

__all__ = [
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
    "run_athena",
    "run_duckdb",
    "run_duckdb_csv",
]


def run_athena(athena: Any, sql: str, target: AthenaTarget, polling: Polling | None = None) -> Result:
    """``sql`` on the deployed Glue table through Athena."""
    import time

    started = time.perf_counter()
    columns, rows = run_query(athena, sql, target, polling)
    return Result(columns, rows, time.perf_counter() - started)
