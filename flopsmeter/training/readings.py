"""What the meter has counted, and what it knows it missed: the totals, the gap, and how they travel with
checkpoints (``state.py`` holds the file format).

``Readings`` is the one place where summed counts become totals (``accounting.accumulate``) and where a gap is
recorded; the gap is never cleared (it travels with checkpoints). Missing steps are estimated as missing steps x
the largest global step seen, and the reported figure is counted + that estimate.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flopsmeter.training.accounting import accumulate
from flopsmeter.training.distributed import Reduced
from flopsmeter.training.model import ModelProfile
from flopsmeter.training.state import Gap, Totals, gap_from_document, state_document, totals_from_document

logger = logging.getLogger("flopsmeter.training")


def no_update_reason(steps: int) -> str:
    return (f"the optimizer stepped {steps} times but no update pass was counted: the passes ran through modules "
            "the meter does not see, or the batches were never given to it")  # fmt: skip


class Readings:
    def __init__(self, warnings: list[str]) -> None:
        self.warnings = warnings  # shared with the meter: a gap's reason is a warning too
        self.totals = Totals()
        self.restored: Totals | None = None
        self.gap = Gap()
        self.max_step_flops = 0.0

    def mark_incomplete(self, reason: str, *, missing_steps: int = 0) -> None:
        """Record that the totals miss part of the job. The flag is never cleared (it travels with checkpoints)."""
        reasons = self.gap.reasons if reason in self.gap.reasons else (*self.gap.reasons, reason)
        self.gap = Gap(self.gap.missing_steps + max(0, missing_steps), self.gap.estimated_flops, reasons)
        if reason not in self.warnings:
            self.warnings.append(reason)
            logger.warning("flops meter totals incomplete: %s", reason)

    @property
    def incomplete(self) -> bool:
        return bool(self.gap.reasons)

    @property
    def estimated_flops(self) -> float:
        """Missing steps x the largest global step seen (never below an estimate restored from a checkpoint)."""
        return max(self.gap.estimated_flops, self.gap.missing_steps * self.max_step_flops)

    @property
    def reported_flops(self) -> float:
        """What is emitted as cumulative FLOPs: counted FLOPs plus the estimate of steps never metered."""
        return self.totals.flops + self.estimated_flops

    def add(self, reduced: Reduced, profile: ModelProfile, *, steps: int, seconds: float) -> None:
        """Fold the counts of every rank since the last sync into the totals; flag a run that updated nothing."""
        self.totals = accumulate(self.totals, reduced, profile, steps=steps, seconds=seconds)
        self.max_step_flops = max(self.max_step_flops, reduced.max_step_flops)
        if self.totals.steps > 0 and self.totals.update_flops <= 0:
            self.mark_incomplete(no_update_reason(self.totals.steps))

    def state_dict(self, *, formula_version: str, job_name: str | None, unmetered_reason: str | None) -> dict[str, Any]:
        if unmetered_reason is not None:
            gap = Gap(reasons=(f"the run before this checkpoint was not metered ({unmetered_reason})",))
            return state_document(Totals(), formula_version=formula_version, job_name=job_name, gap=gap)
        gap = Gap(self.gap.missing_steps, self.estimated_flops, self.gap.reasons)
        return state_document(self.totals, formula_version=formula_version, job_name=job_name, gap=gap)

    def resume_at(self, step: int) -> str | None:
        """The run continues after optimizer step ``step``: steps the totals do not cover are flagged and estimated,
        never ignored. The reason, when some are missing."""
        covered = self.totals.steps
        if step <= covered:
            return None
        missing = step - covered
        what = (
            "without saved meter totals: FLOPs before the resume are missing"
            if self.restored is None
            else f"with meter totals for step {covered} only: FLOPs of {missing} steps are missing"
        )
        reason = f"resumed at step {step} {what} (estimated as {missing} x the largest step seen)"
        self.mark_incomplete(reason, missing_steps=missing)
        return reason

    def load(self, document: Mapping[str, Any], formula_version: str | None = None) -> Totals:
        """Continue from saved totals (a resumed run; ``formula_version``: this run's, for a warning when they
        differ). Raises ``ValueError`` on a malformed state."""
        totals = totals_from_document(dict(document))
        saved_gap = gap_from_document(dict(document))
        self.totals = totals
        self.gap = Gap(saved_gap.missing_steps, saved_gap.estimated_flops, self.gap.reasons)
        for reason in saved_gap.reasons:  # the flag travels with the checkpoint: a resume cannot clear it
            self.mark_incomplete(reason)
        self.restored = totals
        saved = document.get("formula_version")
        if formula_version is not None and saved != formula_version:
            self.warnings.append(f"resumed totals were computed with formula {saved}, this run uses {formula_version}")
        return totals
