"""The Athena compaction body against a moto bucket and a scripted Athena: the SQL it sends, the manifest it
writes, idempotence, late records, refusals."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from moto import mock_aws

from flopsmeter.aws.store import AuditStore
from flopsmeter.compliance.compaction.athena import CompactionSettings, compact_with_athena
from flopsmeter.compliance.compaction.manifest import parse_manifest
from tests.support.trail import BUCKET, make_bucket

NOW = datetime(2026, 3, 10, 3, tzinfo=UTC)
PREFIX = "records/v1/account=1/region=eu-west-1/date=2026-03-07/"


class ScriptedAthena:
    """Answers the record-set query from ``records`` (day -> rows); UNLOAD writes one object; logs every SQL."""

    def __init__(self, store: AuditStore, records: dict[str, list[tuple[str, str, str, str]]]) -> None:
        self.store, self.records, self.sql = store, records, []

    def __call__(self, sql: str):
        self.sql.append(sql)
        if sql.startswith("SELECT account"):
            day = sql.split("WHERE date = '")[1][:10]
            return ["account", "region", "key", "sha256"], self.records.get(day, [])
        if sql.startswith("UNLOAD"):
            location = sql.split(" TO '")[1].split("'")[0]
            key = location.removeprefix(f"s3://{BUCKET}/") + "20260310_000000_00001_abcde"
            self.store.put_immutable(key, f"parquet of {location}".encode(), content_type="application/octet-stream")
        return [], []


@pytest.fixture
def store():
    with mock_aws():
        s3, _kms = make_bucket()
        yield AuditStore(s3, BUCKET)


def rows(*names):
    return [("1", "eu-west-1", f"{PREFIX}{n}.json", f"sha-{n}") for n in names]


def test_a_settled_day_is_unloaded_with_a_manifest_and_its_partition_pointed_at_it(store):
    athena = ScriptedAthena(store, {"2026-03-07": rows("a", "b")})
    run = compact_with_athena(athena, store, CompactionSettings(lookback_days=3), now=NOW)
    assert [(r.partition.path, r.generation, r.rows) for r in run.written] == [
        ("account=1/region=eu-west-1/date=2026-03-07", 1, 2)
    ]
    days = [s.split("WHERE date = '")[1][:10] for s in athena.sql if s.startswith("SELECT account")]
    assert days == ["2026-03-05", "2026-03-06", "2026-03-07"]  # settled: two days before 2026-03-10
    unload = next(s for s in athena.sql if s.startswith("UNLOAD"))
    assert "\"$file_modified_time\" < from_iso8601_timestamp('2026-03-10T03:00:00Z')" in unload
    assert (
        "TO 's3://flopsmeter-audit-test/compacted/v1/account=1/region=eu-west-1/date=2026-03-07/gen-000001/'" in unload
    )
    assert any("SET LOCATION" in s and "gen-000001" in s for s in athena.sql)
    key = "compacted/v1/account=1/region=eu-west-1/date=2026-03-07/manifest-000001.json"
    manifest = parse_manifest(key, store.get(key).body)
    assert list(manifest.records) == [(f"{PREFIX}a.json", "sha-a"), (f"{PREFIX}b.json", "sha-b")]
    assert len(manifest.data) == 1 and manifest.engine == "athena"


def test_a_rerun_changes_nothing_and_a_late_record_makes_generation_two(store):
    athena = ScriptedAthena(store, {"2026-03-07": rows("a", "b")})
    compact_with_athena(athena, store, now=NOW)
    again = compact_with_athena(athena, store, now=NOW)
    assert again.written == [] and not any(s.startswith("UNLOAD") for s in athena.sql[-8:])
    athena.records["2026-03-07"] = rows("a", "b", "late")
    late = compact_with_athena(athena, store, now=NOW)
    assert [(r.generation, r.rows) for r in late.written] == [(2, 3)]


def test_data_left_by_an_interrupted_run_is_skipped_not_overwritten(store):
    store.put_immutable(
        "compacted/v1/account=1/region=eu-west-1/date=2026-03-07/gen-000001/orphan", b"x", content_type="x/y"
    )
    run = compact_with_athena(ScriptedAthena(store, {"2026-03-07": rows("a")}), store, now=NOW)
    assert [r.generation for r in run.written] == [2]


def test_records_gone_since_the_last_compaction_are_reported_not_hidden(store):
    athena = ScriptedAthena(store, {"2026-03-07": rows("a", "b")})
    compact_with_athena(athena, store, now=NOW)
    athena.records["2026-03-07"] = rows("a")
    run = compact_with_athena(athena, store, now=NOW)
    assert run.written == [] and "no longer present" in run.errors[0][1]


def test_literals_are_quoted():
    from flopsmeter.compliance.compaction.athena import point_partition_sql
    from flopsmeter.compliance.layout import Partition

    sql = point_partition_sql(CompactionSettings(), Partition("1", "x'y", datetime(2026, 3, 7).date()), "s3://b/p/")
    assert "region = 'x''y'" in sql[0]
