"""Issue 23, point 4: the obligations (and the Art. 52(1) item) on every surface that shows a crossing: classify,
estimate, gate (pre-flight: the clock starts at the check, guideline para. 30), reevaluate, and query --deadlines
with the clocks a re-evaluation opens."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from flopsmeter.cli.main import main
from flopsmeter.compliance import preflight
from flopsmeter.compliance.reevaluate import read_dir, reevaluate
from flopsmeter.domain.deadlines import notification_due
from flopsmeter.domain.methods import FineTuning
from flopsmeter.domain.thresholds import ThresholdPolicy
from tests.support.lineages import systemic_lineage
from tests.support.records import write_mirror

NOW = datetime(2026, 3, 15, 22, 30, tzinfo=UTC)  # 23:30 CET; summer time starts two weeks later
HERMES = preflight.BaseModel(model_id="NousResearch/Hermes-3-Llama-3.1-405B")


def _notification(obligations: dict) -> dict:
    return next(i for i in obligations["items"] if i["obligation_id"] == "commission_notification")


def test_classify_on_a_systemic_base_carries_the_notification_clock_started_now() -> None:
    outcomes = preflight.classify_flops(4e24, HERMES, preflight.PolicyChoice(now=NOW))
    o = outcomes.report["obligations"]
    assert o["triggered"] and o["commission_notification"] and o["crossed_at"] == "2026-03-15T22:30:00Z"
    assert "known that it will be met" in o["crossed_at_basis"] and "para. 30" in o["crossed_at_basis"]
    assert o["notification_due_at"] == "2026-03-29T22:00:00Z" == _notification(o)["due_at"]
    assert o["notification_due"].startswith("2026-03-29 24:00 CEST (Europe/Brussels")


def test_classify_below_triggers_nothing_and_says_so() -> None:
    o = preflight.classify_flops(1e20, HERMES, preflight.PolicyChoice(now=NOW)).report["obligations"]
    assert o["triggered"] is False and o["items"] == [] and o["commission_notification"] is False


def _run() -> preflight.PlannedRun:
    return preflight.PlannedRun(config="meta-llama/Llama-3.1-8B", seq_len=4096, tokens=3 * 10**14, tuning=FineTuning())


def test_estimate_and_gate_json_carry_the_obligations() -> None:
    policy = preflight.PolicyChoice(now=NOW)
    base = preflight.BaseModel(model_id="meta-llama/Llama-3.1-8B")
    for outcomes in (preflight.estimate(_run(), base, policy), preflight.gate(_run(), base, policy)):
        o = outcomes.report["obligations"]
        assert o["triggered"] and o["crossed_in_job"] == "planned run"
        assert {"provider", "technical_documentation"} <= {i["obligation_id"] for i in o["items"]}
    # above 1e25 on a base that is not systemic, the Art. 51(2) presumption adds the notification
    big = preflight.estimate(_run(), base, policy).report
    assert big["total_flops"] > 1e25 and big["obligations"]["commission_notification"] is True


def test_cli_classify_table_shows_the_notification_with_its_zone(capsys) -> None:
    assert main(["classify", "--flops", "4e24", "--base-model", "allenai/Llama-3.1-Tulu-3-405B"]) == 0
    out = capsys.readouterr().out
    assert "commission_notification" in out and "NOTIFY THE COMMISSION by" in out and "Europe/Brussels" in out


@pytest.fixture
def lineage_mirror(tmp_path):  # type: ignore[no-untyped-def]
    first, second = systemic_lineage()  # 2.0e24 then 4.1e24 on a systemic base: only the second crosses 3.3e24
    return write_mirror(tmp_path / "m", [first, second]), first, second


STRICT = ThresholdPolicy("strict-2027", "t", "s", relative_fraction=0.01, unknown_threshold=1e22,
                         systemic_unknown_threshold=1e24)  # fmt: skip


def test_reevaluate_under_a_stricter_policy_dates_the_crossing_and_opens_a_clock(lineage_mirror) -> None:  # type: ignore[no-untyped-def]
    root, first, _second = lineage_mirror
    run = reevaluate(read_dir(root), STRICT)
    r = next(r for r in run.results if r.job == first.job.name)
    assert r.changed and r.outcome == "exceeds" and r.obligations is not None
    o = r.obligations
    assert o["commission_notification"] and o["crossed_in_job"] == first.job.name and o["crossed_at"] is not None
    crossed = datetime.fromisoformat(o["crossed_at"].replace("Z", "+00:00"))
    assert first.job.start_time <= crossed <= first.job.end_time
    assert o["notification_due_at"] == notification_due(crossed).isoformat().replace("+00:00", "Z")
    assert "Europe/Brussels" in o["notification_due"] and o["reevaluated_under"] == "strict-2027"


def test_reevaluate_json_carries_the_obligations(lineage_mirror, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    root, first, _second = lineage_mirror
    path = tmp_path / "strict.json"
    path.write_text(json.dumps({"policy_id": "strict-2027", "title": "t", "source": "s", "relative_fraction": 0.01,
                                "unknown_threshold": 1e22, "systemic_unknown_threshold": 1e24}))  # fmt: skip
    assert main(["reevaluate", "--dir", str(root), "--policy-file", str(path), "--format", "json"]) == 0
    results = {r["job"]: r for r in json.loads(capsys.readouterr().out)["results"]}
    assert _notification(results[first.job.name]["obligations"])["status"] == "triggered"


def test_query_deadlines_includes_the_clocks_a_reevaluation_opens(lineage_mirror, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    root, first, second = lineage_mirror
    path = tmp_path / "strict.json"
    path.write_text(json.dumps({"policy_id": "strict-2027", "title": "t", "source": "s", "relative_fraction": 0.01,
                                "unknown_threshold": 1e22, "systemic_unknown_threshold": 1e24}))  # fmt: skip
    assert main(["query", "--dir", str(root), "--deadlines", "--format", "json"]) == 0
    stored = json.loads(capsys.readouterr().out)
    assert [row["crossed_in_job"] for row in stored] == [second.job.name]
    argv = ["query", "--dir", str(root), "--deadlines", "--policy-file", str(path), "--format", "json"]
    assert main(argv) == 0
    rows = json.loads(capsys.readouterr().out)
    opened = {row["crossed_in_job"]: row for row in rows}
    assert opened[first.job.name]["opened_by"] == "reevaluate:strict-2027"
    assert opened[second.job.name]["opened_by"] == "record"
    assert all(row["state"] == "overdue" for row in rows)  # March 2026 clocks, read against today's clock
    assert all("Europe/Brussels" in row["due"] for row in rows)


def test_a_stored_clock_already_past_reads_overdue(lineage_mirror, capsys) -> None:  # type: ignore[no-untyped-def]
    root, _first, second = lineage_mirror
    from flopsmeter.compliance.query import Preset, preset_sql, run_duckdb
    from flopsmeter.compliance.query.deadlines import with_days_left

    due = second.obligations.notification_due_at
    result = run_duckdb(root, preset_sql(Preset(deadlines=True)), cache=False)
    at_due = dict(zip(with_days_left(result, due).columns, with_days_left(result, due).rows[0], strict=True))
    assert at_due["state"] == "overdue"
    before = with_days_left(result, due - timedelta(seconds=1))
    assert dict(zip(before.columns, before.rows[0], strict=True))["state"] == "open"
