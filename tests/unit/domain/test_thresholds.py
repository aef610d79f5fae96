"""Every threshold policy row, computed exactly, and the policy registry."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest

from flopsmeter.domain.errors import UnknownPolicy
from flopsmeter.domain.numbers import exact
from flopsmeter.domain.thresholds import (
    AWS_30PCT_2026,
    EU_GUIDELINE_2025_07,
    Scenario,
    ThresholdPolicy,
    get_policy,
    threshold_for,
)


def below(x: float) -> float:
    return math.nextafter(x, 0.0)


def above(x: float) -> float:
    return math.nextafter(x, math.inf)


E22, E23, E25 = 10**22, 10**23, 10**25

# (policy, pretrain_flops, systemic_base, exact threshold, scenario): each row of each policy's table, and the
# pretraining-compute boundaries (1e23, 1e25) just below, at and just above.
ROWS = [
    (AWS_30PCT_2026, None, False, 33 * 10**21, Scenario.DEFAULT),
    (AWS_30PCT_2026, None, True, 33 * 10**23, Scenario.SYSTEMIC),
    (AWS_30PCT_2026, below(1e23), False, 33 * 10**21, Scenario.DEFAULT),
    (AWS_30PCT_2026, 1e23, False, 3 * E22, Scenario.RELATIVE),  # exactly 3e22, not 2.9999999999999996e22
    (AWS_30PCT_2026, above(1e23), False, Fraction(3, 10) * exact(above(1e23)), Scenario.RELATIVE),
    (AWS_30PCT_2026, 1.5e24, False, 45 * 10**22, Scenario.RELATIVE),  # the seed's worked example: 4.5e23
    (AWS_30PCT_2026, below(1e25), False, Fraction(3, 10) * exact(below(1e25)), Scenario.RELATIVE),
    (AWS_30PCT_2026, 1e25, False, 33 * 10**23, Scenario.SYSTEMIC),
    (AWS_30PCT_2026, above(1e25), False, 33 * 10**23, Scenario.SYSTEMIC),
    (EU_GUIDELINE_2025_07, None, False, Fraction(E23, 3), Scenario.DEFAULT),
    (EU_GUIDELINE_2025_07, None, True, Fraction(E25, 3), Scenario.SYSTEMIC),
    (EU_GUIDELINE_2025_07, below(1e23), False, exact(below(1e23)) / 3, Scenario.RELATIVE),
    (EU_GUIDELINE_2025_07, 6e22, False, 2 * E22, Scenario.RELATIVE),
    (EU_GUIDELINE_2025_07, 1.5e24, False, 5 * 10**23, Scenario.RELATIVE),
    (EU_GUIDELINE_2025_07, 1e25, False, Fraction(E25, 3), Scenario.RELATIVE),
    (EU_GUIDELINE_2025_07, 3.8e25, True, Fraction(38 * 10**24, 3), Scenario.RELATIVE),
]


@pytest.mark.parametrize(("policy", "pretrain", "systemic", "threshold", "scenario"), ROWS)
def test_threshold_row_is_exact(policy, pretrain, systemic, threshold, scenario) -> None:
    result = threshold_for(policy, pretrain, systemic_risk_base=systemic)
    assert result.scenario is scenario
    assert result.exact == threshold  # exact equality, no tolerance
    assert result.value == float(threshold)
    assert result.policy_id == policy.policy_id


def test_binary_floating_point_would_get_the_threshold_wrong() -> None:
    # Why exact arithmetic: in floats 0.3 x 1e23 is below 3e22, so 3e22 FLOPs would "exceed" it
    assert 0.3 * 1e23 < 3e22
    assert threshold_for(AWS_30PCT_2026, 1e23).exact == 3 * E22


def test_policy_from_floats_reads_each_float_as_the_decimal_it_prints_as() -> None:
    # Given a policy as a JSON file would give it (floats)
    policy = ThresholdPolicy("p", "t", "s", relative_fraction=0.3, unknown_threshold=3.3e22,
                             systemic_unknown_threshold=3.3e24)  # fmt: skip
    # Then 0.3 is exactly three tenths and the unknown-compute threshold exactly 3.3e22
    assert threshold_for(policy, 1e23).exact == 3 * E22
    assert threshold_for(policy, None).exact == 33 * 10**21


def test_basis_writes_the_fraction_as_a_person_does() -> None:
    assert threshold_for(EU_GUIDELINE_2025_07, 1.5e24).basis.startswith("1/3 x known pretraining compute 1.50e+24")
    assert threshold_for(AWS_30PCT_2026, 1.5e24).basis.startswith("0.3 x known pretraining compute")


def test_unknown_policy_names_the_known_ones() -> None:
    with pytest.raises(UnknownPolicy) as err:
        get_policy("nope")
    assert "aws-30pct-2026" in str(err.value)
