"""Threshold policies: which compute threshold applies to a modification, kept as versioned data.

Two readings are built in. ``aws-30pct-2026`` is the scenario table of the AWS FLOPs Meter guidance
(our users' default); ``eu-guideline-2025-07`` is the Commission guideline text (C(2025) 5045,
paragraphs 60-61: "more than a third"). Every record is evaluated under every policy so that it stays
interpretable when a delegated act (AI Act Art. 51(3)) moves the constants: add a new ``ThresholdPolicy``
value, never edit one that records already cite.

Thresholds are computed exactly (``fractions.Fraction``): in binary floating point 0.3 x 1e23 is
2.9999999999999996e22, and a modification of exactly 3e22 FLOPs would then "exceed" a threshold it only
equals. ``Threshold.exact`` is the threshold; ``Threshold.value`` is its float for records and ratios.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction

from flopsmeter.domain.errors import UnknownPolicy
from flopsmeter.domain.numbers import ExactNumber, exact

GPAI_PRESUMPTION_TRAINING_FLOPS = 10**23  # Commission guideline para. 17: indicative GPAI criterion
SYSTEMIC_RISK_TRAINING_FLOPS = 10**25  # AI Act Art. 51(2); high-impact capabilities presumed above this
DEFAULT_APPROACHING_FRACTION = 0.8  # "approaching" from 80 % of the threshold (configurable per call)


class Scenario(StrEnum):
    """Which row of a policy's table gave the threshold."""

    DEFAULT = "default"  # base model's compute unknown (or, for the AWS reading, known but < 1e23)
    RELATIVE = "relative"  # a fraction of the known pretraining compute
    SYSTEMIC = "systemic"  # systemic-risk base model (known >= 1e25, or declared with unknown compute)


@dataclass(frozen=True)
class ThresholdPolicy:
    """One reading of the rules, as data. Thresholds are in FLOPs; crossing means strictly greater.

    Numbers may be given as ``Fraction``, ``int`` or ``float``; a float is read as the decimal it prints as
    (``numbers.exact``), so a policy file's ``0.3`` is exactly three tenths.
    """

    policy_id: str
    title: str
    source: str
    relative_fraction: ExactNumber  # threshold = fraction x known pretraining compute
    unknown_threshold: ExactNumber  # base model compute unknown (non-systemic base)
    systemic_unknown_threshold: ExactNumber  # base model declared systemic-risk, compute unknown
    relative_floor_pretrain: ExactNumber | None = None  # known compute below this -> unknown_threshold
    systemic_known_pretrain: ExactNumber | None = None  # known compute at/above this -> systemic_unknown_threshold


AWS_30PCT_2026 = ThresholdPolicy(
    policy_id="aws-30pct-2026",
    title="AWS FLOPs Meter guidance: 30 % of known pretraining compute, 3.3e22 default, 3.3e24 systemic",
    source="AWS ML blog 'Navigating EU AI Act requirements for LLM fine-tuning on Amazon SageMaker AI' (2026)",
    relative_fraction=Fraction(3, 10),
    unknown_threshold=33 * 10**21,
    systemic_unknown_threshold=33 * 10**23,
    relative_floor_pretrain=GPAI_PRESUMPTION_TRAINING_FLOPS,
    systemic_known_pretrain=SYSTEMIC_RISK_TRAINING_FLOPS,
)

EU_GUIDELINE_2025_07 = ThresholdPolicy(
    policy_id="eu-guideline-2025-07",
    title="Commission GPAI guideline: more than one third of the original model's training compute",
    source="Commission guidelines on the scope of obligations for GPAI providers, C(2025) 5045, paras 60-61",
    relative_fraction=Fraction(1, 3),
    unknown_threshold=Fraction(GPAI_PRESUMPTION_TRAINING_FLOPS, 3),
    systemic_unknown_threshold=Fraction(SYSTEMIC_RISK_TRAINING_FLOPS, 3),
)

POLICIES: dict[str, ThresholdPolicy] = {p.policy_id: p for p in (AWS_30PCT_2026, EU_GUIDELINE_2025_07)}
DEFAULT_PRIMARY_POLICY = AWS_30PCT_2026.policy_id


def get_policy(policy_id: str) -> ThresholdPolicy:
    """Look a policy up by id; an unknown id is an error that names the known ones."""
    try:
        return POLICIES[policy_id]
    except KeyError:
        known = ", ".join(sorted(POLICIES))
        raise UnknownPolicy(f"unknown policy {policy_id!r}; known policies: {known}") from None


@dataclass(frozen=True)
class Threshold:
    """The threshold a policy gives for one base model, and why. ``exact`` decides; ``value`` is for records."""

    policy_id: str
    exact: Fraction
    scenario: Scenario
    basis: str

    @property
    def value(self) -> float:
        return float(self.exact)


def threshold_for(
    policy: ThresholdPolicy, pretrain_flops: ExactNumber | None, *, systemic_risk_base: bool = False
) -> Threshold:
    """The compute threshold for a modification of a base model with the given pretraining compute.

    ``pretrain_flops`` is None when unknown; callers parse raw input with ``numbers.parse_flops`` first,
    which turns anything that is not a finite positive number into None (the conservative branch).
    """
    pid = policy.policy_id
    if pretrain_flops is None:
        if systemic_risk_base:
            return Threshold(
                pid,
                exact(policy.systemic_unknown_threshold),
                Scenario.SYSTEMIC,
                "base model declared systemic-risk, pretraining compute unknown",
            )
        return Threshold(
            pid, exact(policy.unknown_threshold), Scenario.DEFAULT, "base model pretraining compute unknown"
        )
    pretrain = exact(pretrain_flops)
    if policy.systemic_known_pretrain is not None and pretrain >= exact(policy.systemic_known_pretrain):
        return Threshold(
            pid,
            exact(policy.systemic_unknown_threshold),
            Scenario.SYSTEMIC,
            f"known pretraining compute {float(pretrain):.2e} >= {float(policy.systemic_known_pretrain):.0e}",
        )
    if policy.relative_floor_pretrain is not None and pretrain < exact(policy.relative_floor_pretrain):
        return Threshold(
            pid,
            exact(policy.unknown_threshold),
            Scenario.DEFAULT,
            f"known pretraining compute {float(pretrain):.2e} < {float(policy.relative_floor_pretrain):.0e}",
        )
    fraction = exact(policy.relative_fraction)
    return Threshold(
        pid,
        fraction * pretrain,
        Scenario.RELATIVE,
        f"{_fraction_text(fraction)} x known pretraining compute {float(pretrain):.2e}",
    )


def _fraction_text(fraction: Fraction) -> str:
    """``1/3`` or ``0.3``: the fraction as a person writes it (exact, never 0.3333)."""
    decimal = float(fraction)
    return f"{decimal:g}" if exact(decimal) == fraction else f"{fraction.numerator}/{fraction.denominator}"
