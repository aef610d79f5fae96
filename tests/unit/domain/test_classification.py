"""Outcomes at each boundary, every policy evaluated, JSON shape, monotonicity."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flopsmeter.audit.record import PolicyClassification
from flopsmeter.domain.classification import Outcome, classify, outcome_for
from flopsmeter.domain.errors import InvalidFlops, UnknownPolicy
from flopsmeter.domain.numbers import exact
from flopsmeter.domain.thresholds import AWS_30PCT_2026, EU_GUIDELINE_2025_07, POLICIES, threshold_for


def just_below(limit: Fraction) -> float:
    """The largest float that reads (prints) as a number below ``limit``."""
    value = float(limit)
    while exact(value) >= limit:
        value = math.nextafter(value, 0.0)
    return value


def just_above(limit: Fraction) -> float:
    """The smallest float that reads as a number above ``limit``."""
    value = float(limit)
    while exact(value) <= limit:
        value = math.nextafter(value, math.inf)
    return value


# every policy x every row of its table (unknown, below 1e23, at 1e23, relative, at 1e25, above; systemic or not)
CASES = [
    (policy, pretrain, systemic)
    for policy in POLICIES.values()
    for pretrain in (None, 6e22, 1e23, 1.5e24, 1e25, 3.8e25)
    for systemic in (False, True)
]


@pytest.mark.parametrize(("policy", "pretrain", "systemic"), CASES)
def test_outcome_just_below_at_and_just_above_each_threshold(policy, pretrain, systemic) -> None:
    limit = threshold_for(policy, pretrain, systemic_risk_base=systemic).exact
    assert outcome_for(just_below(limit), limit) is Outcome.APPROACHING
    assert outcome_for(limit, limit) is Outcome.APPROACHING  # equal does not cross
    assert outcome_for(just_above(limit), limit) is Outcome.EXCEEDS
    start = Fraction(4, 5) * limit  # "approaching" from 80 %, inclusive
    assert outcome_for(start, limit) is Outcome.APPROACHING
    assert outcome_for(just_below(start), limit) is Outcome.BELOW
    assert outcome_for(0.0, limit) is Outcome.BELOW


# (policy, pretrain, FLOPs exactly at the threshold as a record would carry them, the next float up)
AT_THE_LINE = [
    (AWS_30PCT_2026, None, 3.3e22),
    (AWS_30PCT_2026, 1e23, 3e22),  # 0.3 x 1e23: a float product would make 3e22 "exceed"
    (AWS_30PCT_2026, 1.5e24, 4.5e23),
    (AWS_30PCT_2026, 1e25, 3.3e24),
    (EU_GUIDELINE_2025_07, 6e22, 2e22),
    (EU_GUIDELINE_2025_07, 1.5e24, 5e23),
]


@pytest.mark.parametrize(("policy", "pretrain", "flops"), AT_THE_LINE)
def test_a_record_at_the_threshold_does_not_exceed_and_the_next_float_does(policy, pretrain, flops) -> None:
    result = classify(flops, pretrain, policies=[policy], primary_policy=policy.policy_id)
    assert result.primary.outcome is Outcome.APPROACHING
    assert result.primary.threshold == flops
    over = classify(math.nextafter(flops, math.inf), pretrain, policies=[policy], primary_policy=policy.policy_id)
    assert over.primary.outcome is Outcome.EXCEEDS


def test_one_third_thresholds_have_no_float_equal_and_compare_exactly() -> None:
    limit = threshold_for(EU_GUIDELINE_2025_07, None).exact  # 1e23 / 3, not a decimal
    nearest = float(limit)
    assert exact(nearest) != limit
    assert outcome_for(nearest, limit) is (Outcome.EXCEEDS if exact(nearest) > limit else Outcome.APPROACHING)
    assert outcome_for(3.3333333333333333e22, limit) is Outcome.APPROACHING
    assert outcome_for(3.3333333333333337e22, limit) is Outcome.EXCEEDS


def test_approaching_fraction_is_configurable() -> None:
    assert outcome_for(0.85e22, 1e22, approaching_fraction=0.9) is Outcome.BELOW
    assert outcome_for(0.9e22, 1e22, approaching_fraction=0.9) is Outcome.APPROACHING
    with pytest.raises(ValueError):
        classify(1.0, None, approaching_fraction=0.0)
    with pytest.raises(ValueError):
        classify(1.0, None, approaching_fraction=1.5)


def test_classify_evaluates_every_policy_and_reports_ratio() -> None:
    result = classify(1.65e22, None)
    assert {r.policy for r in result.results} == set(POLICIES)
    assert result.primary.ratio == pytest.approx(0.5)
    assert result.worst is Outcome.BELOW


def test_classify_rejects_invalid_flops() -> None:
    for bad in (-1.0, math.nan, math.inf, "1e22", True):
        with pytest.raises(InvalidFlops):
            classify(bad, None)  # type: ignore[arg-type]
    assert classify(0, None).primary.outcome is Outcome.BELOW


def test_unknown_primary_policy_is_an_error() -> None:
    with pytest.raises(UnknownPolicy):
        classify(1.0, None, primary_policy="nope")


def test_pretrain_below_1e23_warns_base_may_not_be_gpai() -> None:
    result = classify(1e21, 6e22)
    assert any("below 1e+23" in w for w in result.warnings)


def test_policy_result_as_dict_is_plain_json_and_round_trips_into_the_record_model():
    result = classify(5e23, 1.5e24)
    rows = [r.as_dict() for r in result.results]
    assert rows[0] == {
        "policy": "aws-30pct-2026",
        "scenario": "relative",
        "threshold": 4.5e23,
        "ratio": 5e23 / 4.5e23,
        "outcome": "exceeds",
        "basis": result.results[0].basis,
    }
    assert all(type(v) in (str, float) for row in rows for v in row.values())
    assert [PolicyClassification.from_result(r).model_dump() for r in result.results] == rows


flops_values = st.floats(min_value=0, max_value=1e27, allow_nan=False, allow_infinity=False)


pretrains = st.one_of(st.none(), st.floats(min_value=1e20, max_value=1e27))


@settings(max_examples=200, deadline=None)
@given(flops_values, flops_values, pretrains, st.booleans())
def test_classification_is_monotone_in_flops(a: float, b: float, pretrain: float | None, systemic: bool) -> None:
    low, high = sorted((a, b))
    lower = classify(low, pretrain, systemic_risk_base=systemic)
    higher = classify(high, pretrain, systemic_risk_base=systemic)
    for lo, hi in zip(lower.results, higher.results, strict=True):
        assert lo.threshold == hi.threshold
        assert lo.outcome.severity <= hi.outcome.severity
