"""The Athena compaction body against moto buckets (the locked audit bucket, a plain staging bucket), moto's Glue
catalog and a scripted Athena (moto's Athena runs no SQL) that parses every statement by Athena's grammar first:
the SQL it sends, the write-once copy out of staging, the manifest it writes, the partition it points, idempotence,
late records, refusals, the time budget, and a run that stopped between its manifest and ALTER TABLE."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime

import boto3
import pytest
from moto import mock_aws

from flopsmeter.aws.glue_catalog import GlueCatalog
from flopsmeter.aws.store import AuditStore
from flopsmeter.compliance.compaction import athena as compaction
from flopsmeter.compliance.compaction.athena import CompactionSettings, Staging
from flopsmeter.compliance.compaction.manifest import parse_manifest
from tests.support.athena import DATABASE, apply_ddl, make_compacted_table
from tests.support.athena_sql import parse_athena
from tests.support.trail import BUCKET, make_bucket

NOW = datetime(2026, 3, 10, 3, tzinfo=UTC)
PREFIX = "records/v1/account=1/region=eu-west-1/date=2026-03-07/"


STAGING_BUCKET = "flopsmeter-athena-results-test"


class ScriptedAthena:
    """Parses each statement by Athena's grammar; answers the record-set query from ``records`` (day -> rows);
    UNLOAD writes two objects where it is told (as Athena does: the location's bucket, with no condition); ALTER
    TABLE goes to moto's Glue catalog; logs every SQL."""

    def __init__(self, store: AuditStore, records: dict[str, list[tuple[str, str, str, str]]]) -> None:
        self.s3, self.records, self.sql = store.s3, records, []
        self.glue = boto3.client("glue", region_name="eu-west-1")

    def __call__(self, sql: str):
        tree = parse_athena(sql)
        self.sql.append(sql)
        if sql.startswith("ALTER TABLE"):
            apply_ddl(self.glue, DATABASE, tree)
        if sql.startswith("SELECT account"):
            day = sql.split("WHERE date = '")[1][:10]
            return ["account", "region", "key", "sha256"], self.records.get(day, [])
        if sql.startswith("UNLOAD"):
            location = sql.split(" TO '")[1].split("'")[0]
            bucket, prefix = location.removeprefix("s3://").split("/", 1)
            for part in ("00001", "00002"):
                self.s3.put_object(
                    Bucket=bucket, Key=f"{prefix}20260310_000000_{part}_abcde", Body=f"{part} {location}"
                )
        return [], []


@pytest.fixture
def store():
    with mock_aws():
        s3, _kms = make_bucket()
        s3.create_bucket(Bucket=STAGING_BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        make_compacted_table(boto3.client("glue", region_name="eu-west-1"))
        yield AuditStore(s3, BUCKET)


def compact_with_athena(*args, **kwargs):
    """The body under test, over moto's Glue catalog."""
    catalog = GlueCatalog(boto3.client("glue", region_name="eu-west-1"), DATABASE)
    return compaction.compact_with_athena(*args, catalog=catalog, **kwargs)


def served(day: str = "2026-03-07") -> str | None:
    """Where the catalog points the test partition (None: not registered)."""
    catalog = GlueCatalog(boto3.client("glue", region_name="eu-west-1"), DATABASE)
    return catalog.locations([("1", "eu-west-1", day)]).get(("1", "eu-west-1", day))


@pytest.fixture
def staging(store):
    return Staging(AuditStore(store.s3, STAGING_BUCKET))


def rows(*names):
    return [("1", "eu-west-1", f"{PREFIX}{n}.json", f"sha-{n}") for n in names]


def test_a_settled_day_is_unloaded_copied_once_into_the_audit_bucket_and_pointed_at(store, staging):
    athena = ScriptedAthena(store, {"2026-03-07": rows("a", "b")})
    run = compact_with_athena(athena, store, staging, CompactionSettings(lookback_days=3), now=NOW)
    assert [(r.partition.path, r.generation, r.rows) for r in run.written] == [
        ("account=1/region=eu-west-1/date=2026-03-07", 1, 2)
    ]
    days = [s.split("WHERE date = '")[1][:10] for s in athena.sql if s.startswith("SELECT account")]
    assert days == ["2026-03-05", "2026-03-06", "2026-03-07"]  # settled: two days before 2026-03-10
    unload = next(s for s in athena.sql if s.startswith("UNLOAD"))
    assert "\"$file_modified_time\" < from_iso8601_timestamp('2026-03-10T03:00:00Z')" in unload
    location = unload.split(" TO '")[1].split("'")[0]
    staged = location.removeprefix(f"s3://{STAGING_BUCKET}/")  # not the audit bucket: Athena cannot write once
    assert re.fullmatch(
        r"compaction-staging/account=1/region=eu-west-1/date=2026-03-07/gen-000001/20260310T030000Z-[0-9a-f]{12}/",
        staged,
    )
    data_prefix = "compacted/v1/account=1/region=eu-west-1/date=2026-03-07/gen-000001/"
    assert any(f"SET LOCATION 's3://{BUCKET}/{data_prefix}'" in s for s in athena.sql)
    assert served() == f"s3://{BUCKET}/{data_prefix}"
    key = "compacted/v1/account=1/region=eu-west-1/date=2026-03-07/manifest-000001.json"
    manifest = parse_manifest(key, store.get(key).body)
    assert list(manifest.records) == [(f"{PREFIX}a.json", "sha-a"), (f"{PREFIX}b.json", "sha-b")]
    assert manifest.engine == "athena"
    assert [d.key for d in manifest.data] == [f"{data_prefix}20260310_000000_{p}_abcde" for p in ("00001", "00002")]
    for data in manifest.data:  # the copies are the staged bytes, locked in the audit bucket
        copied = store.get(data.key).body
        assert copied == staging.store.get(data.key.replace(data_prefix, staged)).body
        assert hashlib.sha256(copied).hexdigest() == data.sha256 and len(copied) == data.bytes
        retention = store.s3.head_object(Bucket=BUCKET, Key=data.key)
        assert retention["ObjectLockMode"] == "COMPLIANCE"


def test_a_rerun_changes_nothing_and_a_late_record_makes_generation_two(store, staging):
    athena = ScriptedAthena(store, {"2026-03-07": rows("a", "b")})
    compact_with_athena(athena, store, staging, now=NOW)
    again = compact_with_athena(athena, store, staging, now=NOW)
    assert again.written == [] and not any(s.startswith("UNLOAD") for s in athena.sql[-8:])
    athena.records["2026-03-07"] = rows("a", "b", "late")
    late = compact_with_athena(athena, store, staging, now=NOW)
    assert [(r.generation, r.rows) for r in late.written] == [(2, 3)]


def test_data_left_by_an_interrupted_run_is_skipped_not_overwritten(store, staging):
    store.put_immutable(
        "compacted/v1/account=1/region=eu-west-1/date=2026-03-07/gen-000001/orphan", b"x", content_type="x/y"
    )
    run = compact_with_athena(ScriptedAthena(store, {"2026-03-07": rows("a")}), store, staging, now=NOW)
    assert [r.generation for r in run.written] == [2]


def test_records_gone_since_the_last_compaction_are_reported_not_hidden(store, staging):
    athena = ScriptedAthena(store, {"2026-03-07": rows("a", "b")})
    compact_with_athena(athena, store, staging, now=NOW)
    athena.records["2026-03-07"] = rows("a")
    run = compact_with_athena(athena, store, staging, now=NOW)
    assert run.written == [] and "no longer present" in run.errors[0][1]


def test_ddl_is_hive_with_escaped_names_and_literals():
    from flopsmeter.compliance.compaction.athena import point_partition_sql
    from flopsmeter.compliance.layout import Partition
    from tests.support.athena import equalities

    sql = point_partition_sql(CompactionSettings(), Partition("1", "x'y", datetime(2026, 3, 7).date()), "s3://b/p/")
    assert "`region` = 'x\\'y'" in sql[0] and "`date` = '2026-03-07'" in sql[0]
    assert sql[0].startswith("ALTER TABLE `records_compacted` ADD IF NOT EXISTS PARTITION")
    for statement in sql:  # the value Hive reads back is the one meant
        assert equalities(parse_athena(statement))["region"] == "x'y"


def test_a_run_short_of_time_starts_no_partition_and_says_what_it_left(store, staging):
    athena = ScriptedAthena(store, {"2026-03-06": rows("a"), "2026-03-07": rows("b")})
    clock = iter([600.0, 600.0, 60.0, 60.0, 60.0])  # enough for the first day's partition, then two minutes short
    run = compact_with_athena(
        athena, store, staging, CompactionSettings(lookback_days=2), now=NOW, time_left=lambda: next(clock)
    )
    assert [r.partition.day.isoformat() for r in run.written] == ["2026-03-06"]
    assert run.deferred == ["2026-03-07"]
    later = compact_with_athena(athena, store, staging, CompactionSettings(lookback_days=2), now=NOW)
    assert [r.partition.day.isoformat() for r in later.written] == ["2026-03-07"]  # the next run takes it up


def test_a_generation_taken_by_a_concurrent_run_is_left_to_it(store, staging):
    class Racing(ScriptedAthena):
        def __call__(self, sql):
            answer = super().__call__(sql)
            if sql.startswith("UNLOAD"):  # the other run copies its first file in the meantime
                key = "compacted/v1/account=1/region=eu-west-1/date=2026-03-07/gen-000001/20260310_000000_00001_abcde"
                store.put_immutable(key, b"theirs", content_type="x/y")
            return answer

    run = compact_with_athena(Racing(store, {"2026-03-07": rows("a")}), store, staging, now=NOW)
    assert run.written == [] and "another run" in run.errors[0][1]
    assert not list(store.list_keys("compacted/v1/account=1/region=eu-west-1/date=2026-03-07/manifest-"))


class Crashing(ScriptedAthena):
    """Stops the run at its ``at``-th ALTER TABLE (0: the first), as a crash, a timeout or a refused DDL would."""

    def __init__(self, store, records, at):
        super().__init__(store, records)
        self.at, self.alters = at, 0

    def __call__(self, sql):
        if sql.startswith("ALTER TABLE"):
            self.alters += 1
            if self.alters - 1 == self.at:
                raise RuntimeError("crashed between the manifest and ALTER TABLE")
        return super().__call__(sql)


GEN = "s3://" + BUCKET + "/compacted/v1/account=1/region=eu-west-1/date=2026-03-07/gen-{:06d}/"


def test_a_partition_whose_run_stopped_before_registering_it_is_registered_by_the_next(store, staging):
    with pytest.raises(RuntimeError, match="crashed"):
        compact_with_athena(Crashing(store, {"2026-03-07": rows("a")}, at=0), store, staging, now=NOW)
    assert store.exists("compacted/v1/account=1/region=eu-west-1/date=2026-03-07/manifest-000001.json")
    assert served() is None  # the manifest says compacted; the catalog serves nothing

    athena = ScriptedAthena(store, {"2026-03-07": rows("a")})
    run = compact_with_athena(athena, store, staging, now=NOW)
    assert run.written == [] and [(r.generation, r.repointed) for r in run.results] == [(1, True)]
    assert served() == GEN.format(1) and not any(s.startswith("UNLOAD") for s in athena.sql)


def test_a_partition_whose_run_stopped_before_re_pointing_it_is_re_pointed_by_the_next(store, staging):
    compact_with_athena(ScriptedAthena(store, {"2026-03-07": rows("a")}), store, staging, now=NOW)
    late = {"2026-03-07": rows("a", "late")}
    with pytest.raises(RuntimeError, match="crashed"):  # generation 2 written, SET LOCATION never ran
        compact_with_athena(Crashing(store, late, at=1), store, staging, now=NOW)
    assert served() == GEN.format(1)  # the compacted view would miss the late record for good

    run = compact_with_athena(ScriptedAthena(store, late), store, staging, now=NOW)
    assert [(r.generation, r.written, r.repointed) for r in run.results] == [(2, False, True)]
    assert served() == GEN.format(2)
    again = ScriptedAthena(store, late)
    assert [r.repointed for r in compact_with_athena(again, store, staging, now=NOW).results] == [False]
    assert not any(s.startswith("ALTER") for s in again.sql)  # pointed right: nothing to do
