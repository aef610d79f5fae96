"""An AWS Batch attempt with no record and no describable training job is counted from the submitted request, and
what that request or the attempt does not state never reads as zero (issue 26 under the brief's rule): a missing
start or stop time is bounded by the service job's own createdAt..stoppedAt, and a request with no instance count
has no upper bound, so the attempt counts at the Art. 51(2) presumption (1e25), said in the record."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from flopsmeter.domain.hardware import hardware_ceiling
from flopsmeter.service.batch import classify_batch_service_job
from flopsmeter.service.dependencies import ClassifyRequest
from tests.support.fakes import FakeBatch, World


def _world_with(job_id: str, **payload_or_times: object) -> World:
    """A ended service job of one attempt whose training job SageMaker no longer describes; past the wait."""
    world = World()
    world.deps.batch = batch = FakeBatch()
    job = batch.add(job_id, ["AWSBatchgone-a1"], hours_per_attempt=2.0)
    for field in ("startedAt", "stoppedAt"):
        if payload_or_times.get(f"no_{field}"):
            del job["attempts"][0][field]
    if "payload" in payload_or_times:
        job["serviceRequestPayload"] = json.dumps(payload_or_times["payload"])
    world.trail.hits[job["jobArn"]] = world.trail.add(job["jobArn"])
    world.now += timedelta(days=1)
    return world


def test_an_attempt_without_a_stop_time_is_bounded_by_the_service_job_never_zero() -> None:
    world = _world_with("j-nostop", no_stoppedAt=True)
    record = classify_batch_service_job(ClassifyRequest("j-nostop", "ev"), world.deps, world.config).record
    assert record is not None and record.batch is not None
    # the attempt started 2 h before the service job stopped: 2 h of a p4d at its peak, not 0
    expected = hardware_ceiling("ml.p4d.24xlarge", 1, 2 * 3600.0).flops
    assert record.batch.attempts[0].flops == pytest.approx(expected) and expected > 0
    assert any("states no start or stop time" in w for w in record.warnings)


def test_a_request_without_an_instance_count_counts_at_the_presumption_and_says_so() -> None:
    world = _world_with("j-nocount", payload={"ResourceConfig": {"InstanceType": "ml.p4d.24xlarge"}})
    record = classify_batch_service_job(ClassifyRequest("j-nocount", "ev"), world.deps, world.config).record
    assert record is not None and record.batch is not None
    assert record.flops.classified_flops == pytest.approx(1e25) and record.outcome == "exceeds"
    assert any("names no instance count" in w and "never below" in w for w in record.warnings)


def test_a_request_with_its_instance_count_is_counted_at_that_count() -> None:
    world = _world_with("j-count", payload={"ResourceConfig": {"InstanceType": "ml.p4d.24xlarge", "InstanceCount": 4}})
    record = classify_batch_service_job(ClassifyRequest("j-count", "ev"), world.deps, world.config).record
    assert record is not None and record.batch is not None
    assert record.flops.classified_flops == pytest.approx(hardware_ceiling("ml.p4d.24xlarge", 4, 7200.0).flops)
    assert not any("instance count" in w for w in record.warnings)


def test_an_attempt_whose_run_nothing_dates_counts_at_the_presumption() -> None:
    world = _world_with("j-undated", no_stoppedAt=True)
    del world.deps.batch.jobs["j-undated"]["stoppedAt"]  # type: ignore[union-attr]  # a terminal service job that states no stop either
    record = classify_batch_service_job(ClassifyRequest("j-undated", "ev"), world.deps, world.config).record
    assert record is not None and record.flops.classified_flops == pytest.approx(1e25)
    assert any("states how long it ran" in w and "never below" in w for w in record.warnings)
