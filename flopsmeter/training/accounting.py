"""Turning summed counts into FLOPs: the one place where tokens become the breakdown of the counted work.

``flops`` = update + reference + generation + reward_inference (reward-model inference is ambiguous in the
guideline; counting it is the conservative side). Work measured beyond the closed form (``excess``: measured mode)
is counted under update. ``recompute`` (gradient checkpointing, a fused attention kernel's QK^T, TRL's fused LM
head) is recorded and never added.
"""

from __future__ import annotations

from flopsmeter.training.distributed import Reduced
from flopsmeter.training.model import ModelProfile
from flopsmeter.training.passes import GENERATION, RECOMPUTE, REFERENCE, REWARD_INFERENCE, UPDATE_ADJUST
from flopsmeter.training.state import Totals


def attention_positions(reduced: Reduced, profile: ModelProfile) -> int:
    """Attention spans summed over tokens: per document with a variable-length kernel, else the padded row."""
    if profile.varlen_attention and reduced.document_positions:
        return reduced.document_positions
    return reduced.positions


def accumulate(totals: Totals, reduced: Reduced, profile: ModelProfile, *, steps: int, seconds: float) -> Totals:
    """``totals`` plus what ``reduced`` counted, as of ``steps``."""
    positions = attention_positions(reduced, profile)
    recompute = reduced.extra_flops(RECOMPUTE) + profile.update_recompute(reduced.tokens, positions)
    excess = reduced.extra_flops("excess")
    update = profile.training.flops(reduced.tokens, positions) + reduced.extra_flops(UPDATE_ADJUST) + excess
    reference = reduced.extra_flops(REFERENCE)
    generation = reduced.extra_flops(GENERATION)
    reward = reduced.extra_flops(REWARD_INFERENCE)
    return Totals(
        steps=steps,
        micro_steps=totals.micro_steps + reduced.micro_steps,
        tokens=totals.tokens + reduced.tokens,
        non_padding_tokens=totals.non_padding_tokens + reduced.non_padding_tokens,
        token_positions=totals.token_positions + reduced.positions,
        flops=totals.flops + update + reference + generation + reward,
        recompute_flops=totals.recompute_flops + recompute,
        seconds=totals.seconds + seconds,
        update_flops=totals.update_flops + update,
        reference_flops=totals.reference_flops + reference,
        generation_flops=totals.generation_flops + generation,
        reward_inference_flops=totals.reward_inference_flops + reward,
        document_positions=totals.document_positions + reduced.document_positions,
        measured_excess_flops=totals.measured_excess_flops + excess,
    )


def attention_overcount(totals: Totals, profile: ModelProfile) -> float:
    """FLOPs counted for attention across packed documents that a variable-length kernel would not compute."""
    if profile.varlen_attention:
        return 0.0
    return profile.training.per_position * max(0, totals.token_positions - totals.document_positions)
