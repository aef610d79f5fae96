"""What the law asks once a lineage crosses a threshold, and from when (regulation.md, Q3).

A downstream modifier whose modification compute is more than the threshold becomes the provider of the modified
model (Commission guideline C(2025) 5045, paras 59-60; AI Act recital 109). Its obligations are Art. 53's, scoped
to the modification (guideline para. 65): technical documentation (Art. 53(1)(a), Annex XI), information for
downstream providers (Art. 53(1)(b), Annex XII), a copyright policy and a training-content summary limited to the
data used in the modification (Art. 53(1)(c), (d)); Art. 54 (an EU authorised representative) when the provider is
established outside the EU (para. 66). They attach when the modified model is placed on the market (guideline
section 3.1.2; Art. 3(63) excludes research, development and prototyping before that).

When the original is a general-purpose AI model with systemic risk, the modified model is presumed to have
high-impact capabilities (para. 67): the modifier notifies the Commission "without delay and in any event within
two weeks after that requirement is met or it becomes known that it will be met" (Art. 52(1)), with the compute in
FLOP to two significant figures and the method (para. 31), and Art. 55 applies. The notification can fall due
before training ends (para. 30): for a running job the clock starts the moment its metered FLOPs cross.

Above 1e25 FLOP of cumulative compute the modified model is itself presumed to have high-impact capabilities
(Art. 51(2)), whatever is known about the base: the notification clock and Art. 55 apply as triggered.

All moments are timezone-aware and kept in UTC; the due date is read as EU law reads periods (Reg. 1182/71, Brussels
time: ``deadlines``). Where a moment cannot be bounded the earliest possible one is used and the basis says so.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from flopsmeter.domain.classification import Outcome, PolicyResult
from flopsmeter.domain.deadlines import LEGAL_BASIS, notification_due
from flopsmeter.domain.numbers import exact
from flopsmeter.domain.thresholds import GPAI_PRESUMPTION_TRAINING_FLOPS, SYSTEMIC_RISK_TRAINING_FLOPS
from flopsmeter.domain.times import to_utc

NOTIFICATION_PERIOD = timedelta(days=14)  # AI Act Art. 52(1): "in any event within two weeks" (see deadlines)
ON_PLACING = "when the modified model is placed on the market (guideline section 3.1.2; Art. 3(63))"


class ObligationStatus(StrEnum):
    TRIGGERED = "triggered"
    REVIEW = "review"  # listed conservatively; whether it applies is an open legal question (refer to counsel)


@dataclass(frozen=True)
class Obligation:
    obligation_id: str
    article: str
    summary: str
    applies: str  # from when, in words
    status: ObligationStatus = ObligationStatus.TRIGGERED
    due_at: datetime | None = None


@dataclass(frozen=True)
class Crossing:
    """When the lineage's compute went over the (lowest exceeded) threshold, and how that moment was found."""

    at: datetime
    basis: str
    crossed_in_job: str
    threshold: float
    policies: tuple[str, ...]


@dataclass(frozen=True)
class JobTimeline:
    """What is known about one job's compute over time, to place the crossing moment."""

    job_name: str
    start: datetime
    end: datetime
    parent_cumulative_flops: float
    own_flops: float
    metered_crossed_at: datetime | None = None  # the meter's own report of the crossing (first datapoint)
    rate_bound_flops_per_s: float | None = None  # the hardware's peak: no job can go faster
    ancestor_job: str | None = None  # nearest ancestor, when the crossing happened before this job
    ancestor_crossed_at: datetime | None = None  # from that ancestor's record, when it states one
    ancestor_crossed_threshold: float | None = None  # the threshold that record's moment is for (None: unknown)
    ancestor_earliest_at: datetime | None = None  # the earliest moment the ancestors' compute could have begun


@dataclass(frozen=True)
class ObligationsOnCrossing:
    triggered: bool
    crossing: Crossing | None
    systemic_risk_base: bool
    established_outside_eu: bool
    notification_due_at: datetime | None
    obligations: tuple[Obligation, ...]
    notes: tuple[str, ...] = ()


