"""The pre-flight for configs outside the closed form: the model built on meta from its config and measured as the
meter measures it; without torch, one line that says what to install."""

from __future__ import annotations

import sys

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from flopsmeter.domain.methods import FineTuning  # noqa: E402
from flopsmeter.training.config_cost import ATTENTION, TorchUnavailable, build_on_meta, measure_config  # noqa: E402
from tests.support.meters import EXACT, ground_truth  # noqa: E402
from tests.support.tiny_models import from_config  # noqa: E402
from tests.support.trainer_runs import deepseek_v3_model, mla_model, t5_model  # noqa: E402

pytestmark = pytest.mark.torch


def _real(model_factory, seq: int, decoder: int | None = None) -> float:
    config = model_factory().config
    auto = transformers.AutoModelForSeq2SeqLM if config.is_encoder_decoder else transformers.AutoModelForCausalLM
    extra = {"experts_implementation": "eager"} if config.model_type == "deepseek_v3" else {}
    try:
        model = from_config(auto, config, attn_implementation=ATTENTION, **extra).train()
    except ValueError:  # T5 has no SDPA before transformers 5.1: its own attention, as the pre-flight builds it
        model = from_config(auto, config, attn_implementation="eager", **extra).train()
    ids = torch.randint(4, 200, (1, seq))
    if config.is_encoder_decoder:
        dec = torch.randint(4, 200, (1, decoder))
        return ground_truth(lambda: model(input_ids=ids, decoder_input_ids=dec).logits.float().sum().backward())
    return ground_truth(lambda: model(input_ids=ids).logits.float().sum().backward())


@pytest.mark.parametrize("factory", [mla_model, deepseek_v3_model], ids=["deepseek-v2-mla", "deepseek-v3-mla-moe"])
def test_a_latent_attention_config_is_measured_as_its_model_runs(factory) -> None:
    cost = measure_config(factory().config.to_dict(), 96)
    assert (cost.training + cost.recompute) * 96 == pytest.approx(_real(factory, 96), rel=EXACT)
    assert cost.basis.startswith("measured on the meta device")


def test_an_encoder_decoder_config_is_measured_per_encoder_token() -> None:
    cost = measure_config(t5_model().config.to_dict(), 48, decoder_len=12)
    assert (cost.training + cost.recompute) * 48 == pytest.approx(_real(t5_model, 48, 12), rel=0.01)
    assert "12 decoder tokens per sequence" in cost.basis


def test_lora_on_a_config_costs_less_than_full_fine_tuning() -> None:
    config = mla_model().config.to_dict()
    lora = measure_config(config, 64, FineTuning(method="lora", lora_rank=8, lora_targets=frozenset({"all-linear"})))
    assert 0 < lora.training < measure_config(config, 64).training


def test_the_model_is_built_on_meta_without_memory() -> None:
    model = build_on_meta(mla_model().config.to_dict())
    assert {p.device.type for p in model.parameters()} == {"meta"}


def test_without_torch_it_says_what_to_install(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "transformers", None)  # import transformers -> ImportError
    with pytest.raises(TorchUnavailable, match=r"needs torch and transformers: install the package's training extra"):
        measure_config({"model_type": "deepseek_v2"}, 64)
