"""A two-job lineage of valid records with their energy and obligations blocks (issue 16 tests and checks)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from flopsmeter.audit.blocks import BlockInputs, with_energy_and_obligations
from flopsmeter.audit.record import AuditRecord, BaseModelInfo, Lineage
from flopsmeter.domain.hardware import hardware_ceiling
from tests.support.records import make_record

BASE_MODEL = "meta-llama/Llama-3.1-405B"
BASE_PRETRAIN = 3.8e25  # Meta's figure; a systemic-risk original (regulation.md, Q4)


def lineage_job(
    name: str,
    own: float,
    *,
    parent: AuditRecord | None = None,
    end: datetime,
    systemic: bool = True,
    pretrain: float | None = BASE_PRETRAIN,
    outside_eu: bool = False,
    instances: int = 128,
    seconds: float = 15 * 86400.0,
    **overrides: Any,
) -> AuditRecord:
    """One job of a lineage: classified on its cumulative FLOPs, its blocks filled as the classifier fills them."""
    parent_cumulative = parent.lineage.cumulative_flops if parent else 0.0
    cumulative = parent_cumulative + own
    record = make_record(name, flops=cumulative, pretrain=pretrain, end=end)
    if systemic:  # re-classify as the service does for a systemic-risk base
        from flopsmeter.audit.record import PolicyClassification
        from flopsmeter.domain.classification import classify

        result = classify(cumulative, pretrain, systemic_risk_base=True)
        overrides.setdefault("classifications", [PolicyClassification.from_result(r) for r in result.results])
        overrides.setdefault("outcome", result.primary.outcome.value)
    ceiling = hardware_ceiling("ml.p5.48xlarge", instances, seconds)
    job = record.job.model_copy(
        update={"instance_count": instances, "training_seconds": seconds, "billable_seconds": int(seconds) * instances,
                "start_time": end - timedelta(seconds=seconds)}
    )  # fmt: skip
    hardware = record.flops.hardware_ceiling.model_copy(
        update={"flops": ceiling.flops, "bf16_flops": ceiling.bf16_flops, "instance_count": instances,
                "seconds": seconds}
    )  # fmt: skip
    record = record.model_copy(
        update={
            "job": job,
            "base_model": BaseModelInfo(
                model_id=BASE_MODEL, pretrain_flops=pretrain, source="catalog" if pretrain else "unknown",
                basis="bundled catalog: Meta model card, 3.8e25 FLOPs", systemic_risk=systemic,
            ),
            "flops": record.flops.model_copy(
                update={"classified_flops": own, "metered": own, "hardware_ceiling": hardware}
            ),
            "lineage": Lineage(
                parent_job=parent.job.name if parent else None,
                parent_record_key=None,
                own_flops=own,
                parent_cumulative_flops=parent_cumulative,
                cumulative_flops=cumulative,
                chain=[*parent.lineage.chain, parent.job.name] if parent else [],
            ),
            **overrides,
        }
    )  # fmt: skip
    inputs = BlockInputs(
        established_outside_eu=outside_eu,
        parent_lineage_kwh=parent.energy.lineage_kwh if parent and parent.energy else None,
        parent_crossed_at=parent.obligations.crossed_at if parent and parent.obligations else None,
        parent_crossed_threshold=parent.obligations.threshold if parent and parent.obligations else None,
        parent_lineage_started_at=parent.obligations.lineage_started_at if parent and parent.obligations else None,
    )
    return with_energy_and_obligations(record, inputs)


def systemic_lineage() -> tuple[AuditRecord, AuditRecord]:
    """ft-405b-1 (below the systemic line), then ft-405b-2 from its checkpoint, crossing 3.3e24 FLOPs: 128 x
    ml.p5.48xlarge for 15 days each (hardware ceiling 2.6e24 per job)."""
    first = lineage_job("ft-405b-1", 2.0e24, end=datetime(2026, 3, 1, 12, 0, tzinfo=UTC))
    second = lineage_job("ft-405b-2", 2.1e24, parent=first, end=datetime(2026, 3, 20, 12, 0, tzinfo=UTC))
    return first, second