def lowest_exceeded(results: Iterable[PolicyResult]) -> tuple[float, tuple[str, ...]] | None:
    """The lowest threshold any policy says is exceeded (it is crossed first), and every exceeding policy."""
    exceeded = [r for r in results if r.outcome is Outcome.EXCEEDS]
    if not exceeded:
        return None
    return min(r.threshold for r in exceeded), tuple(r.policy for r in exceeded)


def crossing_moment(timeline: JobTimeline, threshold: float, policies: tuple[str, ...]) -> Crossing | None:
    """When the lineage crossed ``threshold`` (strictly greater), or None when it has not.

    In order of preference: an ancestor already crossed (``ancestor_crossing``); the meter's report; the earliest
    moment the hardware could have crossed (start + remaining FLOPs / peak rate: never later than the real crossing,
    so the due date is never late); the job's start (no rate: e.g. a managed job whose instances are undisclosed).
    """
    start, end = to_utc(timeline.start), to_utc(timeline.end)
    limit = exact(threshold)
    if exact(timeline.parent_cumulative_flops) > limit:
        at, basis = ancestor_crossing(timeline, threshold)
        return Crossing(at, basis, timeline.ancestor_job or "an ancestor", threshold, policies)
    if exact(timeline.parent_cumulative_flops) + exact(timeline.own_flops) <= limit:
        return None
    if timeline.metered_crossed_at is not None:
        at = min(max(to_utc(timeline.metered_crossed_at), start), end)
        return Crossing(at, "reported by the job's meter when its metered FLOPs crossed", timeline.job_name,
                        threshold, policies)  # fmt: skip
    rate = timeline.rate_bound_flops_per_s
    if rate is not None and rate > 0:
        seconds = float(limit - exact(timeline.parent_cumulative_flops)) / rate
        span = (end - start).total_seconds()
        at = end if seconds >= span else start + timedelta(seconds=seconds)
        basis = "earliest moment the job's hardware could have crossed (remaining FLOPs / peak rate from the start)"
        return Crossing(at, basis, timeline.job_name, threshold, policies)
    return Crossing(start, "job start (no rate known to place the crossing later)", timeline.job_name, threshold,
                    policies)  # fmt: skip


def ancestor_crossing(timeline: JobTimeline, threshold: float) -> tuple[datetime, str]:
    """When the lineage crossed ``threshold`` before this job began, and how that moment was found.

    The ancestor's record's moment only when it is for the same or a lower threshold (a lower line is crossed first,
    so its moment is never late); otherwise the earliest moment the ancestors' compute could have begun (the
    lineage's first start as the records state it); without either, this job's start, which may be late (review).
    """
    job = timeline.ancestor_job or "an ancestor"
    recorded, line = timeline.ancestor_crossed_at, timeline.ancestor_crossed_threshold
    if recorded is not None and line is not None and exact(line) <= exact(threshold):
        return to_utc(recorded), f"crossed in {job}; moment from its record"
    if timeline.ancestor_earliest_at is not None:
        why = "states no moment" if recorded is None else f"dates the crossing of another threshold ({line or 0:.2e})"
        return to_utc(timeline.ancestor_earliest_at), (
            f"crossed in {job} or before it; its record {why}, so the earliest possible moment is used: the start of "
            "the lineage's first job (the clock may have started later)"
        )
    return to_utc(timeline.start), f"crossed in {job} before this job started; its record states no moment (review)"


def _provider_obligations(established_outside_eu: bool) -> list[Obligation]:
    items = [
        Obligation("provider", "guideline paras 59-60; AI Act recital 109",
                   "the modifier becomes the provider of the modified model", ON_PLACING),
        Obligation("technical_documentation", "AI Act Art. 53(1)(a), Annex XI; guideline para. 65",
                   "technical documentation limited to the modification (compute: Annex XI 2(d); energy: 2(e))",
                   ON_PLACING),
        Obligation("downstream_information", "AI Act Art. 53(1)(b), Annex XII; guideline para. 65",
                   "information for downstream providers, limited to the modification", ON_PLACING),
        Obligation("copyright_policy", "AI Act Art. 53(1)(c); guideline para. 65",
                   "copyright policy, limited to the data used in the modification", ON_PLACING),
        Obligation("training_content_summary", "AI Act Art. 53(1)(d); guideline para. 65",
                   "public summary of the content used, limited to the data used in the modification", ON_PLACING),
    ]  # fmt: skip
    if established_outside_eu:
        items.append(
            Obligation(
                "authorised_representative",
                "AI Act Art. 54; guideline para. 66",
                "appoint an authorised representative established in the EU",
                "before the modified model is placed on the market",
            )  # fmt: skip
        )
    return items


