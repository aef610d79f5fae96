"""The compute guard: stop before one more step could cross the limit, never on a total equal to it."""

from __future__ import annotations

import math

import pytest

from flopsmeter.domain.pretrain import resolve_pretrain_compute
from flopsmeter.training.guard import plan, resolve_budget

EU = "eu-guideline-2025-07"


def _budget(
    stop_at: str = "threshold", pretrain: float = 3e12, prior: str | float | None = None, fraction: float = 0.8
):
    pc = resolve_pretrain_compute(argument_value=pretrain)
    return resolve_budget(stop_at, policy_id=EU, pretrain=pc, approaching_fraction=fraction, prior_flops=prior)


def test_budget_threshold_is_a_third_of_known_pretrain_under_the_eu_policy() -> None:
    budget = _budget(pretrain=3e12)
    assert budget.threshold == pytest.approx(1e12)
    assert budget.limit == pytest.approx(1e12)
    assert budget.scenario == "relative"


def test_budget_approaching_limit_is_the_fraction_of_the_threshold() -> None:
    assert _budget("approaching", fraction=0.5).limit == pytest.approx(0.5e12)


def test_budget_unknown_pretrain_uses_the_conservative_default_threshold() -> None:
    pc = resolve_pretrain_compute(environment_value="not-a-number")
    budget = resolve_budget("threshold", policy_id="aws-30pct-2026", pretrain=pc)
    assert budget.threshold == 3.3e22
    assert any("not a number" in w for w in budget.warnings)


def test_budget_rejects_an_unknown_stop_at() -> None:
    with pytest.raises(ValueError, match="stop_at"):
        _budget("later")


def test_plan_stops_when_one_more_step_could_cross() -> None:
    budget = _budget()  # limit 1e12
    assert plan(0.95e12, 0.1e12, budget).stop
    result = plan(0.9e12, 0.1e12, budget)  # 0.9 + 0.1 == limit: equal does not cross
    assert not result.stop and result.steps_allowed == 1


def test_plan_allows_the_steps_that_fit_under_the_limit() -> None:
    result = plan(0.0, 0.3e12, _budget())
    assert not result.stop and result.steps_allowed == 3


def test_plan_stop_reason_names_spent_step_and_limit() -> None:
    result = plan(0.95e12, 0.1e12, _budget())
    assert result.reason and "9.500e+11" in result.reason and "1.000e+12" in result.reason


def test_plan_counts_prior_fine_tunes_against_the_limit() -> None:
    assert plan(0.1e12, 0.1e12, _budget(prior=0.85e12)).stop
    assert not plan(0.1e12, 0.1e12, _budget(prior=0.0)).stop


def test_unparseable_prior_flops_makes_the_guard_stop_rather_than_guess() -> None:
    budget = _budget(prior="lots")
    assert math.isinf(budget.prior_flops)
    assert plan(0.0, 1.0, budget).stop


def test_no_budget_never_stops() -> None:
    result = plan(1e30, 1e30, None)
    assert not result.stop and result.steps_allowed is None
