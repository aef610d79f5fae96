"""The model that runs: heads at their real shape, LoRA as configured, architectures measured on meta."""

from __future__ import annotations

import dataclasses

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
peft = pytest.importorskip("peft")

from flopsmeter.domain.flops import flops_per_token  # noqa: E402
from flopsmeter.domain.methods import FineTuning  # noqa: E402
from flopsmeter.domain.shape import ModelShape  # noqa: E402
from flopsmeter.training import meta  # noqa: E402
from flopsmeter.training.lora import lora_costs, lora_plan  # noqa: E402
from flopsmeter.training.meta import MetaModel, profile_model  # noqa: E402
from flopsmeter.training.model import describe_model  # noqa: E402
from tests.support.meters import EXACT, ground_truth  # noqa: E402
from tests.support.tiny_models import build, llama_config, moe_config  # noqa: E402
from tests.support.trainer_runs import deepseek_v3_model, mla_model  # noqa: E402

pytestmark = pytest.mark.torch
SEQ = 24


def _step(model, ids, labels=None):
    out = model(input_ids=ids, labels=labels) if labels is not None else model(input_ids=ids)
    (out.loss if labels is not None else out.logits.float().sum()).backward()


def _exact(model, profile, *, batch=2, seq=SEQ, labels=None) -> None:
    model.train()
    ids = torch.randint(4, 200, (batch, seq))
    measured = ground_truth(lambda: _step(model, ids, labels))
    assert profile.training.flops(batch * seq, batch * seq * seq) == pytest.approx(measured, rel=EXACT)


def _lora(model, **config):
    return peft.get_peft_model(model, peft.LoraConfig(lora_alpha=16, **config))


@pytest.mark.parametrize("kind", ["sequence", "token"])
def test_classification_heads_are_counted_at_their_real_shape_without_a_false_warning(kind) -> None:
    config = llama_config()
    config.num_labels, config.pad_token_id = 5, 0
    auto = {"sequence": transformers.AutoModelForSequenceClassification,
            "token": transformers.AutoModelForTokenClassification}[kind]  # fmt: skip
    model = auto.from_config(config, attn_implementation="eager")
    profile = describe_model(model)
    assert profile.shape.vocab_size == 5 and not profile.warnings
    _exact(model, profile, batch=1)


def test_lora_on_a_layer_subset_with_per_module_ranks_is_counted_as_configured() -> None:
    model = _lora(build(llama_config(layers=4)), r=8, target_modules=["q_proj", "v_proj", "down_proj"],
                  layers_to_transform=[1, 2], rank_pattern={"down_proj": 2})  # fmt: skip
    plan, outside = lora_plan(model)
    assert plan == {1: {"q_proj": 8, "v_proj": 8, "down_proj": 2}, 2: {"q_proj": 8, "v_proj": 8, "down_proj": 2}}
    profile = describe_model(model)
    assert any("counted as configured" in w for w in profile.warnings)
    assert not any("every layer" in w or "largest is used" in w for w in profile.warnings)
    _exact(model, profile)


def test_lora_target_modules_regex_picks_the_layers() -> None:
    model = _lora(build(llama_config(layers=3)), r=4, target_modules=r".*layers\.(0|2)\.self_attn\.(k_proj|o_proj)")
    assert sorted(lora_plan(model)[0]) == [0, 2]
    _exact(model, describe_model(model))


def test_modules_to_save_is_counted_trainable_without_the_live_count_warning() -> None:
    model = _lora(build(llama_config()), r=4, target_modules=["q_proj", "v_proj"], modules_to_save=["lm_head"])
    profile = describe_model(model)
    assert profile.tuning.lm_head_trainable and not profile.warnings
    assert profile.params.saved_copies == 256 * 64
    _exact(model, profile)


def test_lora_on_every_layer_composes_to_the_closed_form() -> None:
    shape = ModelShape.from_hf_config(llama_config().to_dict())
    tuning = FineTuning(method="lora", lora_rank=8, lora_targets=frozenset({"q_proj", "o_proj", "up_proj"}))
    plan = {i: {"q_proj": 8, "o_proj": 8, "up_proj": 8} for i in range(shape.num_layers)}
    costs = lora_costs(shape, plan, tuning)
    closed = [flops_per_token(shape, s, tuning) for s in (1, 2)]
    assert costs.training[0] == pytest.approx(closed[0].constant)
    assert costs.training[1] == pytest.approx(closed[0].per_position)
    assert costs.recompute[0] + costs.recompute[1] == pytest.approx(closed[0].recompute)


def test_multi_head_latent_attention_is_measured_on_meta_exactly() -> None:
    model = mla_model()
    profile = profile_model(model)
    assert profile.source == "meta" and "measured on the meta device" in profile.warnings[0]
    _exact(model, profile, batch=1)


def test_the_meta_measurement_is_invisible_to_a_counter_around_it() -> None:
    model = build(llama_config())

    def measure() -> tuple[meta.Costs, meta.Costs]:
        copy = MetaModel(model)
        return copy.training(), copy.forward()

    training, forward = measure()
    assert ground_truth(measure) == 0
    profile = describe_model(model)
    assert training.per_token.per_position == profile.training.per_position  # what differs: rotary angles (4.x)
    assert training.per_token.constant == pytest.approx(profile.training.constant, rel=EXACT)
    assert forward.per_token.constant == pytest.approx(profile.forward.constant, rel=EXACT)
    assert training.per_row == training.per_call == 0  # a causal LM costs nothing per sequence


def test_a_closed_form_that_disagrees_with_meta_is_a_warning_and_the_larger_figure_wins(monkeypatch) -> None:
    model = build(llama_config())
    honest = describe_model(model)
    low = dataclasses.replace(
        honest, training=dataclasses.replace(honest.training, constant=honest.training.constant / 2)
    )
    monkeypatch.setattr(meta, "describe_model", lambda m, tuning=None: low)
    profile = profile_model(model)
    assert profile.source == "formula+meta" and "disagree" in profile.warnings[-1]
    assert profile.training.constant == pytest.approx(honest.training.constant, rel=EXACT)
    assert profile_model(model, meta=False).training.constant == low.training.constant


def test_moe_is_measured_on_meta_from_the_routers_top_k_and_agrees_with_the_closed_form() -> None:
    model = build(moe_config())
    profile = profile_model(model)
    assert profile.source == "formula (meta cross-check agrees)"
    _exact(model, profile, batch=1)


def test_latent_attention_with_experts_is_measured_on_meta_exactly() -> None:
    model = deepseek_v3_model()
    profile = profile_model(model)
    assert profile.source == "meta"
    _exact(model, profile, batch=1)