def _systemic_obligations(status: ObligationStatus, due: datetime) -> list[Obligation]:
    return [
        Obligation("commission_notification", "AI Act Art. 52(1); guideline paras 30-31, 67",
                   "notify the Commission: compute in FLOP to two significant figures and the estimation method",
                   "from the crossing (met, or known that it will be met)", status, due),
        Obligation("systemic_risk_obligations", "AI Act Art. 55; guideline para. 67",
                   "model evaluation and adversarial testing, risk mitigation, serious-incident reporting, "
                   "cybersecurity", ON_PLACING, status),
    ]  # fmt: skip


def _systemic_status(
    systemic_risk_base: bool, base_pretrain_flops: float | None, cumulative_flops: float
) -> tuple[ObligationStatus | None, list[str]]:
    if systemic_risk_base:
        return ObligationStatus.TRIGGERED, []
    if exact(cumulative_flops) > SYSTEMIC_RISK_TRAINING_FLOPS:
        return ObligationStatus.TRIGGERED, [
            f"the lineage's cumulative compute ({cumulative_flops:.2e} FLOP) is above 1e+25: the modified model is "
            "presumed to have high-impact capabilities (AI Act Art. 51(2)) whatever the base; the clock is dated from "
            "the crossing of the lowest exceeded threshold, never later than the 1e+25 crossing"
        ]
    if base_pretrain_flops is not None and exact(base_pretrain_flops) + exact(cumulative_flops) > exact(
        SYSTEMIC_RISK_TRAINING_FLOPS
    ):
        return ObligationStatus.REVIEW, [
            "the base model's compute plus the modification exceeds 1e+25 FLOP (Art. 51(2)) although the base is "
            "not declared systemic-risk: the guideline does not settle this case (regulation.md, Q2); the "
            "notification clock is listed conservatively - refer to legal review"
        ]
    return None, []


def obligations_on_crossing(
    crossing: Crossing | None,
    *,
    systemic_risk_base: bool,
    established_outside_eu: bool,
    base_pretrain_flops: float | None,
    cumulative_flops: float,
) -> ObligationsOnCrossing:
    """The obligations a crossing triggers (none without one), with the Art. 52(1) due date where it applies."""
    if crossing is None:
        return ObligationsOnCrossing(False, None, systemic_risk_base, established_outside_eu, None, ())
    items = _provider_obligations(established_outside_eu)
    notes = ["documentation is kept for 10 years after placing on the market (Art. 54(3)(b); Code of Practice)",
             "the open-source exemption (guideline section 4) is not assessed here"]  # fmt: skip
    if base_pretrain_flops is not None and exact(base_pretrain_flops) < GPAI_PRESUMPTION_TRAINING_FLOPS:
        notes.append("the base model's compute is below 1e+23 FLOP: it may not be a GPAI model (guideline para. 17);"
                     " the obligations are listed conservatively - refer to legal review")  # fmt: skip
    status, systemic_notes = _systemic_status(systemic_risk_base, base_pretrain_flops, cumulative_flops)
    due = None
    if status is not None:
        due = notification_due(crossing.at)
        items += _systemic_obligations(status, due)
        systemic_notes.append(f"due date: {LEGAL_BASIS}")
    return ObligationsOnCrossing(
        True, crossing, systemic_risk_base, established_outside_eu, due, tuple(items), tuple(notes + systemic_notes)
    )


def days_left(due_at: datetime, now: datetime) -> float:
    """Days until ``due_at`` (negative when overdue), both read in UTC."""
    return (to_utc(due_at) - to_utc(now)).total_seconds() / 86400.0


def clock_state(due_at: datetime, now: datetime) -> str:
    """``overdue`` once the due moment has passed (the moment itself included), else ``open``: a past clock is never
    open."""
    return "overdue" if to_utc(now) >= to_utc(due_at) else "open"
