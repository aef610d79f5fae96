"""The classifier fills every record's energy and obligations blocks; a systemic crossing's alert and event carry
the Art. 52(1) due date (issue 16)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from flopsmeter.domain.deadlines import brussels_text, notification_due
from flopsmeter.domain.energy import DEFAULT_PUE
from flopsmeter.functions.settings import ClassifierSettings
from flopsmeter.ports import MeteredFigures
from flopsmeter.service.classifier import classify_and_record
from flopsmeter.service.dependencies import ClassifyRequest
from tests.support.fakes import END

SYSTEMIC = {"PRETRAIN_FLOPS": "3.8e25", "FLOPSMETER_SYSTEMIC_RISK_BASE": "true"}
P5_RATE = 128 * 8 * 1978.9e12  # 128 x ml.p5.48xlarge at the FP8 dense peak, FLOP/s


def _run(world, name):  # type: ignore[no-untyped-def]
    world.trail.add(name)
    return classify_and_record(ClassifyRequest(name, "evt"), world.deps, world.config).record


def _job(world, name, flops, **extra):  # type: ignore[no-untyped-def]
    world.jobs.add(name, instance_type="ml.p5.48xlarge", count=128, hours=400, **extra)
    world.meter.figures[name] = MeteredFigures(cumulative_flops=flops)


def test_every_record_has_an_energy_figure(world) -> None:  # type: ignore[no-untyped-def]
    world.jobs.add("small", count=2, hours=3)  # ml.p4d.24xlarge: 8 x A100 at 400 W
    record = _run(world, "small")
    assert record.energy is not None and record.energy.method == "board_power"
    assert record.energy.kwh == pytest.approx(2 * 8 * 0.4 * 3 * DEFAULT_PUE)
    assert record.obligations is not None and not record.obligations.triggered
    assert world.publisher.events[0]["energy_kwh"] == pytest.approx(record.energy.kwh)


def test_systemic_crossing_in_a_lineage_starts_the_clock_and_the_alert_carries_the_due_date(world) -> None:  # type: ignore[no-untyped-def]
    _job(world, "sr-1", 2.0e24, environment=SYSTEMIC, end=END - timedelta(days=20))
    parent = _run(world, "sr-1")
    assert parent.outcome == "below" and parent.obligations is not None and not parent.obligations.triggered
    _job(world, "sr-2", 1.5e24, environment={**SYSTEMIC, "FLOPSMETER_PARENT_JOB": "sr-1"})
    child = _run(world, "sr-2")
    o = child.obligations
    assert o is not None and o.triggered and o.crossed_in_job == "sr-2" and o.systemic_risk_base
    start = child.job.start_time
    assert start is not None and o.crossed_at is not None
    # earliest moment the hardware could have crossed 3.3e24: (3.3e24 - 2.0e24) / peak rate after the start
    assert (o.crossed_at - start).total_seconds() == pytest.approx(1.3e24 / P5_RATE, rel=1e-6)
    assert o.notification_due_at == notification_due(o.crossed_at)
    assert child.energy is not None and parent.energy is not None
    assert child.energy.lineage_kwh == pytest.approx((child.energy.kwh or 0) + (parent.energy.kwh or 0))
    subject, message, _attributes = world.publisher.alerts[-1]
    assert f"notify the Commission by {brussels_text(o.notification_due_at)}" in subject and len(subject) <= 100
    assert "CET" in subject or "CEST" in subject  # the due date with its zone (issue 23)
    assert "NOTIFICATION DUE" in message and "Art. 52(1)" in message
    assert world.publisher.events[-1]["notification_due_at"].startswith(f"{o.notification_due_at:%Y-%m-%d}")


def test_a_job_continuing_after_the_crossing_keeps_its_parents_clock(world) -> None:  # type: ignore[no-untyped-def]
    _job(world, "sr-a", 3.5e24, environment=SYSTEMIC, end=END - timedelta(days=20))
    first = _run(world, "sr-a")
    _job(world, "sr-b", 1e23, environment={**SYSTEMIC, "FLOPSMETER_PARENT_JOB": "sr-a"})
    second = _run(world, "sr-b")
    assert first.obligations is not None and second.obligations is not None
    assert second.obligations.crossed_in_job == "sr-a"
    assert second.obligations.notification_due_at == first.obligations.notification_due_at


def test_settings_carry_the_establishment_and_energy_assumptions() -> None:
    settings = ClassifierSettings.from_env(
        {"AUDIT_BUCKET_NAME": "audit", "ESTABLISHED_OUTSIDE_EU": "true", "ENERGY_PUE": "1.4",
         "ENERGY_POWER_UTILISATION": "0.7"}
    )  # fmt: skip
    config = settings.service_config()
    assert config.established_outside_eu and config.energy.pue == 1.4 and config.energy.power_utilisation == 0.7
    defaults = ClassifierSettings.from_env({"AUDIT_BUCKET_NAME": "audit"}).service_config()
    assert not defaults.established_outside_eu and defaults.energy.pue == DEFAULT_PUE


def test_the_meters_crossing_report_is_read_back_and_places_the_clock(world) -> None:  # type: ignore[no-untyped-def]
    import boto3
    from moto import mock_aws

    from flopsmeter import contract
    from flopsmeter.aws.metrics import JobMetrics

    start = END - timedelta(hours=400)
    reported = start + timedelta(hours=100, seconds=30)
    with mock_aws():
        cloudwatch = boto3.client("cloudwatch", region_name="eu-west-1")
        dims = [{"Name": contract.METRIC_DIMENSION, "Value": "sr-metered"}]
        cloudwatch.put_metric_data(
            Namespace=contract.METRICS_NAMESPACE,
            MetricData=[
                {"MetricName": contract.METRIC_CUMULATIVE_FLOPS, "Dimensions": dims, "Value": 3.5e24,
                 "Timestamp": END - timedelta(minutes=1)},
                {"MetricName": contract.METRIC_THRESHOLD_CROSSED, "Dimensions": dims, "Value": 1.0,
                 "Timestamp": reported},
            ],
        )  # fmt: skip
        figures = JobMetrics(cloudwatch).job_metrics("sr-metered", start, END + timedelta(minutes=15))
    assert figures.threshold_crossed_at is not None
    assert figures.threshold_crossed_at <= reported  # the start of its period: never after the report
    assert reported - figures.threshold_crossed_at < timedelta(hours=5)
    _job(world, "sr-metered", 3.5e24, environment=SYSTEMIC)
    world.meter.figures["sr-metered"] = figures
    record = _run(world, "sr-metered")
    o = record.obligations
    assert o is not None and o.crossed_at == figures.threshold_crossed_at and "meter" in (o.crossed_at_basis or "")
    assert o.notification_due_at == notification_due(figures.threshold_crossed_at)
