"""The framework-agnostic meter: counts tokens, turns them into FLOPs, emits, guards, survives interruption.

Plain PyTorch loop::

    meter = FlopsMeter(model, stop_at="threshold")
    with meter:
        for batch in loader:
            loss = model(**batch).loss
            loss.backward(); optimizer.step(); optimizer.zero_grad()
            if meter.step(batch).stop:
                break

With gradient accumulation, call ``meter.observe(micro_batch)`` per micro-batch and ``meter.step()`` per
optimizer step, or ``meter.attach(model)`` once (a forward pre-hook counts every training forward) and
``meter.step()`` per optimizer step. The Hugging Face callback (``callback.py``) is a thin adapter over this.

Synchronisation points (one all-reduce, then emission by rank 0) happen at optimizer-step counts that every
rank agrees on: step 1, then about every ``emit_every_s`` seconds as measured by rank 0 and shared through
the same all-reduce, sooner when the guard needs it, at checkpoints and at the end.

The meter never takes the training run down with it (unless ``strict=True``): a model it cannot describe (an
architecture the formulas do not know, no readable config) leaves the job *unmetered*: an ERROR in the log, a
notice on stdout, ``flops_meter.json`` with ``status: "unmetered"`` and the reason, no FLOPs sent anywhere (the
classifier then uses the hardware ceiling). Totals it knows to be incomplete (a resume without saved totals, an
interruption across ranks) are flagged everywhere they go, ``MeterIncomplete`` = 1 in CloudWatch included.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import math
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO, Any

from flopsmeter.domain.classification import classify
from flopsmeter.domain.flops import FORMULA_VERSION
from flopsmeter.domain.hardware import hardware_ceiling, lookup_instance
from flopsmeter.domain.methods import FineTuning
from flopsmeter.domain.numbers import parse_flops
from flopsmeter.domain.shape import ModelShape
from flopsmeter.domain.thresholds import DEFAULT_APPROACHING_FRACTION, DEFAULT_PRIMARY_POLICY, get_policy, threshold_for
from flopsmeter.training import distributed
from flopsmeter.training.emitters import CloudWatchEmitter, FileEmitter, Snapshot, StdoutEmitter
from flopsmeter.training.environment import METER_FILE_NAME, JobEnvironment, read_job_environment
from flopsmeter.training.guard import STOP_AT_VALUES, Budget, GuardPlan, plan, pretrain_compute, resolve_budget
from flopsmeter.training.model import ModelProfile, describe_model, profile_from_shape
from flopsmeter.training.state import (
    Gap,
    Totals,
    gap_from_document,
    load_state,
    save_state,
    state_document,
    totals_from_document,
)
from flopsmeter.training.tokens import TokenCounter

logger = logging.getLogger("flopsmeter.training")

SCHEMA = "flopsmeter.training/v1"
MAX_INTERVAL_STEPS = 100_000
UNMETERED = "unmetered"
CEILING_NOTE = "the classifier does not trust an incomplete figure: it classifies the job on its hardware ceiling"


@dataclass(frozen=True)
class StepResult:
    synced: bool
    stop: bool
    reason: str | None = None


@dataclass(frozen=True)
class Measurement:
    """FlopCounterMode over the first step(s), next to the formula's figure for the same tokens."""

    steps: int
    tokens: int
    measured_flops: float
    formula_flops: float

    @property
    def ratio(self) -> float:
        return self.measured_flops / self.formula_flops if self.formula_flops else math.nan

    def as_dict(self) -> dict[str, Any]:
        ratio = self.ratio
        return {
            "steps": self.steps,
            "tokens": self.tokens,
            "measured_flops": self.measured_flops,
            "formula_flops": self.formula_flops,
            "measured_to_formula": ratio if math.isfinite(ratio) else None,
            "measured_flops_per_token": self.measured_flops / self.tokens if self.tokens else None,
        }


