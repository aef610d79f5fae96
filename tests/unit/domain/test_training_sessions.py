"""Training sessions estimated from DescribeTrainingSession (issue 26 item 1): training tokens at forward+backward
with the session's LoRA rank, prefill and sampled tokens at forward cost, on the recognised base."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flopsmeter.domain.customization_names import sagemaker_base_model
from flopsmeter.domain.sessions import DEFAULT_RANK, estimate_training_session, session_cost

LLAMA_8B = "arn:aws:sagemaker:us-east-1:aws:hub-content/SageMakerPublicHub/Model/meta-textgeneration-llama-3-1-8b/2.0.0"


def _detail(training: int | None = None, prefill: int | None = None, sample: int | None = None, rank: int = 16,
            base: str = LLAMA_8B) -> dict:  # fmt: skip
    usage = {k: v for k, v in (("TrainingTokenCount", training), ("PrefillTokenCount", prefill),
                               ("SampleTokenCount", sample)) if v is not None}  # fmt: skip
    return {"ModelConfig": {"BaseModelArn": base}, "LoraConfig": {"Rank": rank, "Alpha": 2 * rank},
            **({"BillableTokenUsage": usage} if usage else {})}  # fmt: skip


def test_training_prefill_and_sampled_tokens_each_cost_what_their_pass_costs() -> None:
    est = estimate_training_session(_detail(10**9, 2 * 10**8, 3 * 10**8))
    cost, _ = session_cost(sagemaker_base_model(LLAMA_8B), 16)
    parts = est.estimate.breakdown
    assert parts["update"] == pytest.approx(cost.training * 10**9)
    assert parts["reference"] == pytest.approx(cost.forward * 2 * 10**8)
    assert parts["generation"] == pytest.approx(cost.forward * 3 * 10**8)  # rollouts count
    assert est.estimate.flops == pytest.approx(sum(parts.values()) * 1.10)  # upper end of the architecture basis
    assert est.base.match is not None and est.service == "sagemaker-training-session" and not est.needs_declaration


def test_the_sessions_lora_rank_is_used_and_a_missing_rank_reads_as_the_larger() -> None:
    low, high = (estimate_training_session(_detail(10**9, rank=r)).estimate.flops for r in (8, 256))
    assert low < high
    missing = estimate_training_session({**_detail(10**9), "LoraConfig": {}})
    assert any(f"rank {DEFAULT_RANK} assumed" in n for n in missing.warnings())


def test_no_token_usage_is_bounded_at_the_presumption_and_asks_for_a_declaration() -> None:
    est = estimate_training_session(_detail())
    assert est.estimate.flops >= 1e25 and est.needs_declaration


def test_an_unknown_base_uses_the_stand_in_and_asks_for_a_declaration() -> None:
    est = estimate_training_session(_detail(10**6, base="arn:aws:sagemaker:us-east-1:aws:hub-content/X/Model/nova/1"))
    assert not est.estimate.cost_known and est.needs_declaration


@given(st.integers(0, 10**12), st.integers(0, 10**12), st.integers(0, 10**12), st.integers(1, 10**6))
def test_more_tokens_never_mean_fewer_flops(training: int, prefill: int, sample: int, more: int) -> None:
    base = estimate_training_session(_detail(training, prefill, sample)).estimate.flops
    for bigger in ((training + more, prefill, sample), (training, prefill + more, sample),
                   (training, prefill, sample + more)):  # fmt: skip
        assert estimate_training_session(_detail(*bigger)).estimate.flops >= base
