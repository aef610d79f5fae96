"""Athena query runner: StartQueryExecution -> GetQueryExecution polling -> GetQueryResults (all pages).

Used by ``flopsmeter query --engine athena`` and by the compaction step (``flopsmeter.compliance.compaction``).
Failures come back as ``AthenaError`` (``flopsmeter.errors``): a failed or cancelled query with Athena's reason
(permanent), a query still running after the timeout (transient), or the AWS error (named by operation and code,
transient or permanent by ``flopsmeter.aws.errors``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from flopsmeter.aws.errors import translate
from flopsmeter.errors import PermanentAthenaError, TransientAthenaError

TERMINAL_STATES = frozenset({"SUCCEEDED", "FAILED", "CANCELLED"})


@dataclass(frozen=True)
class AthenaTarget:
    """Where a query runs: the workgroup, the Glue database and (if the workgroup does not enforce one) the
    results location."""

    workgroup: str
    database: str
    output_location: str | None = None


@dataclass(frozen=True)
class Polling:
    every_seconds: float = 1.0
    timeout_seconds: float = 300.0
    sleep: Callable[[float], None] = time.sleep


def start_query(athena: Any, sql: str, target: AthenaTarget) -> str:
    request: dict[str, Any] = {
        "QueryString": sql,
        "WorkGroup": target.workgroup,
        "QueryExecutionContext": {"Database": target.database},
    }
    if target.output_location:
        request["ResultConfiguration"] = {"OutputLocation": target.output_location}
    return str(_call(athena, "start_query_execution", **request)["QueryExecutionId"])


def wait_for(athena: Any, execution_id: str, polling: Polling) -> None:
    """Return when the query succeeded; AthenaError when it failed, was cancelled or is still running."""
    waited = 0.0
    while True:
        status = _call(athena, "get_query_execution", QueryExecutionId=execution_id)["QueryExecution"]["Status"]
        state = status["State"]
        if state in TERMINAL_STATES:
            break
        if waited >= polling.timeout_seconds:
            raise TransientAthenaError(
                f"Athena query {execution_id} still {state} after {polling.timeout_seconds:.0f} s"
            )
        polling.sleep(polling.every_seconds)
        waited += polling.every_seconds
    if state != "SUCCEEDED":
        raise PermanentAthenaError(
            f"Athena query {execution_id} {state}: {status.get('StateChangeReason', 'no reason given')}"
        )


def fetch_results(athena: Any, execution_id: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Column names and rows (strings as Athena returns them) of a finished query, every page."""
    columns: list[str] = []
    rows: list[tuple[Any, ...]] = []
    kwargs: dict[str, Any] = {"QueryExecutionId": execution_id}
    first = True
    while True:
        page = _call(athena, "get_query_results", **kwargs)
        if not columns:
            columns = [c["Name"] for c in page["ResultSet"]["ResultSetMetadata"]["ColumnInfo"]]
        data = page["ResultSet"]["Rows"]
        if first and data:
            data = data[1:]  # the header row
        first = False
        rows.extend(tuple(cell.get("VarCharValue") for cell in row["Data"]) for row in data)
        if not page.get("NextToken"):
            return columns, rows
        kwargs["NextToken"] = page["NextToken"]


def run_query(
    athena: Any, sql: str, target: AthenaTarget, polling: Polling | None = None
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run ``sql`` and return its columns and rows."""
    execution_id = start_query(athena, sql, target)
    wait_for(athena, execution_id, polling or Polling())
    return fetch_results(athena, execution_id)


def _call(athena: Any, operation: str, **kwargs: Any) -> dict[str, Any]:
    try:
        return dict(getattr(athena, operation)(**kwargs))
    except (ClientError, BotoCoreError) as err:
        raise translate(
            err, f"Athena {operation}", transient=TransientAthenaError, permanent=PermanentAthenaError
        ) from err
