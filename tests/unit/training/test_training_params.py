"""Parameter counts at logical size (ZeRO-3, FSDP, 4-bit) and fine-tuning detection on live models."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")

from flopsmeter.domain.flops import trainable_params  # noqa: E402
from flopsmeter.domain.methods import FineTuning  # noqa: E402
from flopsmeter.domain.shape import ModelShape  # noqa: E402
from flopsmeter.training.model import describe_model  # noqa: E402
from flopsmeter.training.params import count_parameters, logical_numel  # noqa: E402
from tests.support.tiny_models import add_lora, build, llama_config, moe_config  # noqa: E402

pytestmark = pytest.mark.torch


class Params4bit(torch.nn.Parameter):
    """Stands in for bitsandbytes.nn.Params4bit (not installed here): packed uint8 storage + quant_state."""

    def __new__(cls, logical_shape: tuple[int, int], with_state: bool = True):
        numel = logical_shape[0] * logical_shape[1]
        self = super().__new__(cls, torch.zeros(numel // 2, 1, dtype=torch.uint8), requires_grad=False)
        self.quant_state = SimpleNamespace(shape=torch.Size(logical_shape)) if with_state else None
        self.bnb_quantized = True
        return self


def _quantize_linears(model) -> None:
    """Replace every frozen base nn.Linear weight inside the decoder layers by a fake 4-bit parameter."""
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and ".layers." in name and "lora_" not in name:
            module.weight = Params4bit(tuple(module.weight.shape))


def test_logical_numel_uses_ds_numel_for_zero3_partitions() -> None:
    p = torch.nn.Parameter(torch.empty(0))
    p.ds_numel = 4096
    assert logical_numel(p) == (4096, True)


def test_logical_numel_uses_the_original_sizes_of_an_fsdp_flat_parameter() -> None:
    p = torch.nn.Parameter(torch.empty(10))  # this rank's shard
    p._numels = (64, 16, 8)
    assert logical_numel(p) == (88, True)


def test_logical_numel_of_a_4bit_parameter_is_its_unpacked_shape() -> None:
    assert logical_numel(Params4bit((32, 64)))[0] == 2048
    # without quant_state: transformers' rule, numel x 2 x element_size
    assert logical_numel(Params4bit((32, 64), with_state=False))[0] == 2048


def test_full_fine_tuning_counts_match_the_formula() -> None:
    model = build(llama_config(kv_heads=2))
    profile = describe_model(model)
    assert profile.tuning.method == "full"
    assert profile.params.total == profile.shape.total_params == profile.params.trainable
    assert profile.warnings == ()


def test_lora_is_detected_after_adapters_are_attached() -> None:
    model = add_lora(build(llama_config()), rank=4, targets=("q_proj", "v_proj"))
    profile = describe_model(model)
    assert (profile.tuning.method, profile.tuning.lora_rank) == ("lora", 4)
    assert profile.tuning.lora_targets == frozenset({"q_proj", "v_proj"})
    assert profile.params.trainable == profile.params.adapters == trainable_params(profile.shape, profile.tuning)
    assert profile.training.constant < describe_model(build(llama_config())).training.constant


def test_qlora_counts_packed_weights_at_logical_size_and_is_detected() -> None:
    model = add_lora(build(llama_config()), rank=4)
    plain_total = count_parameters(model).total
    _quantize_linears(model)
    counts = count_parameters(model)
    assert counts.total == plain_total and counts.quantized_4bit > 0
    profile = describe_model(model)
    assert profile.tuning.method == "qlora" and profile.warnings == ()


def test_zero3_partitioned_model_counts_full_size() -> None:
    model = build(llama_config())
    expected = count_parameters(model).total
    for p in model.parameters():
        p.ds_numel = p.numel()
        p.data = torch.empty(0)
    counts = count_parameters(model)
    assert counts.total == expected and counts.partitioned == expected


def test_fsdp_flat_parameter_with_original_params_is_counted_once() -> None:
    model = build(llama_config())
    expected = count_parameters(model)
    layer = model.model.layers[0]
    originals = list(layer.parameters())
    flat = torch.nn.Parameter(torch.empty(3))
    flat._params = originals
    flat._numels = tuple(p.numel() for p in originals)
    flat._fqns = tuple(f"model.layers.0.{n}" for n, _ in layer.named_parameters())
    for p in originals:
        p.data = torch.empty(0)  # this rank holds none of these
    layer._handle = SimpleNamespace(flat_param=flat)
    counts = count_parameters(model)
    assert counts.total == expected.total and counts.trainable == expected.trainable


def test_spectrum_detected_from_requires_grad() -> None:
    model = build(llama_config(layers=3))
    for name, p in model.named_parameters():
        p.requires_grad = ".layers.2." in name
    profile = describe_model(model)
    assert profile.tuning == FineTuning(method="spectrum", trainable_layers=frozenset({2}), train_embeddings=False,
                                        train_lm_head=False)  # fmt: skip
    assert profile.params.trainable == trainable_params(profile.shape, profile.tuning)


def test_only_attention_trainable_is_spectrum_on_those_modules() -> None:
    model = build(llama_config())
    for name, p in model.named_parameters():
        p.requires_grad = "self_attn" in name
    tuning = describe_model(model).tuning
    assert tuning.trainable_modules == frozenset({"q_proj", "k_proj", "v_proj", "o_proj"})
    assert tuning.trainable_layers == frozenset({0, 1})


def test_moe_active_params_below_total() -> None:
    profile = describe_model(build(moe_config()))
    shape: ModelShape = profile.shape
    assert shape.num_experts == 4 and shape.active_params < shape.total_params == profile.params.total


def test_unknown_architecture_counts_are_flagged() -> None:
    model = build(llama_config())
    shape = ModelShape.from_hf_config({**model.config.to_dict(), "intermediate_size": 512})
    profile = describe_model(model, shape=shape)
    assert any("differs from the formula" in w for w in profile.warnings)
