"""Legal periods as EU law reads them: Regulation (EEC, Euratom) No 1182/71, in Brussels time.

Art. 52(1) AI Act: notify the Commission "without delay and in any event within two weeks after that requirement is
met or it becomes known that it will be met". Reg. 1182/71 determines the rules applicable to periods in EU acts:

* Art. 3(1), second subparagraph: where a period is calculated from the moment at which an event occurs, the day
  during which the event occurs is not counted;
* Art. 3(2)(c): a period expressed in weeks starts at the beginning of the first hour of the first day and ends with
  the expiry of the last hour of whichever day in the last week is the same day of the week as the day from which
  the period runs.

So a crossing on Monday 10:00 gives a notification due at the end (24:00) of Monday two weeks later. Days are the
days of the Commission's seat: the calendar is read in Europe/Brussels (CET/CEST), so a change of summer time inside
the period moves the UTC instant, never the day (a fixed 336 hours after the crossing lands up to an hour after the
end of the day). Art. 3(4) (a period ending on a Saturday, Sunday or public holiday runs to the next working day)
is not applied: the earlier date is kept, which is the conservative reading.

Brussels time comes from the IANA database (``zoneinfo``). Where the system has no time zone data (a minimal
container), the EU's own summer-time rule stands in (Directive 2000/84/EC, Arts 1-3: from 01:00 UTC on the last
Sunday of March to 01:00 UTC on the last Sunday of October, CET = UTC+1); it is the rule Brussels has followed since
1996 and gives the same instants.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flopsmeter.domain.times import to_utc

BRUSSELS_ZONE = "Europe/Brussels"
NOTIFICATION_WEEKS = 2  # AI Act Art. 52(1): "within two weeks"
LEGAL_BASIS = (
    "AI Act Art. 52(1): within two weeks; Reg. 1182/71 Art. 3(1) (the day of the event is not counted) and 3(2)(c) "
    "(ends with the last hour of the same weekday), Brussels time; Art. 3(4) not applied (earlier date kept)"
)
_CET = timedelta(hours=1)


def _last_sunday(year: int, month: int) -> date:
    last = date(year, month + 1, 1) - timedelta(days=1)
    return last - timedelta(days=(last.weekday() + 1) % 7)


class EuSummerTime(tzinfo):
    """CET/CEST by Directive 2000/84/EC (the stand-in when the system has no IANA time zone data)."""

    def _summer(self, utc_moment: datetime) -> bool:
        start = datetime.combine(_last_sunday(utc_moment.year, 3), time(1), UTC)
        end = datetime.combine(_last_sunday(utc_moment.year, 10), time(1), UTC)
        return start <= utc_moment < end

    def utcoffset(self, dt: datetime | None) -> timedelta:
        if dt is None:
            return _CET
        wall = dt.replace(tzinfo=UTC)
        as_summer, as_winter = self._summer(wall - 2 * _CET), self._summer(wall - _CET)
        if as_summer == as_winter:
            return 2 * _CET if as_summer else _CET
        if as_summer:  # autumn: the repeated hour; fold=0 is its first (summer) reading (PEP 495)
            return 2 * _CET if dt.fold == 0 else _CET
        return _CET if dt.fold == 0 else 2 * _CET  # spring: the skipped hour; fold=0 keeps the offset before it

    def dst(self, dt: datetime | None) -> timedelta:
        return self.utcoffset(dt) - _CET

    def tzname(self, dt: datetime | None) -> str:
        return "CEST" if self.dst(dt) else "CET"

    def fromutc(self, dt: datetime) -> datetime:
        moment = dt.replace(tzinfo=UTC)
        summer = self._summer(moment)
        repeated = not summer and self._summer(moment - _CET)  # the second pass through the autumn hour
        return (dt + (2 * _CET if summer else _CET)).replace(tzinfo=self, fold=int(repeated))


def brussels() -> tzinfo:
    """Europe/Brussels from the IANA database, else the EU summer-time rule (module docstring)."""
    try:
        return ZoneInfo(BRUSSELS_ZONE)
    except ZoneInfoNotFoundError:  # pragma: no cover - depends on the system's time zone data
        return EuSummerTime()


def weeks_after(event_at: datetime, weeks: int, zone: tzinfo | None = None) -> datetime:
    """The end of a period of ``weeks`` weeks running from an event (Reg. 1182/71 Art. 3(1), 3(2)(c)), in UTC.

    The instant is the expiry of the last hour of the last day: midnight at the start of the next day, Brussels time
    (summer time changes at 02:00-03:00, never at midnight, so that moment always exists once).
    """
    local = to_utc(event_at).astimezone(zone or brussels())
    last_day = local.date() + timedelta(weeks=weeks)
    end = datetime.combine(last_day + timedelta(days=1), time(0), tzinfo=zone or brussels())
    return end.astimezone(UTC)


def notification_due(crossed_at: datetime) -> datetime:
    """Art. 52(1): the end of the same weekday two weeks after the crossing's day, Brussels time (in UTC)."""
    return weeks_after(crossed_at, NOTIFICATION_WEEKS)


def brussels_text(moment: datetime, *, zone: tzinfo | None = None) -> str:
    """A moment as Brussels reads it, with its zone: ``2026-03-29 24:00 CEST`` for the end of a day."""
    local = to_utc(moment).astimezone(zone or brussels())
    name = local.tzname() or BRUSSELS_ZONE
    if local.time() == time(0):  # the expiry of a day's last hour reads as that day's 24:00
        return f"{(local.date() - timedelta(days=1)).isoformat()} 24:00 {name}"
    return f"{local:%Y-%m-%d %H:%M} {name}"


def due_text(moment: datetime) -> str:
    """``2026-03-29 24:00 CEST (Europe/Brussels; 2026-03-29 22:00 UTC)``: both readings, each with its zone."""
    return f"{brussels_text(moment)} ({BRUSSELS_ZONE}; {to_utc(moment):%Y-%m-%d %H:%M} UTC)"
