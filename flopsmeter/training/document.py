"""What the meter says at an emission point: the ``Snapshot`` every emitter gets and ``flops_meter.json``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Protocol

from flopsmeter.domain.classification import classify
from flopsmeter.domain.hardware import HardwareCeiling, hardware_ceiling, lookup_instance
from flopsmeter.domain.pretrain import PretrainCompute
from flopsmeter.domain.thresholds import Threshold
from flopsmeter.training.accounting import attention_overcount
from flopsmeter.training.counting import Counting
from flopsmeter.training.distributed import World
from flopsmeter.training.emitters import CloudWatchEmitter, FileEmitter, Snapshot, StdoutEmitter
from flopsmeter.training.environment import JobEnvironment
from flopsmeter.training.guard import Budget
from flopsmeter.training.hyperpod_report import send_report
from flopsmeter.training.model import ModelProfile
from flopsmeter.training.options import MeterOptions
from flopsmeter.training.readings import Readings
from flopsmeter.training.state import Gap, Totals

SCHEMA = "flopsmeter.training/v1"
UNMETERED = "unmetered"
CEILING_NOTE = "the classifier does not trust an incomplete figure: it classifies the job on its hardware ceiling"


class MeterView(Protocol):
    """What the file and the emitters read from the meter (``meter.FlopsMeter`` is one)."""

    options: MeterOptions
    env: JobEnvironment
    job_name: str | None
    world: World
    status: str
    stop_reason: str | None
    unmetered_reason: str | None
    run_status: str
    warnings: list[str]
    pretrain: PretrainCompute
    threshold: Threshold
    budget: Budget | None
    prior_flops: float
    readings: Readings
    counting: Counting
    cloudwatch: CloudWatchEmitter | Any
    file: FileEmitter
    final_flush_s: float

    @property
    def totals(self) -> Totals: ...
    @property
    def gap(self) -> Gap: ...
    @property
    def restored(self) -> Totals | None: ...
    @property
    def steps(self) -> int: ...
    @property
    def unmetered(self) -> bool: ...
    @property
    def incomplete(self) -> bool: ...
    @property
    def estimated_flops(self) -> float: ...
    @property
    def reported_flops(self) -> float: ...
    @property
    def auxiliary(self) -> dict[str, str]: ...
    def ensure_profile(self) -> ModelProfile: ...


def unmetered_notice(reason: str, budget: Budget | None) -> str:
    guard = f"the stop_at={budget.stop_at!r} guard is OFF; " if budget is not None else ""
    return (
        f"this job is NOT metered ({reason}); training continues; {guard}the compliance classifier "
        "will use the hardware ceiling (an upper bound). Pass strict=True to fail instead."
    )


def snapshot(meter: MeterView) -> Snapshot:
    t = meter.totals
    if meter.unmetered:
        return Snapshot(meter.steps, 0.0, 0, 0, 0.0, 0.0, None, None, meter.status, incomplete=True, unmetered=True)
    reported = meter.reported_flops
    measured, closed = meter.counting.disagreement()
    return Snapshot(
        step=t.steps,
        cumulative_flops=reported,
        tokens=t.tokens,
        non_padding_tokens=t.non_padding_tokens,
        recompute_flops=t.recompute_flops,
        flops_per_token=t.flops / t.tokens if t.tokens else 0.0,
        ceiling_ratio=ceiling_ratio(meter),
        threshold_ratio=(meter.prior_flops + reported) / meter.threshold.value,
        status=meter.status,
        incomplete=meter.incomplete,
        estimated_flops=meter.estimated_flops,
        update_flops=t.update_flops,
        reference_flops=t.reference_flops,
        generation_flops=t.generation_flops,
        reward_inference_flops=t.reward_inference_flops,
        measured_flops=measured,
        measured_closed_form_flops=closed,
    )


def ceiling(meter: MeterView) -> HardwareCeiling | None:
    env = meter.env
    if not env.instance_type or meter.totals.seconds <= 0:
        return None
    return hardware_ceiling(env.instance_type, env.instance_count, meter.totals.seconds)


def ceiling_ratio(meter: MeterView) -> float | None:
    if not meter.env.instance_type or lookup_instance(meter.env.instance_type) is None:
        return None  # an unknown instance gets a hypothetical ceiling: not worth a ratio
    found = ceiling(meter)
    return meter.totals.flops / found.flops if found and found.flops else None


def _emission_block(meter: MeterView) -> dict[str, Any]:
    cloudwatch = meter.cloudwatch
    return {
        "cloudwatch": cloudwatch is not None,
        "cloudwatch_sent": None if cloudwatch is None else cloudwatch.sent,
        "cloudwatch_failures": None if cloudwatch is None else cloudwatch.failures,
        "cloudwatch_last_error": getattr(cloudwatch, "last_error", None),
        "file_failures": meter.file.failures,
    }


def _pretrain_block(meter: MeterView) -> dict[str, Any]:
    p = meter.pretrain
    return {
        "flops": p.flops,
        "source": str(p.source),
        "basis": p.basis,
        "base_model": p.base_model_id,
        "systemic_risk": p.systemic_risk,
    }


def _incomplete_block(meter: MeterView) -> dict[str, Any] | None:
    if not meter.gap.reasons:
        return None
    return {**meter.gap.as_dict(), "estimated_flops": meter.estimated_flops, "note": CEILING_NOTE}


BREAKDOWN_NOTES = {
    "reward_inference": "reward-model inference during RL: the guideline does not say whether it counts "
    "(ambiguous); it is included in flops, the conservative side",
    "recompute": "gradient checkpointing, a fused attention kernel's QK^T and LM-head recompute: excluded by the "
    "guideline, recorded only",
    "measured_excess": "work the measured steps found beyond the closed form: counted under update",
}


def _packing_block(meter: MeterView, profile: ModelProfile) -> dict[str, Any] | None:
    t = meter.totals
    if t.document_positions >= t.token_positions:
        return None  # no packed rows seen
    over = attention_overcount(t, profile)
    return {
        "document_positions": t.document_positions,
        "row_positions": t.token_positions,
        "varlen_attention": profile.varlen_attention,
        "attention_overcount_flops": over,
        "note": "packed documents attend only themselves with a variable-length kernel; with this attention "
        "implementation the whole row is counted (high by attention_overcount_flops)"
        if over
        else "attention counted per document (variable-length kernel)",
    }


def _header(meter: MeterView) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "status": meter.status,
        "stop_reason": meter.stop_reason,
        "meter_incomplete": meter.incomplete,
        "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "training_job_name": meter.job_name,
        "world_size": meter.world.size,
    }


def unmetered_document(meter: MeterView) -> dict[str, Any]:
    return {
        **_header(meter),
        "unmetered_reason": meter.unmetered_reason,
        "run_status": meter.run_status,
        "method": UNMETERED,
        "flops": None,
        "tokens": None,
        "steps": meter.steps,
        "note": "no FLOPs were metered or sent; the classifier classifies this job on its hardware ceiling",
        "pretrain": _pretrain_block(meter),
        "emission": _emission_block(meter),
        "warnings": list(meter.warnings),
    }


def _classification_block(meter: MeterView, spent: float) -> dict[str, Any]:
    classification = classify(
        spent,
        meter.pretrain.flops,
        systemic_risk_base=meter.pretrain.systemic_risk,
        primary_policy=meter.options.policy,
        approaching_fraction=meter.options.approaching_fraction,
    )
    return {
        "primary_policy": classification.primary_policy,
        "results": [r.as_dict() for r in classification.results],
        "warnings": list(classification.warnings),
    }


def _ceiling_block(meter: MeterView) -> dict[str, Any] | None:
    found = ceiling(meter)
    if found is None:
        return None
    return {
        "instance_type": found.instance_type,
        "instance_count": found.instance_count,
        "seconds": found.seconds,
        "flops": found.flops,
        "known_instance": found.known_instance,
    }


def document(meter: MeterView) -> dict[str, Any]:
    """The content of ``flops_meter.json``."""
    if meter.unmetered:
        return unmetered_document(meter)
    t = meter.totals
    profile = meter.ensure_profile()
    reported = meter.reported_flops
    spent = meter.prior_flops + reported
    return {
        **_header(meter),
        "incomplete": _incomplete_block(meter),
        "method": "metered_incomplete" if meter.incomplete else "metered",
        "formula_version": profile.formula_version,
        "totals": t.as_dict(),
        "flops": reported,  # = totals.flops + incomplete.estimated_flops (the figure emitted everywhere)
        "metered_flops": t.flops,
        "recompute_flops": t.recompute_flops,
        "breakdown": t.breakdown(),  # update + reference + generation + reward_inference = metered_flops
        "breakdown_notes": BREAKDOWN_NOTES,
        "measured_excess_flops": t.measured_excess_flops,  # part of update
        "executed_flops": t.flops + t.recompute_flops,  # what the hardware ran: counted + recompute
        "attention": profile.attention_convention(),
        "packing": _packing_block(meter, profile),
        "passes": {"auxiliary_models": dict(meter.auxiliary), "model_source": profile.source},
        "tokens": t.tokens,
        "non_padding_tokens": t.non_padding_tokens,
        "flops_per_token": t.flops / t.tokens if t.tokens else None,
        "prior_flops": meter.prior_flops,
        "cumulative_flops_with_prior": spent,
        "model": profile.as_dict(),
        "pretrain": _pretrain_block(meter),
        "classification": _classification_block(meter, spent),
        "guard": None if meter.budget is None else meter.budget.as_dict(),
        "measured": meter.counting.as_dict(),
        "resumed_from": None if meter.restored is None else meter.restored.as_dict(),
        "hardware_ceiling": _ceiling_block(meter),
        "emission": _emission_block(meter),
        "warnings": list(meter.warnings),
    }


def publish(meter: MeterView, stdout: StdoutEmitter | None, *, final: bool = False) -> None:
    """Rank 0's emission: the stdout line, ``flops_meter.json`` (first, so an interruption cannot lose it to a slow
    network), then CloudWatch; at the end, CloudWatch's final flush and the file again with the delivery counts."""
    snap = snapshot(meter)
    if stdout:
        stdout.emit(snap)
    meter.file.write(document(meter))
    if meter.cloudwatch:
        meter.cloudwatch.emit(snap)
        if final:
            meter.cloudwatch.close(timeout_s=meter.final_flush_s)
            meter.file.write(document(meter))
    if final:  # a HyperPod job's report to the service (FLOPSMETER_REPORT_QUEUE_URL set): issue 26
        send_report(snap, meter.status, meter.env.output_dir)
