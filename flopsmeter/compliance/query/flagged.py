"""The flagged sets of the splitting presets, as values: jobs of one group, each below the line, together above it
(the report lists them for its period)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from flopsmeter.compliance.query.cache import run_duckdb
from flopsmeter.compliance.query.presets import Preset, preset_sql
from flopsmeter.compliance.query.splitting import BY_PACKAGE_GROUP, BY_PRINCIPAL_BASE_MODEL, SPLIT_FLAG


@dataclass(frozen=True)
class SplitSet:
    """A flagged set: jobs of one group, each below the line, together above it."""

    grouping: str  # "principal-base-model" or "package-group"
    group: str  # "principal · base model", or the package group ARN
    jobs: int
    total_flops: float
    threshold: float
    ratio: float


def flagged_sets(root: Path, *, since: str | None = None, until: str | None = None) -> list[SplitSet]:
    """The flagged sets among the records under ``root`` (a mirror or a flat folder), both groupings."""
    found = []
    for grouping, preset in (
        (BY_PRINCIPAL_BASE_MODEL, Preset(by_principal=True, since=since, until=until)),
        (BY_PACKAGE_GROUP, Preset(by_package_group=True, since=since, until=until)),
    ):
        result = run_duckdb(root, preset_sql(preset))
        for values in result.rows:
            row = dict(zip(result.columns, values, strict=True))
            if row["flag"] != SPLIT_FLAG:
                continue
            label = " · ".join(str(row[name]) for _, name in grouping.columns)
            found.append(
                SplitSet(grouping.name, label, row["jobs"], row["total_flops"], row["threshold"], row["ratio"])
            )
    return found
