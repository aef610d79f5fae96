"""Where the callback finds the totals when training resumes (no training run needed)."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from flopsmeter.errors import FlopsMeterError  # noqa: E402
from flopsmeter.training.callback import FlopsMeterCallback  # noqa: E402
from flopsmeter.training.environment import read_job_environment  # noqa: E402
from flopsmeter.training.meter import FlopsMeter  # noqa: E402
from flopsmeter.training.state import Totals, save_state, state_document  # noqa: E402
from tests.support.tiny_models import build, llama_config  # noqa: E402

pytestmark = pytest.mark.torch


def _doc(steps: int, flops: float) -> dict:
    return state_document(Totals(steps=steps, tokens=steps * 10, flops=flops), formula_version="arch-v1", job_name=None)


@pytest.fixture
def setup(tmp_path):
    args = transformers.TrainingArguments(output_dir=str(tmp_path), report_to=[], use_cpu=True)
    state = transformers.TrainerState(global_step=3)
    env = read_job_environment({}, output_dir=tmp_path / "out", resource_config_path=str(tmp_path / "x"))
    meter = FlopsMeter(build(llama_config()), environment=env, stdout=False, handle_signals=False)
    return args, state, meter, tmp_path / "checkpoint-3"


def test_checkpoint_file_is_preferred(setup) -> None:
    args, state, meter, folder = setup
    save_state(folder, _doc(3, 30.0))
    state.stateful_callbacks = {"FlopsMeterCallback": {"args": {}, "attributes": {"resume_state": _doc(3, 99.0)}}}
    FlopsMeterCallback()._restore(meter, args, state)
    assert meter.totals.flops == 30.0 and meter.restored.steps == 3 and meter.warnings == []


def test_trainer_state_copy_is_used_when_the_file_is_missing(setup) -> None:
    args, state, meter, _ = setup
    state.stateful_callbacks = {"FlopsMeterCallback": {"args": {}, "attributes": {"resume_state": _doc(3, 99.0)}}}
    FlopsMeterCallback()._restore(meter, args, state)
    assert meter.totals.flops == 99.0


def test_corrupt_file_falls_back_with_a_warning(setup) -> None:
    args, state, meter, folder = setup
    folder.mkdir()
    (folder / "flops_meter_state.json").write_text("{")
    state.stateful_callbacks = {"FlopsMeterCallback": {"args": {}, "attributes": {"resume_state": _doc(3, 99.0)}}}
    FlopsMeterCallback()._restore(meter, args, state)
    assert meter.totals.flops == 99.0 and any("unusable" in w for w in meter.warnings)


def test_resume_without_saved_totals_is_recorded_as_a_gap(setup) -> None:
    args, state, meter, _ = setup
    FlopsMeterCallback()._restore(meter, args, state)
    assert meter.totals.flops == 0.0 and any("FLOPs before the resume are missing" in w for w in meter.warnings)
    assert meter.incomplete and meter.gap.missing_steps == 3 and meter.steps == 3  # steps continue at 4


def test_trainer_state_copy_behind_the_trainer_flags_the_missing_steps(setup) -> None:
    args, state, meter, _ = setup
    state.stateful_callbacks = {"FlopsMeterCallback": {"args": {}, "attributes": {"resume_state": _doc(1, 10.0)}}}
    FlopsMeterCallback()._restore(meter, args, state)
    assert meter.totals.flops == 10.0 and meter.incomplete and meter.gap.missing_steps == 2


@pytest.mark.parametrize(
    "bad", [{"stop_at": "aproaching"}, {"policy": "no-such-policy"}, {"emit_every_s": -1}, {"approaching_fraction": 2}]
)
def test_bad_arguments_fail_when_the_callback_is_created_not_mid_run(bad) -> None:
    with pytest.raises((ValueError, FlopsMeterError)):  # an unknown policy is UnknownPolicy
        FlopsMeterCallback(**bad)


def test_callback_state_recreates_an_equal_callback() -> None:
    callback = FlopsMeterCallback(stop_at="approaching", pretrain_flops="1.5e24", emit_every_s=30)
    exported = callback.state()
    again = FlopsMeterCallback(**exported["args"])
    assert again.options == callback.options


def test_a_second_train_call_closes_the_first_meter(tmp_path) -> None:
    args = transformers.TrainingArguments(output_dir=str(tmp_path), report_to=[], use_cpu=True)
    state, control = transformers.TrainerState(), transformers.TrainerControl()
    callback = FlopsMeterCallback(output_dir=str(tmp_path / "out"), stdout=False, cloudwatch=False,
                                  handle_signals=False)  # fmt: skip
    model = build(llama_config())
    callback.on_train_begin(args, state, control, model=model)
    first = callback.meter
    callback.on_train_begin(args, state, control, model=model)  # the first train() raised; the user retries
    assert first.status == "failed" and callback.meter is not first
    callback.on_train_end(args, state, control)
    assert callback.meter.status == "completed"
