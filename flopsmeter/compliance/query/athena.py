"""A query on the deployed Glue table through Athena, timed like the local ones."""

from __future__ import annotations

from typing import Any

from flopsmeter.aws.athena import AthenaTarget, Polling, run_query
from flopsmeter.compliance.query.render import Result


def run_athena(athena: Any, sql: str, target: AthenaTarget, polling: Polling | None = None) -> Result:
    """``sql`` on the deployed Glue table through Athena."""
    import time

    started = time.perf_counter()
    columns, rows = run_query(athena, sql, target, polling)
    return Result(columns, rows, time.perf_counter() - started)