class FlopsMeter:
    def __init__(
        self,
        model: Any = None,
        *,
        profile: ModelProfile | None = None,
        shape: ModelShape | None = None,
        tuning: FineTuning | None = None,
        emit_every_s: float = 60.0,
        stop_at: str | None = None,
        policy: str = DEFAULT_PRIMARY_POLICY,
        approaching_fraction: float = DEFAULT_APPROACHING_FRACTION,
        pretrain_flops: str | float | None = None,
        base_model: str | None = None,
        prior_flops: str | float | None = None,
        output_dir: str | os.PathLike[str] | None = None,
        job_name: str | None = None,
        cloudwatch: bool | None = None,
        stdout: bool | IO[str] = True,
        measure_steps: int = 0,
        calibrate: bool = False,
        handle_signals: bool = True,
        strict: bool = False,
        environment: JobEnvironment | None = None,
        cloudwatch_emitter: CloudWatchEmitter | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        check_arguments(emit_every_s=emit_every_s, stop_at=stop_at, policy=policy,
                        approaching_fraction=approaching_fraction)  # fmt: skip
        self.strict = strict
        self.env = environment or read_job_environment(output_dir=output_dir)
        self.job_name = job_name or self.env.job_name
        self.emit_every_s = emit_every_s
        self.measure_steps = max(0, int(measure_steps))
        self.calibrate = calibrate
        self.handle_signals = handle_signals
        self.final_flush_s = 20.0  # how long the end waits for CloudWatch (SageMaker allows ~120 s after SIGTERM)
        self._clock = clock
        self.warnings: list[str] = []
        self.profile: ModelProfile | None = profile
        self._shape = shape  # profiled in start(), where a failure leaves the job unmetered instead of raising
        self._model = model
        self._tuning = tuning
        self.pretrain = pretrain_compute(
            argument=pretrain_flops,
            environment=self.env.pretrain_flops,
            base_model=base_model or self.env.base_model,
            systemic_risk_base=self.env.systemic_risk_base,
        )
        self.policy_id = policy
        self.approaching_fraction = approaching_fraction
        self.threshold = threshold_for(
            get_policy(policy), self.pretrain.flops, systemic_risk_base=self.pretrain.systemic_risk
        )
        prior = prior_flops if prior_flops is not None else self.env.prior_flops
        self.budget: Budget | None = None
        if stop_at is not None:
            self.budget = resolve_budget(
                stop_at,
                policy_id=policy,
                pretrain=self.pretrain,
                approaching_fraction=approaching_fraction,
                prior_flops=prior,
            )
        self.prior_flops = self.budget.prior_flops if self.budget else _prior_or_zero(prior)
        self.counter = TokenCounter()
        self.world = distributed.current_world()
        self.totals = Totals()
        self.restored: Totals | None = None
        self.status = "created"
        self.stop_reason: str | None = None
        self.unmetered_reason: str | None = None
        self.run_status = "created"  # what the run did, while status says "unmetered"
        self.gap = Gap()
        self._counting_failed = False
        self.measurement: Measurement | None = None
        self._scale = 1.0
        self._max_step_flops = 0.0
        self._next_sync_step = 1
        self._steps_local = 0
        self._measure_mark = (0, 0)
        self._pending_measured: float | None = None
        self._last_sync_step = 0
        self._started_at: float | None = None
        self._last_sync_at: float | None = None
        self._seconds_at_start = 0.0
        self._hook: Any = None
        self._flop_mode: Any = None
        self._measure: dict[str, float] = {"steps": 0, "tokens": 0, "measured": 0.0, "formula": 0.0}
        self._prev_sigterm: Any = None
        self._atexit_registered = False
        self._finishing = threading.Lock()
        self._stdout = None if stdout is False else StdoutEmitter(None if stdout is True else stdout)
        self._file = FileEmitter(self.env.output_dir / METER_FILE_NAME)
        self._cloudwatch = cloudwatch_emitter if cloudwatch_emitter is not None else self._cloudwatch_for(cloudwatch)

    # ---- set-up ---------------------------------------------------------------------------------------
    def _cloudwatch_for(self, wanted: bool | None) -> CloudWatchEmitter | None:
        if wanted is False or not self.world.is_main:
            return None
        if not self.job_name:
            if wanted:
                self.warnings.append("CloudWatch emission off: no training job name (TRAINING_JOB_NAME unset)")
            return None
        if not CloudWatchEmitter.available():
            self.warnings.append("CloudWatch emission off: boto3 is not installed in this environment")
            return None
        return CloudWatchEmitter(self.job_name)

    def _ensure_profile(self) -> ModelProfile:
        if self.profile is None:
            if self._shape is not None:
                self.profile = profile_from_shape(self._shape, self._tuning)
            elif self._model is None:
                raise ValueError("FlopsMeter needs a model, a ModelShape or a ModelProfile")
            else:
                self.profile = describe_model(self._model, tuning=self._tuning)
        return self.profile

    @property
    def unmetered(self) -> bool:
        return self.unmetered_reason is not None

    def start(self) -> FlopsMeter:
        """Begin metering (idempotent): profile the model, install the exit and SIGTERM handlers.

        A model the meter cannot profile raises only with ``strict=True``; otherwise the job goes unmetered.
        """
        if self._started_at is not None:
            return self
        try:
            profile = self._ensure_profile()
        except Exception as err:  # whatever the model is, the user's training must go on
            if self.strict:
                raise
            return self._go_unmetered(f"{type(err).__name__}: {err}")
        self.warnings.extend(w for w in profile.warnings if w not in self.warnings)
        if self.budget:
            self.warnings.extend(self.budget.warnings)
        self.warnings.extend(w for w in self.pretrain.warnings if w not in self.warnings)
        self._started_at = self._last_sync_at = self._clock()
        self._seconds_at_start = self.totals.seconds
        self.status = "running"
        if self.world.is_main:
            if not self._atexit_registered:
                atexit.register(self._at_exit)
                self._atexit_registered = True
            if self.handle_signals and threading.current_thread() is threading.main_thread():
                self._prev_sigterm = signal.signal(signal.SIGTERM, self._on_sigterm)
        logger.info("flops meter started (method %s, job %s)", profile.tuning.method, self.job_name)
        return self

    def _go_unmetered(self, reason: str) -> FlopsMeter:
        """Training continues without metering: say so everywhere, send no FLOPs (the ceiling applies)."""
        self.unmetered_reason = reason
        self.status = UNMETERED
        self.run_status = "running"
        self._started_at = self._clock()
        if self.budget is not None:
            self.warnings.append(f"the {self.budget.stop_at} guard is off: nothing is metered")
        logger.error("flops meter cannot meter this job; training continues unmetered: %s", reason)
        if self.world.is_main:
            if self._stdout:
                guard = f"the stop_at={self.budget.stop_at!r} guard is OFF; " if self.budget is not None else ""
                self._stdout.notice(
                    "ERROR",
                    f"this job is NOT metered ({reason}); training continues; {guard}the compliance classifier "
                    "will use the hardware ceiling (an upper bound). Pass strict=True to fail instead.",
                )
            self._emit()
        return self

    def mark_incomplete(self, reason: str, *, missing_steps: int = 0) -> None:
        """Record that the totals miss part of the job. The flag is never cleared (it travels with checkpoints)."""
        reasons = self.gap.reasons if reason in self.gap.reasons else (*self.gap.reasons, reason)
        self.gap = Gap(self.gap.missing_steps + max(0, missing_steps), self.gap.estimated_flops, reasons)
        if reason not in self.warnings:
            self.warnings.append(reason)
        logger.warning("flops meter totals incomplete: %s", reason)

    @property
    def incomplete(self) -> bool:
        return self.unmetered or bool(self.gap.reasons)

    @property
    def estimated_flops(self) -> float:
        """Missing steps x the largest global step seen (never below an estimate restored from a checkpoint)."""
        return max(self.gap.estimated_flops, self.gap.missing_steps * self._max_step_flops)

    @property
    def reported_flops(self) -> float:
        """What is emitted as cumulative FLOPs: counted FLOPs plus the estimate of steps never metered."""
        return self.totals.flops + self.estimated_flops

    def resume_at(self, step: int) -> None:
        """The run continues after optimizer step ``step`` (call it after ``load_state_dict``, or instead of it
        when there is no saved state). Steps the totals do not cover are flagged and estimated, never ignored."""
        covered = self.totals.steps
        if step > covered:
            missing = step - covered
            what = (
                "without saved meter totals: FLOPs before the resume are missing"
                if self.restored is None
                else f"with meter totals for step {covered} only: FLOPs of {missing} steps are missing"
            )
            reason = f"resumed at step {step} {what} (estimated as {missing} x the largest step seen)"
            self.mark_incomplete(reason, missing_steps=missing)
            if self.world.is_main and self._stdout:
                self._stdout.notice("WARNING", f"meter totals incomplete: {reason}; {CEILING_NOTE}")
        self._steps_local = max(self._steps_local, step)
        self._last_sync_step = self._steps_local
        self._next_sync_step = self._steps_local + 1

    def attach(self, model: Any) -> FlopsMeter:
        """Count every training forward of ``model`` (a forward pre-hook; eval and no-grad forwards are skipped)."""
        import torch

        self.detach()
        if self.unmetered:
            return self

        def hook(module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            if not module.training or not torch.is_grad_enabled():
                return
            input_ids = kwargs.get("input_ids", args[0] if args else None)
            try:
                self.counter.observe(input_ids, kwargs.get("attention_mask"), kwargs.get("inputs_embeds"))
            except Exception as err:  # the hook runs inside the user's forward: it must not break it
                if self.strict:
                    raise
                self._counting_failed_once(err)

        self._hook = model.register_forward_pre_hook(hook, with_kwargs=True)
        return self

    def detach(self) -> None:
        if self._hook is not None:
            self._hook.remove()
            self._hook = None

    def _counting_failed_once(self, err: Exception) -> None:
        if not self._counting_failed:
            self._counting_failed = True
            self.mark_incomplete(f"token counting failed at step {self.steps + 1} ({type(err).__name__}: {err}); "
                                 "forwards it could not read are missing")  # fmt: skip

    # ---- per step ---------------------------------------------------------------------------------------
    def observe(self, batch: Any) -> int:
        """Count one micro-batch (a mapping with ``input_ids`` / ``attention_mask``, or an ``input_ids`` tensor)."""
        return self.counter.observe_batch(batch)

    def begin_step(self) -> None:
        """Start of an optimizer step: enters FlopCounterMode while measured steps remain."""
        if self._started_at is None:
            self.start()
        if self.unmetered:
            return
        if self._measure["steps"] < self.measure_steps and self._flop_mode is None:
            from torch.utils.flop_counter import FlopCounterMode

            self._flop_mode = FlopCounterMode(display=False)
            self._flop_mode.__enter__()
            self._measure_mark = (self.counter.tokens, self.counter.positions)

    def end_measure(self) -> None:
        """Leave FlopCounterMode (the callback calls this before the optimizer step); ``step()`` attributes it."""
        mode, self._flop_mode = self._flop_mode, None
        if mode is None:
            return
        mode.__exit__(None, None, None)
        self._pending_measured = (self._pending_measured or 0.0) + float(mode.get_total_flops())

    def _attribute_measurement(self) -> None:
        """Pair the measured FLOPs with the tokens the step counted (known only once the step ends)."""
        if self._pending_measured is None:
            return
        tokens = self.counter.tokens - self._measure_mark[0]
        positions = self.counter.positions - self._measure_mark[1]
        m = self._measure
        m["steps"] += 1
        m["tokens"] += tokens
        m["measured"] += self._pending_measured
        m["formula"] += self._ensure_profile().training.flops(tokens, positions)
        self._pending_measured = None
        self.measurement = Measurement(int(m["steps"]), int(m["tokens"]), m["measured"], m["formula"])
        if self.calibrate and self.measurement.ratio > 1:
            self._scale = self.measurement.ratio  # calibration only ever raises the figure

    def step(self, batch: Any = None) -> StepResult:
        """End of an optimizer step (``batch``, if given, is counted first). Synchronises when it is time."""
        if self._started_at is None:
            self.start()
        if self.unmetered:
            self._steps_local += 1
            return StepResult(False, False)
        if batch is not None:
            self.observe(batch)
        self.end_measure()
        self._attribute_measurement()
        profile = self._ensure_profile()
        self.counter.end_step(profile.training.flops)
        self._steps_local += 1
        if self._steps_local < self._next_sync_step:
            return StepResult(False, False)
        guard = self.sync()
        return StepResult(True, guard.stop, guard.reason)

    @property
    def steps(self) -> int:
        return self._steps_local

    # ---- synchronisation ----------------------------------------------------------------------------------
    def sync(self, *, emit: bool = True) -> GuardPlan:
        """Collective on every rank: sum the counts, update totals, plan the next sync, emit (rank 0)."""
        if self.unmetered:
            return GuardPlan(False, None)
        profile = self._ensure_profile()
        now = self._clock()
        steps = self.steps
        proposal = float(self._proposal(now, steps)) if self.world.is_main else 0.0
        reduced = distributed.reduce_deltas(self.counter.take(), proposal)
        flops = profile.training.flops(reduced.tokens, reduced.positions) * self._scale
        recompute = 0.0
        if profile.gradient_checkpointing:
            recompute = profile.recompute.flops(reduced.tokens, reduced.positions)
        elapsed = now - (now if self._last_sync_at is None else self._last_sync_at)
        self.totals = Totals(
            steps=steps,
            micro_steps=self.totals.micro_steps + reduced.micro_steps,
            tokens=self.totals.tokens + reduced.tokens,
            non_padding_tokens=self.totals.non_padding_tokens + reduced.non_padding_tokens,
            token_positions=self.totals.token_positions + reduced.positions,
            flops=self.totals.flops + flops,
            recompute_flops=self.totals.recompute_flops + recompute,
            seconds=self.totals.seconds + elapsed,
        )
        self._last_sync_at = now
        self._last_sync_step = steps
        self._max_step_flops = max(self._max_step_flops, reduced.max_step_flops * self._scale)
        guard = plan(self.reported_flops, self._max_step_flops, self.budget)  # estimates count against the budget
        interval = max(1, min(int(reduced.proposal) or 1, MAX_INTERVAL_STEPS))
        if guard.steps_allowed is not None:
            interval = max(1, min(interval, guard.steps_allowed))
        self._next_sync_step = steps + interval
        if guard.stop and self.stop_reason is None:
            self.stop_reason = guard.reason
            self.status = "stopped_by_guard"
            logger.warning("flops guard stops training: %s", guard.reason)
        if emit:
            self._emit()
        return guard

    def _proposal(self, now: float, steps: int) -> int:
        """Rank 0's proposal for the steps until the next sync: about ``emit_every_s`` at the recent pace."""
        done = steps - self._last_sync_step
        elapsed = now - (now if self._last_sync_at is None else self._last_sync_at)
        if self.emit_every_s == 0 or done <= 0 or elapsed <= 0:
            return 1
        return max(1, math.floor(self.emit_every_s * done / elapsed))

    # ---- emission ---------------------------------------------------------------------------------------
    def snapshot(self) -> Snapshot:
        t = self.totals
        if self.unmetered:
            return Snapshot(self.steps, 0.0, 0, 0, 0.0, 0.0, None, None, self.status, incomplete=True, unmetered=True)
        reported = self.reported_flops
        return Snapshot(
            step=t.steps,
            cumulative_flops=reported,
            tokens=t.tokens,
            non_padding_tokens=t.non_padding_tokens,
            recompute_flops=t.recompute_flops,
            flops_per_token=t.flops / t.tokens if t.tokens else 0.0,
            ceiling_ratio=self._ceiling_ratio(),
            threshold_ratio=(self.prior_flops + reported) / self.threshold.value,
            status=self.status,
            incomplete=self.incomplete,
            estimated_flops=self.estimated_flops,
        )

    def _ceiling(self) -> Any:
        if not self.env.instance_type or self.totals.seconds <= 0:
            return None
        return hardware_ceiling(self.env.instance_type, self.env.instance_count, self.totals.seconds)

    def _ceiling_ratio(self) -> float | None:
        if not self.env.instance_type or lookup_instance(self.env.instance_type) is None:
            return None  # an unknown instance gets a hypothetical ceiling: not worth a ratio
        ceiling = self._ceiling()
        return self.totals.flops / ceiling.flops if ceiling and ceiling.flops else None

    def _emit(self, *, final: bool = False) -> None:
        if not self.world.is_main:
            return
        snap = self.snapshot()
        if self._stdout:
            self._stdout.emit(snap)
        self._file.write(self.document())  # first, so an interruption cannot lose it to a slow network
        if self._cloudwatch:
            self._cloudwatch.emit(snap)
            if final:
                self._cloudwatch.close(timeout_s=self.final_flush_s)
                self._file.write(self.document())  # again, with the final delivery counts

    def _emission_block(self) -> dict[str, Any]:
        cloudwatch = self._cloudwatch
        return {
            "cloudwatch": cloudwatch is not None,
            "cloudwatch_sent": None if cloudwatch is None else cloudwatch.sent,
            "cloudwatch_failures": None if cloudwatch is None else cloudwatch.failures,
            "file_failures": self._file.failures,
        }

    def _pretrain_block(self) -> dict[str, Any]:
        return {
            "flops": self.pretrain.flops,
            "source": str(self.pretrain.source),
            "basis": self.pretrain.basis,
            "base_model": self.pretrain.base_model_id,
            "systemic_risk": self.pretrain.systemic_risk,
        }

    def _incomplete_block(self) -> dict[str, Any] | None:
        if not self.gap.reasons:
            return None
        return {**self.gap.as_dict(), "estimated_flops": self.estimated_flops, "note": CEILING_NOTE}

    def _unmetered_document(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "status": UNMETERED,
            "unmetered_reason": self.unmetered_reason,
            "run_status": self.run_status,
            "stop_reason": self.stop_reason,
            "meter_incomplete": True,
            "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "training_job_name": self.job_name,
            "world_size": self.world.size,
            "method": UNMETERED,
            "flops": None,
            "tokens": None,
            "steps": self.steps,
            "note": "no FLOPs were metered or sent; the classifier classifies this job on its hardware ceiling",
            "pretrain": self._pretrain_block(),
            "emission": self._emission_block(),
            "warnings": list(self.warnings),
        }

    def document(self) -> dict[str, Any]:
        """The content of ``flops_meter.json``."""
        if self.unmetered:
            return self._unmetered_document()
        t = self.totals
        profile = self._ensure_profile()
        reported = self.reported_flops
        spent = self.prior_flops + reported
        classification = classify(
            spent,
            self.pretrain.flops,
            systemic_risk_base=self.pretrain.systemic_risk,
            primary_policy=self.policy_id,
            approaching_fraction=self.approaching_fraction,
        )
        ceiling = self._ceiling()
        return {
            "schema": SCHEMA,
            "status": self.status,
            "stop_reason": self.stop_reason,
            "meter_incomplete": self.incomplete,
            "incomplete": self._incomplete_block(),
            "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "training_job_name": self.job_name,
            "world_size": self.world.size,
            "method": "metered_incomplete" if self.incomplete else "metered",
            "formula_version": profile.formula_version,
            "totals": t.as_dict(),
            "flops": reported,  # = totals.flops + incomplete.estimated_flops (the figure emitted everywhere)
            "metered_flops": t.flops,
            "recompute_flops": t.recompute_flops,
            "tokens": t.tokens,
            "non_padding_tokens": t.non_padding_tokens,
            "flops_per_token": t.flops / t.tokens if t.tokens else None,
            "prior_flops": self.prior_flops,
            "cumulative_flops_with_prior": spent,
            "calibration_scale": self._scale,
            "model": profile.as_dict(),
            "pretrain": self._pretrain_block(),
            "classification": {
                "primary_policy": classification.primary_policy,
                "results": [r.as_dict() for r in classification.results],
                "warnings": list(classification.warnings),
            },
            "guard": None if self.budget is None else self.budget.as_dict(),
            "measured": None if self.measurement is None else self.measurement.as_dict(),
            "resumed_from": None if self.restored is None else self.restored.as_dict(),
            "hardware_ceiling": None
            if ceiling is None
            else {
                "instance_type": ceiling.instance_type,
                "instance_count": ceiling.instance_count,
                "seconds": ceiling.seconds,
                "flops": ceiling.flops,
                "known_instance": ceiling.known_instance,
            },
            "emission": self._emission_block(),
            "warnings": list(self.warnings),
        }

    # ---- resume -------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The totals as of the last sync (call ``sync()`` first on every rank for an exact checkpoint), with what
        they are known to miss. An unmetered run saves no totals, only why (a resume then flags every step)."""
        if self.unmetered:
            gap = Gap(reasons=(f"the run before this checkpoint was not metered ({self.unmetered_reason})",))
            return state_document(Totals(), formula_version=FORMULA_VERSION, job_name=self.job_name, gap=gap)
        gap = Gap(self.gap.missing_steps, self.estimated_flops, self.gap.reasons)
        return state_document(
            self.totals, formula_version=self._ensure_profile().formula_version, job_name=self.job_name, gap=gap
        )

    def load_state_dict(self, document: Mapping[str, Any]) -> None:
        """Continue from saved totals (a resumed run). Raises ``ValueError`` on a malformed state."""
        totals = totals_from_document(dict(document))
        saved_gap = gap_from_document(dict(document))
        self.totals = totals
        self.gap = Gap(saved_gap.missing_steps, saved_gap.estimated_flops, self.gap.reasons)
        for reason in saved_gap.reasons:  # the flag travels with the checkpoint: a resume cannot clear it
            self.mark_incomplete(reason)
        self.restored = totals
        self._steps_local = totals.steps
        self._last_sync_step = totals.steps
        self._next_sync_step = totals.steps + 1
        self._seconds_at_start = totals.seconds
        version = document.get("formula_version")
        if self.profile is not None and version != self.profile.formula_version:
            self.warnings.append(
                f"resumed totals were computed with formula {version}, this run uses {self.profile.formula_version}"
            )
        logger.info("flops meter resumed at step %d with %.3e FLOPs", totals.steps, totals.flops)

    def save_checkpoint(self, folder: str | Path) -> Path | None:
        """Sync (collective) and, on rank 0, write the totals into a checkpoint folder."""
        self.sync(emit=False)
        if not self.world.is_main:
            return None
        return save_state(folder, self.state_dict())

    def load_checkpoint(self, folder: str | Path) -> bool:
        """Restore totals saved by ``save_checkpoint``; False if the folder has none."""
        document = load_state(folder)
        if document is None:
            return False
        self.load_state_dict(document)
        return True

    # ---- the end ------------------------------------------------------------------------------------------
    def close(self, status: str = "completed", reason: str | None = None, *, collective: bool = True) -> None:
        """Final sync (collective unless ``collective=False``), final emission, handlers removed."""
        with self._finishing:
            if self._started_at is None:
                return
            self.end_measure()
            self._attribute_measurement()
            if collective:
                self.sync(emit=False)
            else:
                self._absorb_local()
            if self.unmetered:
                self.run_status = status
            elif self.status != "stopped_by_guard" or status != "completed":
                self.status = status
            if reason and not self.stop_reason:
                self.stop_reason = reason
            self._emit(final=True)
            self._started_at = None
            self.detach()
            self._restore_signal()
            if self._atexit_registered:
                atexit.unregister(self._at_exit)
                self._atexit_registered = False

    def _absorb_local(self) -> None:
        """No collective possible (signal, exit): add this rank's unsynced counts, scaled to the world size."""
        delta = self.counter.take()
        if not delta.tokens or self.unmetered:
            return
        profile = self._ensure_profile()
        now = self._clock()
        scale = float(self.world.size)
        device = int(delta.non_padding_device.item()) if delta.non_padding_device is not None else 0
        if self.world.size > 1:  # other ranks' counts are unknown: an estimate, so the totals are not trusted
            self.mark_incomplete(
                f"last {self.steps - self._last_sync_step} steps estimated from rank 0 "
                f"x {self.world.size} ranks (no collective at interruption)"
            )
        self.totals = self.totals.plus(
            micro_steps=int(delta.micro_steps * scale),
            tokens=int(delta.tokens * scale),
            non_padding_tokens=int((delta.non_padding_host + device) * scale),
            token_positions=int(delta.positions * scale),
            flops=profile.training.flops(delta.tokens, delta.positions) * scale * self._scale,
            recompute_flops=(
                profile.recompute.flops(delta.tokens, delta.positions) * scale
                if profile.gradient_checkpointing
                else 0.0
            ),
            seconds=now - (now if self._last_sync_at is None else self._last_sync_at),
        )
        self.totals = Totals(**{**self.totals.as_dict(), "steps": self.steps})

    def _on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        logger.warning("SIGTERM received: writing the meter's totals")
        try:
            self.close("interrupted", "SIGTERM (job stopped or spot interruption)", collective=False)
        finally:
            previous = self._prev_sigterm
            if callable(previous):
                previous(signum, frame)
            elif previous != signal.SIG_IGN:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                os.kill(os.getpid(), signal.SIGTERM)

    def _restore_signal(self) -> None:
        if self._prev_sigterm is None or threading.current_thread() is not threading.main_thread():
            return
        with contextlib.suppress(ValueError, TypeError):
            if signal.getsignal(signal.SIGTERM) == self._on_sigterm:
                signal.signal(signal.SIGTERM, self._prev_sigterm)
        self._prev_sigterm = None

    def _at_exit(self) -> None:
        if self._started_at is not None:
            self.close("incomplete", "process exited before training ended", collective=False)

    def __enter__(self) -> FlopsMeter:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close("completed")
        elif issubclass(exc_type, KeyboardInterrupt):
            self.close("interrupted", "KeyboardInterrupt", collective=False)
        else:
            self.close("failed", f"{exc_type.__name__}: {exc}", collective=False)

    @contextlib.contextmanager
    def measuring(self) -> Iterator[None]:
        """``with meter.measuring():`` around one step's forward + backward, for plain loops."""
        self.begin_step()
        try:
            yield
        finally:
            self.end_measure()


def check_arguments(*, emit_every_s: float, stop_at: str | None, policy: str, approaching_fraction: float) -> None:
    """Validate the meter's settings (``ValueError``), so a typo fails when the meter is created, not mid-run."""
    if emit_every_s < 0 or not math.isfinite(emit_every_s):
        raise ValueError(f"emit_every_s must be a finite number >= 0, got {emit_every_s!r}")
    get_policy(policy)  # an unknown policy id fails here, before any training
    if stop_at is not None and stop_at not in STOP_AT_VALUES:
        raise ValueError(f"stop_at must be one of {STOP_AT_VALUES} or None, got {stop_at!r}")
    if not 0 < approaching_fraction <= 1:
        raise ValueError(f"approaching fraction must be in (0, 1], got {approaching_fraction!r}")


def _prior_or_zero(raw: str | float | None) -> float:
    """Prior FLOPs for the reported ratio when no guard runs (the guard itself is stricter: see guard.py)."""
    parsed = parse_flops(raw, field="prior FLOPs")
    return parsed.value or 0.0
