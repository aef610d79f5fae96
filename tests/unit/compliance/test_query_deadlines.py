"""query --deadlines (open Art. 52(1) clocks) and --by-lineage (lineage compute and energy), DuckDB over records."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from flopsmeter.audit.blocks import with_energy_and_obligations
from flopsmeter.cli.main import main
from flopsmeter.compliance.query import Preset, preset_sql, run_duckdb
from flopsmeter.compliance.query.deadlines import parse_moment, with_days_left
from flopsmeter.compliance.query.render import Result
from tests.support.lineages import lineage_job, systemic_lineage
from tests.support.records import make_record, write_mirror


@pytest.fixture
def mirror(tmp_path):  # type: ignore[no-untyped-def]
    first, second = systemic_lineage()
    third = lineage_job("ft-405b-3", 1.0e23, parent=second, end=second.job.end_time + timedelta(days=2))
    other = with_energy_and_obligations(make_record("small-1", flops=1e20))
    legacy = make_record("legacy-1", flops=1e20)  # written before energy was recorded
    return write_mirror(tmp_path / "m", [first, second, third, other, legacy]), second


def test_one_clock_per_crossing_with_its_due_date(mirror) -> None:  # type: ignore[no-untyped-def]
    root, second = mirror
    result = run_duckdb(root, preset_sql(Preset(deadlines=True)), cache=False)
    rows = [dict(zip(result.columns, r, strict=True)) for r in result.rows]
    assert len(rows) == 1  # ft-405b-3 continues after the crossing: same clock, not a second one
    row = rows[0]
    assert row["crossed_in_job"] == "ft-405b-2" and row["records"] == 2 and row["status"] == "triggered"
    assert parse_moment(row["due_at"]) == second.obligations.notification_due_at


def test_days_left_and_state_against_the_callers_clock(mirror) -> None:  # type: ignore[no-untyped-def]
    root, second = mirror
    due = second.obligations.notification_due_at
    result = run_duckdb(root, preset_sql(Preset(deadlines=True)), cache=False)
    annotated = with_days_left(result, due - timedelta(days=3))
    row = dict(zip(annotated.columns, annotated.rows[0], strict=True))
    assert row["days_left"] == 3.0 and row["state"] == "open"
    late = with_days_left(result, due + timedelta(hours=12))
    assert dict(zip(late.columns, late.rows[0], strict=True))["state"] == "overdue"


def test_parse_moment_reads_both_engines() -> None:
    expected = datetime(2026, 3, 26, 22, 12, 13, tzinfo=UTC)
    assert parse_moment("2026-03-26 22:12:13") == expected
    assert parse_moment("2026-03-26T22:12:13Z") == expected
    assert parse_moment(datetime(2026, 3, 26, 22, 12, 13)) == expected
    assert with_days_left(Result(["due_at"], [], 0.0), expected).columns == ["due_at", "due", "days_left", "state"]


def test_by_lineage_lists_modified_models_with_their_energy(mirror) -> None:  # type: ignore[no-untyped-def]
    root, _second = mirror
    result = run_duckdb(root, preset_sql(Preset(by_lineage=True)), cache=False)
    rows = {r[0]: dict(zip(result.columns, r, strict=True)) for r in result.rows}
    assert set(rows) == {"ft-405b-3", "small-1", "legacy-1"}  # ft-405b-1 and -2 are continued by later jobs
    assert rows["ft-405b-3"]["cumulative_flops"] == pytest.approx(4.2e24)
    assert rows["ft-405b-3"]["lineage_energy_kwh"] > rows["ft-405b-3"]["last_job_energy_kwh"] > 0
    assert rows["legacy-1"]["lineage_energy_kwh"] is None  # unknown, not zero


def test_job_listing_has_the_energy_column(mirror) -> None:  # type: ignore[no-untyped-def]
    root, _second = mirror
    result = run_duckdb(root, preset_sql(Preset(job="small-1")), cache=False)
    row = dict(zip(result.columns, result.rows[0], strict=True))
    assert row["energy_kwh"] == pytest.approx(8 * 0.7 * 2 * 1.15)


def test_cli_deadlines_json(mirror, capsys) -> None:  # type: ignore[no-untyped-def]
    root, _second = mirror
    assert main(["query", "--dir", str(root), "--deadlines", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["crossed_in_job"] == "ft-405b-2" and rows[0]["state"] in ("open", "overdue")
    assert main(["query", "--dir", str(root), "--deadlines", "--exceeding"]) == 2
