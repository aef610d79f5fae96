"""A HyperPod cluster's period comparison (issue 26 point 3): the cluster's ceiling for one UTC day, the reported jobs'
share of it and the gap, written once under ``clusters/`` (``flopsmeter.audit.keys.cluster_period_key``), hash-sealed
like an audit record."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from flopsmeter.audit.record import body_sha256, canonical_json
from flopsmeter.domain.hyperpod import ClusterPeriod


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NodeSeconds(_Model):
    instance_id: str
    instance_type: str
    seconds: float = Field(ge=0)


class JobShare(_Model):
    job_id: str
    flops: float = Field(ge=0)  # the job's FLOPs counted in this period


class ClusterPeriodRecord(_Model):
    schema_version: Literal[1] = 1
    kind: Literal["hyperpod-cluster-period"] = "hyperpod-cluster-period"
    recorded_at: datetime
    account_id: str
    region: str
    cluster_name: str
    cluster_arn: str
    orchestrator: Literal["slurm", "eks"]
    period_start: datetime
    period_end: datetime
    ceiling_flops: float = Field(ge=0)  # every listed node's seconds in the period x chips x dense peak
    ceiling_source: Literal["list_cluster_nodes"] = "list_cluster_nodes"
    instance_hours: float = Field(ge=0)
    reported_flops: float = Field(ge=0)
    unreported_flops: float = Field(ge=0)  # the gap: compute no report accounts for (never below zero)
    coverage: float = Field(ge=0)
    status: Literal["covered", "gap", "idle"]
    jobs: list[JobShare] = Field(default_factory=list)
    nodes: list[NodeSeconds] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    sha256: str = ""

    def body(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude={"sha256"})

    def sealed(self) -> ClusterPeriodRecord:
        return self.model_copy(update={"sha256": body_sha256(self.body())})

    def to_json_bytes(self) -> bytes:
        return canonical_json({**self.body(), "sha256": self.sha256})

    @classmethod
    def from_period(
        cls, period: ClusterPeriod, *, account_id: str, region: str, arn: str, orchestrator: str, now: datetime
    ) -> ClusterPeriodRecord:
        status = "idle" if period.ceiling_flops == 0 else "gap" if period.gap_flops > 0 else "covered"
        return cls(
            recorded_at=now,
            account_id=account_id,
            region=region,
            cluster_name=period.cluster,
            cluster_arn=arn,
            orchestrator="eks" if orchestrator == "eks" else "slurm",
            period_start=period.period_start,
            period_end=period.period_end,
            ceiling_flops=period.ceiling_flops,
            instance_hours=period.instance_seconds / 3600.0,
            reported_flops=period.reported_flops,
            unreported_flops=period.gap_flops,
            coverage=period.coverage,
            status=status,
            jobs=[JobShare(job_id=j, flops=f) for j, f in period.jobs],
            nodes=[NodeSeconds(instance_id=i, instance_type=t, seconds=s) for i, t, s in period.nodes],
            warnings=list(period.warnings),
        ).sealed()
