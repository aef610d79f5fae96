"""Obligations on a crossing: the Art. 52(1) clock, the crossing moment, the obligations table."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

import pytest

from flopsmeter.domain.classification import classify
from flopsmeter.domain.deadlines import EuSummerTime, brussels_text, due_text, weeks_after
from flopsmeter.domain.errors import InvalidMoment
from flopsmeter.domain.obligations import (
    NOTIFICATION_PERIOD,
    Crossing,
    JobTimeline,
    ObligationStatus,
    clock_state,
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


def test_due_date_is_the_end_of_the_same_weekday_two_weeks_on_in_brussels() -> None:
    # Reg. 1182/71 Art. 3(1), 3(2)(c): the crossing's day is not counted; the period ends at 24:00 Brussels time
    crossed = datetime(2026, 3, 2, 13, 45, 30, 123456, tzinfo=UTC)  # a Monday, 14:45 CET
    assert notification_due(crossed) == datetime(2026, 3, 16, 23, 0, tzinfo=UTC)  # Monday 16 March 24:00 CET
    assert timedelta(days=14) == NOTIFICATION_PERIOD


def test_due_date_at_the_end_of_a_day_a_year_and_a_leap_year() -> None:
    # 23:59 UTC on 31 Dec is already 1 Jan in Brussels: the period runs from that day
    assert notification_due(datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)) == datetime(
        2027, 1, 15, 23, 0, tzinfo=UTC
    )
    assert notification_due(datetime(2028, 2, 20, 0, 0, tzinfo=UTC)) == datetime(2028, 3, 5, 23, 0, tzinfo=UTC)


def test_due_date_is_in_utc_whatever_the_zone_given() -> None:
    cet = timezone(timedelta(hours=1))
    due = notification_due(datetime(2026, 3, 1, 0, 30, tzinfo=cet))  # = 2026-02-28 23:30 UTC, 1 March in Brussels
    assert due == datetime(2026, 3, 15, 23, 0, tzinfo=UTC)
    assert due.utcoffset() == timedelta(0)


def test_a_deadline_on_a_daylight_saving_change_is_not_late() -> None:
    # Given a crossing at 23:30 CET on Sunday 15 March 2026; summer time starts on Sunday 29 March
    crossed = datetime(2026, 3, 15, 22, 30, tzinfo=UTC)
    due = notification_due(crossed)
    # Then the clock ends at 24:00 CEST on 29 March = 22:00 UTC (336 hours later would be 30 minutes late)
    assert due == datetime(2026, 3, 29, 22, 0, tzinfo=UTC)
    assert due < crossed + timedelta(hours=336)
    # and in autumn (summer time ends on 25 October 2026) the end of the day is 23:00 UTC
    assert notification_due(datetime(2026, 10, 11, 21, 30, tzinfo=UTC)) == datetime(2026, 10, 25, 23, 0, tzinfo=UTC)


def test_naive_moment_is_refused() -> None:
    with pytest.raises(InvalidMoment, match="no time zone"):
        notification_due(datetime(2026, 3, 1, 12, 0))


def test_days_left_is_negative_when_overdue() -> None:
    due = notification_due(START)
    assert days_left(due, START) == 14.625  # 08:00 UTC on 1 March to 24:00 CET on 15 March
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
    timeline = _timeline(
        parent_cumulative_flops=2e24, ancestor_job="ft-0", ancestor_crossed_at=earlier, ancestor_crossed_threshold=1e24
    )
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
    assert result.notification_due_at == datetime(2026, 3, 15, 23, 0, tzinfo=UTC)  # 24:00 CET, Sunday 15 March
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


# ---- issue 23: unknown never means below or late ----------------------------------------------------------------


def test_a_parent_record_for_a_higher_threshold_does_not_date_a_lower_crossing() -> None:
    # Given a parent classified under another reading: its record dates the crossing of 3.3e24, a month ago
    lineage_start = START - timedelta(days=45)
    timeline = _timeline(
        parent_cumulative_flops=4e24, ancestor_job="ft-0", ancestor_crossed_at=START - timedelta(days=30),
        ancestor_crossed_threshold=3.3e24, ancestor_earliest_at=lineage_start,
    )  # fmt: skip
    # When the child is classified under a stricter reading (threshold 3.3e22)
    crossing = crossing_moment(timeline, 3.3e22, ("p",))
    # Then the earliest possible moment is used (the lineage's first start), and the basis says so
    assert crossing is not None and crossing.at == lineage_start
    assert "earliest possible moment" in crossing.basis
    result = obligations_on_crossing(
        crossing, systemic_risk_base=True, established_outside_eu=False, base_pretrain_flops=None,
        cumulative_flops=4.1e24,
    )  # fmt: skip
    assert result.notification_due_at is not None and clock_state(result.notification_due_at, START) == "overdue"


def test_a_parent_record_without_a_moment_gives_the_earliest_possible_one() -> None:
    lineage_start = START - timedelta(days=20)
    timeline = _timeline(parent_cumulative_flops=2e24, ancestor_job="ft-0", ancestor_earliest_at=lineage_start)
    crossing = crossing_moment(timeline, 1e24, ("p",))
    assert crossing is not None and crossing.at == lineage_start and "states no moment" in crossing.basis


def test_a_clock_already_past_is_overdue_never_open() -> None:
    due = notification_due(START)
    assert clock_state(due, due - timedelta(seconds=1)) == "open"
    assert clock_state(due, due) == "overdue"
    assert clock_state(due, due + timedelta(days=30)) == "overdue"


def test_above_1e25_cumulative_the_presumption_applies_whatever_the_base() -> None:
    # Given a lineage above 1e25 on a base nobody declared (compute unknown, not systemic)
    result = obligations_on_crossing(
        _crossing(), systemic_risk_base=False, established_outside_eu=False, base_pretrain_flops=None,
        cumulative_flops=1.2e25,
    )  # fmt: skip
    # Then the Art. 52(1) notification and Art. 55 are triggered (not left out, not only "review")
    notification = next(o for o in result.obligations if o.obligation_id == "commission_notification")
    assert notification.status is ObligationStatus.TRIGGERED and notification.due_at is not None
    assert "systemic_risk_obligations" in _ids(result)
    assert any("Art. 51(2)" in n and "whatever the base" in n for n in result.notes)
    # and at exactly 1e25 ("more than") it does not
    at = obligations_on_crossing(
        _crossing(), systemic_risk_base=False, established_outside_eu=False, base_pretrain_flops=None,
        cumulative_flops=1e25,
    )  # fmt: skip
    assert "commission_notification" not in _ids(at)


def test_brussels_time_without_system_time_zone_data_follows_the_eu_rule() -> None:
    from zoneinfo import ZoneInfo

    stand_in, iana = EuSummerTime(), ZoneInfo("Europe/Brussels")
    moment = datetime(2025, 1, 1, tzinfo=UTC)
    while moment < datetime(2031, 1, 1, tzinfo=UTC):
        assert moment.astimezone(stand_in).utcoffset() == moment.astimezone(iana).utcoffset(), moment
        assert weeks_after(moment, 2, stand_in) == weeks_after(moment, 2, iana), moment
        moment += timedelta(hours=5, minutes=30)


def test_due_dates_are_shown_with_their_time_zone() -> None:
    due = notification_due(datetime(2026, 3, 15, 22, 30, tzinfo=UTC))
    assert brussels_text(due) == "2026-03-29 24:00 CEST"
    assert due_text(due) == "2026-03-29 24:00 CEST (Europe/Brussels; 2026-03-29 22:00 UTC)"
    assert brussels_text(datetime(2026, 1, 5, 9, 15, tzinfo=UTC)) == "2026-01-05 10:15 CET"
