"""Compaction of a local mirror: idempotent, generations for late records, read by the query cache, and checked
by verify in both directions (Parquet rows <-> manifest <-> JSON records)."""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import UTC, datetime

import pytest

from flopsmeter.audit.keys import COMPACTED_PREFIX
from flopsmeter.audit.record import canonical_json
from flopsmeter.compliance.compaction.local import compact_dir
from flopsmeter.compliance.compaction.manifest import parse_manifest
from flopsmeter.compliance.query import Preset, preset_sql, run_duckdb
from flopsmeter.compliance.query.cache import CACHE_NAME
from flopsmeter.compliance.verify import DirSource, render_text, verify
from tests.support.records import key_of, make_record, write_mirror

NOW = datetime(2026, 4, 1, tzinfo=UTC)
DAY1, DAY2 = datetime(2026, 3, 1, 12, tzinfo=UTC), datetime(2026, 3, 2, 12, tzinfo=UTC)


@pytest.fixture
def mirror(tmp_path):
    records = [make_record(f"a-{i}", flops=10.0 ** (20 + i), end=DAY1) for i in range(3)]
    records += [make_record(f"b-{i}", flops=5e22, pretrain=None, end=DAY2) for i in range(2)]
    return write_mirror(tmp_path / "mirror", records)


def snapshot(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in (root / COMPACTED_PREFIX).rglob("*") if p.is_file()}


def manifests(root):
    return sorted(p.relative_to(root).as_posix() for p in (root / COMPACTED_PREFIX).rglob("manifest-*.json"))


def test_each_partition_gets_one_parquet_and_a_manifest_of_its_record_hashes(mirror):
    run = compact_dir(mirror, now=NOW)
    assert [(r.partition.day.isoformat(), r.generation, r.rows) for r in run.written] == [
        ("2026-03-01", 1, 3),
        ("2026-03-02", 1, 2),
    ]
    first = manifests(mirror)[0]
    manifest = parse_manifest(first, (mirror / first).read_bytes())
    expected = sorted(
        (str(p.relative_to(mirror).as_posix()), json.loads(p.read_bytes())["sha256"])
        for p in (mirror / "records/v1").rglob("date=2026-03-01/*.json")
    )
    assert list(manifest.records) == expected and len(manifest.data) == 1


def test_compaction_is_idempotent(mirror):
    compact_dir(mirror, now=NOW)
    before = snapshot(mirror)
    again = compact_dir(mirror, now=datetime(2026, 4, 2, tzinfo=UTC))
    assert again.written == [] and [r.generation for r in again.results] == [1, 1]
    assert snapshot(mirror) == before


def test_a_late_record_makes_a_new_generation_of_its_partition_only(mirror):
    compact_dir(mirror, now=NOW)
    write_mirror(mirror, [make_record("a-late", end=DAY1)])
    run = compact_dir(mirror, now=datetime(2026, 4, 2, tzinfo=UTC))
    assert [(r.partition.day.isoformat(), r.generation, r.rows) for r in run.written] == [("2026-03-01", 2, 4)]
    assert len(manifests(mirror)) == 3  # generation 1 of 2026-03-01 stays (write-once), superseded


def test_a_partition_that_lost_records_is_not_compacted_again(mirror):
    compact_dir(mirror, now=NOW)
    victim = make_record("a-0", flops=1e20, end=DAY1)
    (mirror / key_of(victim)).unlink()
    write_mirror(mirror, [make_record("a-late", end=DAY1)])
    run = compact_dir(mirror, now=datetime(2026, 4, 2, tzinfo=UTC))
    assert run.written == []
    assert run.errors and "no longer present" in run.errors[0][1] and key_of(victim) in run.errors[0][1]


def test_settle_days_leaves_recent_partitions_alone(mirror):
    run = compact_dir(mirror, now=datetime(2026, 3, 3, 6, tzinfo=UTC), settle_days=1)
    assert [r.partition.day.isoformat() for r in run.written] == ["2026-03-01"]


def test_query_reads_the_compacted_parquet_and_the_json_newer_than_it(mirror):
    plain = run_duckdb(mirror, preset_sql(Preset()), cache=False).rows
    compact_dir(mirror, now=NOW)
    (mirror / CACHE_NAME).unlink(missing_ok=True)
    assert run_duckdb(mirror, preset_sql(Preset())).rows == plain
    # Prove the rows come from Parquet: rewrite a compacted record's JSON in place (its directory unchanged)
    path = mirror / key_of(make_record("b-0", end=DAY2))
    document = json.loads(path.read_bytes())
    document["outcome"] = "below"
    path.write_bytes(canonical_json(document))
    (mirror / CACHE_NAME).unlink()
    outcome = run_duckdb(mirror, "SELECT outcome FROM records WHERE job.name = 'b-0'").rows
    assert outcome == [("exceeds",)]
    write_mirror(mirror, [make_record("b-late", end=DAY2)])  # newer than the compaction: from its JSON
    assert ("b-late",) in run_duckdb(mirror, "SELECT job.name FROM records").rows


