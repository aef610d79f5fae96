"""TRL end to end on CPU (tiny models, seconds each): the meter's counted + recompute vs FlopCounterMode over the
whole ``trainer.train()``, and the breakdown it reports."""

from __future__ import annotations

import re

import pytest

pytest.importorskip("torch")
pytest.importorskip("trl")

from flopsmeter.training.emitters import METRIC_DEFINITIONS  # noqa: E402
from tests.support import trl_runs  # noqa: E402
from tests.support.meters import EXACT  # noqa: E402

pytestmark = pytest.mark.torch
WINDOW = (-1.0, 3.0)  # issue 11: counted + recompute within -1 % ... +3 % of the executed work


def _within(result) -> None:
    assert WINDOW[0] <= result.error_pct <= WINDOW[1], result.document["breakdown"]


def _last_metric(stdout: str, name: str) -> float:
    regex = next(d["Regex"] for d in METRIC_DEFINITIONS if d["Name"] == name)
    return float(re.findall(regex, stdout)[-1])


def test_sft_fused_lm_head_recompute_lands_in_recompute_flops() -> None:
    result = trl_runs.run(trl_runs.sft())
    _within(result)
    breakdown = result.document["breakdown"]
    assert breakdown["recompute"] > 0 and breakdown["reference"] == breakdown["generation"] == 0
    assert _last_metric(result.stdout, "flopsmeter:recompute_flops") == pytest.approx(breakdown["recompute"])


def test_dpo_counts_the_reference_model() -> None:
    result = trl_runs.run(trl_runs.dpo())
    _within(result)
    breakdown = result.document["breakdown"]
    assert breakdown["reference"] > 0.2 * breakdown["update"]
    assert list(result.document["passes"]["auxiliary_models"]) == ["reference:LlamaForCausalLM:0"]
    assert _last_metric(result.stdout, "flopsmeter:reference_flops") == pytest.approx(breakdown["reference"])


def test_grpo_counts_generation_and_reward_model_inference_apart() -> None:
    result = trl_runs.run(trl_runs.grpo(reward_model=True))
    _within(result)
    breakdown = result.document["breakdown"]
    assert breakdown["generation"] > 0 and breakdown["reward_inference"] > 0
    assert result.document["metered_flops"] == pytest.approx(
        breakdown["update"] + breakdown["reference"] + breakdown["generation"] + breakdown["reward_inference"]
    )
    assert "ambiguous" in result.document["breakdown_notes"]["reward_inference"]
    assert _last_metric(result.stdout, "flopsmeter:generation_flops") == pytest.approx(breakdown["generation"])


def _complete(result) -> None:
    _within(result)
    assert result.document["status"] == "completed" and result.document["meter_incomplete"] is False


def test_sdpa_attention_reports_the_kernels_recompute_and_is_exact() -> None:
    result = trl_runs.run(trl_runs.sft(attention="sdpa"))
    _complete(result)
    assert abs(result.error_pct) < EXACT * 100  # the fused kernel's QK^T recompute is in recompute_flops
    attention = result.document["attention"]
    assert attention["implementation"] == "sdpa" and "QK^T recompute in recompute_flops" in attention["backward"]
    assert result.document["measured"]["outside_tolerance"] == []


def test_dpo_references_precomputed_in_the_constructor_are_measured_under_reference() -> None:
    result = trl_runs.run(trl_runs.dpo(precompute=True))
    _complete(result)
    assert abs(result.error_pct) < EXACT * 100
    reasons = [w["reason"] for w in result.document["measured"]["first"]]
    assert "work before train()" in reasons and result.document["breakdown"]["reference"] > 0


def test_kto_references_precomputed_before_a_late_callback_are_counted_from_the_dataset() -> None:
    result = trl_runs.run(trl_runs.kto(precompute=True), late=True)
    _complete(result)
    assert abs(result.error_pct) < EXACT * 100  # the collator's padded batches: what the precompute fed the reference
    assert any("precomputed before the meter was attached" in w for w in result.document["warnings"])


def test_distillation_through_backbones_and_head_weights_is_counted_and_the_gap_is_said() -> None:
    # Given TRL's DistillationTrainer: student and teacher backbones called directly, heads projected from weights
    result = trl_runs.run(trl_runs.distillation())
    _complete(result)
    doc = result.document
    assert doc["breakdown"]["reference"] > 0 and doc["breakdown"]["generation"] > 0  # teacher, on-policy rollouts
    assert doc["measured_excess_flops"] > 0  # the heads projected from their weights: found by the measured steps
    assert doc["measured"]["outside_tolerance"] and "flopsmeter [WARNING] measured" in result.stdout
