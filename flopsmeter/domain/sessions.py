"""SageMaker training sessions estimated from DescribeTrainingSession (issue 26 item 1; pure).

A training session holds a base model on accelerators the service does not disclose; the user's code drives it
with ``forward_backward``, ``forward``, ``optim_step`` and ``sample``. What the session reports is
``BillableTokenUsage``: ``TrainingTokenCount`` (tokens through forward + backward), ``PrefillTokenCount`` (tokens
through a forward pass only: prompts, scoring, ``compute_logprobs``) and ``SampleTokenCount`` (tokens the model
generated: rollouts, which count toward the modification as an RL trainer's generation does). So:

    FLOPs = training tokens x (forward + backward per token, LoRA at the session's rank)
          + (prefill + sampled tokens) x forward per token

at the base model's bundled architecture (at its longest context: a session states no sequence length) or its
catalog parameter count (``flopsmeter.domain.customization.per_token_cost``), classified on the upper end of the
basis's uncertainty. A session that reports no token usage is bounded where its training cost reaches the AI Act's
1e25 presumption, and a declaration is asked for.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from flopsmeter.domain.customization import (
    CustomizationEstimate,
    JobKind,
    TechniqueReading,
    bundled_cost,
    parameter_cost,
)
from flopsmeter.domain.customization_names import BaseModelRef, sagemaker_base_model
from flopsmeter.domain.estimate import Estimate, PerTokenCost, Technique, TokenCount, upper_end_estimate
from flopsmeter.domain.methods import ALL_LINEAR, FineTuning
from flopsmeter.domain.thresholds import SYSTEMIC_RISK_TRAINING_FLOPS

TRAINING_SESSION = "sagemaker-training-session"
USAGE_SOURCE = "BillableTokenUsage (DescribeTrainingSession)"
DEFAULT_RANK = 64  # a session without LoraConfig (the API requires it): the larger reading of the usual ranks


@dataclass(frozen=True)
class TokenUsage:
    """``BillableTokenUsage``: None for a count the session does not report."""

    training: int | None
    prefill: int | None
    sample: int | None

    @property
    def reported(self) -> bool:
        return self.training is not None or self.prefill is not None or self.sample is not None


def token_usage(detail: Mapping[str, Any]) -> TokenUsage:
    usage = detail.get("BillableTokenUsage")
    usage = usage if isinstance(usage, Mapping) else {}
    return TokenUsage(
        _count(usage.get("TrainingTokenCount")), _count(usage.get("PrefillTokenCount")),
        _count(usage.get("SampleTokenCount")),
    )  # fmt: skip


def lora_rank(detail: Mapping[str, Any]) -> tuple[int, str | None]:
    """The session's ``LoraConfig.Rank``, or ``DEFAULT_RANK`` with a note when it is missing or unusable."""
    config = detail.get("LoraConfig")
    rank = _count(config.get("Rank")) if isinstance(config, Mapping) else None
    if rank:
        return rank, None
    return DEFAULT_RANK, f"LoraConfig.Rank not stated or unusable: rank {DEFAULT_RANK} assumed (the larger reading)"


def session_cost(base: BaseModelRef, rank: int) -> tuple[PerTokenCost, int | None]:
    """Per-token cost with LoRA at ``rank`` on every linear layer (input gradients through every layer)."""
    lora = FineTuning(method="lora", lora_rank=rank, lora_targets=frozenset({ALL_LINEAR}), input_requires_grad=True)
    bundled = bundled_cost(base, lora, None)
    if bundled is not None:
        cost, used = bundled
        return replace(cost, basis=f"{cost.basis}; LoRA rank {rank} on every linear layer"), used
    return parameter_cost(base, adapters=True), None


def estimate_training_session(detail: Mapping[str, Any]) -> CustomizationEstimate:
    """A training session's estimate from its DescribeTrainingSession ``TrainingSessionDetail``."""
    model = detail.get("ModelConfig")
    base = sagemaker_base_model(str(model.get("BaseModelArn") or "") if isinstance(model, Mapping) else "")
    rank, rank_note = lora_rank(detail)
    cost, used = session_cost(base, rank)
    usage = token_usage(detail)
    notes = [rank_note] if rank_note else []
    reading = TechniqueReading(Technique.SESSION_OPERATIONS, True, tuple(notes))
    estimate = session_estimate(cost, usage)
    return CustomizationEstimate(TRAINING_SESSION, JobKind.FINE_TUNING, base, reading, used, estimate)


def session_estimate(cost: PerTokenCost, usage: TokenUsage) -> Estimate:
    """Training tokens x forward+backward, prefill and sampled tokens x forward; the upper end is classified."""
    notes: list[str] = []
    if usage.reported:
        training, prefill, sample = (v or 0 for v in (usage.training, usage.prefill, usage.sample))
        missing = [n for n, v in (("training", usage.training), ("prefill", usage.prefill),
                                  ("sample", usage.sample)) if v is None]  # fmt: skip
        if missing:
            notes.append(f"BillableTokenUsage does not report {', '.join(missing)} tokens: counted as zero")
        tokens = TokenCount(training + prefill + sample, USAGE_SOURCE, known=True, separates_generation=True,
                            generated_tokens=sample)  # fmt: skip
    else:
        training, prefill, sample = math.ceil(SYSTEMIC_RISK_TRAINING_FLOPS / cost.training), 0, 0
        tokens = TokenCount(training, f"no BillableTokenUsage: {training:.3g} training tokens, where the session's "
                            "training cost reaches 1e25 FLOPs (AI Act Art. 51(2))", known=False)  # fmt: skip
    parts = {
        "update": cost.training * training,
        "reference": cost.forward * prefill,
        "generation": cost.forward * sample,
    }
    notes.append("sampled tokens are rollouts: generated by the model being modified, they count toward the "
                 "modification (forward cost per token)")  # fmt: skip
    return upper_end_estimate(cost, Technique.SESSION_OPERATIONS, tokens, parts, notes)


def _count(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value) if math.isfinite(value) and value >= 0 and float(value).is_integer() else None
