"""Issue 23, point 3 through the classifier: what the service cannot establish never reads as "below" or "later"."""

from __future__ import annotations

from datetime import timedelta

from flopsmeter.audit.blocks import BlockInputs, job_obligations, with_energy_and_obligations
from flopsmeter.audit.record import PolicyClassification
from flopsmeter.domain.classification import classify
from flopsmeter.domain.deadlines import notification_due
from flopsmeter.domain.obligations import clock_state
from flopsmeter.ports import MeteredFigures
from flopsmeter.service.classifier import classify_and_record
from flopsmeter.service.dependencies import ClassifyRequest
from tests.support.fakes import END
from tests.support.records import make_record

SYSTEMIC = {"PRETRAIN_FLOPS": "3.8e25", "FLOPSMETER_SYSTEMIC_RISK_BASE": "true"}


def _run(world, name):  # type: ignore[no-untyped-def]
    world.trail.add(name)
    return classify_and_record(ClassifyRequest(name, "evt"), world.deps, world.config).record


def test_a_child_under_another_reading_dates_the_crossing_at_the_earliest_possible_moment(world) -> None:  # type: ignore[no-untyped-def]
    # Given a parent on a systemic base (threshold 3.3e24) that ended 40 days ago with 1.1e25 FLOPs
    world.jobs.add("p-1", instance_type="ml.p5.48xlarge", count=128, hours=400, environment=SYSTEMIC,
                   end=END - timedelta(days=40))  # fmt: skip
    world.meter.figures["p-1"] = MeteredFigures(cumulative_flops=1.1e25)
    parent = _run(world, "p-1")
    # and a short child read under another reading (base not declared: threshold 3.3e22)
    world.jobs.add("c-1", instance_type="ml.p5.48xlarge", count=1, hours=10,
                   environment={"FLOPSMETER_PARENT_JOB": "p-1"})  # fmt: skip
    world.meter.figures["c-1"] = MeteredFigures(cumulative_flops=1e21)
    child = _run(world, "c-1")
    o = child.obligations
    assert o is not None and o.triggered and parent.job.start_time is not None
    # Then the crossing is the lineage's first start (the parent's record dates another threshold), said so,
    assert o.crossed_at == parent.job.start_time and "earliest possible moment" in (o.crossed_at_basis or "")
    # the Art. 51(2) presumption applies above 1e25 whatever the base, and the clock is overdue, not open
    assert o.notification_due_at == notification_due(parent.job.start_time)
    assert clock_state(o.notification_due_at, END) == "overdue"
    assert o.lineage_started_at == parent.job.start_time


def test_a_managed_job_without_instances_crosses_at_its_start() -> None:
    # Given an estimated record (serverless / Bedrock: no instances; the ceiling is a placeholder)
    record = make_record("bedrock-1", flops=4e24, pretrain=3.8e25)
    ten_days = record.job.model_copy(update={"start_time": record.job.end_time - timedelta(days=10)})
    ceiling = record.flops.hardware_ceiling.model_copy(update={"known_instance": False, "seconds": 10 * 86400.0})
    flops = record.flops.model_copy(update={"method": "estimated", "hardware_ceiling": ceiling})
    base = record.base_model.model_copy(update={"systemic_risk": True})
    record = record.model_copy(update={"job": ten_days, "flops": flops, "base_model": base})
    result = classify(4e24, 3.8e25, systemic_risk_base=True)
    record = record.model_copy(
        update={"classifications": [PolicyClassification.from_result(r) for r in result.results]}
    )
    o = job_obligations(record, BlockInputs())
    # Then the crossing is the job's start (not start + a placeholder rate: up to 10 days late)
    assert o.crossed_at == ten_days.start_time and "job start" in (o.crossed_at_basis or "")
    assert with_energy_and_obligations(record).obligations == o
