"""Athena presets over the compacted copies: Parquet for every compacted partition, JSON for every other.

``records_compacted`` holds, per date partition, the newest generation the compaction function wrote
(``infra/constructs/compaction.py``); the partitions it has not reached (the newest days, or days a failed run
left) are read from ``records``. ``partitions_sql`` lists the compacted partitions (Athena's ``"<table>$partitions"``
metadata table, no data scanned); ``compacted_cte`` turns them into ``WITH all_records AS (Parquet of those
UNION ALL JSON of the others)``, and the preset runs on ``all_records`` (``flopsmeter query --engine athena
--compacted``). Each (account, region)'s compacted days are written as date ranges, so the statement stays short.

A record that reaches a partition after its compaction (later than the compaction's seven-day lookback) is in
``records`` only: it is not in this view until a compaction run takes it in, and ``flopsmeter verify`` counts it as
not yet compacted. The plain presets (without ``--compacted``) read every JSON record.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date, timedelta
from typing import Any

from flopsmeter.compliance.errors import QueryError
from flopsmeter.compliance.schema import PARTITION_COLUMNS, column_list, record_columns

COMBINED = "all_records"
_ACCOUNT = re.compile(r"^[0-9]{12}$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-[0-9]$")


def partitions_sql(compacted_table: str = "records_compacted") -> str:
    """The compacted partitions: one row (account, region, date) each."""
    return f'SELECT account, region, date FROM "{compacted_table}$partitions"'


def day_ranges(partitions: Iterable[Sequence[Any]]) -> dict[tuple[str, str], list[tuple[date, date]]]:
    """Per (account, region), its partitions' days merged into inclusive ranges of consecutive days (sorted).
    A value that is not an account id, a region or an ISO date raises QueryError (they are inlined in SQL)."""
    days: dict[tuple[str, str], set[date]] = defaultdict(set)
    for account, region, day in partitions:
        account, region = str(account), str(region)
        if not (_ACCOUNT.match(account) and _REGION.match(region)):
            raise QueryError(f"not a compacted partition: account={account[:20]!r} region={region[:20]!r}")
        try:
            days[(account, region)].add(day if isinstance(day, date) else date.fromisoformat(str(day)))
        except ValueError:
            raise QueryError(f"not a partition date: {str(day)[:20]!r}") from None
    ranges: dict[tuple[str, str], list[tuple[date, date]]] = {}
    for owner, found in sorted(days.items()):
        merged: list[tuple[date, date]] = []
        for day in sorted(found):
            if merged and day == merged[-1][1] + timedelta(days=1):
                merged[-1] = (merged[-1][0], day)
            else:
                merged.append((day, day))
        ranges[owner] = merged
    return ranges


def compacted_cte(
    partitions: Iterable[Sequence[Any]],
    *,
    records_table: str = "records",
    compacted_table: str = "records_compacted",
    columns: Sequence[str] | None = None,
) -> str:
    """``WITH all_records AS (...)``: the compacted partitions from ``compacted_table``, the rest from
    ``records_table`` (``columns``: the record's columns, default all of them; the partition columns are added)."""
    chosen = list(columns) if columns is not None else list(record_columns())
    selected = column_list(dict.fromkeys([*chosen, *PARTITION_COLUMNS], ""))
    compacted = [
        f"(account = '{account}' AND region = '{region}' AND date BETWEEN '{first}' AND '{last}')"
        for (account, region), spans in day_ranges(partitions).items()
        for first, last in spans
    ]
    json_rows = f"SELECT {selected} FROM {records_table}"
    if compacted:
        json_rows += f" WHERE NOT ({' OR '.join(compacted)})"
    return f"WITH {COMBINED} AS (SELECT {selected} FROM {compacted_table} UNION ALL {json_rows}) "
