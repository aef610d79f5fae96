"""Turning summed counts into FLOPs: the one place where tokens become training and recompute FLOPs."""

from __future__ import annotations

from flopsmeter.training.distributed import Reduced
from flopsmeter.training.model import ModelProfile
from flopsmeter.training.state import Totals


def accumulate(totals: Totals, reduced: Reduced, profile: ModelProfile, *, scale: float, steps: int,
               seconds: float) -> Totals:  # fmt: skip
    """``totals`` plus what ``reduced`` counted (``scale``: the calibration factor, never below 1), as of ``steps``."""
    recompute = profile.recompute.flops(reduced.tokens, reduced.positions) if profile.gradient_checkpointing else 0.0
    return Totals(
        steps=steps,
        micro_steps=totals.micro_steps + reduced.micro_steps,
        tokens=totals.tokens + reduced.tokens,
        non_padding_tokens=totals.non_padding_tokens + reduced.non_padding_tokens,
        token_positions=totals.token_positions + reduced.positions,
        flops=totals.flops + profile.training.flops(reduced.tokens, reduced.positions) * scale,
        recompute_flops=totals.recompute_flops + recompute,
        seconds=totals.seconds + seconds,
    )
