"""Hugging Face ``TrainerCallback``: the one-line opt-in for ``Trainer`` and TRL's ``SFTTrainer``.

    trainer = SFTTrainer(..., callbacks=[FlopsMeterCallback(stop_at="approaching")])

It relies only on the public callback events and the ``model`` they pass (not on ``training_step`` or any
other Trainer internal that TRL overrides): passes are counted by forward hooks on the model, its backbone and its
head (``hooks.py``), which see every training forward with its ``input_ids`` and ``attention_mask``. From
``on_init_end`` (the end of ``Trainer.__init__``) to ``on_train_begin`` every model call is counted as work before
training (``before_train.py``: reference log-probs a trainer precomputes in its constructor); a callback added
after the trainer was built estimates that work from the dataset instead. The totals are saved into each
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

from flopsmeter.training.before_train import estimate_precompute, precomputed
from flopsmeter.training.environment import read_job_environment
from flopsmeter.training.meter import FlopsMeter
from flopsmeter.training.options import MeterOptions
from flopsmeter.training.passes import REFERENCE
from flopsmeter.training.state import load_state, save_state, totals_from_document
from flopsmeter.training.trainers import auxiliary_models, find_trainer, unseen_rollouts_per_update

logger = logging.getLogger("flopsmeter.training")

CHECKPOINT_PREFIX = "checkpoint"  # transformers.trainer_utils.PREFIX_CHECKPOINT_DIR


class FlopsMeterCallback(TrainerCallback, ExportableState):
    """Meters training FLOPs: ``FlopsMeterCallback(stop_at="approaching")`` (keywords are ``MeterOptions`` fields)
    or ``FlopsMeterCallback(options=MeterOptions(...))``. The Trainer can re-create it from ``trainer_state.json``."""

    def __init__(self, options: MeterOptions | None = None, **overrides: Any) -> None:
        self.options = MeterOptions.of(options, overrides)  # bad values raise here, before any training
        self.meter: FlopsMeter | None = None
        self.resume_state: dict[str, Any] | None = None  # set by the Trainer when it restores callback states
        self._cloudwatch_emitter: Any = None  # tests inject a fake emitter here
        self._early: FlopsMeter | None = None  # built at on_init_end: counts the work before train()

    def _new_meter(self, model: Any, fallback_dir: str | None) -> FlopsMeter:
        environment = read_job_environment(output_dir=self.options.output_dir, fallback_output_dir=fallback_dir)
        return FlopsMeter(model, self.options, environment=environment, cloudwatch_emitter=self._cloudwatch_emitter)

    # ---- ExportableState ------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        saved = self.meter.state_dict() if self.meter is not None else self.resume_state
        return {"args": self.options.exported(), "attributes": {"resume_state": saved}}

    # ---- events ---------------------------------------------------------------------------------------
    def on_init_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        """The trainer is built but its constructor may still run the model (precomputed reference log-probs)."""
        model = kwargs.get("model")
        if model is not None and self.meter is None and self._early is None:
            self._early = self._new_meter(model, args.output_dir).count_before_train(model)

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        model = kwargs.get("model")  # None leaves the job unmetered (or raises with strict=True) in start()
        if self.meter is not None:  # an earlier train() call that raised: close it so it cannot overwrite later
            self.meter.close("failed", "training raised before it ended", collective=False)
        early, self._early = self._early, None
        meter = early if early is not None and early.model is model else self._new_meter(model, args.output_dir)
        if early is not None and early is not meter:
            early.close("completed", "the trainer's model changed before train()", collective=False)
        meter.train_begins()
        if state.global_step > 0:
            self._restore(meter, args, state)
            stateful: Any = state.stateful_callbacks
            if isinstance(stateful, dict):  # a checkpoint saved without this callback: Trainer._save_checkpoint
                stateful.setdefault(type(self).__name__, self.state())  # indexes it and would raise KeyError
        meter.start()
        self.meter = meter if model is None else meter.attach(model)
        if model is not None:
            self._attach_trainer_models(meter, model)

    def _attach_trainer_models(self, meter: FlopsMeter, model: Any) -> None:
        """Reference models, teachers, reward models and rollouts outside the policy (see ``trainers.py``)."""
        trainer = find_trainer(self)
        if trainer is None:
            meter.warnings.append("the trainer was not found from the callback: only the policy's forwards are counted")
            return
        for role, auxiliary in auxiliary_models(trainer, model):
            meter.attach_auxiliary(auxiliary, role)
        before = meter.before_train
        if precomputed(trainer) and (before is None or not before.saw_work):
            _estimate_precompute(meter, trainer, model)
        meter.passes.generation_per_update = unseen_rollouts_per_update(trainer)
        if meter.passes.generation_per_update:
            meter.warnings.append(
                "rollouts are generated outside the policy (vLLM): generation is estimated from the prompt and "
                "completion tokens of the update passes"
            )

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


def _estimate_precompute(meter: FlopsMeter, trainer: Any, model: Any) -> None:
    """Reference log-probs computed before the meter was attached: counted from the dataset's padded batches."""
    reference = getattr(trainer, "ref_model", None)
    try:
        profile = meter.ensure_profile() if reference is None else meter._profile_of(reference, None)
        flops, sequences = estimate_precompute(trainer, profile)
    except Exception as err:  # the dataset or collator is not what TRL's are: say what is missing
        meter.mark_incomplete(f"reference log-probs precomputed before the meter started are not counted "
                              f"({type(err).__name__}: {err})")  # fmt: skip
        return
    meter.counter.add(REFERENCE, flops)
    meter.warnings.append(
        f"reference log-probs were precomputed before the meter was attached: {flops:.3e} FLOPs counted under "
        f"reference from the dataset's {sequences} sequences, padded as the trainer's collator pads them (attach "
        "the callback when the trainer is built, callbacks=[...], to measure it)"
    )


def _checkpoint_folder(args: TrainingArguments, state: TrainerState) -> Path:
    return Path(args.output_dir or ".") / f"{CHECKPOINT_PREFIX}-{state.global_step}"
