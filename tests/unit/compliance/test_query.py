"""query: DuckDB over a directory of real records (schema from AuditRecord), presets, formats, and the Athena
request shape (botocore Stubber: moto's Athena runs no SQL)."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

import pytest

from flopsmeter.cli.main import main
from flopsmeter.compliance.query import Preset, QueryError, preset_sql, record_columns, run_duckdb
from flopsmeter.compliance.query.presets import normalise_since
from tests.support.records import key_of, make_record

JOBS = {  # name: (cumulative FLOPs, pretrain, end)
    "small-1": (1.0e20, 1.5e24, datetime(2026, 1, 3, tzinfo=UTC)),
    "near-1": (4.0e23, 1.5e24, datetime(2026, 2, 3, tzinfo=UTC)),  # 0.89 of 4.5e23: approaching
    "over-1": (5.0e22, None, datetime(2026, 3, 3, tzinfo=UTC)),  # unknown base: over 3.3e22
    "over-2": (9.0e23, 1.5e24, datetime(2026, 3, 9, tzinfo=UTC)),
}


@pytest.fixture(scope="module")
def records_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("records")
    for name, (flops, pretrain, end) in JOBS.items():
        record = make_record(name, flops=flops, pretrain=pretrain, end=end)
        path = root / key_of(record)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(record.to_json_bytes())
    return root


def test_columns_follow_the_audit_record_with_flops_as_double():
    columns = record_columns()
    assert list(columns)[:3] == ["schema_version", "record_id", "recorded_at"]
    assert "classified_flops DOUBLE" in columns["flops"].replace('"', "")
    assert columns["classifications"].startswith("STRUCT(") and columns["classifications"].endswith("[]")
    assert columns["warnings"] == "VARCHAR[]"


def test_exceeding_preset_finds_exactly_the_jobs_over_the_line(records_dir):
    result = run_duckdb(records_dir, preset_sql(Preset(exceeding=True)), cache=False)
    assert sorted(r[0] for r in result.rows) == ["over-1", "over-2"]
    threshold = dict(zip(result.columns, result.rows[0], strict=True))["threshold"]
    assert threshold in (3.3e22, 0.3 * 1.5e24)


def test_job_and_since_presets(records_dir):
    assert [r[0] for r in run_duckdb(records_dir, preset_sql(Preset(job="near-1"))).rows] == ["near-1"]
    since = run_duckdb(records_dir, preset_sql(Preset(since="2026-03-01")))
    assert sorted(r[0] for r in since.rows) == ["over-1", "over-2"]


def test_by_base_model_totals(records_dir):
    result = run_duckdb(records_dir, preset_sql(Preset(by_base_model=True)))
    rows = {r[0]: dict(zip(result.columns, r, strict=True)) for r in result.rows}
    llama = rows["meta-llama/Meta-Llama-3-70B"]
    assert llama["jobs"] == 4 and llama["exceeding"] == 2 and llama["approaching"] == 1
    assert llama["total_flops"] == pytest.approx(1.0e20 + 4.0e23 + 5.0e22 + 9.0e23)


def test_cache_is_incremental_by_partition(records_dir, tmp_path):
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(records_dir, root)
    assert run_duckdb(root, "SELECT count(*) FROM records").rows == [(4,)]
    extra = make_record("late-1", flops=1.0e21, end=datetime(2026, 4, 1, tzinfo=UTC))
    (root / key_of(extra)).parent.mkdir(parents=True, exist_ok=True)
    (root / key_of(extra)).write_bytes(extra.to_json_bytes())
    next(root.rglob("small-1.json")).unlink()
    names = run_duckdb(root, "SELECT job.name FROM records ORDER BY 1").rows
    assert names == [("late-1",), ("near-1",), ("over-1",), ("over-2",)]


def test_shared_sql_subset_runs_unnest_and_partitions(records_dir):
    sql = (
        "SELECT job.name, c.policy, c.outcome FROM records CROSS JOIN UNNEST(classifications) AS t(c) "
        "WHERE c.outcome = 'exceeds' AND account = '123456789012' ORDER BY 1, 2"
    )
    rows = run_duckdb(records_dir, sql).rows
    assert ("over-2", "aws-30pct-2026", "exceeds") in rows and ("over-2", "eu-guideline-2025-07", "exceeds") in rows


def test_presets_refuse_values_that_would_change_the_sql():
    with pytest.raises(QueryError):
        preset_sql(Preset(job="x' OR '1'='1"))
    with pytest.raises(QueryError):
        preset_sql(Preset(since="2026-01-01'; DROP"))


def test_bad_sql_is_a_clear_error(records_dir):
    with pytest.raises(QueryError, match="query failed"):
        run_duckdb(records_dir, "SELECT nope FROM records")


def test_cli_formats(records_dir, capsys):
    assert main(["query", "--dir", str(records_dir), "--exceeding", "--format", "json"]) == 0
    assert sorted(r["job"] for r in json.loads(capsys.readouterr().out)) == ["over-1", "over-2"]
    assert main(["query", "--dir", str(records_dir), "--job", "near-1", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert rows[0]["job"] == "near-1" and float(rows[0]["flops"]) == 4.0e23
    assert main(["query", "--dir", str(records_dir), "--by-base-model"]) == 0
    assert "meta-llama/Meta-Llama-3-70B" in capsys.readouterr().out
    assert main(["query", "SELECT 1", "--dir", str(records_dir), "--exceeding"]) == 2


def test_flat_folder_of_records_is_read_with_partitions_from_each_record(tmp_path):
    # `flopsmeter demo` copies records as <job>.json side by side: no records/v1/account=… layout
    for name, (flops, pretrain, end) in JOBS.items():
        (tmp_path / f"{name}.json").write_bytes(
            make_record(name, flops=flops, pretrain=pretrain, end=end).to_json_bytes()
        )
    result = run_duckdb(tmp_path, "SELECT job.name, account, region, CAST(date AS VARCHAR) FROM records ORDER BY 1")
    assert result.rows == [
        (name, "123456789012", "eu-west-1", end.date().isoformat()) for name, (_f, _p, end) in sorted(JOBS.items())
    ]
    exceeding = run_duckdb(tmp_path, preset_sql(Preset(exceeding=True)))
    assert sorted(r[0] for r in exceeding.rows) == ["over-1", "over-2"]


def test_folder_without_records_says_which_layouts_it_expects(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("not records")
    assert main(["query", "--dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "holds no audit records" in err and "records/v1/account=<id>/region=<r>/date=<YYYY-MM-DD>/<job>.json" in err


def test_a_file_in_a_flat_folder_that_is_not_a_record_is_refused_by_name(tmp_path):
    (tmp_path / "good.json").write_bytes(make_record("good").to_json_bytes())
    (tmp_path / "settings.json").write_text('{"theme": "dark"}')
    with pytest.raises(QueryError, match=r"settings\.json is not an audit record"):
        run_duckdb(tmp_path, "SELECT count(*) FROM records")


def test_a_warm_query_rereads_only_partitions_whose_directory_changed(records_dir, tmp_path):
    import os
    import shutil
    import time

    root = tmp_path / "copy"
    shutil.copytree(records_dir, root)
    long_ago = time.time() - 60
    for directory in root.rglob("date=*"):
        os.utime(directory, (long_ago, long_ago))
    sql = "SELECT outcome FROM records WHERE job.name = 'over-1'"
    assert run_duckdb(root, sql).rows == [("exceeds",)]
    path = next(root.rglob("over-1.json"))
    document = json.loads(path.read_bytes())
    document["outcome"] = "below"
    path.write_bytes(json.dumps(document).encode())  # rewritten in place: its directory looks unchanged
    os.utime(path.parent, (long_ago, long_ago))
    assert run_duckdb(root, sql).rows == [("exceeds",)]  # no per-file stat on a warm query
    os.utime(path.parent)  # the directory changed (as a new, removed or replaced file changes it)
    assert run_duckdb(root, sql).rows == [("below",)]


def test_since_is_exact_to_the_second_on_duckdb_and_as_athena_compares_iso_text(records_dir):
    # over-1 ended at 2026-03-03T00:00:00Z
    included = run_duckdb(records_dir, preset_sql(Preset(since="2026-03-03 00:00")))
    excluded = run_duckdb(records_dir, preset_sql(Preset(since="2026-03-03T00:00:01Z")))
    assert "over-1" in {r[0] for r in included.rows} and "over-1" not in {r[0] for r in excluded.rows}
    # Athena's column is the record's ISO text: plain string comparison with the same literal gives the same answer
    iso = "2026-03-03T00:00:00Z"
    assert iso >= normalise_since("2026-03-03 00:00") and not iso >= normalise_since("2026-03-03T00:00:01Z")
    assert "2026-03-03T00:00:00.500000Z" >= normalise_since("2026-03-03") > "2026-03-02T23:59:59Z"


def test_limit_picks_the_latest_rows_before_computing_columns(records_dir):
    rows = run_duckdb(records_dir, preset_sql(Preset(limit=2))).rows
    assert [r[0] for r in rows] == ["over-2", "over-1"]
    grouped = run_duckdb(records_dir, preset_sql(Preset(by_base_model=True, limit=1))).rows
    assert len(grouped) == 1


def test_csv_written_by_duckdb_matches_the_python_rendering(records_dir):
    from flopsmeter.compliance.query import render, run_duckdb_csv

    for preset in (Preset(), Preset(by_base_model=True), Preset(since="2026-02-01", limit=2)):
        sql = preset_sql(preset)
        fast = run_duckdb_csv(records_dir, sql)
        assert fast is not None
        assert fast.splitlines() == render(run_duckdb(records_dir, sql), "csv").splitlines()
    assert run_duckdb_csv(records_dir, "SELECT job, recorded_at FROM records") is None  # struct, timestamp: rendered
