"""Every threshold policy row at, just below and just above each boundary; the seed's worked example."""

from __future__ import annotations

import math

import pytest

from flopsmeter.domain.classification import Outcome, check_flops, classify, outcome_for
from flopsmeter.domain.errors import InvalidFlops, UnknownPolicy
from flopsmeter.domain.pretrain import PretrainSource, resolve_pretrain_compute
from flopsmeter.domain.thresholds import (
    AWS_30PCT_2026,
    DEFAULT_PRIMARY_POLICY,
    EU_GUIDELINE_2025_07,
    POLICIES,
    Scenario,
    get_policy,
    threshold_for,
)


def below(x: float) -> float:
    return math.nextafter(x, 0.0)


def above(x: float) -> float:
    return math.nextafter(x, math.inf)


# (policy, pretrain_flops, systemic_base, expected threshold, expected scenario)
ROWS = [
    (AWS_30PCT_2026, None, False, 3.3e22, Scenario.DEFAULT),
    (AWS_30PCT_2026, None, True, 3.3e24, Scenario.SYSTEMIC),
    (AWS_30PCT_2026, below(1e23), False, 3.3e22, Scenario.DEFAULT),
    (AWS_30PCT_2026, 1e23, False, 0.30 * 1e23, Scenario.RELATIVE),
    (AWS_30PCT_2026, above(1e23), False, 0.30 * above(1e23), Scenario.RELATIVE),
    (AWS_30PCT_2026, below(1e25), False, 0.30 * below(1e25), Scenario.RELATIVE),
    (AWS_30PCT_2026, 1e25, False, 3.3e24, Scenario.SYSTEMIC),
    (AWS_30PCT_2026, above(1e25), False, 3.3e24, Scenario.SYSTEMIC),
    (EU_GUIDELINE_2025_07, None, False, 1e23 / 3, Scenario.DEFAULT),
    (EU_GUIDELINE_2025_07, None, True, 1e25 / 3, Scenario.SYSTEMIC),
    (EU_GUIDELINE_2025_07, below(1e23), False, below(1e23) / 3, Scenario.RELATIVE),
    (EU_GUIDELINE_2025_07, 6e22, False, 2e22, Scenario.RELATIVE),
    (EU_GUIDELINE_2025_07, 1e25, False, 1e25 / 3, Scenario.RELATIVE),
    (EU_GUIDELINE_2025_07, 3.8e25, True, 3.8e25 / 3, Scenario.RELATIVE),
]


@pytest.mark.parametrize(("policy", "pretrain", "systemic", "threshold", "scenario"), ROWS)
def test_threshold_row(policy, pretrain, systemic, threshold, scenario) -> None:
    result = threshold_for(policy, pretrain, systemic_risk_base=systemic)
    assert result.scenario is scenario
    assert result.value == pytest.approx(threshold, rel=1e-12)
    assert result.policy_id == policy.policy_id


@pytest.mark.parametrize(("policy", "pretrain", "systemic", "threshold", "scenario"), ROWS)
def test_outcome_at_just_below_and_just_above_each_threshold(policy, pretrain, systemic, threshold, scenario) -> None:
    value = threshold_for(policy, pretrain, systemic_risk_base=systemic).value
    assert outcome_for(value, value) is Outcome.APPROACHING  # equal does not cross
    assert outcome_for(below(value), value) is Outcome.APPROACHING
    assert outcome_for(above(value), value) is Outcome.EXCEEDS
    assert outcome_for(0.8 * value, value) is Outcome.APPROACHING
    assert outcome_for(below(0.8 * value), value) is Outcome.BELOW
    assert outcome_for(0.0, value) is Outcome.BELOW


def test_approaching_fraction_is_configurable() -> None:
    assert outcome_for(0.85e22, 1e22, approaching_fraction=0.9) is Outcome.BELOW
    assert outcome_for(0.9e22, 1e22, approaching_fraction=0.9) is Outcome.APPROACHING
    with pytest.raises(ValueError):
        classify(1.0, None, approaching_fraction=0.0)
    with pytest.raises(ValueError):
        classify(1.0, None, approaching_fraction=1.5)


def test_seed_worked_example_llama_3_70b_threshold_is_4_5e23() -> None:
    # Given the seed's Llama-3-70B with PRETRAIN_FLOPS=1.5e24
    pretrain = resolve_pretrain_compute(environment_value="1.5e24", base_model_id="meta-llama/Meta-Llama-3-70B")
    # When a modification of 4.5e23 and one just above it are classified
    at = classify(4.5e23, pretrain.flops)
    over = classify(above(4.5e23), pretrain.flops)
    # Then the primary (aws-30pct-2026) threshold is 4.5e23, equal does not exceed, just above does
    assert at.primary_policy == DEFAULT_PRIMARY_POLICY == "aws-30pct-2026"
    assert at.primary.threshold == pytest.approx(4.5e23)
    assert at.primary.scenario is Scenario.RELATIVE
    assert at.primary.outcome is Outcome.APPROACHING
    assert over.primary.outcome is Outcome.EXCEEDS
    eu = next(r for r in at.results if r.policy == "eu-guideline-2025-07")
    assert eu.threshold == pytest.approx(5e23)
    assert eu.outcome is Outcome.APPROACHING


def test_catalog_llama_3_70b_uses_the_lowest_estimate() -> None:
    pretrain = resolve_pretrain_compute(base_model_id="llama-3-70b")
    assert pretrain.source is PretrainSource.CATALOG
    assert pretrain.flops == 1.5e24
    assert any("6.35e+24" in w or "7.86e+24" in w for w in pretrain.warnings)


def test_classify_evaluates_every_policy_and_reports_ratio() -> None:
    result = classify(1.65e22, None)
    assert {r.policy for r in result.results} == set(POLICIES)
    assert result.primary.ratio == pytest.approx(0.5)
    assert result.worst is Outcome.BELOW


def test_classify_rejects_invalid_flops() -> None:
    for bad in (-1.0, math.nan, math.inf, "1e22", True):
        with pytest.raises(InvalidFlops):
            classify(bad, None)  # type: ignore[arg-type]
    assert check_flops(0) == 0.0


def test_unknown_policy_names_the_known_ones() -> None:
    with pytest.raises(UnknownPolicy) as err:
        get_policy("nope")
    assert "aws-30pct-2026" in str(err.value)
    with pytest.raises(UnknownPolicy):
        classify(1.0, None, primary_policy="nope")


def test_pretrain_below_1e23_warns_base_may_not_be_gpai() -> None:
    result = classify(1e21, 6e22)
    assert any("below 1e+23" in w for w in result.warnings)
