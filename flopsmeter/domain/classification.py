"""Classification of a job's FLOPs against every threshold policy."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from flopsmeter.domain.numbers import ExactNumber, check_non_negative, exact
from flopsmeter.domain.thresholds import (
    DEFAULT_APPROACHING_FRACTION,
    DEFAULT_PRIMARY_POLICY,
    GPAI_PRESUMPTION_TRAINING_FLOPS,
    POLICIES,
    Scenario,
    Threshold,
    ThresholdPolicy,
    get_policy,
    threshold_for,
)


class Outcome(StrEnum):
    BELOW = "below"
    APPROACHING = "approaching"  # at or above the approaching fraction of the threshold, not above it
    EXCEEDS = "exceeds"  # strictly greater than the threshold

    @property
    def severity(self) -> int:
        return _SEVERITY[self]


_SEVERITY = {Outcome.BELOW: 0, Outcome.APPROACHING: 1, Outcome.EXCEEDS: 2}


@dataclass(frozen=True)
class PolicyResult:
    policy: str
    scenario: Scenario
    threshold: float
    ratio: float
    outcome: Outcome
    basis: str

    def as_dict(self) -> dict[str, str | float]:
        """JSON-ready: ``policy``, ``scenario``, ``threshold``, ``ratio``, ``outcome``, ``basis``."""
        return {
            "policy": self.policy,
            "scenario": self.scenario.value,
            "threshold": self.threshold,
            "ratio": self.ratio,
            "outcome": self.outcome.value,
            "basis": self.basis,
        }


@dataclass(frozen=True)
class Classification:
    primary_policy: str
    results: tuple[PolicyResult, ...]
    warnings: tuple[str, ...] = field(default=())

    @property
    def primary(self) -> PolicyResult:
        return next(r for r in self.results if r.policy == self.primary_policy)

    @property
    def worst(self) -> Outcome:
        return max((r.outcome for r in self.results), key=lambda o: o.severity)


def outcome_for(
    flops: ExactNumber, threshold: ExactNumber, approaching_fraction: ExactNumber = DEFAULT_APPROACHING_FRACTION
) -> Outcome:
    """``exceeds`` only when strictly greater than the threshold (equal does not cross).

    Compared exactly (``numbers.exact``: a float counts as the decimal it prints as), so the outcome at a
    boundary does not depend on binary rounding: 3e22 FLOPs against 0.3 x 1e23 is ``approaching``, not
    ``exceeds``; ``math.nextafter(3e22, inf)`` exceeds.
    """
    value, limit = exact(flops), exact(threshold)
    if value > limit:
        return Outcome.EXCEEDS
    if value >= exact(approaching_fraction) * limit:
        return Outcome.APPROACHING
    return Outcome.BELOW


def classify_against(flops: float, threshold: Threshold, approaching_fraction: float) -> PolicyResult:
    return PolicyResult(
        policy=threshold.policy_id,
        scenario=threshold.scenario,
        threshold=threshold.value,
        ratio=float(exact(flops) / threshold.exact),
        outcome=outcome_for(flops, threshold.exact, approaching_fraction),
        basis=threshold.basis,
    )


def classify(
    flops: float,
    pretrain_flops: float | None,
    *,
    systemic_risk_base: bool = False,
    primary_policy: str = DEFAULT_PRIMARY_POLICY,
    policies: Iterable[ThresholdPolicy] | None = None,
    approaching_fraction: float = DEFAULT_APPROACHING_FRACTION,
    warnings: Iterable[str] = (),
) -> Classification:
    """Classify a modification's FLOPs under every policy; ``primary_policy`` names the one that decides."""
    value = check_non_negative(flops, "modification FLOPs")
    if not 0 < approaching_fraction <= 1:
        raise ValueError(f"approaching fraction must be in (0, 1], got {approaching_fraction!r}")
    chosen = tuple(policies) if policies is not None else tuple(POLICIES.values())
    primary = get_policy(primary_policy)
    if primary not in chosen:
        chosen = (primary, *chosen)
    notes = list(warnings)
    if pretrain_flops is not None and exact(pretrain_flops) < GPAI_PRESUMPTION_TRAINING_FLOPS:
        notes.append(
            f"base model pretraining compute {pretrain_flops:.2e} is below 1e+23: the base may not be a GPAI model "
            "(guideline para. 17); the one-third test may not apply as such - refer to legal review"
        )
    results = tuple(
        classify_against(
            value, threshold_for(p, pretrain_flops, systemic_risk_base=systemic_risk_base), approaching_fraction
        )
        for p in chosen
    )
    return Classification(primary_policy=primary.policy_id, results=results, warnings=tuple(notes))
