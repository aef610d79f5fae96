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
from flopsmeter.domain.flops import FineTuning, ModelShape
from flopsmeter.domain.hardware import hardware_ceiling, lookup_instance
from flopsmeter.domain.numbers import parse_flops
from flopsmeter.domain.thresholds import DEFAULT_APPROACHING_FRACTION, DEFAULT_PRIMARY_POLICY, get_policy, threshold_for
from flopsmeter.training import distributed
from flopsmeter.training.emitters import CloudWatchEmitter, FileEmitter, Snapshot, StdoutEmitter
from flopsmeter.training.environment import METER_FILE_NAME, JobEnvironment, read_job_environment
from flopsmeter.training.guard import Budget, GuardPlan, plan, pretrain_compute, resolve_budget
from flopsmeter.training.model import ModelProfile, describe_model, profile_from_shape
from flopsmeter.training.state import Totals, load_state, save_state, state_document, totals_from_document
from flopsmeter.training.tokens import TokenCounter

logger = logging.getLogger("flopsmeter.training")

SCHEMA = "flopsmeter.training/v1"
MAX_INTERVAL_STEPS = 100_000


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
        environment: JobEnvironment | None = None,
        cloudwatch_emitter: CloudWatchEmitter | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if emit_every_s < 0 or not math.isfinite(emit_every_s):
            raise ValueError(f"emit_every_s must be a finite number >= 0, got {emit_every_s!r}")
        get_policy(policy)  # an unknown policy id fails here, before any training
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
        if profile is None and shape is not None:
            self.profile = profile_from_shape(shape, tuning)
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
            if self._model is None:
                raise ValueError("FlopsMeter needs a model, a ModelShape or a ModelProfile")
            self.profile = describe_model(self._model, tuning=self._tuning)
        return self.profile

    def start(self) -> FlopsMeter:
        """Begin metering (idempotent): profile the model, install the exit and SIGTERM handlers."""
        if self._started_at is not None:
            return self
        profile = self._ensure_profile()
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

    def attach(self, model: Any) -> FlopsMeter:
        """Count every training forward of ``model`` (a forward pre-hook; eval and no-grad forwards are skipped)."""
        import torch

        self.detach()

        def hook(module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            if not module.training or not torch.is_grad_enabled():
                return
            input_ids = kwargs.get("input_ids", args[0] if args else None)
            self.counter.observe(input_ids, kwargs.get("attention_mask"), kwargs.get("inputs_embeds"))

        self._hook = model.register_forward_pre_hook(hook, with_kwargs=True)
        return self

    def detach(self) -> None:
        if self._hook is not None:
            self._hook.remove()
            self._hook = None

    # ---- per step ---------------------------------------------------------------------------------------
    def observe(self, batch: Any) -> int:
        """Count one micro-batch (a mapping with ``input_ids`` / ``attention_mask``, or an ``input_ids`` tensor)."""
        return self.counter.observe_batch(batch)

    def begin_step(self) -> None:
        """Start of an optimizer step: enters FlopCounterMode while measured steps remain."""
        if self._started_at is None:
            self.start()
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
        guard = plan(self.totals.flops, self._max_step_flops, self.budget)
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
        return Snapshot(
            step=t.steps,
            cumulative_flops=t.flops,
            tokens=t.tokens,
            non_padding_tokens=t.non_padding_tokens,
            recompute_flops=t.recompute_flops,
            flops_per_token=t.flops / t.tokens if t.tokens else 0.0,
            ceiling_ratio=self._ceiling_ratio(),
            threshold_ratio=(self.prior_flops + t.flops) / self.threshold.value,
            status=self.status,
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

    def document(self) -> dict[str, Any]:
        """The content of ``flops_meter.json``."""
        t = self.totals
        profile = self._ensure_profile()
        spent = self.prior_flops + t.flops
        classification = classify(
            spent,
            self.pretrain.flops,
            systemic_risk_base=self.pretrain.systemic_risk,
            primary_policy=self.policy_id,
            approaching_fraction=self.approaching_fraction,
        )
        ceiling = self._ceiling()
        cloudwatch = self._cloudwatch
        return {
            "schema": SCHEMA,
            "status": self.status,
            "stop_reason": self.stop_reason,
            "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "training_job_name": self.job_name,
            "world_size": self.world.size,
            "method": "metered",
            "formula_version": profile.formula_version,
            "totals": t.as_dict(),
            "flops": t.flops,
            "recompute_flops": t.recompute_flops,
            "tokens": t.tokens,
            "non_padding_tokens": t.non_padding_tokens,
            "flops_per_token": t.flops / t.tokens if t.tokens else None,
            "prior_flops": self.prior_flops,
            "cumulative_flops_with_prior": spent,
            "calibration_scale": self._scale,
            "model": profile.as_dict(),
            "pretrain": {
                "flops": self.pretrain.flops,
                "source": str(self.pretrain.source),
                "basis": self.pretrain.basis,
                "base_model": self.pretrain.base_model_id,
                "systemic_risk": self.pretrain.systemic_risk,
            },
            "classification": {
                "primary_policy": classification.primary_policy,
                "results": [
                    {
                        "policy": r.policy,
                        "scenario": str(r.scenario),
                        "threshold": r.threshold,
                        "ratio": r.ratio,
                        "outcome": str(r.outcome),
                        "basis": r.basis,
                    }
                    for r in classification.results
                ],
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
            "emission": {
                "cloudwatch": cloudwatch is not None,
                "cloudwatch_sent": None if cloudwatch is None else cloudwatch.sent,
                "cloudwatch_failures": None if cloudwatch is None else cloudwatch.failures,
                "file_failures": self._file.failures,
            },
            "warnings": list(self.warnings),
        }

    # ---- resume -------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The totals as of the last sync (call ``sync()`` first on every rank for an exact checkpoint)."""
        return state_document(
            self.totals, formula_version=self._ensure_profile().formula_version, job_name=self.job_name
        )

    def load_state_dict(self, document: Mapping[str, Any]) -> None:
        """Continue from saved totals (a resumed run). Raises ``ValueError`` on a malformed state."""
        totals = totals_from_document(dict(document))
        self.totals = totals
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
            if self.status != "stopped_by_guard" or status != "completed":
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
        if not delta.tokens:
            return
        profile = self._ensure_profile()
        now = self._clock()
        scale = float(self.world.size)
        device = int(delta.non_padding_device.item()) if delta.non_padding_device is not None else 0
        if self.world.size > 1:
            self.warnings.append(
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


def _prior_or_zero(raw: str | float | None) -> float:
    """Prior FLOPs for the reported ratio when no guard runs (the guard itself is stricter: see guard.py)."""
    parsed = parse_flops(raw, field="prior FLOPs")
    return parsed.value or 0.0
