"""Query presets of issue 16: open Art. 52(1) notification clocks (``--deadlines``) and one row per modified model
with its lineage's compute and energy (``--by-lineage``).

SQL in the subset DuckDB and Athena share (see ``presets``). The clocks come back with their due date; how many
days are left is added here, against the caller's clock (date arithmetic differs between the engines). A record
cannot say that the Commission was notified, so a clock stays listed, as ``overdue`` once its due date has passed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flopsmeter.compliance.query.current import current_records
from flopsmeter.compliance.query.render import Result
from flopsmeter.domain.deadlines import due_text
from flopsmeter.domain.obligations import clock_state, days_left

NOTIFICATION = "commission_notification"

# One clock per crossing: the records of a lineage that continue after the crossing carry the same moment.
DEADLINES_SQL = (
    "SELECT obligations.crossed_in_job AS crossed_in_job, "
    "min(CAST(obligations.notification_due_at AS VARCHAR)) AS due_at, "
    "min(CAST(obligations.crossed_at AS VARCHAR)) AS crossed_at, "
    "max(base_model.model_id) AS base_model, "
    "max(lineage.cumulative_flops) AS cumulative_flops, "
    f"max(filter(obligations.items, i -> i.obligation_id = '{NOTIFICATION}')[1].status) AS status, "
    "count(*) AS records "
    "FROM {table} WHERE obligations.notification_due_at IS NOT NULL "
    "GROUP BY obligations.crossed_in_job ORDER BY due_at, crossed_in_job"
)

# A modified model is a job no other job continues from; its current record (compliance.query.current: a job
# re-assessed by an addendum once, at its current figure) carries the lineage's totals.
NO_CHILD = "job.name NOT IN (SELECT lineage.parent_job FROM {table} WHERE lineage.parent_job IS NOT NULL)"
BY_LINEAGE_SQL = (
    "SELECT job.name AS model_job, base_model.model_id AS base_model, lineage.cumulative_flops AS cumulative_flops, "
    "energy.lineage_kwh AS lineage_energy_kwh, energy.kwh AS last_job_energy_kwh, outcome, "
    "CAST(obligations.notification_due_at AS VARCHAR) AS notification_due_at "
    "FROM {current} ORDER BY cumulative_flops DESC, model_job"
)


def deadlines_sql(table: str = "records") -> str:
    return DEADLINES_SQL.format(table=table)


def by_lineage_sql(table: str = "records") -> str:
    return BY_LINEAGE_SQL.format(current=current_records(table, [NO_CHILD.format(table=table)]))


def parse_moment(value: Any) -> datetime:
    """A timestamp as DuckDB (``2026-03-26 22:12:13.8``) or Athena (ISO 8601 text, ``Z``) returns it, in UTC."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    moment = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def with_days_left(result: Result, now: datetime) -> Result:
    """The deadlines result with ``due_at`` in ISO 8601 UTC (``Z``), then ``due`` (Brussels time and UTC, each with
    its zone), ``days_left`` and ``state`` (``open`` / ``overdue``: a clock already past is never open)."""
    at = result.columns.index("due_at")
    rows = []
    for row in result.rows:
        due = parse_moment(row[at])
        shown = due.isoformat().replace("+00:00", "Z")
        extra = (due_text(due), round(days_left(due, now), 2), clock_state(due, now))
        rows.append((*row[:at], shown, *extra, *row[at + 1 :]))
    columns = [*result.columns[: at + 1], "due", "days_left", "state", *result.columns[at + 1 :]]
    return Result(columns, rows, result.seconds)


def with_reevaluated_clocks(result: Result, clocks: list[dict[str, Any]], policy: str) -> Result:
    """The stored clocks (``opened_by`` = ``record``) and those a re-evaluation under ``policy`` opens (issue 23):
    one per crossing, the earliest due date; a clock the records already hold at that date is not repeated."""
    stored = {(row[0], str(parse_moment(row[1]))) for row in result.rows}
    earliest: dict[str, dict[str, Any]] = {}
    for clock in clocks:
        job = clock["crossed_in_job"]
        if job not in earliest or parse_moment(clock["due_at"]) < parse_moment(earliest[job]["due_at"]):
            earliest[job] = clock
    rows = [(*row, "record") for row in result.rows]
    for job, c in sorted(earliest.items(), key=lambda item: parse_moment(item[1]["due_at"])):
        if (job, str(parse_moment(c["due_at"]))) in stored:
            continue
        values = {**c, "records": c.get("records", 1)}
        rows.append((*(values.get(name) for name in result.columns), f"reevaluate:{policy}"))
    rows.sort(key=lambda row: (parse_moment(row[1]), str(row[0])))
    return Result([*result.columns, "opened_by"], rows, result.seconds)
