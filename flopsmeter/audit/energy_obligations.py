"""The record's ``energy`` and ``obligations`` blocks (optional, additive to schema v1; issue 16).

``energy``: the job's estimated energy (``flopsmeter.domain.energy``), with its method, assumptions and
uncertainty, and the lineage's total. ``obligations``: what a crossing triggers and from when
(``flopsmeter.domain.obligations``): the Art. 52(1) due date where it applies. Both are JSON-ready records of the
domain values and convert from them explicitly; records stay immutable, so a record states what was known when it
was written.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from flopsmeter.domain.energy import EnergyEstimate
from flopsmeter.domain.obligations import ObligationsOnCrossing


class _Block(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EnergyInfo(_Block):
    method: Literal["board_power", "flops_at_utilisation", "unknown"]
    kwh: float | None = Field(default=None, ge=0)  # at the facility (PUE included); None: unknown, never zero
    accelerator_kwh: float | None = Field(default=None, ge=0)
    lineage_kwh: float | None = Field(default=None, ge=0)  # this job and its ancestors; None when a part is unknown
    accelerator: str | None = None
    accelerators: int | None = Field(default=None, ge=0)
    board_power_w: float | None = Field(default=None, ge=0)
    board_power_source: str | None = None
    accelerator_hours: float | None = Field(default=None, ge=0)
    pue: float = Field(ge=1)
    pue_source: str
    power_utilisation: float = Field(gt=0, le=1)
    model_flops_utilisation: float | None = Field(default=None, gt=0, le=1)  # flops_at_utilisation only
    uncertainty: str
    notes: list[str] = Field(default_factory=list)

    @classmethod
    def from_estimate(cls, estimate: EnergyEstimate, lineage_kwh: float | None) -> EnergyInfo:
        a = estimate.assumptions
        return cls(
            method=estimate.method.value,
            kwh=estimate.kwh,
            accelerator_kwh=estimate.accelerator_kwh,
            lineage_kwh=lineage_kwh,
            accelerator=estimate.accelerator,
            accelerators=estimate.accelerators,
            board_power_w=estimate.board_power_w,
            board_power_source=estimate.board_power_source,
            accelerator_hours=estimate.accelerator_hours,
            pue=a.pue,
            pue_source=a.pue_source,
            power_utilisation=a.power_utilisation,
            model_flops_utilisation=a.model_flops_utilisation
            if estimate.method.value == "flops_at_utilisation"
            else None,
            uncertainty=estimate.uncertainty,
            notes=list(estimate.notes),
        )


class ObligationItem(_Block):
    obligation_id: str
    article: str
    summary: str
    applies: str
    status: Literal["triggered", "review"]
    due_at: datetime | None = None


class ObligationsInfo(_Block):
    triggered: bool
    crossed_at: datetime | None = None
    crossed_at_basis: str | None = None
    crossed_in_job: str | None = None  # the lineage's job in which the crossing happened
    threshold: float | None = Field(default=None, ge=0)  # the lowest exceeded threshold (crossed first)
    policies: list[str] = Field(default_factory=list)  # every policy that says exceeds
    systemic_risk_base: bool = False
    established_outside_eu: bool = False
    notification_due_at: datetime | None = None  # Art. 52(1): two weeks after crossed_at (Reg. 1182/71, Brussels)
    lineage_started_at: datetime | None = None  # issue 23: the earliest start in the lineage (earliest crossing)
    items: list[ObligationItem] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)

    @classmethod
    def from_result(cls, result: ObligationsOnCrossing) -> ObligationsInfo:
        crossing = result.crossing
        return cls(
            triggered=result.triggered,
            crossed_at=None if crossing is None else crossing.at,
            crossed_at_basis=None if crossing is None else crossing.basis,
            crossed_in_job=None if crossing is None else crossing.crossed_in_job,
            threshold=None if crossing is None else crossing.threshold,
            policies=[] if crossing is None else list(crossing.policies),
            systemic_risk_base=result.systemic_risk_base,
            established_outside_eu=result.established_outside_eu,
            notification_due_at=result.notification_due_at,
            items=[
                ObligationItem(
                    obligation_id=o.obligation_id,
                    article=o.article,
                    summary=o.summary,
                    applies=o.applies,
                    status=o.status.value,
                    due_at=o.due_at,
                )
                for o in result.obligations
            ],
            notes=list(result.notes),
        )
