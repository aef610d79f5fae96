"""The query presets (``--exceeding``, ``--job``, ``--since``/``--until``, ``--by-base-model``, and the splitting
presets ``--by-principal`` / ``--by-package-group`` / ``--by-sweep`` of ``splitting``) as SQL.

The SQL uses only the subset shared by DuckDB and Athena: dotted struct access, ``filter(list, c -> …)[1]``,
``CAST``, ``substr``, ``replace``, aggregates, ``ORDER BY``/``LIMIT`` (see docs/audit.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flopsmeter.audit.keys import valid_job_name
from flopsmeter.audit.record import AuditRecord
from flopsmeter.compliance.errors import QueryError
from flopsmeter.compliance.query.current import current_records
from flopsmeter.compliance.query.splitting import (
    BY_PACKAGE_GROUP,
    BY_PRINCIPAL_BASE_MODEL,
    Engine,
    Grouping,
    by_sweep,
    splitting_sql,
)


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
    deadlines: bool = False  # open Art. 52(1) notification clocks (issue 16; compliance.query.deadlines)
    by_lineage: bool = False  # one row per modified model: lineage compute and energy (issue 16)
    until: str | None = None  # jobs that ended before this (UTC), with ``since`` the window of a splitting preset
    by_principal: bool = False  # totals per (principal, base model), splitting flagged
    by_package_group: bool = False  # totals per model package group, splitting flagged
    accounts: tuple[str, ...] = ()  # organization mode: only these accounts (flopsmeter.compliance.accounts)
    by_sweep: bool = False  # totals per (hyper-parameter tuning sweep, who launched it), splitting flagged


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
    "energy.kwh AS energy_kwh",  # issue 16: estimated energy of the job (NULL: unknown or not recorded)
    # issue 23: an addendum's row names the record it re-assesses (a parent recorded late is counted now; the
    # original stays as written and is listed too): the job's current figure is the addendum's
    "addendum.of_record_key AS re_assesses",
)


def normalise_since(value: str) -> str:
    """A date or date-time literal safe to inline (``YYYY-MM-DD`` or ``YYYY-MM-DDTHH:MM:SS``), else QueryError.

    Compared with ``job.end_time`` as is: DuckDB casts it to the column's TIMESTAMP; on Athena the column is
    the record's ISO 8601 text (``2026-05-01T12:00:00Z``), which orders the same way against this literal."""
    text = value.strip().replace("T", " ").removesuffix("Z")
    for fmt, out in (
        ("%Y-%m-%d", "%Y-%m-%d"),
        ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S"),
        ("%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:00"),
    ):
        try:
            return datetime.strptime(text, fmt).strftime(out)
        except ValueError:
            continue
    raise QueryError(f"--since/--until want a date like 2026-05-01 (UTC), got {value[:40]!r}")


def _grouping(preset: Preset, engine: Engine) -> Grouping | None:
    """The splitting grouping the preset asks for (at most one), else None."""
    chosen = [
        grouping
        for wanted, grouping in (
            (preset.by_principal, BY_PRINCIPAL_BASE_MODEL),
            (preset.by_package_group, BY_PACKAGE_GROUP),
            (preset.by_sweep, by_sweep(engine)),
        )
        if wanted
    ]
    if len(chosen) > 1:
        raise QueryError("give one of --by-principal, --by-package-group, --by-sweep")
    return chosen[0] if chosen else None


def preset_sql(preset: Preset, *, table: str = "records", engine: Engine = "duckdb") -> str:
    """The SQL a preset stands for, for ``engine``; it uses only the subset shared by DuckDB and Athena, but for
    ``splitting.first_element``."""
    if preset.deadlines or preset.by_lineage:
        from flopsmeter.compliance.query.deadlines import by_lineage_sql, deadlines_sql

        sql = deadlines_sql(table) if preset.deadlines else by_lineage_sql(table)
        return sql + (f" LIMIT {int(preset.limit)}" if preset.limit else "")
    where = []
    if preset.exceeding:
        where.append("outcome = 'exceeds'")
    if preset.job is not None:
        if not valid_job_name(preset.job):
            raise QueryError(f"not a SageMaker training job name: {preset.job[:80]!r}")
        where.append(f"job.name = '{preset.job}'")
    if preset.accounts:
        if not all(a.isdigit() and len(a) == 12 for a in preset.accounts):
            raise QueryError("an account filter wants 12-digit account ids")
        where.append(f"account IN ({', '.join(repr(a) for a in sorted(preset.accounts))})")
    if preset.since is not None:
        where.append(f"job.end_time >= '{normalise_since(preset.since)}'")  # no per-row cast: see normalise_since
    if preset.until is not None:
        where.append(f"job.end_time < '{normalise_since(preset.until)}'")
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    limit = f" LIMIT {int(preset.limit)}" if preset.limit else ""
    grouping = _grouping(preset, engine)
    if grouping is not None:
        return splitting_sql(grouping, where, table=table) + limit
    if preset.by_base_model:
        return (
            "SELECT coalesce(base_model.model_id, '(unknown)') AS base_model, count(*) AS jobs, "
            "sum(flops.classified_flops) AS total_flops, max(lineage.cumulative_flops) AS max_cumulative_flops, "
            "sum(CASE WHEN outcome = 'exceeds' THEN 1 ELSE 0 END) AS exceeding, "
            "sum(CASE WHEN outcome = 'approaching' THEN 1 ELSE 0 END) AS approaching, "
            "sum(energy.kwh) AS energy_kwh "
            f"FROM {current_records(table, where)} GROUP BY 1 ORDER BY total_flops DESC{limit}"
        )
    source = table + clause
    if limit:  # pick the rows first, then compute the listed columns for those only (not for every record)
        # ordered by the text form: DuckDB 1.5.5 fails (internal error) pushing a top-N filter into a struct's
        # TIMESTAMP field of a large table
        source = (
            f"(SELECT * FROM {table}{clause} ORDER BY CAST(job.end_time AS VARCHAR) DESC, job.name{limit}) AS latest"
        )
    return f"SELECT {', '.join(LIST_COLUMNS)} FROM {source} ORDER BY end_time DESC, job{limit}"
