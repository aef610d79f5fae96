"""Every statement the code sends to Athena, parsed by Athena's grammar (``tests.support.athena_sql``: sqlglot's Hive
dialect for DDL with Athena's DDL reserved words, Trino for DML, Athena's UNLOAD frame): the query presets on the
records and over the compacted copies, the compacted-partition listing, and the compaction function's record set,
UNLOAD and ALTER TABLE. And the grammar refuses what Athena refuses, the compaction DDL of before included."""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, date, datetime

import pytest

from flopsmeter.compliance.compaction.athena import (
    CompactionSettings,
    point_partition_sql,
    record_set_sql,
    unload_sql,
)
from flopsmeter.compliance.layout import Partition
from flopsmeter.compliance.query import Preset, preset_sql
from flopsmeter.compliance.query.compacted import COMBINED, compacted_cte, partitions_sql
from tests.support.athena_sql import AthenaSyntaxError, parse_athena

ACCOUNT = "123456789012"
PRESETS = [
    Preset(),
    Preset(exceeding=True, limit=5),
    Preset(job="llama-ft-001"),
    Preset(since="2026-05-01", until="2026-06-01 12:00"),
    Preset(by_base_model=True),
    Preset(deadlines=True),
    Preset(by_lineage=True, limit=3),
    Preset(by_principal=True, since="2026-05-01"),
    Preset(by_package_group=True),
    Preset(by_sweep=True),
    Preset(exceeding=True, accounts=(ACCOUNT, "210987654321")),
]
PARTITION = Partition(ACCOUNT, "eu-west-1", date(2026, 3, 7))
CUTOFF = datetime(2026, 3, 10, 0, 20, tzinfo=UTC)


def test_the_presets_cover_every_preset_option() -> None:
    used = {f.name for f in fields(Preset) for p in PRESETS if getattr(p, f.name) != getattr(Preset(), f.name)}
    assert used == {f.name for f in fields(Preset)}


@pytest.mark.parametrize("preset", PRESETS, ids=repr)
def test_every_preset_athena_runs_parses_as_trino(preset: Preset) -> None:
    parse_athena(preset_sql(preset, engine="athena"))
    partitions = [(ACCOUNT, "eu-west-1", "2026-03-01"), (ACCOUNT, "eu-west-1", "2026-03-02")]
    parse_athena(compacted_cte(partitions) + preset_sql(preset, table=COMBINED, engine="athena"))


def test_the_compacted_partition_listing_and_an_empty_one_parse() -> None:
    parse_athena(partitions_sql())
    parse_athena(compacted_cte([]) + preset_sql(Preset(exceeding=True), table=COMBINED, engine="athena"))


def test_every_compaction_statement_parses_by_its_dialect() -> None:
    settings = CompactionSettings()
    parse_athena(record_set_sql(settings, PARTITION.day, CUTOFF))
    parse_athena(unload_sql(settings, PARTITION, "s3://results/compaction-staging/x/", CUTOFF))
    for statement in point_partition_sql(settings, PARTITION, "s3://audit/compacted/v1/x/gen-000001/"):
        parse_athena(statement)


@pytest.mark.parametrize(
    ("sql", "why"),
    [
        (  # the compaction DDL before issue 24: double quotes and an unescaped `date`
            "ALTER TABLE \"records_compacted\" PARTITION (account = '1', region = 'r', date = '2026-03-07') "
            "SET LOCATION 's3://b/p/'",
            "string literal in Hive",
        ),
        ("ALTER TABLE `t` ADD PARTITION (`a` = '1', date = '2026-03-07') LOCATION 's3://b/p/'", "reserved"),
        ("UNLOAD (SELECT 1) TO 's3://b/p/' WITH (format = 'PARQUET', speed = 'fast')", "no property"),
        ("UNLOAD (SELECT 1) TO 'b/p/' WITH (format = 'PARQUET')", "TO 's3://"),
        ("SELECT 1; SELECT 2", "one statement"),
        ("SELECT * FROM records WHERE", "trino does not parse"),
        ("VACUUM records", "not a statement"),
    ],
)
def test_the_grammar_refuses_what_athena_refuses(sql: str, why: str) -> None:
    with pytest.raises(AthenaSyntaxError, match=why):
        parse_athena(sql)
