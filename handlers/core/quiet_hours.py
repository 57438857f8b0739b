"""Working hours in a person's own time zone: when a nudge may land, and how long it waits."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

UTC_ZONE = ZoneInfo("UTC")


@dataclass(frozen=True, slots=True)
class WorkingHours:
    """Nudges land between `start` and `end` on working days, in the recipient's zone."""

    start: time = time(9, 0)
    end: time = time(18, 0)
    weekends_off: bool = True

    def is_working_day(self, moment: datetime) -> bool:
        return not (self.weekends_off and moment.weekday() >= 5)

    def allows(self, moment: datetime) -> bool:
        """Is `moment` (aware, in the recipient's zone) inside working hours?"""
        return (
            self.is_working_day(moment)
            and self.start <= moment.timetz().replace(tzinfo=None) < self.end
        )


def zone(name: str | None) -> ZoneInfo:
    """The named zone, or UTC for an unknown or missing one."""
    if not name:
        return UTC_ZONE
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC_ZONE


def next_allowed(moment: datetime, tz: ZoneInfo, hours: WorkingHours) -> datetime:
    """`moment` itself if inside working hours, else the next start of working hours (UTC)."""
    local = moment.astimezone(tz)
    for _ in range(8):
        if hours.allows(local):
            return local.astimezone(moment.tzinfo)
        if hours.is_working_day(local) and local.timetz().replace(tzinfo=None) < hours.start:
            opening = datetime.combine(local.date(), hours.start, tzinfo=tz)
        else:
            opening = datetime.combine(local.date() + timedelta(days=1), hours.start, tzinfo=tz)
        # Re-localise through UTC so a DST change between now and then is respected.
        local = opening.astimezone(UTC_ZONE).astimezone(tz)
    raise ValueError("working hours never open: check the quiet-hours settings")


def add_working_time(
    start: datetime, duration: timedelta, tz: ZoneInfo, hours: WorkingHours
) -> datetime:
    """When `duration` of working time after `start` has passed (nights and weekends skipped)."""
    moment = next_allowed(start, tz, hours)
    remaining = duration
    while remaining > timedelta(0):
        local = moment.astimezone(tz)
        closing = datetime.combine(local.date(), hours.end, tzinfo=tz).astimezone(UTC_ZONE)
        available = closing - moment.astimezone(UTC_ZONE)
        if remaining <= available:
            return moment + remaining
        remaining -= available
        moment = next_allowed(closing, tz, hours)
    return moment


# The key of an outbox target that holds the recipient's working hours: a message nobody
# just asked for is sent only inside them, whenever the dispatcher gets to it.
HOURS_KEY = "hours"


def hours_field(tz_name: str, hours: WorkingHours) -> dict[str, Any]:
    """The recipient's working hours, as an outbox target carries them."""
    return {
        "tz": tz_name,
        "start": hours.start.strftime("%H:%M"),
        "end": hours.end.strftime("%H:%M"),
        "weekends_off": hours.weekends_off,
    }


def deferred_until(target: Mapping[str, Any], now: datetime) -> datetime | None:
    """When a message for `target` may go out if not now; None when it may go now.

    A target without working hours (an answer to what someone just did, a channel post) is
    always due. One whose window passed while it could not be sent waits for the next one.
    """
    raw = target.get(HOURS_KEY)
    if not isinstance(raw, Mapping):
        return None
    try:
        hours = WorkingHours(
            start=time.fromisoformat(str(raw["start"])),
            end=time.fromisoformat(str(raw["end"])),
            weekends_off=bool(raw.get("weekends_off", True)),
        )
        opens = next_allowed(now, zone(str(raw.get("tz") or "")), hours)
    except (KeyError, ValueError):
        return None
    return opens if opens > now else None