def test_verify_passes_on_an_honest_compaction(mirror):
    compact_dir(mirror, now=NOW)
    late = make_record("b-late", end=DAY2, recorded_at=datetime(2026, 4, 1, 1, tzinfo=UTC))  # after the compaction
    write_mirror(mirror, [late])
    report = verify(DirSource(mirror), max_digest_age=None)
    assert not report.failures, render_text(report)  # UNVERIFIED: no digest in this folder lists the records
    assert report.compacted_partitions_checked == 2 and report.not_yet_compacted == 1


def _problems(root):
    return {(f.object.rsplit("/", 1)[-1], f.problem) for f in verify(DirSource(root), max_digest_age=None).failures}


def test_verify_finds_a_record_changed_after_compaction(mirror):
    compact_dir(mirror, now=NOW)
    path = mirror / key_of(make_record("b-0", end=DAY2))
    document = json.loads(path.read_bytes())
    document["sha256"] = "0" * 64
    path.write_bytes(canonical_json(document))
    assert ("b-0.json", "compaction_hash_mismatch") in _problems(mirror)


def test_verify_finds_a_record_missing_from_the_compaction_and_an_extra_row(mirror):
    compact_dir(mirror, now=NOW)
    write_mirror(mirror, [make_record("a-old", end=DAY1)])  # recorded well before the compaction, yet not in it
    (mirror / key_of(make_record("a-1", end=DAY1))).unlink()
    found = _problems(mirror)
    assert ("a-old.json", "compaction_missing_row") in found
    assert ("a-1.json", "compaction_extra_row") in found


def test_verify_finds_parquet_that_does_not_match_its_manifest(mirror):
    compact_dir(mirror, now=NOW)
    other = mirror.parent / "other"
    shutil.copytree(mirror, other)
    write_mirror(other, [make_record("b-extra", end=DAY2)])
    shutil.rmtree(other / COMPACTED_PREFIX)
    compact_dir(other, now=NOW)
    # swap in a Parquet holding one row more; make its manifest entry match the new bytes, as an insider would
    name = "compacted/v1/account=123456789012/region=eu-west-1/date=2026-03-02"
    data, manifest_path = mirror / name / "gen-000001/data.parquet", mirror / name / "manifest-000001.json"
    data.write_bytes((other / name / "gen-000001/data.parquet").read_bytes())
    document = json.loads(manifest_path.read_bytes())

    document["data"][0]["sha256"] = hashlib.sha256(data.read_bytes()).hexdigest()
    document["data"][0]["bytes"] = data.stat().st_size
    manifest_path.write_bytes(canonical_json(document))
    assert ("manifest-000001.json", "compaction_rows_mismatch") in _problems(mirror)


def test_verify_finds_altered_data_and_an_unreadable_manifest(mirror):
    compact_dir(mirror, now=NOW)
    name = "compacted/v1/account=123456789012/region=eu-west-1"
    with open(mirror / name / "date=2026-03-01/gen-000001/data.parquet", "ab") as out:
        out.write(b"x")
    (mirror / name / "date=2026-03-02/manifest-000001.json").write_text('{"format": "something else"}')
    found = _problems(mirror)
    assert ("data.parquet", "compaction_data_altered") in found
    assert ("manifest-000001.json", "compaction_unreadable") in found


def test_cli_compact_then_query_and_verify(mirror, capsys):
    from flopsmeter.cli.main import main

    assert main(["compact", "--dir", str(mirror)]) == 0
    assert "compacted 2 partition(s) (5 records), 0 already up to date" in capsys.readouterr().out
    assert main(["compact", "--dir", str(mirror)]) == 0
    assert "compacted 0 partition(s) (0 records), 2 already up to date" in capsys.readouterr().out
    assert main(["query", "--dir", str(mirror), "--exceeding", "--format", "json"]) == 0
    assert {r["job"] for r in json.loads(capsys.readouterr().out)} == {"b-0", "b-1"}
    assert main(["verify", "--dir", str(mirror), "--max-digest-age-hours", "0"]) == 3  # nothing failed; no digest


def test_query_shows_only_records_present_as_json_and_survives_a_bad_manifest(mirror):
    compact_dir(mirror, now=NOW)
    (mirror / key_of(make_record("a-1", end=DAY1))).unlink()
    assert ("a-1",) not in run_duckdb(mirror, "SELECT job.name FROM records").rows
    name = "compacted/v1/account=123456789012/region=eu-west-1/date=2026-03-02/manifest-000001.json"
    (mirror / name).write_text("not json")
    (mirror / CACHE_NAME).unlink()
    names = sorted(r[0] for r in run_duckdb(mirror, "SELECT job.name FROM records").rows)
    assert names == ["a-0", "a-2", "b-0", "b-1"]  # the damaged partition is read from its JSON records
