"""The event the service publishes for every new record: ``detail`` of "FLOPs Classification Recorded" (source and
detail-type in ``flopsmeter.contract``), announced by ``flopsmeter.service.notifications``."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict


class ClassificationRecordedDetail(BaseModel):
    """``detail`` of the "FLOPs Classification Recorded" event the service publishes (one per new record)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    record_id: str
    record_key: str
    bucket: str
    sha256: str
    job_name: str
    job_arn: str
    job_status: str
    primary_policy: str
    outcome: Literal["below", "approaching", "exceeds"]
    worst_outcome: Literal["below", "approaching", "exceeds"]
    method: str
    classified_flops: float
    cumulative_flops: float
    threshold: float
    ratio: float
    eventbridge_event_id: str | None = None
    reconciled: bool = False
    # issue 16: the Art. 52(1) due date when a crossing starts the clock, and the job's estimated energy
    notification_due_at: datetime | None = None
    energy_kwh: float | None = None
