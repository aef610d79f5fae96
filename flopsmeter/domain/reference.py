"""Reference formulas the meter's figure is compared with (never used to classify).

* 6·N·D: the Commission guideline's Annex A.2.2 approximation for dense transformers ("C ≈ 6·P·D").
* The AWS sample meter's ``(4·N_total + 2·N_trainable)·D`` (aws-samples/amazon-sagemaker-generativeai,
  ``sagemaker_code/utils/flops_meter.py``).
"""

from __future__ import annotations

from flopsmeter.domain.errors import InvalidModelSpec
from flopsmeter.domain.numbers import check_non_negative


def _count(value: float, what: str) -> float:
    return check_non_negative(value, what, InvalidModelSpec)


def six_nd_flops(params: float, tokens: float) -> float:
    """The plain 6 x N x D approximation (no attention term, every parameter trained)."""
    return 6.0 * _count(params, "params") * _count(tokens, "tokens")


def aws_sample_flops(total_params: float, trainable_params: float, tokens: float) -> float:
    """The AWS sample meter's (4 x N_total + 2 x N_trainable) x D, for comparison."""
    total = _count(total_params, "total_params")
    trainable = _count(trainable_params, "trainable_params")
    return (4.0 * total + 2.0 * trainable) * _count(tokens, "tokens")
