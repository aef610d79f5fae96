"""Splitting presets: jobs that are each below the line but together above it are flagged, per (principal, base
model), per model package group and per tuning sweep, over a window; the report shows them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from flopsmeter.audit.record import CloudTrailRef, LaunchLink, Lineage
from flopsmeter.cli.main import main
from flopsmeter.compliance.query import Preset, QueryError, preset_sql, run_duckdb
from flopsmeter.compliance.query.splitting import SPLIT_FLAG
from tests.support.records import make_record, write_mirror

ALICE = "arn:aws:sts::123456789012:assumed-role/MLEngineer/alice"
BOB = "arn:aws:sts::123456789012:assumed-role/MLEngineer/bob"
GROUP = "arn:aws:sagemaker:eu-west-1:123456789012:model-package-group/support-bot"
DEFAULT = 3.3e22  # unknown base: the default threshold of the primary policy


def _job(name, flops, who, day, group=None):
    return make_record(
        name,
        flops=flops,
        pretrain=None,
        end=datetime(2026, 3, day, tzinfo=UTC),
        cloudtrail=CloudTrailRef(status="found", event_id=f"e-{name}", principal_arn=who),
        lineage=Lineage(own_flops=flops, cumulative_flops=flops, model_package_group_arn=group),
    )


@pytest.fixture(scope="module")
def records_dir(tmp_path_factory):
    jobs = [
        _job("alice-1", 0.5 * DEFAULT, ALICE, 2, GROUP),  # each below, together 1.2x the threshold
        _job("alice-2", 0.4 * DEFAULT, ALICE, 3, GROUP),
        _job("alice-3", 0.3 * DEFAULT, ALICE, 4),
        _job("bob-1", 0.5 * DEFAULT, BOB, 2, GROUP),  # bob alone stays below
        _job("bob-2", 0.1 * DEFAULT, BOB, 20),  # outside the window below
    ]
    return write_mirror(tmp_path_factory.mktemp("split"), jobs)


def _rows(records_dir, preset):
    result = run_duckdb(records_dir, preset_sql(preset), cache=False)
    return [dict(zip(result.columns, row, strict=True)) for row in result.rows]


def test_per_principal_and_base_model_flags_jobs_each_below_but_together_above(records_dir):
    rows = _rows(records_dir, Preset(by_principal=True, since="2026-03-01", until="2026-03-10"))
    by_who = {r["principal"]: r for r in rows}
    assert rows[0]["principal"] == ALICE  # flagged first
    alice = by_who[ALICE]
    assert alice["jobs"] == 3 and alice["flag"] == SPLIT_FLAG
    assert alice["total_flops"] == pytest.approx(1.2 * DEFAULT)
    assert alice["ratio"] == pytest.approx(1.2)
    assert alice["threshold"] == pytest.approx(DEFAULT)
    assert alice["base_model"] == "meta-llama/Meta-Llama-3-70B"
    assert by_who[BOB]["flag"] == "" and by_who[BOB]["jobs"] == 1


def test_the_window_decides_which_jobs_add_up(records_dir):
    rows = _rows(records_dir, Preset(by_principal=True, since="2026-03-03"))
    alice = next(r for r in rows if r["principal"] == ALICE)
    assert alice["jobs"] == 2 and alice["flag"] == ""  # 0.7 of the threshold


def test_per_model_package_group(records_dir):
    rows = _rows(records_dir, Preset(by_package_group=True))
    assert len(rows) == 1
    assert rows[0]["model_package_group"] == GROUP and rows[0]["jobs"] == 3
    assert rows[0]["flag"] == SPLIT_FLAG  # alice-1 + alice-2 + bob-1 = 1.4x


def test_a_set_with_a_job_that_exceeds_on_its_own_is_not_a_split(tmp_path):
    root = write_mirror(tmp_path, [_job("big", 2 * DEFAULT, ALICE, 2), _job("small", 0.1 * DEFAULT, ALICE, 3)])
    (row,) = _rows(root, Preset(by_principal=True))
    assert row["exceeding"] == 1 and row["flag"] == ""


def test_one_grouping_at_a_time():
    with pytest.raises(QueryError, match="one of"):
        preset_sql(Preset(by_principal=True, by_package_group=True))
    with pytest.raises(QueryError, match="one of"):
        preset_sql(Preset(by_sweep=True, by_package_group=True))
    with pytest.raises(QueryError, match="--until"):
        preset_sql(Preset(by_principal=True, until="March"))


def test_cli_by_principal(records_dir, capsys):
    assert main(["query", "--dir", str(records_dir), "--by-principal", "--format", "json"]) == 0
    out = capsys.readouterr().out
    assert SPLIT_FLAG in out and ALICE in out


def test_the_report_shows_the_flagged_sets_of_its_period(records_dir, tmp_path):
    from flopsmeter.compliance.report import write_report

    out = tmp_path / "report.html"
    data = write_report(records_dir, out, start=datetime(2026, 3, 1, tzinfo=UTC), end=datetime(2026, 3, 10, tzinfo=UTC))
    assert {(s.grouping, s.jobs) for s in data.splits} == {("principal-base-model", 3), ("package-group", 3)}
    html = out.read_text()
    assert "Possible splitting" in html and ALICE in html and GROUP in html
    later = write_report(records_dir, tmp_path / "later.html", start=datetime(2026, 3, 3, tzinfo=UTC))
    assert later.splits == []
    assert "Possible splitting" not in (tmp_path / "later.html").read_text()


# ---- per sweep -------------------------------------------------------------------------------------------------

CAROL = "arn:aws:sts::123456789012:assumed-role/MLEngineer/carol"
HPO = "arn:aws:sagemaker:eu-west-1:123456789012:hyper-parameter-tuning-job/"
PIPELINE = "arn:aws:sagemaker:eu-west-1:123456789012:pipeline/p/execution/x1"


def _launched(name, flops, who, *chain):
    links = [
        LaunchLink(kind=kind, arn=arn, event_name="Create", event_id=f"e-{arn[-6:]}", principal_arn=who)
        for kind, arn in chain
    ]
    return make_record(
        name,
        flops=flops,
        pretrain=None,
        end=datetime(2026, 3, 5, tzinfo=UTC),
        cloudtrail=CloudTrailRef(status="found", event_id=f"e-{name}", principal_arn=who, chain=links),
        lineage=Lineage(own_flops=flops, cumulative_flops=flops),
    )


@pytest.fixture(scope="module")
def sweeps_dir(tmp_path_factory):
    tuning = "hyper-parameter-tuning-job"
    jobs = [
        *(_launched(f"lr-{i:03d}-a1b2", 0.4 * DEFAULT, CAROL, (tuning, HPO + "lr")) for i in range(3)),
        _launched("small-001-c3d4", 0.1 * DEFAULT, ALICE, (tuning, HPO + "small")),
        # a pipeline step that launched a tuning job: the trial belongs to that sweep
        _launched("nested-001-e5f6", 0.2 * DEFAULT, CAROL, (tuning, HPO + "nested"), ("pipeline-execution", PIPELINE)),
        _launched("step-only", 0.9 * DEFAULT, BOB, ("pipeline-execution", PIPELINE)),  # no sweep
        _launched("direct", 0.9 * DEFAULT, BOB),  # launched by a person, no chain
    ]
    return write_mirror(tmp_path_factory.mktemp("sweeps"), jobs)


def test_per_sweep_sums_the_trials_of_each_tuning_job_with_who_launched_it(sweeps_dir):
    rows = _rows(sweeps_dir, Preset(by_sweep=True))
    by_sweep = {r["sweep"]: r for r in rows}
    assert set(by_sweep) == {HPO + "lr", HPO + "small", HPO + "nested"}  # jobs outside any sweep are not rows
    lr = by_sweep[HPO + "lr"]
    assert (lr["principal"], lr["jobs"], lr["flag"]) == (CAROL, 3, SPLIT_FLAG)
    assert lr["total_flops"] == pytest.approx(1.2 * DEFAULT) and rows[0]["sweep"] == HPO + "lr"
    assert by_sweep[HPO + "small"]["principal"] == ALICE and by_sweep[HPO + "small"]["flag"] == ""
    assert by_sweep[HPO + "nested"]["jobs"] == 1


def test_per_sweep_on_athena_takes_the_first_link_without_failing_on_an_empty_chain():
    duck, athena = (preset_sql(Preset(by_sweep=True), engine=e) for e in ("duckdb", "athena"))
    tuning = "filter(cloudtrail.chain, l -> l.kind = 'hyper-parameter-tuning-job')"
    assert f"element_at({tuning}, 1).arn" in athena and f"({tuning})[1]" not in athena
    assert f"({tuning})[1].arn" in duck and "element_at" not in duck
    # the other presets are the same SQL on both engines
    assert preset_sql(Preset(by_principal=True), engine="athena") == preset_sql(Preset(by_principal=True))


def test_cli_by_sweep(sweeps_dir, capsys):
    assert main(["query", "--dir", str(sweeps_dir), "--by-sweep", "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("sweep,principal,jobs,total_flops") and len(lines) == 4
    assert main(["query", "--dir", str(sweeps_dir), "--by-sweep", "--by-principal"]) != 0
