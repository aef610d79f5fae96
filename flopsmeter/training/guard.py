"""The compute guard: stop a run before it crosses the primary policy's threshold (or its approaching level).

Pure functions over floats; the meter calls ``plan`` at every synchronisation point with global totals, so
every rank reaches the same decision. The projection uses an upper bound of one optimizer step's FLOPs, and
the next synchronisation is pulled in so that the run never takes a step that could cross the limit.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from flopsmeter.domain.numbers import parse_flops
from flopsmeter.domain.pretrain import PretrainCompute, resolve_pretrain_compute
from flopsmeter.domain.thresholds import DEFAULT_APPROACHING_FRACTION, Threshold, get_policy, threshold_for
from flopsmeter.training.environment import JobEnvironment
from flopsmeter.training.options import STOP_AT_VALUES, MeterOptions

StopAt = Literal["approaching", "threshold"]


@dataclass(frozen=True)
class Budget:
    """How many FLOPs this job may still spend, and why."""

    stop_at: str
    policy_id: str
    scenario: str
    threshold: float
    limit: float  # threshold, or approaching_fraction x threshold
    prior_flops: float  # spent on the same base model by earlier fine-tunes (lineage), counted against the limit
    basis: str
    pretrain: PretrainCompute
    warnings: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, object]:
        return {
            "stop_at": self.stop_at,
            "policy": self.policy_id,
            "scenario": self.scenario,
            "threshold": self.threshold,
            "limit": self.limit,
            "prior_flops": self.prior_flops,
            "basis": self.basis,
            "warnings": list(self.warnings),
        }


def pretrain_compute(
    *, argument: str | float | None, environment: str | None, base_model: str | None, systemic_risk_base: bool
) -> PretrainCompute:
    return resolve_pretrain_compute(
        argument_value=argument,
        environment_value=environment,
        base_model_id=base_model,
        systemic_risk_base=systemic_risk_base,
    )


def resolve_budget(
    stop_at: str,
    *,
    policy_id: str,
    pretrain: PretrainCompute,
    approaching_fraction: float = DEFAULT_APPROACHING_FRACTION,
    prior_flops: str | float | None = None,
) -> Budget:
    if stop_at not in STOP_AT_VALUES:
        raise ValueError(f"stop_at must be one of {STOP_AT_VALUES} or None, got {stop_at!r}")
    if not 0 < approaching_fraction <= 1:
        raise ValueError(f"approaching fraction must be in (0, 1], got {approaching_fraction!r}")
    threshold = threshold_for(get_policy(policy_id), pretrain.flops, systemic_risk_base=pretrain.systemic_risk)
    warnings = list(pretrain.warnings)
    prior = 0.0
    if prior_flops is not None:
        parsed = parse_flops(prior_flops, field="prior FLOPs")
        if parsed.value is not None:
            prior = parsed.value
        elif not _is_zero(prior_flops):
            # an unusable prior count must not make the guard less careful: stop at once rather than guess
            warnings.append(f"{parsed.warning}; the guard treats the budget as spent")
            prior = math.inf
    limit = threshold.value * (approaching_fraction if stop_at == "approaching" else 1.0)
    basis = f"{stop_at}: {limit:.3e} FLOPs ({threshold.basis}; policy {threshold.policy_id})"
    return Budget(
        stop_at,
        threshold.policy_id,
        str(threshold.scenario),
        threshold.value,
        limit,
        prior,
        basis,
        pretrain,
        tuple(warnings),
    )


def _is_zero(raw: str | float) -> bool:
    try:
        return float(str(raw).strip()) == 0.0
    except ValueError:
        return False


@dataclass(frozen=True)
class GuardPlan:
    stop: bool
    steps_allowed: int | None  # how many more steps fit under the limit (None: no guard)
    reason: str | None = None


def plan(cumulative_flops: float, max_step_flops: float, budget: Budget | None) -> GuardPlan:
    """Stop now if one more step could exceed the limit; otherwise say how many steps still fit.

    The limit is compared with "more than" (a total equal to the limit does not cross it).
    """
    if budget is None:
        return GuardPlan(False, None)
    spent = budget.prior_flops + cumulative_flops
    headroom = budget.limit - spent
    step = max(max_step_flops, 0.0)
    if math.isinf(spent) or spent + step > budget.limit:
        reason = (
            f"stopped before the {budget.stop_at} limit: {spent:.3e} FLOPs spent, next step up to {step:.3e}, "
            f"limit {budget.limit:.3e} ({budget.basis})"
        )
        return GuardPlan(True, 0, reason)
    allowed = math.floor(headroom / step) if step > 0 else 1_000_000_000
    return GuardPlan(False, max(1, allowed))


@dataclass(frozen=True)
class Limits:
    """What the job is measured against: the base model's pretraining compute, the primary policy's threshold,
    the guard's budget (None without ``stop_at``) and FLOPs already spent on the same base."""

    pretrain: PretrainCompute
    threshold: Threshold
    budget: Budget | None
    prior_flops: float

    def __iter__(self) -> Iterator[Any]:
        return iter((self.pretrain, self.threshold, self.budget, self.prior_flops))


def resolve_limits(options: MeterOptions, env: JobEnvironment) -> Limits:
    """From the options first, then the job's environment (``PRETRAIN_FLOPS``, ``FLOPSMETER_*``)."""
    pretrain = pretrain_compute(
        argument=options.pretrain_flops,
        environment=env.pretrain_flops,
        base_model=options.base_model or env.base_model,
        systemic_risk_base=env.systemic_risk_base,
    )
    threshold = threshold_for(get_policy(options.policy), pretrain.flops, systemic_risk_base=pretrain.systemic_risk)
    prior = options.prior_flops if options.prior_flops is not None else env.prior_flops
    budget = None
    if options.stop_at is not None:
        budget = resolve_budget(options.stop_at, policy_id=options.policy, pretrain=pretrain,
                                approaching_fraction=options.approaching_fraction, prior_flops=prior)  # fmt: skip
    if budget is not None:
        return Limits(pretrain, threshold, budget, budget.prior_flops)
    parsed = parse_flops(prior, field="prior FLOPs")  # the guard itself is stricter: see resolve_budget
    return Limits(pretrain, threshold, None, parsed.value or 0.0)
