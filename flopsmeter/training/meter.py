"""The framework-agnostic meter: counts the passes that run, turns them into FLOPs, emits, guards, and survives
interruption.

Plain PyTorch loop::

    meter = FlopsMeter(model, stop_at="threshold")
    with meter:
        for batch in loader:
            loss = model(**batch).loss
            loss.backward(); optimizer.step(); optimizer.zero_grad()
            if meter.step(batch).stop:
                break

With gradient accumulation: ``meter.observe(micro_batch)`` per micro-batch, or ``meter.attach(model)`` once
(``hooks.py``), and ``meter.step()`` per optimizer step. ``callback.py`` is a thin adapter over this.

The rooms: options (``options.py``); counting one rank's passes and steps, measured mode included
(``counting.py``, ``probe.py``); the readings, totals and gap (``readings.py``); what the file says
(``document.py``); SIGTERM / exit (``lifecycle.py``); work before ``train()`` (``before_train.py``).

Synchronisation points (one all-reduce, then emission by rank 0) are optimizer-step counts every rank agrees on.
A model the meter cannot describe leaves the job *unmetered* (unless ``strict=True``); totals it knows to be
incomplete are flagged everywhere they go.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from flopsmeter.domain.flops import FORMULA_VERSION
from flopsmeter.domain.methods import FineTuning
from flopsmeter.domain.shape import ModelShape
from flopsmeter.training.before_train import BeforeTrain, owner_profiles
from flopsmeter.training.counting import Counting
from flopsmeter.training.crossing import CrossingWatch
from flopsmeter.training.distributed import current_world, local_estimate, reduce_deltas
from flopsmeter.training.document import CEILING_NOTE, UNMETERED, document, publish, snapshot, unmetered_notice
from flopsmeter.training.emitters import (
    CloudWatchEmitter,
    FileEmitter,
    Snapshot,
    StdoutEmitter,
    cloudwatch_for,
    failure_reporter,
)
from flopsmeter.training.environment import METER_FILE_NAME, JobEnvironment, read_job_environment
from flopsmeter.training.guard import GuardPlan, plan, resolve_limits
from flopsmeter.training.lifecycle import Lifecycle, exit_status
from flopsmeter.training.model import ModelProfile
from flopsmeter.training.options import MeterOptions
from flopsmeter.training.passes import ROLES, PassCounter
from flopsmeter.training.profiling import Profiler
from flopsmeter.training.readings import Readings
from flopsmeter.training.state import Gap, Totals, load_state, save_state
from flopsmeter.training.tokens import TokenCounter

logger = logging.getLogger("flopsmeter.training")

MAX_INTERVAL_STEPS = 100_000


@dataclass(frozen=True)
class StepResult:
    synced: bool
    stop: bool
    reason: str | None = None


class FlopsMeter:
    """``FlopsMeter(model, stop_at="threshold")`` or ``FlopsMeter(model, options=MeterOptions(...))``: the keywords
    are ``MeterOptions`` fields. ``shape`` / ``profile`` / ``tuning`` describe a model without a readable config;
    ``environment``, ``cloudwatch_emitter`` and ``clock`` are for tests and embedding."""

    def __init__(  # the options are one dataclass; the rest says what to count and how to reach the world
        self,
        model: Any = None,
        options: MeterOptions | None = None,
        *,
        profile: ModelProfile | None = None,
        shape: ModelShape | None = None,
        tuning: FineTuning | None = None,
        environment: JobEnvironment | None = None,
        cloudwatch_emitter: CloudWatchEmitter | None = None,
        clock: Callable[[], float] = time.monotonic,
        **overrides: Any,
    ) -> None:
        opts = self.options = MeterOptions.of(options, overrides)
        self.env = environment or read_job_environment(output_dir=opts.output_dir)
        self.job_name = opts.job_name or self.env.job_name
        self.final_flush_s = 20.0  # how long the end waits for CloudWatch (SageMaker allows ~120 s after SIGTERM)
        self._clock = clock
        self.warnings: list[str] = []
        self.pretrain, self.threshold, self.budget, self.prior_flops = resolve_limits(opts, self.env)
        self.crossing = CrossingWatch(self.pretrain, self.prior_flops)  # issue 16: alert the moment FLOPs cross
        self.world = current_world()
        self.readings = Readings(self.warnings)
        self.status = "created"
        self.stop_reason: str | None = None
        self.unmetered_reason: str | None = None
        self.run_status = "created"  # what the run did, while status says "unmetered"
        self._counting_failed = False
        self.counting = Counting(self.ensure_profile, measure_steps=opts.measure_steps, calibrate=opts.calibrate,
                                 strict=opts.strict, on_error=self._counting_failed_once, notify=self._notice,
                                 incomplete=self._incomplete_steps)  # fmt: skip
        self.profiler = Profiler(model, profile=profile, shape=shape, tuning=tuning, meta_check=opts.meta_check,
                                 hook_ids=lambda: self.counting.hooks.hook_ids)  # fmt: skip
        self.before_train: BeforeTrain | None = None
        self.lifecycle = Lifecycle(self._close_now, handle_signals=opts.handle_signals)
        self._next_sync_step = 1
        self._steps_local = 0
        self._last_sync_step = 0
        self._started_at: float | None = None
        self._last_sync_at: float | None = None
        self._finishing = threading.Lock()
        self._stdout = None if opts.stdout is False else StdoutEmitter(None if opts.stdout is True else opts.stdout)
        self.file = FileEmitter(self.env.output_dir / METER_FILE_NAME)
        self.cloudwatch = cloudwatch_emitter or cloudwatch_for(
            opts.cloudwatch, self.job_name, self.world.is_main, self.warnings
        )
        if isinstance(self.cloudwatch, CloudWatchEmitter):
            self.cloudwatch.on_failure = failure_reporter(self._stdout, self.warnings, lambda: self.steps)

    # ---- what the rooms hold, by their usual names ----------------------------------------------------------
    @property
    def model(self) -> Any:
        """The model given at construction (None with a shape or profile)."""
        return self.profiler.model

    @property
    def counter(self) -> TokenCounter:
        return self.counting.counter

    @property
    def passes(self) -> PassCounter:
        return self.counting.passes

    @property
    def auxiliary(self) -> dict[str, str]:
        return self.counting.auxiliary

    @property
    def totals(self) -> Totals:
        return self.readings.totals

    @property
    def restored(self) -> Totals | None:
        return self.readings.restored

    @property
    def gap(self) -> Gap:
        return self.readings.gap

    # ---- set-up ---------------------------------------------------------------------------------------
    def ensure_profile(self) -> ModelProfile:
        return self.profiler.get()

    @property
    def profile(self) -> ModelProfile | None:
        return self.profiler.profile

    def _profile_of(self, model: Any, tuning: FineTuning | None) -> ModelProfile:
        return self.profiler.of(model, tuning)

    def _refresh_profile(self) -> None:
        """Profile the model again if the trainer changed what decides its profile before ``train()``."""
        if self.unmetered or not self.profiler.changed():
            return
        try:
            profile = self.profiler.retake()
        except Exception as err:  # it was profiled once: keep counting with what is known, and say so
            self.mark_incomplete(f"the model changed before train() and cannot be profiled again "
                                 f"({type(err).__name__}: {err})")  # fmt: skip
            return
        self.warnings.extend(w for w in profile.warnings if w not in self.warnings)

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
            profile = self.ensure_profile()
        except Exception as err:  # whatever the model is, the user's training must go on
            if self.options.strict:
                raise
            return self._go_unmetered(f"{type(err).__name__}: {err}")
        self.warnings.extend(w for w in profile.warnings if w not in self.warnings)
        if self.budget:
            self.warnings.extend(self.budget.warnings)
        self.warnings.extend(w for w in self.pretrain.warnings if w not in self.warnings)
        if self.options.measure_steps == 0:
            self.warnings.append("measured mode is off (measure_steps=0): nothing checks the closed form")
        self._started_at = self._last_sync_at = self._clock()
        self.status = "running"
        if self.world.is_main:
            self.lifecycle.install()
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
                self._stdout.notice("ERROR", unmetered_notice(reason, self.budget))
            self._emit()
        return self

    def _notice(self, level: str, text: str) -> None:
        """A warning for the file, and (with a level) a human notice on stdout."""
        if text not in self.warnings:
            self.warnings.append(text)
        if level and self.world.is_main and self._stdout:
            self._stdout.notice(level, text)

    def mark_incomplete(self, reason: str, *, missing_steps: int = 0) -> None:
        """Record that the totals miss part of the job. The flag is never cleared (it travels with checkpoints)."""
        self.readings.mark_incomplete(reason, missing_steps=missing_steps)

    def _incomplete_steps(self, reason: str, missing_steps: int) -> None:
        new = reason not in self.gap.reasons
        self.mark_incomplete(reason, missing_steps=missing_steps)
        if new and self.world.is_main and self._stdout:
            self._stdout.notice("WARNING", f"meter totals incomplete: {reason}; {CEILING_NOTE}")

    @property
    def incomplete(self) -> bool:
        return self.unmetered or self.readings.incomplete

    @property
    def estimated_flops(self) -> float:
        return self.readings.estimated_flops

    @property
    def reported_flops(self) -> float:
        return self.readings.reported_flops

    def resume_at(self, step: int) -> None:
        """The run continues after optimizer step ``step`` (call it after ``load_state_dict``, or instead of it
        when there is no saved state). Steps the totals do not cover are flagged and estimated, never ignored."""
        reason = self.readings.resume_at(step)
        if reason is not None and self.world.is_main and self._stdout:
            self._stdout.notice("WARNING", f"meter totals incomplete: {reason}; {CEILING_NOTE}")
        self._continue_after(max(self._steps_local, step))

    def _continue_after(self, step: int) -> None:
        self._steps_local = step
        self.counting.steps_done = max(self.counting.steps_done, step)
        self._last_sync_step = step
        self._next_sync_step = step + 1

    def attach(self, model: Any) -> FlopsMeter:
        """Count every training pass of ``model``, the policy (``hooks.py``): passes with gradients are updates,
        no-grad passes while it trains are generation (with a KV cache) or reference scoring; eval-mode forwards
        are skipped. Its backbone and head are hooked too, for trainers that call them directly."""
        self.detach()
        if not self.unmetered:
            self.counting.attach(model)
        return self

    def attach_auxiliary(self, model: Any, role: str, profile: ModelProfile | None = None) -> FlopsMeter:
        """Count the forwards of a frozen model that shapes the update (``role``: ``reference`` for a reference
        model or teacher, ``reward_inference`` for a reward model) while the policy trains."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, got {role!r}")
        if self.unmetered:
            return self
        try:
            found = profile or self._profile_of(model, None)
        except Exception as err:
            if self.options.strict:
                raise
            self.mark_incomplete(f"the {role} model's forwards are not counted ({type(err).__name__}: {err})")
            return self
        self.counting.attach_auxiliary(model, role, found)
        return self

    def detach(self) -> None:
        self.counting.detach()

    def count_before_train(self, model: Any) -> FlopsMeter:
        """Count every model call from now until ``train_begins()`` (work a trainer does in its constructor)."""
        self.start()
        if self.unmetered or self.before_train is not None:
            return self
        profiles = owner_profiles(model, self.ensure_profile, lambda m: self._profile_of(m, None))
        self.before_train = BeforeTrain(self.counting, profiles)
        self.before_train.install()
        return self

    def train_begins(self) -> None:
        """End of the work before training: its hooks go (what they counted stays in the totals), and the model is
        profiled again if the trainer changed it since (checkpointing, input gradients, adapters)."""
        if self.before_train is not None and self.before_train.remove():
            self._refresh_profile()

    def _counting_failed_once(self, err: Exception) -> None:
        if not self._counting_failed:
            self._counting_failed = True
            self.mark_incomplete(f"token counting failed at step {self.steps + 1} ({type(err).__name__}: {err}); "
                                 "forwards it could not read are missing")  # fmt: skip

    # ---- per step ---------------------------------------------------------------------------------------
    def observe(self, batch: Any) -> int:
        """Count one micro-batch (a mapping with ``input_ids`` / ``attention_mask``, or an ``input_ids`` tensor)."""
        return self.counting.observe(batch)

    def begin_step(self) -> None:
        """Start of an optimizer step: the first steps are measured from here (``probe.py``)."""
        if self._started_at is None:
            self.start()
        if not self.unmetered:
            self.counting.begin_step()

    def end_measure(self) -> None:
        """Close a measured window (the callback calls this before the optimizer step)."""
        if not self.unmetered:
            self.counting.end_measure()

    def step(self, batch: Any = None) -> StepResult:
        """End of an optimizer step (``batch``, if given, is counted first). Synchronises when it is time."""
        if self._started_at is None:
            self.start()
        if self.unmetered:
            self._steps_local += 1
            return StepResult(False, False)
        if batch is not None:
            self.observe(batch)
        self.counting.end_step()
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
        profile = self.ensure_profile()
        now = self._clock()
        steps = self.steps
        proposal = float(self._proposal(now, steps)) if self.world.is_main else 0.0
        reduced = reduce_deltas(self.counter.take(), proposal)
        elapsed = now - (now if self._last_sync_at is None else self._last_sync_at)
        self.readings.add(reduced, profile, steps=steps, seconds=elapsed)
        self._last_sync_at = now
        self._last_sync_step = steps
        guard = plan(self.reported_flops, self.readings.max_step_flops, self.budget)  # estimates count against it
        if self.world.is_main:
            self.crossing.check(
                self.reported_flops, stdout=self._stdout, cloudwatch=self.cloudwatch, job_name=self.job_name
            )
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
        if self.options.emit_every_s == 0 or done <= 0 or elapsed <= 0:
            return 1
        return max(1, math.floor(self.options.emit_every_s * done / elapsed))

    # ---- emission ---------------------------------------------------------------------------------------
    def snapshot(self) -> Snapshot:
        return snapshot(self)

    def document(self) -> dict[str, Any]:
        """The content of ``flops_meter.json``."""
        return document(self)

    def _emit(self, *, final: bool = False) -> None:
        if self.world.is_main:
            publish(self, self._stdout, final=final)

    # ---- resume -------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The totals as of the last sync (call ``sync()`` first on every rank for an exact checkpoint), with what
        they are known to miss. An unmetered run saves no totals, only why (a resume then flags every step)."""
        version = FORMULA_VERSION if self.unmetered else self.ensure_profile().formula_version
        return self.readings.state_dict(formula_version=version, job_name=self.job_name,
                                        unmetered_reason=self.unmetered_reason)  # fmt: skip

    def load_state_dict(self, document: Mapping[str, Any]) -> None:
        """Continue from saved totals (a resumed run). Raises ``ValueError`` on a malformed state."""
        totals = self.readings.load(document, None if self.profile is None else self.profile.formula_version)
        self._continue_after(totals.steps)
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
            self.train_begins()
            if not self.unmetered:
                self.counting.settle()
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
            self.lifecycle.uninstall()

    def _close_now(self, status: str, reason: str) -> None:
        """SIGTERM or exit: no collective is possible there."""
        self.close(status, reason, collective=False)

    def _absorb_local(self) -> None:
        """No collective possible (signal, exit): add this rank's unsynced counts, scaled to the world size."""
        delta = self.counter.take()
        if not delta.pending or self.unmetered:
            return
        now = self._clock()
        if self.world.size > 1:  # other ranks' counts are unknown: an estimate, so the totals are not trusted
            self.mark_incomplete(
                f"last {self.steps - self._last_sync_step} steps estimated from rank 0 "
                f"x {self.world.size} ranks (no collective at interruption)"
            )
        elapsed = now - (now if self._last_sync_at is None else self._last_sync_at)
        estimate = local_estimate(delta, self.world.size)
        self.readings.add(estimate, self.ensure_profile(), steps=self.steps, seconds=elapsed)

    def __enter__(self) -> FlopsMeter:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        status, reason, collective = exit_status(exc_type, exc)
        self.close(status, reason, collective=collective)

    @contextlib.contextmanager
    def measuring(self) -> Iterator[None]:
        """``with meter.measuring():`` around one step's forward + backward, for plain loops."""
        self.begin_step()
        try:
            yield
        finally:
            self.end_measure()
