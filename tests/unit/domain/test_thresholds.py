"""Every threshold policy row, and the policy registry."""

from __future__ import annotations

import math

import pytest

from flopsmeter.domain.errors import UnknownPolicy
from flopsmeter.domain.thresholds import (
    AWS_30PCT_2026,
    EU_GUIDELINE_2025_07,
    Scenario,
    get_policy,
    threshold_for,
)


def below(x: float) -> float:
    return math.nextafter(x, 0.0)


def above(x: float) -> float:
    return math.nextafter(x, math.inf)


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


def test_unknown_policy_names_the_known_ones() -> None:
    with pytest.raises(UnknownPolicy) as err:
        get_policy("nope")
    assert "aws-30pct-2026" in str(err.value)
