"""Model shapes read from Hugging Face configs: parameter counts and refusals."""

from __future__ import annotations

import pytest

from flopsmeter.domain.errors import InvalidModelSpec
from flopsmeter.domain.model_configs import load_bundled_config
from flopsmeter.domain.shape import ModelShape

LLAMA_8B = load_bundled_config("llama-3.1-8b")  # the public Llama-3.1-8B config.json
MIXTRAL = load_bundled_config("mixtral-8x7b")


def test_llama_8b_parameter_count_is_8_03e9() -> None:
    shape = ModelShape.from_hf_config(LLAMA_8B)
    assert shape.total_params == 8_030_261_248
    assert shape.active_params == shape.total_params


def test_moe_total_and_active_parameters() -> None:
    shape = ModelShape.from_hf_config(MIXTRAL)
    assert shape.total_params == pytest.approx(46.7e9, rel=0.01)
    assert shape.active_params == pytest.approx(12.9e9, rel=0.01)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, "hidden_size"),
        ({"hidden_size": 64}, "num_hidden_layers"),
        ({**LLAMA_8B, "vocab_size": None}, "vocab_size"),
        ({**LLAMA_8B, "hidden_size": "4096"}, "integer"),
        ({**LLAMA_8B, "hidden_size": 0}, ">= 1"),
        ({**LLAMA_8B, "num_key_value_heads": 5}, "multiple"),
        ({**LLAMA_8B, "kv_lora_rank": 512}, "latent"),
    ],
)
def test_bad_configs_raise_invalid_model_spec(config: dict, message: str) -> None:
    with pytest.raises(InvalidModelSpec, match=message):
        ModelShape.from_hf_config(config)
