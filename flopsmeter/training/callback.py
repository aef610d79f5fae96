"""Hugging Face ``TrainerCallback``: the one-line opt-in for ``Trainer`` and TRL's ``SFTTrainer``.

    trainer = SFTTrainer(..., callbacks=[FlopsMeterCallback(stop_at="approaching")])

It relies only on the public callback events and the ``model`` they pass (not on ``training_step`` or any
other Trainer internal that TRL overrides): tokens are counted by a forward pre-hook on the model, which
sees every training forward with its ``input_ids`` and ``attention_mask``. The totals are saved into each
checkpoint folder (``flops_meter_state.json``) and into ``trainer_state.json`` (``ExportableState``), and
restored when training resumes from a checkpoint; a resume without them is flagged as incomplete.

It never stops the user's training because of itself: a model it cannot meter leaves the job unmetered (see
``FlopsMeter``), unless ``strict=True``. Bad arguments fail at construction, before any training.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments
from transformers.trainer_callback import ExportableState

from flopsmeter.domain.thresholds import DEFAULT_APPROACHING_FRACTION, DEFAULT_PRIMARY_POLICY
from flopsmeter.training.environment import read_job_environment
from flopsmeter.training.meter import FlopsMeter, check_arguments
from flopsmeter.training.state import load_state, save_state, totals_from_document

logger = logging.getLogger("flopsmeter.training")

CHECKPOINT_PREFIX = "checkpoint"  # transformers.trainer_utils.PREFIX_CHECKPOINT_DIR


class FlopsMeterCallback(TrainerCallback, ExportableState):
    """Meters training FLOPs; see ``FlopsMeter`` for the arguments (all plain values, so the Trainer can
    re-create the callback from ``trainer_state.json``)."""

    def __init__(
        self,
        *,
        emit_every_s: float = 60.0,
        stop_at: str | None = None,
        policy: str = DEFAULT_PRIMARY_POLICY,
        approaching_fraction: float = DEFAULT_APPROACHING_FRACTION,
        pretrain_flops: str | float | None = None,
        base_model: str | None = None,
        prior_flops: str | float | None = None,
        output_dir: str | None = None,
        job_name: str | None = None,
        cloudwatch: bool | None = None,
        stdout: bool = True,
        measure_steps: int = 0,
        calibrate: bool = False,
        handle_signals: bool = True,
        strict: bool = False,
    ) -> None:
        check_arguments(emit_every_s=emit_every_s, stop_at=stop_at, policy=policy,
                        approaching_fraction=approaching_fraction)  # fmt: skip
        self.config: dict[str, Any] = {
            "emit_every_s": emit_every_s, "stop_at": stop_at, "policy": policy,
            "approaching_fraction": approaching_fraction, "pretrain_flops": pretrain_flops,
            "base_model": base_model, "prior_flops": prior_flops, "output_dir": output_dir, "job_name": job_name,
            "cloudwatch": cloudwatch, "stdout": stdout, "measure_steps": measure_steps, "calibrate": calibrate,
            "handle_signals": handle_signals, "strict": strict,
        }  # fmt: skip
        self.meter: FlopsMeter | None = None
        self.resume_state: dict[str, Any] | None = None  # set by the Trainer when it restores callback states
        self._cloudwatch_emitter: Any = None  # tests inject a fake emitter here

    def _meter_kwargs(self, fallback_dir: str | None) -> dict[str, Any]:
        kwargs = dict(self.config)
        output_dir = kwargs.pop("output_dir")
        kwargs["environment"] = read_job_environment(output_dir=output_dir, fallback_output_dir=fallback_dir)
        if self._cloudwatch_emitter is not None:
            kwargs["cloudwatch_emitter"] = self._cloudwatch_emitter
        return kwargs

    # ---- ExportableState ------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        saved = self.meter.state_dict() if self.meter is not None else self.resume_state
        return {"args": dict(self.config), "attributes": {"resume_state": saved}}

    # ---- events ---------------------------------------------------------------------------------------
    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        model = kwargs.get("model")  # None leaves the job unmetered (or raises with strict=True) in start()
        if self.meter is not None:  # an earlier train() call that raised: close it so it cannot overwrite later
            self.meter.close("failed", "training raised before it ended", collective=False)
        meter = FlopsMeter(model, **self._meter_kwargs(args.output_dir))
        if state.global_step > 0:
            self._restore(meter, args, state)
            stateful: Any = state.stateful_callbacks
            if isinstance(stateful, dict):  # a checkpoint saved without this callback: Trainer._save_checkpoint
                stateful.setdefault(type(self).__name__, self.state())  # indexes it and would raise KeyError
        meter.start()
        self.meter = meter if model is None else meter.attach(model)

    def _restore(self, meter: FlopsMeter, args: TrainingArguments, state: TrainerState) -> None:
        """Resuming: the checkpoint folder's file first, else the state saved in trainer_state.json."""
        folder = _checkpoint_folder(args, state)
        candidates: list[tuple[str, Any]] = []
        try:
            candidates.append((str(folder), load_state(folder)))
        except ValueError as err:
            meter.warnings.append(f"meter state in {folder} unusable: {err}")
        stateful: Any = state.stateful_callbacks  # a dict once TrainerState is built or loaded
        saved = stateful.get(type(self).__name__) if isinstance(stateful, dict) else None
        attributes = saved.get("attributes", {}) if isinstance(saved, dict) else {}
        candidates.append(("trainer_state.json", self.resume_state or attributes.get("resume_state")))
        for source, document in candidates:
            if document is None:
                continue
            try:
                steps = totals_from_document(document).steps
            except ValueError as err:
                meter.warnings.append(f"meter state from {source} unusable: {err}")
                continue
            if steps != state.global_step:
                meter.warnings.append(f"meter state from {source} is for step {steps}, not {state.global_step}")
            meter.load_state_dict(document)
            logger.info("flops meter totals restored from %s at step %d", source, steps)
            break
        meter.resume_at(state.global_step)  # steps the restored totals do not cover are flagged and estimated

    def on_step_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **_: Any) -> None:
        if self.meter is not None:
            self.meter.begin_step()

    def on_pre_optimizer_step(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **_: Any
    ) -> None:
        if self.meter is not None:
            self.meter.end_measure()

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **_: Any) -> None:
        if self.meter is None:
            return
        result = self.meter.step()
        if not result.synced and control.should_save:
            self.meter.sync()  # every rank sees the same should_save: the checkpoint gets exact totals
        if self.meter.stop_reason is not None:
            control.should_training_stop = True
            control.should_save = True

    def on_save(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **_: Any) -> None:
        if self.meter is None:
            return
        if self.meter.totals.steps != self.meter.steps:
            self.meter.sync(emit=False)
        if state.is_world_process_zero:
            folder = _checkpoint_folder(args, state)
            if folder.is_dir():
                try:
                    save_state(folder, self.meter.state_dict())
                except OSError as err:
                    logger.warning("meter state not saved with checkpoint: %s", err)

    def on_train_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **_: Any) -> None:
        if self.meter is not None:
            self.meter.close("completed")


def _checkpoint_folder(args: TrainingArguments, state: TrainerState) -> Path:
    return Path(args.output_dir or ".") / f"{CHECKPOINT_PREFIX}-{state.global_step}"
