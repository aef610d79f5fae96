"""Builds valid AuditRecords for tests (real model, real hashing)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from flopsmeter.audit.keys import record_key
from flopsmeter.audit.record import (
    AuditRecord,
    BaseModelInfo,
    CloudTrailRef,
    FlopsInfo,
    HardwareCeilingInfo,
    JobInfo,
    Lineage,
    PolicyClassification,
    record_id_for,
)
from flopsmeter.domain.classification import classify
from flopsmeter.domain.hardware import hardware_ceiling


def make_record(
    name: str = "llama-ft-001",
    *,
    flops: float = 1.0e21,
    pretrain: float | None = 1.5e24,
    end: datetime | None = None,
    status: str = "Completed",
    **overrides: Any,
) -> AuditRecord:
    end = end or datetime(2026, 11, 20, 12, 30, tzinfo=UTC)
    start = end - timedelta(hours=2)
    arn = f"arn:aws:sagemaker:eu-west-1:123456789012:training-job/{name}"
    ceiling = hardware_ceiling("ml.p5.48xlarge", 1, 7200.0)
    result = classify(flops, pretrain)
    record = AuditRecord(
        record_id=record_id_for(arn),
        recorded_at=end + timedelta(minutes=5),
        job=JobInfo(
            name=name,
            arn=arn,
            account_id="123456789012",
            region="eu-west-1",
            status=status,
            start_time=start,
            end_time=end,
            instance_type="ml.p5.48xlarge",
            instance_count=1,
            billable_seconds=7200,
            training_seconds=7200.0,
        ),
        base_model=BaseModelInfo(
            model_id="meta-llama/Meta-Llama-3-70B",
            pretrain_flops=pretrain,
            source="environment" if pretrain else "unknown",
            basis="test",
            raw_value=None if pretrain is None else f"{pretrain:g}",
        ),
        flops=FlopsInfo(
            method="metered",
            classified_flops=flops,
            metered=flops,
            hardware_ceiling=HardwareCeilingInfo(
                flops=ceiling.flops,
                bf16_flops=ceiling.bf16_flops,
                accelerator=ceiling.accelerator,
                chips_per_instance=ceiling.chips_per_instance,
                instance_count=1,
                seconds=ceiling.seconds,
                peak_flops_per_chip=ceiling.peak_flops_per_chip,
                precision=ceiling.precision,
                known_instance=True,
                peak_source=ceiling.peak_source,
            ),
            tokens=1_000_000,
            non_padding_tokens=900_000,
            formula_version="arch-v1",
            uncertainty="architecture-based; attention counted at full s x s",
        ),
        classifications=[PolicyClassification.from_result(r) for r in result.results],
        primary_policy=result.primary_policy,
        outcome=result.primary.outcome.value,
        cloudtrail=CloudTrailRef(
            status="found",
            event_id="1b2c3d4e-0000-4000-8000-000000000001",
            event_time=start - timedelta(minutes=1),
            principal_arn="arn:aws:sts::123456789012:assumed-role/MLEngineer/alice",
            source_ip="203.0.113.10",
        ),
        eventbridge_event_id="0f0e0d0c-aaaa-bbbb-cccc-000000000001",
        lineage=Lineage(own_flops=flops, cumulative_flops=flops),
        warnings=list(result.warnings),
    )
    if overrides:
        record = record.model_copy(update=overrides)
    return record.sealed()


def key_of(record: AuditRecord) -> str:
    """The record's key in the bucket."""
    return record_key(record.job.account_id, record.job.region, record.job.end_time, record.job.name)


def write_mirror(root: Path, records: Iterable[AuditRecord]) -> Path:
    """Write records as files under ``root`` in the bucket's key layout (a mirror); returns ``root``."""
    for record in records:
        path = root / key_of(record)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(record.to_json_bytes())
    return root
