"""Nudges respect the recipient's working hours and weekends, across time zones and DST."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from handlers.core.quiet_hours import WorkingHours, add_working_time, next_allowed, zone

HOURS = WorkingHours()
PARIS, NEW_YORK, TOKYO = zone("Europe/Paris"), zone("America/New_York"), zone("Asia/Tokyo")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_inside_working_hours_is_now() -> None:
    moment = utc(2026, 11, 24, 10, 0)  # Tuesday 11:00 in Paris
    assert next_allowed(moment, PARIS, HOURS) == moment


def test_evening_waits_for_the_next_morning() -> None:
    # Tuesday 18:30 in Paris → Wednesday 09:00 Paris = 08:00 UTC.
    assert next_allowed(utc(2026, 11, 24, 17, 30), PARIS, HOURS) == utc(2026, 11, 25, 8, 0)


def test_early_morning_waits_for_opening_the_same_day() -> None:
    # Tuesday 07:00 in New York (12:00 UTC) → 09:00 New York = 14:00 UTC.
    assert next_allowed(utc(2026, 11, 24, 12, 0), NEW_YORK, HOURS) == utc(2026, 11, 24, 14, 0)


def test_weekend_waits_for_monday() -> None:
    # Friday 19:00 in Tokyo → Monday 09:00 Tokyo (00:00 UTC Monday).
    assert next_allowed(utc(2026, 11, 27, 10, 0), TOKYO, HOURS) == utc(2026, 11, 30, 0, 0)


def test_weekends_can_be_working_days() -> None:
    saturday = utc(2026, 11, 28, 10, 0)
    assert next_allowed(saturday, PARIS, WorkingHours(weekends_off=False)) == saturday


def test_the_same_moment_differs_by_zone() -> None:
    moment = utc(2026, 11, 24, 15, 0)  # 16:00 Paris, 10:00 New York, 00:00 Tokyo
    assert next_allowed(moment, PARIS, HOURS) == moment
    assert next_allowed(moment, NEW_YORK, HOURS) == moment
    assert next_allowed(moment, TOKYO, HOURS) == utc(2026, 11, 25, 0, 0)


def test_daylight_saving_change_is_respected() -> None:
    # Paris leaves summer time on Sunday 2026-10-25: Monday 09:00 is 08:00 UTC, not 07:00.
    assert next_allowed(utc(2026, 10, 24, 12, 0), PARIS, HOURS) == utc(2026, 10, 26, 8, 0)


def test_working_time_skips_nights_and_weekends() -> None:
    # Friday 16:00 Paris + 24 working hours = 2h Friday, 9h Mon, 9h Tue, 4h Wed → Wed 13:00 Paris.
    start = utc(2026, 11, 27, 15, 0)
    assert add_working_time(start, timedelta(hours=24), PARIS, HOURS) == utc(2026, 12, 2, 12, 0)


def test_custom_hours_and_unknown_zone() -> None:
    late = WorkingHours(start=time(10, 0), end=time(16, 0))
    assert next_allowed(utc(2026, 11, 24, 16, 30), zone("Nowhere/Else"), late) == utc(
        2026, 11, 25, 10, 0
    )
