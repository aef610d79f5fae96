"""Totals count each modification once (``flopsmeter.compliance.query.current``): a job re-assessed by an addendum
(issue 23) once, at its current figure, and an AWS Batch service job's compute once, not again in its attempts
(issue 26); an attempt whose service job is not recorded yet still counts. Run on DuckDB over a mirror; the same
SQL is parsed by Athena's grammar in test_athena_grammar."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from flopsmeter.audit.record import AuditRecord, BatchInfo
from flopsmeter.compliance.query import Preset, preset_sql, run_duckdb
from flopsmeter.ports import MeteredFigures
from flopsmeter.service.classifier import classify_and_record
from flopsmeter.service.dependencies import ClassifyRequest
from tests.support.fakes import END, World
from tests.support.records import make_record, write_mirror

OUT = "s3://ml-artifacts-123/out"
SERVICE_JOB = "arn:aws:batch:eu-west-1:123456789012:service-job/0f3c2a1e-5b6d-4e7f-8a9b-0c1d2e3f4a5b"


def _rows(root: Any, preset: Preset) -> list[dict[str, Any]]:
    result = run_duckdb(root, preset_sql(preset), cache=False)
    return [dict(zip(result.columns, row, strict=True)) for row in result.rows]


def _re_assessed_mirror(tmp_path: Any) -> Any:
    """sft (2e22) and dpo (1.5e22, reads sft's model): dpo's event first, so dpo gets an addendum (3.5e22)."""
    world = World()
    for name, flops, end, reads in (("sft", 2e22, END - timedelta(days=1), ()), ("dpo", 1.5e22, END, ("sft",))):
        description = world.jobs.add(name, end=end, hours=2.0)
        description["OutputDataConfig"] = {"S3OutputPath": OUT}
        description["ModelArtifacts"] = {"S3ModelArtifacts": f"{OUT}/{name}/output/model.tar.gz"}
        description["InputDataConfig"] = [
            {"ChannelName": "model", "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri}}}
            for uri in (f"{OUT}/{r}/output/model.tar.gz" for r in reads)
        ]
        world.trail.add(name)
        world.meter.figures[name] = MeteredFigures(cumulative_flops=flops)
    for name in ("dpo", "sft"):
        classify_and_record(ClassifyRequest(name, f"evt-{name}"), world.deps, world.config)
    for key, body in world.store.objects.items():
        if key.startswith("records/"):
            (tmp_path / key).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / key).write_bytes(body)
    assert len(_rows(tmp_path, Preset(job="dpo"))) == 2  # the original and its addendum are both listed
    return tmp_path


def test_by_base_model_counts_a_re_assessed_job_once(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (row,) = _rows(_re_assessed_mirror(tmp_path), Preset(by_base_model=True))
    assert row["jobs"] == 2 and row["total_flops"] == pytest.approx(2e22 + 1.5e22)
    assert row["max_cumulative_flops"] == pytest.approx(3.5e22) and row["exceeding"] == 1


def test_a_splitting_total_is_not_inflated_by_an_addendum(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (row,) = _rows(_re_assessed_mirror(tmp_path), Preset(by_principal=True))
    assert row["jobs"] == 2 and row["total_flops"] == pytest.approx(3.5e22)


def test_by_lineage_lists_the_re_assessed_model_once_at_its_current_figure(tmp_path) -> None:  # type: ignore[no-untyped-def]
    rows = _rows(_re_assessed_mirror(tmp_path), Preset(by_lineage=True))
    assert [(r["model_job"], r["outcome"]) for r in rows] == [("dpo", "exceeds")]
    assert rows[0]["cumulative_flops"] == pytest.approx(3.5e22)


def _batch(role: str, name: str, flops: float) -> AuditRecord:
    info = BatchInfo(role=role, service_job_arn=SERVICE_JOB, service_job_id=SERVICE_JOB.rsplit("/", 1)[1],
                     service_job_name="sft-batch")  # fmt: skip
    record = make_record(name, flops=flops, batch=info)
    if role == "service_job":
        record = record.model_copy(update={"job": record.job.model_copy(update={"arn": SERVICE_JOB})}).sealed()
    return record


def test_a_batch_service_job_is_counted_once_not_again_in_its_attempts(tmp_path) -> None:  # type: ignore[no-untyped-def]
    attempts = [_batch("attempt", "sft-batch-a1", 4e21), _batch("attempt", "sft-batch-a2", 6e21)]
    root = write_mirror(tmp_path, [*attempts, _batch("service_job", "sft-batch", 1e22)])
    (row,) = _rows(root, Preset(by_base_model=True))
    assert row["jobs"] == 1 and row["total_flops"] == pytest.approx(1e22)
    assert len(_rows(root, Preset())) == 3  # the listing still shows every record


def test_attempts_count_while_their_service_job_is_unrecorded(tmp_path) -> None:  # type: ignore[no-untyped-def]
    root = write_mirror(tmp_path, [_batch("attempt", "sft-batch-a1", 4e21), _batch("attempt", "sft-batch-a2", 6e21)])
    (row,) = _rows(root, Preset(by_base_model=True))
    assert row["jobs"] == 2 and row["total_flops"] == pytest.approx(1e22)


def test_the_period_report_counts_a_batch_service_job_once(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from flopsmeter.compliance.report import collect, summary

    records = [_batch("attempt", "sft-batch-a1", 4e21), _batch("attempt", "sft-batch-a2", 6e21)]
    stats = summary(collect(write_mirror(tmp_path, [*records, _batch("service_job", "sft-batch", 1e22)]))[0])
    assert (stats["records"], stats["jobs"]) == (3, 1) and stats["total_flops"] == pytest.approx(1e22)
