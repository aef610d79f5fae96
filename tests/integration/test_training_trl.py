"""TRL end to end on CPU (tiny models, seconds each): the meter's counted + recompute vs FlopCounterMode over the
whole ``trainer.train()``, and the breakdown it reports."""

from __future__ import annotations

import re

import pytest

pytest.importorskip("torch")
pytest.importorskip("trl")

from flopsmeter.training.emitters import METRIC_DEFINITIONS  # noqa: E402
from tests.support import trl_runs  # noqa: E402

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
