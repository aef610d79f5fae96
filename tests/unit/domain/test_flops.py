"""Closed-form checks and properties of the architecture FLOPs formulas (no torch)."""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from flopsmeter.domain.errors import InvalidFineTuning, InvalidModelSpec
from flopsmeter.domain.flops import flops_per_token, trainable_params, training_flops
from flopsmeter.domain.methods import FineTuning
from flopsmeter.domain.model_configs import load_bundled_config
from flopsmeter.domain.shape import ModelShape

LLAMA_8B = load_bundled_config("llama-3.1-8b")  # the public Llama-3.1-8B config.json
MIXTRAL = load_bundled_config("mixtral-8x7b")


def test_full_fine_tuning_is_6n_plus_attention_for_a_dense_model() -> None:
    # Given Llama-3.1-8B at 4k: every matmul 3x forward, and the attention term 3 x 4 x s x d_q per layer
    shape = ModelShape.from_hf_config(LLAMA_8B)
    fpt = flops_per_token(shape, 4096)
    matmul_params = shape.total_params - 128256 * 4096 - 4096 * (2 * 32 + 1)  # no embedding lookup, no norms
    assert fpt.constant == pytest.approx(6 * matmul_params)
    assert fpt.per_position == pytest.approx(32 * 3 * 2 * 2 * 4096)
    assert fpt.attention == pytest.approx(fpt.per_position * 4096)
    assert fpt.total == pytest.approx(fpt.forward + fpt.backward)
    assert fpt.backward == pytest.approx(2 * fpt.forward)
    assert sum(fpt.components.values()) == pytest.approx(fpt.total)
    # And the attention term is the +13 % over 6ND at 4k that DESIGN.md quotes (the embedding lookup, part of
    # 6ND's N, is not a matmul, so the total is 6.8 % above 6ND)
    assert fpt.attention / (6 * shape.total_params) == pytest.approx(0.13, abs=0.01)
    assert fpt.total / (6 * shape.total_params) == pytest.approx(1.068, abs=0.001)


def test_linear_decomposition_matches_sums_kept_by_a_meter() -> None:
    shape = ModelShape.from_hf_config(LLAMA_8B)
    fpt = flops_per_token(shape, 512)
    # two batches: 3 sequences of 512 tokens and 2 of 2048
    tokens = 3 * 512 + 2 * 2048
    tokens_x_len = 3 * 512 * 512 + 2 * 2048 * 2048
    expected = 3 * 512 * flops_per_token(shape, 512).total + 2 * 2048 * flops_per_token(shape, 2048).total
    assert fpt.flops_for(tokens, tokens_x_len) == pytest.approx(expected)
    assert fpt.constant + fpt.per_position * 2048 == pytest.approx(flops_per_token(shape, 2048).total)


def test_lora_has_no_weight_gradients_for_the_frozen_base() -> None:
    shape = ModelShape.from_hf_config(LLAMA_8B)
    lora = flops_per_token(shape, 2048, FineTuning(method="lora", lora_rank=16))
    full = flops_per_token(shape, 2048)
    assert full.forward == pytest.approx(lora.forward - lora.components["lora_adapters"] / 3, rel=1e-3)
    assert 0.6 < lora.total / full.total < 0.7  # ~ 4ND of 6ND, plus attention
    assert trainable_params(shape, FineTuning(method="lora", lora_rank=16)) == 32 * 16 * (4096 + 4096 + 4096 + 1024)


def test_recompute_is_reported_apart() -> None:
    shape = ModelShape.from_hf_config(LLAMA_8B)
    fpt = flops_per_token(shape, 1024)
    assert 0 < fpt.recompute < fpt.forward
    assert fpt.total == pytest.approx(fpt.forward + fpt.backward)


def test_moe_counts_active_experts_only() -> None:
    shape = ModelShape.from_hf_config(MIXTRAL)
    fpt = flops_per_token(shape, 1)
    assert fpt.constant == pytest.approx(6 * (shape.active_params - 2 * 32000 * 4096 / 2 - 4096 * 65), rel=1e-3)


