"""When a weekly digest goes out, and which weeks it reports on.

Each workspace chooses a day and a local time (Monday 09:00 by default, in the workspace
time zone). A digest reports on the seven days before its day, from midnight to midnight,
local time; with the default that is the ISO week just ended, and the `week` of its row is
the ISO week of the period's first day.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from handlers.core.quiet_hours import zone
from handlers.core.workspace_settings import WorkspaceSettings
from handlers.impact.digest_settings import DAYS
from handlers.impact.query import Period

WEEKS = 8  # the chart's span


def _local(day: date, at: time, settings: WorkspaceSettings) -> datetime:
    return datetime.combine(day, at, tzinfo=zone(settings.timezone)).astimezone(UTC)


def _clock_time(settings: WorkspaceSettings) -> time:
    hours, minutes = settings.digest_time.split(":")
    return time(int(hours), int(minutes))


def last_scheduled(settings: WorkspaceSettings, now: datetime) -> datetime:
    """The latest scheduled digest time at or before `now`, in UTC."""
    local = now.astimezone(zone(settings.timezone))
    day = local.date() - timedelta(days=(local.weekday() - DAYS.index(settings.digest_day)) % 7)
    at = _local(day, _clock_time(settings), settings)
    return at if at <= now else _local(day - timedelta(days=7), _clock_time(settings), settings)


def next_scheduled(settings: WorkspaceSettings, now: datetime) -> datetime:
    """The first scheduled digest time at or after `now`, in UTC."""
    latest = last_scheduled(settings, now)
    if latest == now:
        return latest
    local_day = latest.astimezone(zone(settings.timezone)).date() + timedelta(days=7)
    return _local(local_day, _clock_time(settings), settings)


def weeks_for(settings: WorkspaceSettings, scheduled: datetime) -> list[Period]:
    """The WEEKS seven-day periods ending at local midnight of the scheduled day, oldest first."""
    day = scheduled.astimezone(zone(settings.timezone)).date()
    midnight = time(0, 0)
    return [
        Period(
            _local(day - timedelta(days=7 * (k + 1)), midnight, settings),
            _local(day - timedelta(days=7 * k), midnight, settings),
        )
        for k in reversed(range(WEEKS))
    ]


def iso_week(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def week_of(settings: WorkspaceSettings, scheduled: datetime) -> str:
    """The `week` of the digest scheduled at `scheduled`: the ISO week of its first day."""
    first = weeks_for(settings, scheduled)[-1].start.astimezone(zone(settings.timezone))
    return iso_week(first.date())
