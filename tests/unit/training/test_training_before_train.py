"""Work before train(): every model call between the trainer's construction and train() is reference work, counted
(measured first) whatever model runs it; a model the trainer changes before train() is profiled again."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from tests.support.meters import EXACT, ground_truth, quiet_meter  # noqa: E402
from tests.support.tiny_models import build, llama_config  # noqa: E402

pytestmark = pytest.mark.torch


def _score(model, rows: int, seq: int) -> None:
    ids = torch.randint(0, 256, (rows, seq))
    with torch.no_grad():
        model(input_ids=ids, attention_mask=torch.ones_like(ids))


def test_calls_before_train_are_reference_work_whatever_model_runs_them(tmp_path) -> None:
    policy = build(llama_config())
    meter = quiet_meter(tmp_path, policy).count_before_train(policy)
    reference = build(llama_config(hidden=96, inter=192), seed=2).eval()  # built after the meter started
    ran = ground_truth(lambda: [_score(m, 2, s) for m in (reference, policy) for s in (16, 16, 40, 40, 16)])
    meter.train_begins()
    meter.attach(policy.train())
    ids = torch.randint(0, 256, (2, 16))
    ran_update = ground_truth(lambda: policy(input_ids=ids, labels=ids).loss.backward())
    meter.step()
    meter.close()
    totals = meter.totals
    assert totals.reference_flops == pytest.approx(ran, rel=EXACT)  # profiling the reference ran on meta: not counted
    assert totals.update_flops == pytest.approx(ran_update, rel=EXACT)
    windows = [w.reason for w in meter.counting.probe.windows]
    assert windows.count("work before train()") >= 2 and meter.before_train.calls == 10
    assert json.loads((tmp_path / "flops_meter.json").read_text())["breakdown"]["reference"] == totals.reference_flops


def test_hooks_before_train_go_at_train_and_evaluation_then_is_not_counted(tmp_path) -> None:
    policy = build(llama_config())
    meter = quiet_meter(tmp_path, policy).count_before_train(policy)
    meter.train_begins()
    _score(policy.eval(), 2, 16)  # an evaluation forward after train() began: not the work before training
    meter.step()
    meter.sync(emit=False)
    assert meter.totals.reference_flops == 0
    assert meter.before_train.remove() is False  # already removed


def test_a_model_the_trainer_changes_before_train_is_profiled_again(tmp_path) -> None:
    policy = build(llama_config())
    meter = quiet_meter(tmp_path, policy).count_before_train(policy)
    assert meter.profile is not None and not meter.profile.gradient_checkpointing
    policy.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": True})  # as Trainer does
    meter.train_begins()
    assert meter.profile.gradient_checkpointing