def test_fine_tuning_that_does_not_fit_the_model_is_rejected() -> None:
    shape = ModelShape.from_hf_config(LLAMA_8B)
    with pytest.raises(InvalidFineTuning, match="qkv_proj"):
        flops_per_token(shape, 8, FineTuning(method="lora", lora_targets=frozenset({"qkv_proj"})))
    with pytest.raises(InvalidFineTuning):
        flops_per_token(shape, 8, FineTuning(method="spectrum", trainable_layers=frozenset({40})))
    with pytest.raises(InvalidModelSpec):
        flops_per_token(shape, 0)
    with pytest.raises(InvalidModelSpec):
        training_flops(shape, 8, -1)


# ---- properties ----------------------------------------------------------------------------------------

shapes = st.builds(
    lambda h_mult, layers, kv, groups, inter, vocab, tie, experts: ModelShape(
        hidden_size=16 * h_mult, num_layers=layers, num_attention_heads=kv * groups, num_key_value_heads=kv,
        head_dim=16, intermediate_size=inter, vocab_size=vocab, tie_word_embeddings=tie,
        num_experts=experts, num_experts_per_tok=min(2, experts),
    ),
    st.integers(1, 16), st.integers(1, 6), st.integers(1, 8), st.integers(1, 4), st.integers(8, 512),
    st.integers(2, 5000), st.booleans(), st.sampled_from([0, 0, 4, 8]),
)  # fmt: skip


tunings = st.one_of(
    st.just(FineTuning()),
    st.builds(
        lambda r, t: FineTuning(method="lora", lora_rank=r, lora_targets=frozenset(t)),
        st.integers(1, 64),
        st.sets(st.sampled_from(["q_proj", "k_proj", "v_proj", "o_proj", "all-linear"]), min_size=1),
    ),
    st.builds(lambda: FineTuning(method="spectrum", trainable_layers=frozenset({0}))),
)  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(shapes, st.integers(1, 8192), st.integers(0, 10**12), st.integers(0, 10**12), tunings)
def test_more_tokens_never_means_fewer_flops(shape, seq_len, a, b, tuning) -> None:
    few, many = sorted((a, b))
    assert training_flops(shape, seq_len, few, tuning) <= training_flops(shape, seq_len, many, tuning)


@settings(max_examples=60, deadline=None)
@given(shapes, st.integers(1, 4096), st.integers(1, 4096), tunings)
def test_longer_sequences_never_fewer_flops_per_token(shape, s1, s2, tuning) -> None:
    short, long = sorted((s1, s2))
    assert flops_per_token(shape, short, tuning).total <= flops_per_token(shape, long, tuning).total


@settings(max_examples=60, deadline=None)
@given(
    shapes,
    st.integers(1, 4096),
    st.integers(1, 8),
    st.sets(st.sampled_from(["q_proj", "v_proj", "o_proj"]), min_size=1),
)
def test_lora_never_costs_more_than_full_fine_tuning(shape, seq_len, rank, targets) -> None:
    # For ranks small against the projections (as LoRA is used: r <= width / 12), the adapters never cost more
    # than the weight gradients they save. (A rank near the width can: that is not a LoRA anyone runs.)
    assume(12 * rank <= min(shape.hidden_size, shape.kv_dim))
    lora = FineTuning(method="lora", lora_rank=rank, lora_targets=frozenset(targets))
    assert flops_per_token(shape, seq_len, lora).total <= flops_per_token(shape, seq_len).total


@settings(max_examples=60, deadline=None)
@given(shapes, st.integers(1, 4096), tunings)
def test_forward_backward_total_and_components_agree(shape, seq_len, tuning) -> None:
    fpt = flops_per_token(shape, seq_len, tuning)
    assert fpt.total == pytest.approx(fpt.forward + fpt.backward)
    assert sum(fpt.components.values()) == pytest.approx(fpt.total)
    assert fpt.constant + fpt.per_position * seq_len == pytest.approx(fpt.total)
    assert fpt.backward <= 2 * fpt.forward * (1 + 1e-12)
