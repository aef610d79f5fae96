"""reevaluate (read-only re-classification under another policy) and the HTML report."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest

from flopsmeter.cli.main import main
from flopsmeter.compliance.reevaluate import PolicyFileError, load_policy_file, read_dir, reevaluate
from flopsmeter.compliance.report import write_report
from flopsmeter.domain.thresholds import get_policy
from tests.support.records import key_of, make_record


@pytest.fixture
def records_dir(tmp_path):
    specs = [("steady-1", 1.0e20, 1.5e24), ("gap-1", 4.6e23, 1.5e24), ("unknown-1", 3.31e22, None)]
    for i, (name, flops, pretrain) in enumerate(specs):
        record = make_record(name, flops=flops, pretrain=pretrain, end=datetime(2026, 2, 1 + i, tzinfo=UTC))
        path = tmp_path / key_of(record)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(record.to_json_bytes())
    return tmp_path


def snapshot(root):
    return {p: p.read_bytes() for p in sorted(root.rglob("*.json"))}


def test_reevaluate_under_the_eu_reading_shows_changed_outcomes_and_touches_nothing(records_dir):
    before = snapshot(records_dir)
    run = reevaluate(read_dir(records_dir), get_policy("eu-guideline-2025-07"))
    assert snapshot(records_dir) == before
    by_job = {r.job: r for r in run.results}
    # 4.6e23 exceeds 30 % of 1.5e24 (4.5e23) but not a third (5e23); 3.31e22 exceeds 3.3e22, not 1e23/3
    assert by_job["gap-1"].stored_primary_outcome == "exceeds" and by_job["gap-1"].outcome == "approaching"
    assert by_job["unknown-1"].threshold == pytest.approx(1e23 / 3)
    assert not by_job["steady-1"].changed
    assert {r.job for r in run.changes} == {"gap-1", "unknown-1"}
    assert not any(r.drift for r in run.results)  # the records already hold this policy's (same) results
    assert run.transitions() == {"exceeds -> approaching": 2}  # 3.31e22 is 99 % of 1e23/3


def test_policy_file_describes_a_new_reading(records_dir, tmp_path):
    path = tmp_path / "policy.json"
    path.write_text(
        json.dumps(
            {
                "policy_id": "delegated-act-2027",
                "title": "t",
                "source": "s",
                "relative_fraction": 0.25,
                "unknown_threshold": 1e22,
                "systemic_unknown_threshold": 1e24,
            }
        )
    )
    run = reevaluate(read_dir(records_dir), load_policy_file(path))
    assert {r.job: r.outcome for r in run.results}["gap-1"] == "exceeds"
    assert run.policy == "delegated-act-2027" and run.results[0].stored_outcome_this_policy is None


@pytest.mark.parametrize(
    "payload",
    [
        '{"policy_id": "x"}',
        "[]",
        "not json",
        '{"policy_id":"x","title":"t","source":"s","relative_fraction":-1,'
        '"unknown_threshold":1,"systemic_unknown_threshold":1}',
    ],
)
def test_bad_policy_file_is_a_clear_error(tmp_path, payload):
    path = tmp_path / "p.json"
    path.write_text(payload)
    with pytest.raises(PolicyFileError):
        load_policy_file(path)


def test_unreadable_record_is_listed_not_skipped(records_dir, capsys):
    bad = next(records_dir.rglob("steady-1.json"))
    bad.write_text('{"schema_version": 9}')
    assert main(["reevaluate", "--dir", str(records_dir), "--policy", "eu-guideline-2025-07"]) == 1
    out = capsys.readouterr().out
    assert "unknown schema_version 9" in out and "gap-1" in out


def test_report_for_a_compliance_officer_is_self_contained(records_dir, tmp_path):
    out = tmp_path / "report.html"
    data = write_report(records_dir, out)
    html = out.read_text()
    assert len(data.jobs) == 3
    assert "gap-1" in html and "exceeds the threshold" in html and "<svg" in html
    assert make_record("gap-1", flops=4.6e23, end=datetime(2026, 2, 2, tzinfo=UTC)).sha256 in html
    assert not re.search(r"""(src|href)=["'](https?:)?//""", html)  # no external assets
    assert "not yet covered by a signed digest" in html


def test_report_escapes_text_from_records(tmp_path):
    record = make_record("odd-1", warnings=["<script>alert(1)</script>"])
    path = tmp_path / key_of(record)
    path.parent.mkdir(parents=True)
    path.write_bytes(record.to_json_bytes())
    html_path = tmp_path / "r.html"
    assert main(["report", "--dir", str(tmp_path), "--job", "odd-1", "--out", str(html_path), "--no-verify"]) == 0
    html = html_path.read_text()
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_reevaluate_reads_a_flat_folder_of_records(tmp_path):
    (tmp_path / "flat-1.json").write_bytes(make_record("flat-1", flops=5e22, pretrain=None).to_json_bytes())
    run = reevaluate(read_dir(tmp_path), get_policy("eu-guideline-2025-07"))
    assert [r.job for r in run.results] == ["flat-1"] and not run.errors
