"""Each modification once, as currently assessed: the rows the totals presets add up.

A job may have more than one record: an addendum re-assesses it when a parent's record lands late (issue 23; the
original stays as written), and an AWS Batch service job's record sums its attempts, each of which is a training job
with its own record (issue 26). Listing presets show every record; totals (``--by-base-model``, the splitting
presets, ``--by-lineage``) must count each job once, or a re-assessed job counts twice and a service job's compute
is added to its attempts'. Kept: per job ARN, the record with the largest cumulative figure (then the latest), as
``flopsmeter.compliance.report.current_views`` does; an attempt's record only while its service job has none (an
attempt whose service job is not recorded yet is still counted: never fewer FLOPs than were recorded).
"""

from __future__ import annotations


def current_records(table: str, where: list[str] | None = None) -> str:
    """A derived table of ``table``'s current records (then ``where``, applied to those), in the SQL subset DuckDB
    and Athena share (a window function, ``IN`` over a subquery)."""
    ranked = (
        "SELECT *, row_number() OVER (PARTITION BY job.arn "
        "ORDER BY lineage.cumulative_flops DESC, recorded_at DESC) AS current_rank "
        f"FROM {table}"
    )
    summed_elsewhere = f"SELECT job.arn FROM {table} WHERE batch.role = 'service_job'"
    conditions = [
        "current_rank = 1",
        f"(coalesce(batch.role, '') <> 'attempt' OR batch.service_job_arn NOT IN ({summed_elsewhere}))",
        *(where or []),
    ]
    return f"(SELECT * FROM ({ranked}) AS ranked WHERE {' AND '.join(conditions)}) AS current_records"
