"""Fill a record's ``energy`` and ``obligations`` blocks from its own fields (pure; issue 16).

The classifier calls ``with_energy_and_obligations`` on the record it built, with what only it knows (the parent
record's lineage energy and crossing moment, the meter's reported crossing moment, the deployment's settings); the
demo and the tests use the same function, so every path fills the blocks the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from flopsmeter.audit.energy_obligations import EnergyInfo, ObligationsInfo
from flopsmeter.audit.record import AuditRecord
from flopsmeter.domain.classification import Outcome, PolicyResult
from flopsmeter.domain.energy import EnergyAssumptions, EnergyEstimate, energy_from_flops, energy_from_instances
from flopsmeter.domain.energy import lineage_kwh as lineage_energy
from flopsmeter.domain.estimate import ESTIMATE_METHOD
from flopsmeter.domain.obligations import JobTimeline, crossing_moment, lowest_exceeded, obligations_on_crossing
from flopsmeter.domain.thresholds import Scenario


@dataclass(frozen=True)
class BlockInputs:
    established_outside_eu: bool = False  # the provider's establishment (deployment setting): Art. 54
    energy: EnergyAssumptions = field(default_factory=EnergyAssumptions)
    parent_lineage_kwh: float | None = None  # the parent record's energy.lineage_kwh
    parent_crossed_at: datetime | None = None  # the parent record's obligations.crossed_at
    parent_crossed_threshold: float | None = None  # the threshold that moment is for (its obligations.threshold)
    parent_lineage_started_at: datetime | None = None  # the earliest start in the parents' lineages
    metered_crossed_at: datetime | None = None  # when the job's meter reported the crossing


def job_energy(record: AuditRecord, assumptions: EnergyAssumptions) -> EnergyEstimate:
    """Board power when the record has instances; from its FLOPs when it was estimated (no instances)."""
    if str(record.flops.method) == ESTIMATE_METHOD:  # no instances: Bedrock-style customization jobs
        return energy_from_flops(record.flops.classified_flops, assumptions)
    return energy_from_instances(
        record.job.instance_type, record.job.instance_count, record.job.training_seconds, assumptions
    )


def policy_results(record: AuditRecord) -> list[PolicyResult]:
    return [
        PolicyResult(c.policy, Scenario(c.scenario), c.threshold, c.ratio, Outcome(c.outcome), c.basis)
        for c in record.classifications
    ]


def rate_bound(record: AuditRecord) -> float | None:
    """The hardware's peak rate, when the record knows the instances; None when it does not (a managed job whose
    instances are undisclosed: its ceiling is a placeholder that bounds nothing, so the crossing is the job's start)."""
    ceiling = record.flops.hardware_ceiling
    if str(record.flops.method) == ESTIMATE_METHOD or not ceiling.known_instance or ceiling.seconds <= 0:
        return None
    return ceiling.flops / ceiling.seconds


def job_obligations(
    record: AuditRecord, inputs: BlockInputs, results: list[PolicyResult] | None = None
) -> ObligationsInfo:
    """The record's obligations block; ``results`` replaces its classifications (a re-evaluation, issue 23)."""
    lowest = lowest_exceeded(policy_results(record) if results is None else results)
    crossing = None
    start = record.job.start_time or record.job.creation_time or record.job.end_time
    if lowest is not None:
        timeline = JobTimeline(
            job_name=record.job.name,
            start=start,
            end=record.job.end_time,
            parent_cumulative_flops=record.lineage.parent_cumulative_flops,
            own_flops=record.lineage.own_flops,
            metered_crossed_at=inputs.metered_crossed_at,
            rate_bound_flops_per_s=rate_bound(record),
            ancestor_job=record.lineage.parent_job,
            ancestor_crossed_at=inputs.parent_crossed_at,
            ancestor_crossed_threshold=inputs.parent_crossed_threshold,
            ancestor_earliest_at=inputs.parent_lineage_started_at,
        )
        crossing = crossing_moment(timeline, *lowest)
    result = obligations_on_crossing(
        crossing,
        systemic_risk_base=record.base_model.systemic_risk,
        established_outside_eu=inputs.established_outside_eu,
        base_pretrain_flops=record.base_model.pretrain_flops,
        cumulative_flops=record.lineage.cumulative_flops,
    )
    started = min(d for d in (start, inputs.parent_lineage_started_at) if d is not None)
    return ObligationsInfo.from_result(result).model_copy(update={"lineage_started_at": started})


def with_energy_and_obligations(record: AuditRecord, inputs: BlockInputs | None = None) -> AuditRecord:
    """A sealed copy of ``record`` with both blocks filled."""
    chosen = inputs or BlockInputs()
    estimate = job_energy(record, chosen.energy)
    total = lineage_energy(chosen.parent_lineage_kwh, estimate, has_parent=record.lineage.parent_job is not None)
    update = {
        "energy": EnergyInfo.from_estimate(estimate, total),
        "obligations": job_obligations(record, chosen),
    }
    return record.model_copy(update=update).sealed()
