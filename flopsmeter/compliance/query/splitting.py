"""Splitting presets: compute totals per (principal, base model), per model package group and per tuning sweep over
a window.

A modification split into jobs that each stay below the line is still one modification when the jobs build on one
another; lineage (``lineage.cumulative_flops``) adds them up when it can see the chain. These presets show what
lineage cannot: jobs by the same person on the same base model, or registered into the same model package group,
whose own FLOPs add up to more than the threshold although none of them exceeds on its own. Such a set is
flagged (``flag``); whether it is one modification is for the compliance officer to judge.

Per sweep (``by_sweep``): the trials of one hyper-parameter tuning job (the ``hyper-parameter-tuning-job`` link of
``cloudtrail.chain``, captured at launch), with the person who launched the sweep. The trials are usually
alternatives, of which one becomes the model; their sum is the sweep's compute, which a compliance officer may be
asked for; the flag says the same as for the other groupings.

The SQL uses the subset shared by DuckDB and Athena (see ``presets``), except for the one place they differ: the
first element of a possibly empty array (``first_element``). The threshold of a group is the lowest primary threshold
among its jobs (the strictest).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from flopsmeter.compliance.query.current import current_records

SPLIT_FLAG = "split: each below, together above"
Engine = Literal["duckdb", "athena"]
TUNING_JOB_LINK = "hyper-parameter-tuning-job"  # audit.record.LaunchLink.kind of a tuning job


def first_element(array_sql: str, engine: Engine) -> str:
    """The first element of an array, NULL when it is empty: DuckDB's ``[1]`` is NULL out of bounds, Athena's
    (Trino's) fails the query, where ``element_at`` is NULL."""
    return f"element_at({array_sql}, 1)" if engine == "athena" else f"({array_sql})[1]"


@dataclass(frozen=True)
class Grouping:
    name: str
    columns: tuple[tuple[str, str], ...]  # (SQL expression, column name)
    where: str | None = None  # rows this grouping needs (e.g. a package group)


BY_PRINCIPAL_BASE_MODEL = Grouping(
    "principal-base-model",
    (
        ("coalesce(cloudtrail.principal_arn, '(unknown)')", "principal"),
        ("coalesce(base_model.model_id, '(unknown)')", "base_model"),
    ),
)
BY_PACKAGE_GROUP = Grouping(
    "package-group",
    (("lineage.model_package_group_arn", "model_package_group"),),
    where="lineage.model_package_group_arn IS NOT NULL",
)


def by_sweep(engine: Engine = "duckdb") -> Grouping:
    """Totals per (tuning sweep, person who launched it)."""
    sweep = first_element(f"filter(cloudtrail.chain, l -> l.kind = '{TUNING_JOB_LINK}')", engine) + ".arn"
    return Grouping(
        "sweep",
        ((sweep, "sweep"), ("coalesce(cloudtrail.principal_arn, '(unknown)')", "principal")),
        where=f"{sweep} IS NOT NULL",
    )


def splitting_sql(grouping: Grouping, where: list[str], *, table: str = "records") -> str:
    """Totals per group, the strictest threshold, and the splitting flag; flagged groups first."""
    conditions = [*where, *([grouping.where] if grouping.where else [])]
    names = [name for _, name in grouping.columns]
    inner = (
        f"SELECT {', '.join(f'{expr} AS {name}' for expr, name in grouping.columns)}, "
        "flops.classified_flops AS own_flops, outcome, "
        "filter(classifications, c -> c.policy = primary_policy)[1].threshold AS threshold "
        f"FROM {current_records(table, conditions)}"
    )
    exceeding = "sum(CASE WHEN outcome = 'exceeds' THEN 1 ELSE 0 END)"
    return (
        f"SELECT {', '.join(names)}, count(*) AS jobs, sum(own_flops) AS total_flops, "
        "max(own_flops) AS largest_job_flops, min(threshold) AS threshold, "
        "sum(own_flops) / min(threshold) AS ratio, "
        f"{exceeding} AS exceeding, "
        f"CASE WHEN count(*) > 1 AND {exceeding} = 0 AND sum(own_flops) > min(threshold) "
        f"THEN '{SPLIT_FLAG}' ELSE '' END AS flag "
        f"FROM ({inner}) AS jobs_in_window GROUP BY {', '.join(names)} ORDER BY flag DESC, ratio DESC"
    )
