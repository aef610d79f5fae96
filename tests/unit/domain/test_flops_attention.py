"""The attention convention: full square scores; a fused kernel's backward computes dQ, dK, dV together and recomputes
QK^T (reported apart); encoder-decoder configs are refused by the closed form with a line saying where they go."""

from __future__ import annotations

from dataclasses import replace

import pytest

from flopsmeter.domain.errors import InvalidModelSpec
from flopsmeter.domain.flops import flops_per_token
from flopsmeter.domain.methods import FineTuning
from flopsmeter.domain.shape import ModelShape, fused_attention_kernel

SHAPE = ModelShape(hidden_size=128, num_layers=4, num_attention_heads=8, num_key_value_heads=2, head_dim=16,
                   intermediate_size=344, vocab_size=512)  # fmt: skip
FUSED = replace(SHAPE, fused_attention=True)


def test_a_fused_kernel_recomputes_half_the_scores_forward_in_every_layer_with_a_backward() -> None:
    eager, fused = flops_per_token(SHAPE, 1024), flops_per_token(FUSED, 1024)
    assert eager.attention_recompute == 0
    assert fused.attention_recompute == SHAPE.num_layers * 2.0 * SHAPE.q_dim * 1024  # QK^T per layer
    assert fused.total == eager.total  # full fine-tuning needs every gradient: the counted products are the same
    assert fused.attention_recompute / fused.total > 0.05  # and it grows with the row (issue 22: -8 % at 1 000)


def test_a_fused_kernel_computes_every_gradient_once_one_is_needed() -> None:
    lora = FineTuning(method="lora", lora_rank=8, lora_targets=frozenset({"q_proj"}))
    eager, fused = flops_per_token(SHAPE, 256, lora), flops_per_token(FUSED, 256, lora)
    assert fused.attention > eager.attention  # dK and dV are computed although only q carries an adapter


def test_layers_without_a_backward_recompute_nothing() -> None:
    spectrum = FineTuning(method="spectrum", trainable_layers=frozenset({3}))
    assert flops_per_token(FUSED, 256, spectrum).attention_recompute == 2.0 * SHAPE.q_dim * 256  # the last layer only


@pytest.mark.parametrize(
    ("implementation", "fused"),
    [
        (None, False),
        ("", False),
        ("eager", False),
        ("sdpa", True),
        ("flash_attention_2", True),
        ("flex_attention", True),
    ],  # fmt: skip
)
def test_the_attention_implementation_decides_the_kernel(implementation, fused) -> None:
    assert fused_attention_kernel(implementation) is fused


def test_a_config_naming_its_implementation_is_read_and_an_encoder_decoder_is_refused() -> None:
    base = {"model_type": "llama", "hidden_size": 128, "num_hidden_layers": 2, "num_attention_heads": 8,
            "intermediate_size": 344, "vocab_size": 512}  # fmt: skip
    assert ModelShape.from_hf_config({**base, "attn_implementation": "sdpa"}).fused_attention
    assert not ModelShape.from_hf_config(base).fused_attention
    with pytest.raises(InvalidModelSpec, match="encoder-decoder model .*measure it on the meta device"):
        ModelShape.from_hf_config({"model_type": "t5", "is_encoder_decoder": True, "d_model": 64})
