"""Obligations on a crossing: the Art. 52(1) clock, the crossing moment, the obligations table."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

import pytest

from flopsmeter.domain.classification import classify
from flopsmeter.domain.errors import InvalidMoment
from flopsmeter.domain.obligations import (
    NOTIFICATION_PERIOD,
    Crossing,
    JobTimeline,
    ObligationStatus,
    crossing_moment,
    days_left,
    lowest_exceeded,
    notification_due,
    obligations_on_crossing,
)

START = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
END = START + timedelta(hours=10)


def _timeline(**changes: object) -> JobTimeline:
    values: dict[str, object] = {
        "job_name": "ft-1", "start": START, "end": END, "parent_cumulative_flops": 0.0, "own_flops": 2e24,
    }  # fmt: skip
    values.update(changes)
    return JobTimeline(**values)  # type: ignore[arg-type]


def _crossing(at: datetime = START) -> Crossing:
    return Crossing(at, "test", "ft-1", 1e24, ("aws-30pct-2026",))


# ---- the clock -----------------------------------------------------------------------------------------------


def test_due_date_is_crossing_plus_exactly_fourteen_days() -> None:
    crossed = datetime(2026, 3, 1, 13, 45, 30, 123456, tzinfo=UTC)
    assert notification_due(crossed) == datetime(2026, 3, 15, 13, 45, 30, 123456, tzinfo=UTC)
    assert timedelta(hours=336) == NOTIFICATION_PERIOD


def test_due_date_at_the_last_microsecond_of_a_day_and_a_month_and_a_leap_year() -> None:
    assert notification_due(datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)) == datetime(
        2027, 1, 14, 23, 59, 59, 999999, tzinfo=UTC
    )
    assert notification_due(datetime(2028, 2, 20, 0, 0, tzinfo=UTC)) == datetime(2028, 3, 5, 0, 0, tzinfo=UTC)


def test_due_date_is_in_utc_whatever_the_zone_given() -> None:
    cet = timezone(timedelta(hours=1))
    due = notification_due(datetime(2026, 3, 1, 0, 30, tzinfo=cet))  # = 2026-02-28 23:30 UTC
    assert due == datetime(2026, 3, 14, 23, 30, tzinfo=UTC)
    assert due.utcoffset() == timedelta(0)


def test_due_date_across_a_daylight_saving_change_is_still_336_hours() -> None:
    zoneinfo = pytest.importorskip("zoneinfo")
    paris = zoneinfo.ZoneInfo("Europe/Paris")  # clocks go forward on 2026-03-29
    crossed = datetime(2026, 3, 20, 12, 0, tzinfo=paris)
    assert notification_due(crossed) - crossed.astimezone(UTC) == timedelta(hours=336)


def test_naive_moment_is_refused() -> None:
    with pytest.raises(InvalidMoment, match="no time zone"):
        notification_due(datetime(2026, 3, 1, 12, 0))


def test_days_left_is_negative_when_overdue() -> None:
    due = notification_due(START)
    assert days_left(due, START) == 14.0
    assert days_left(due, due) == 0.0
    assert days_left(due, due + timedelta(days=1)) == -1.0


# ---- the crossing moment ----------------------------------------------------------------------------------------


def test_below_or_at_the_threshold_is_no_crossing() -> None:
    assert crossing_moment(_timeline(own_flops=1e24), 1e24, ("p",)) is None
    assert crossing_moment(_timeline(own_flops=5e23, parent_cumulative_flops=5e23), 1e24, ("p",)) is None
    assert crossing_moment(_timeline(own_flops=math.nextafter(1e24, math.inf)), 1e24, ("p",)) is not None


def test_metered_report_gives_the_moment() -> None:
    reported = START + timedelta(hours=3, minutes=7)
    crossing = crossing_moment(_timeline(metered_crossed_at=reported, rate_bound_flops_per_s=1e30), 1e24, ("p",))
    assert crossing is not None and crossing.at == reported and "meter" in crossing.basis


def test_without_a_report_the_earliest_moment_the_hardware_allows_is_used() -> None:
    # 1e24 threshold, 2e23 already spent by the parent, 8e23 left at 1e20 FLOP/s: 8,000 s after the start
    timeline = _timeline(parent_cumulative_flops=2e23, own_flops=9e23, rate_bound_flops_per_s=1e20)
    crossing = crossing_moment(timeline, 1e24, ("p",))
    assert crossing is not None
    assert crossing.at == START + timedelta(seconds=8000)
    assert crossing.crossed_in_job == "ft-1"


def test_hardware_moment_never_falls_after_the_job_end() -> None:
    crossing = crossing_moment(_timeline(rate_bound_flops_per_s=1.0), 1e24, ("p",))
    assert crossing is not None and crossing.at == END


def test_no_rate_means_the_start_conservatively() -> None:
    crossing = crossing_moment(_timeline(), 1e24, ("p",))
    assert crossing is not None and crossing.at == START


def test_an_ancestor_that_already_crossed_keeps_its_clock() -> None:
    earlier = START - timedelta(days=3)
    timeline = _timeline(parent_cumulative_flops=2e24, ancestor_job="ft-0", ancestor_crossed_at=earlier)
    crossing = crossing_moment(timeline, 1e24, ("p",))
    assert crossing is not None and crossing.at == earlier and crossing.crossed_in_job == "ft-0"
    unknown = crossing_moment(_timeline(parent_cumulative_flops=2e24, ancestor_job="ft-0"), 1e24, ("p",))
    assert unknown is not None and unknown.at == START and "review" in unknown.basis


def test_lowest_exceeded_threshold_among_policies() -> None:
    result = classify(1.5e22, 9e22)  # aws: 3.3e22 default (below); eu: 9e22 / 3 = 3e22 (below)
    assert lowest_exceeded(result.results) is None
    result = classify(3.2e22, 9e22)  # eu exceeds (3e22), aws does not (3.3e22)
    assert lowest_exceeded(result.results) == (pytest.approx(3e22), ("eu-guideline-2025-07",))


# ---- the obligations table ---------------------------------------------------------------------------------------


def _ids(result: object) -> list[str]:
    return [o.obligation_id for o in result.obligations]  # type: ignore[attr-defined]


def test_no_crossing_triggers_nothing() -> None:
    result = obligations_on_crossing(
        None, systemic_risk_base=True, established_outside_eu=True, base_pretrain_flops=4e25, cumulative_flops=1.0
    )
    assert not result.triggered and result.obligations == () and result.notification_due_at is None


def test_crossing_on_a_non_systemic_base_makes_the_modifier_a_provider_without_a_clock() -> None:
    result = obligations_on_crossing(
        _crossing(), systemic_risk_base=False, established_outside_eu=False, base_pretrain_flops=1.5e24,
        cumulative_flops=6e23,
    )  # fmt: skip
    assert result.triggered and result.notification_due_at is None
    assert _ids(result) == [
        "provider", "technical_documentation", "downstream_information", "copyright_policy",
        "training_content_summary",
    ]  # fmt: skip
    assert all("53" in o.article or "recital 109" in o.article for o in result.obligations)


def test_established_outside_the_eu_adds_article_54() -> None:
    result = obligations_on_crossing(
        _crossing(), systemic_risk_base=False, established_outside_eu=True, base_pretrain_flops=1.5e24,
        cumulative_flops=6e23,
    )  # fmt: skip
    assert _ids(result)[-1] == "authorised_representative"
    assert "Art. 54" in result.obligations[-1].article


def test_systemic_base_starts_the_two_week_notification_clock() -> None:
    crossed = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
    result = obligations_on_crossing(
        _crossing(crossed), systemic_risk_base=True, established_outside_eu=False, base_pretrain_flops=3.8e25,
        cumulative_flops=1.3e25,
    )  # fmt: skip
    assert result.notification_due_at == datetime(2026, 3, 15, 10, 0, tzinfo=UTC)
    notification = next(o for o in result.obligations if o.obligation_id == "commission_notification")
    assert notification.status is ObligationStatus.TRIGGERED and notification.due_at == result.notification_due_at
    assert "Art. 52(1)" in notification.article
    assert "systemic_risk_obligations" in _ids(result)


def test_base_plus_modification_over_1e25_is_listed_for_review() -> None:
    result = obligations_on_crossing(
        _crossing(), systemic_risk_base=False, established_outside_eu=False, base_pretrain_flops=7.9e24,
        cumulative_flops=2.6e24,
    )  # fmt: skip
    notification = next(o for o in result.obligations if o.obligation_id == "commission_notification")
    assert notification.status is ObligationStatus.REVIEW and result.notification_due_at is not None
    assert any("legal review" in n for n in result.notes)


def test_small_base_is_flagged_for_review() -> None:
    result = obligations_on_crossing(
        _crossing(), systemic_risk_base=False, established_outside_eu=False, base_pretrain_flops=7.5e22,
        cumulative_flops=4e22,
    )  # fmt: skip
    assert any("para. 17" in n for n in result.notes)
