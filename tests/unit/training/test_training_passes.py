"""Which passes a job runs and what each costs: update, reference, generation, reward inference, recompute."""

from __future__ import annotations

import types

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from flopsmeter.training.passes import GENERATION, REFERENCE, read_pass  # noqa: E402
from flopsmeter.training.trainers import auxiliary_models, find_trainer, unseen_rollouts_per_update  # noqa: E402
from tests.support.meters import EXACT, ground_truth, quiet_meter  # noqa: E402
from tests.support.tiny_models import build, llama_config  # noqa: E402

pytestmark = pytest.mark.torch


class FakeCache:
    def __init__(self, length: int) -> None:
        self.length = length

    def get_seq_length(self) -> int:
        return self.length


def test_read_pass_takes_shapes_only_and_sees_the_cache_the_kept_logits_and_the_fused_head() -> None:
    ids = torch.zeros((3, 1), dtype=torch.long)
    decode = read_pass((), {"input_ids": ids, "cache": FakeCache(40)})
    assert (decode.tokens, decode.span, decode.positions, decode.cached) == (3, 41, 3 * 41, True)
    scored = read_pass((torch.zeros((2, 50), dtype=torch.long),), {"logits_to_keep": 10})
    assert (scored.tokens, scored.head_rows, scored.cached) == (100, 20, False)
    fused = read_pass((), {"input_ids": torch.zeros((2, 50), dtype=torch.long), "fused_lm_head": True})
    assert fused.head_rows == 2 * 49 and fused.fused_head  # TRL scores the shifted labels
    assert read_pass((), {"attention_mask": ids}) is None


@pytest.fixture(scope="module")
def model():
    return build(llama_config())


def _synced(meter):
    meter.step()
    meter.sync(emit=False)
    return meter.totals


def test_no_grad_passes_of_a_training_policy_are_reference_or_generation_and_exact(tmp_path, model) -> None:
    meter = quiet_meter(tmp_path, model, meta_check=False).start().attach(model)
    model.train()
    ids = torch.randint(0, 256, (2, 12))

    def score() -> None:
        with torch.no_grad():
            model(input_ids=ids)

    def generate() -> None:
        with torch.no_grad():
            model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=6, do_sample=False,
                           pad_token_id=0)  # fmt: skip

    scored, generated = ground_truth(score), ground_truth(generate)
    totals = _synced(meter)
    assert totals.reference_flops == pytest.approx(scored, rel=EXACT)
    assert totals.generation_flops == pytest.approx(generated, rel=EXACT)
    assert totals.update_flops == 0 and totals.flops == pytest.approx(scored + generated, rel=EXACT)
    meter.close()


def test_eval_mode_forwards_are_not_counted(tmp_path, model) -> None:
    meter = quiet_meter(tmp_path, model, meta_check=False).start().attach(model)
    model.eval()
    with torch.no_grad():
        model(input_ids=torch.randint(0, 256, (2, 8)))
    model.train()
    assert _synced(meter).flops == 0
    meter.close()


def test_a_reference_model_counts_only_while_the_policy_trains(tmp_path, model) -> None:
    reference = build(llama_config(), seed=1).eval()
    meter = quiet_meter(tmp_path, model, meta_check=False).start().attach(model).attach_auxiliary(reference, REFERENCE)
    ids = torch.randint(0, 256, (2, 16))
    model.train()
    with torch.no_grad():
        expected = ground_truth(lambda: reference(input_ids=ids))
    model.eval()  # the policy evaluates: the reference's forwards then are evaluation too
    with torch.no_grad():
        reference(input_ids=ids)
    model.train()
    totals = _synced(meter)
    assert totals.reference_flops == pytest.approx(expected, rel=EXACT)
    with pytest.raises(ValueError, match="role"):
        meter.attach_auxiliary(reference, "update")
    meter.close()


def test_rollouts_outside_the_policy_are_estimated_from_the_update_passes(tmp_path, model) -> None:
    trainer = types.SimpleNamespace(args=types.SimpleNamespace(use_vllm=True, num_iterations=2))
    assert unseen_rollouts_per_update(trainer) == 0.5
    assert unseen_rollouts_per_update(types.SimpleNamespace(args=types.SimpleNamespace(use_vllm=False))) == 0
    meter = quiet_meter(tmp_path, model, meta_check=False).start().attach(model)
    meter.passes.generation_per_update = 0.5
    model.train()
    ids = torch.randint(0, 256, (4, 20))  # 12 prompt + 8 completion tokens, as a vLLM server returned them
    model(input_ids=ids, logits_to_keep=8).logits.sum().backward()
    totals = _synced(meter)
    profile = meter.profile
    expected = 0.5 * profile.forward_flops(80, 80 * 20, head_rows=4 * 8)
    assert totals.generation_flops == pytest.approx(expected)
    assert totals.update_flops == pytest.approx(profile.update_flops(80, 80 * 20, head_rows=4 * 8))
    meter.close()


class Handler:
    def __init__(self, callbacks) -> None:
        self.callbacks = callbacks

    def on_train_begin(self, callback):
        return callback.find()


class FakeTrainer:
    def __init__(self, callback) -> None:
        self.callback_handler = Handler([callback])

    def train(self):
        return self.callback_handler.on_train_begin(self.callback_handler.callbacks[0])


class Callback:
    def find(self):
        return find_trainer(self)


def test_the_trainer_is_found_from_the_callback_and_its_frozen_models_listed(model) -> None:
    callback = Callback()
    trainer = FakeTrainer(callback)
    assert trainer.train() is trainer
    assert Callback().find() is None
    reference, teacher, reward = build(llama_config(), seed=2), build(llama_config(), seed=3), build(llama_config())
    trainer.ref_model, trainer.teacher_model = reference, teacher
    trainer.reward_funcs = [lambda completions, **_: [0.0], reward, model]
    found = auxiliary_models(trainer, model)
    assert [(role, m) for role, m in found] == [(REFERENCE, reference), (REFERENCE, teacher),
                                                ("reward_inference", reward)]  # fmt: skip
    assert GENERATION not in {role for role, _ in found}
