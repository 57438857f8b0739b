"""The period a program page shows: the last 4, 12, 26 or 52 weeks, or from one date to
another, in the workspace's time zone, with the period just before it to compare with.

Periods run from local midnight to local midnight, so clicks are read from the tally's whole
days; the weeks of the trends are seven-day steps from the period's first day.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from handlers.impact.query import Period

WEEKS = (4, 12, 26, 52)
DEFAULT_WEEKS = 12
LONGEST = timedelta(days=5 * 366)


class PeriodError(ValueError):
    """A period that cannot be shown; the message says why, in words for the page."""


@dataclass(frozen=True, slots=True)
class Window:
    """The period shown, the one before it, and how it was asked for."""

    period: Period
    previous: Period
    first_day: date
    last_day: date  # inclusive
    weeks: int | None  # 4, 12, 26 or 52; None for a from–to period

    def query(self) -> dict[str, str]:
        """The query string that asks for this period again."""
        if self.weeks is not None:
            return {"weeks": str(self.weeks)}
        return {"from": self.first_day.isoformat(), "to": self.last_day.isoformat()}

    def weekly(self) -> list[Period]:
        """Seven-day steps from the first day; the last one may be shorter."""
        steps: list[Period] = []
        start = self.period.start
        while start < self.period.end:
            end = min(start + timedelta(days=7), self.period.end)
            steps.append(Period(start, end))
            start = end
        return steps

    @property
    def label(self) -> str:
        span = f"{self.first_day:%d %b %Y} – {self.last_day:%d %b %Y}"
        return f"Last {self.weeks} weeks ({span})" if self.weeks else span


def _midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz)


def _window(first: date, last: date, tz: ZoneInfo, weeks: int | None) -> Window:
    start, end = _midnight(first, tz), _midnight(last + timedelta(days=1), tz)
    days = (last - first).days + 1
    before = _midnight(first - timedelta(days=days), tz)
    return Window(Period(start, end), Period(before, start), first, last, weeks)


def _day(value: str, what: str) -> date:
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise PeriodError(
            f"The {what} date “{value[:40]}” is not a date: write it as YYYY-MM-DD."
        ) from None


def parse(query: Mapping[str, str], now: datetime, tz: ZoneInfo) -> Window:
    """The window a page's query string asks for; PeriodError says what is wrong with it."""
    today = now.astimezone(tz).date()
    start, end = query.get("from", "").strip(), query.get("to", "").strip()
    if start or end:
        if not (start and end):
            raise PeriodError("Give both a start and an end date, or choose a number of weeks.")
        first, last = _day(start, "start"), _day(end, "end")
        if first > last:
            raise PeriodError(
                f"The start date ({first.isoformat()}) is after the end date "
                f"({last.isoformat()}): swap them."
            )
        if last - first >= LONGEST:
            raise PeriodError("A period can be at most 5 years long: choose a shorter one.")
        return _window(first, last, tz, None)
    raw = query.get("weeks", "").strip() or str(DEFAULT_WEEKS)
    # Compared as text: int() would also read other scripts' digits.
    if raw not in {str(w) for w in WEEKS}:
        raise PeriodError("Choose 4, 12, 26 or 52 weeks.")
    weeks = int(raw)
    return _window(today - timedelta(days=7 * weeks - 1), today, tz, weeks)
