"""The ``estimated`` method (Bedrock and SageMaker serverless customization): passes per technique, uncertainty,
unknown tokens and the conservative reading of token counts that do not separate generation."""

from __future__ import annotations

import math

import pytest

from flopsmeter.domain.errors import InvalidModelSpec
from flopsmeter.domain.estimate import (
    ARCHITECTURE_UNCERTAINTY,
    ATTENTION_WIDTH_BOUND,
    PARAMETER_UNCERTAINTY,
    Technique,
    TokenCount,
    estimate_customization_flops,
    per_token_cost_from_architecture,
    per_token_cost_from_parameters,
)

N = 8e9
D = 1_000_000
S = 4096
A = 4 * ATTENTION_WIDTH_BOUND * N ** (2 / 3) * S  # attention products per token, forward, at the width bound


def _cost(adapters: bool = False):  # type: ignore[no-untyped-def]
    return per_token_cost_from_parameters(N, adapters=adapters, seq_len=S)


def test_parameter_basis_adds_the_attention_products_at_the_sequence_length() -> None:
    full, lora = _cost(), _cost(adapters=True)
    assert (full.forward, full.training) == (pytest.approx(2 * N + A), pytest.approx(6 * N + 3 * A))
    assert lora.training == pytest.approx(4 * N + 3 * A)
    assert "attention at 4096 tokens" in full.basis
    longer = per_token_cost_from_parameters(N, adapters=False, seq_len=32 * S)
    assert longer.training - 6 * N == pytest.approx(32 * (full.training - 6 * N))
    moe = per_token_cost_from_parameters(N, adapters=False, seq_len=S, total_parameters=8 * N)
    assert moe.training - 6 * N == pytest.approx(4 * (full.training - 6 * N))  # width bound on total parameters


def test_sft_full_is_six_n_d_classified_on_the_upper_end() -> None:
    cost = _cost()
    per_token = 6 * N + 3 * A
    est = estimate_customization_flops(cost, Technique.SFT, TokenCount(D, "BillableTokenCount", known=True))
    assert est.central == pytest.approx(per_token * D)
    assert est.flops == pytest.approx(per_token * D * (1 + PARAMETER_UNCERTAINTY))
    assert est.low == pytest.approx(per_token * D * (1 - PARAMETER_UNCERTAINTY))
    assert est.breakdown == {"update": pytest.approx(per_token * D)}
    assert not est.needs_declaration


def test_sft_adapters_cost_four_n_per_token() -> None:
    est = estimate_customization_flops(_cost(adapters=True), Technique.SFT, TokenCount(D, "x", known=True))
    assert est.central == pytest.approx((4 * N + 3 * A) * D)


def test_dpo_adds_the_reference_forward_over_twice_the_billed_tokens() -> None:
    est = estimate_customization_flops(_cost(), Technique.DPO, TokenCount(D, "x", known=True))
    assert est.breakdown["reference"] == pytest.approx((2 * N + A) * 2 * D)
    assert est.central == pytest.approx((8 * N + 4 * A) * 2 * D)


@pytest.mark.parametrize("technique", [Technique.RLVR, Technique.RLAIF])
def test_rl_without_generation_split_counts_every_token_as_generated_and_trained(technique: Technique) -> None:
    est = estimate_customization_flops(_cost(), technique, TokenCount(D, "BillableTokenCount", known=True))
    assert est.breakdown["generation"] == pytest.approx((2 * N + A) * D)
    assert est.breakdown["update"] == pytest.approx((6 * N + 3 * A) * D)
    assert est.breakdown["reference"] == pytest.approx((2 * N + A) * D)
    assert est.breakdown["old_policy"] == pytest.approx((2 * N + A) * D)
    assert ("reward_inference" in est.breakdown) is (technique is Technique.RLAIF)
    assert any("conservative reading" in a for a in est.assumptions)


def test_rl_with_a_generation_split_counts_generation_on_generated_tokens_only() -> None:
    cost = _cost()
    split = TokenCount(D, "x", known=True, separates_generation=True, generated_tokens=D // 4)
    est = estimate_customization_flops(cost, Technique.RLVR, split)
    assert est.breakdown["generation"] == pytest.approx((2 * N + A) * D / 4)
    unsplit = estimate_customization_flops(cost, Technique.RLVR, TokenCount(D, "x", known=True))
    assert est.central < unsplit.central  # the unsplit reading is the conservative one


def test_unknown_tokens_use_the_bound_and_ask_for_a_declaration() -> None:
    est = estimate_customization_flops(_cost(adapters=True), Technique.SFT, TokenCount(10**9, "quota bound: Q",
                                                                                       known=False))  # fmt: skip
    assert est.needs_declaration
    assert est.central == pytest.approx((4 * N + 3 * A) * 1e9)
    assert any("declaration is needed" in a and "quota bound: Q" in a for a in est.assumptions)
    assert est.as_dict()["needs_declaration"] is True


def test_architecture_basis_has_the_smaller_uncertainty() -> None:
    cost = per_token_cost_from_architecture(2.2 * N, 6.6 * N, config="llama-3.1-8b", seq_len=4096)
    est = estimate_customization_flops(cost, Technique.SFT, TokenCount(D, "x", known=True))
    assert est.uncertainty == ARCHITECTURE_UNCERTAINTY
    assert est.flops == pytest.approx(6.6 * N * D * 1.1)
    assert "llama-3.1-8b at 4096" in est.cost_basis


@pytest.mark.parametrize("bad", [0, -1.0, math.nan, math.inf])
def test_bad_parameter_counts_are_refused(bad: float) -> None:
    with pytest.raises(InvalidModelSpec):
        per_token_cost_from_parameters(bad, adapters=False, seq_len=S)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_bad_sequence_lengths_are_refused(bad: object) -> None:
    with pytest.raises(InvalidModelSpec):
        per_token_cost_from_parameters(N, adapters=False, seq_len=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("tokens", [-1, 1.5, True])
def test_bad_token_counts_are_refused(tokens: object) -> None:
    with pytest.raises(InvalidModelSpec):
        TokenCount(tokens, "x", known=True)  # type: ignore[arg-type]


def test_more_tokens_never_means_fewer_flops() -> None:
    cost = _cost()
    figures = [
        estimate_customization_flops(cost, t, TokenCount(d, "x", known=True)).flops
        for t in Technique
        for d in (0, 10, 10_000)
    ]
    per_technique = [figures[i : i + 3] for i in range(0, len(figures), 3)]
    assert all(a <= b <= c for a, b, c in per_technique)
