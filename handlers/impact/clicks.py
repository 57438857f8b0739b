"""Clicks as the figures read them: the tally for whole days, click rows for parts of days.

A click counts when it is neither a preview nor a repeat (see handlers/sharing/visits.py).
Clicks are read from the tally the click writer keeps per day in the workspace's time zone:
a period's whole local days add up tally rows, and only the part of a day a period covers
partly (`stats` runs until now) counts click rows. The digest's weeks run from local
midnight to local midnight, so they read the tally alone, and their totals read the tally's
days added up (`daily_clicks`): one row a day.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, literal, select, union_all
from sqlalchemy.sql import Select
from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.impact.query import CLICK, DAILY, TALLY, Period, counted, rows, within
from handlers.sharing import visits


@dataclass(frozen=True, slots=True)
class Days:
    """A period as the tally sees it: whole local days [first, last), and the rest."""

    first: date
    last: date
    partial: tuple[Period, ...]  # parts of days the period covers only partly


async def tally_zone(session: AsyncSession, workspace_id: int) -> ZoneInfo:
    """The zone the tally's days are in: the stored one, read once per unit of work."""
    known: dict[int, ZoneInfo] = session.info.setdefault("tally_zones", {})
    if workspace_id not in known:
        known.update(await visits.tally_zones(session, [workspace_id]))
    return known[workspace_id]


async def days_of(session: AsyncSession, workspace_id: int, period: Period) -> Days:
    """`period` in the workspace's tally days."""
    return days(period, await tally_zone(session, workspace_id))


def _midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def days(period: Period, tz: ZoneInfo) -> Days:
    """`period` as whole local days in `tz`, and the parts of days around them."""
    first = period.start.astimezone(tz).date()
    if _midnight(first, tz) < period.start:
        first += timedelta(days=1)
    last = period.end.astimezone(tz).date()
    if last <= first:
        return Days(first, first, (period,))
    partial = []
    if period.start < _midnight(first, tz):
        partial.append(Period(period.start, _midnight(first, tz)))
    if _midnight(last, tz) < period.end:
        partial.append(Period(_midnight(last, tz), period.end))
    return Days(first, last, tuple(partial))


def clicks(workspace_id: int, span: Days, *keys: str) -> Any:
    """Counted clicks of a period as rows of (*keys, clicks), to be added up by the caller."""
    parts: list[Select[Any]] = []
    if span.first < span.last:
        parts.append(
            select(*(TALLY.c[k] for k in keys), TALLY.c.clicks.label("clicks")).where(
                TALLY.c.workspace_id == workspace_id,
                TALLY.c.day >= span.first,
                TALLY.c.day < span.last,
            )
        )
    parts += [
        select(*(CLICK.c[k] for k in keys), literal(1).label("clicks")).where(
            CLICK.c.workspace_id == workspace_id,
            within(CLICK.c.at, part.start, part.end),
            counted(CLICK),
        )
        for part in span.partial
    ]
    return (parts[0] if len(parts) == 1 else union_all(*parts)).subquery()


async def click_totals(
    session: AsyncSession, workspace_id: int, periods: Sequence[Period]
) -> list[int]:
    """Counted clicks of each period: the day totals of whole days, plus any partial days."""
    tz = await tally_zone(session, workspace_id)
    spans = [days(p, tz) for p in periods]
    totals = [0] * len(periods)
    whole = [(i, d) for i, d in enumerate(spans) if d.first < d.last]
    if whole:
        by_day = select(DAILY.c.day, DAILY.c.clicks).where(
            DAILY.c.workspace_id == workspace_id,
            DAILY.c.day >= min(d.first for _, d in whole),
            DAILY.c.day < max(d.last for _, d in whole),
        )
        for day, n in await rows(session, by_day):
            # SQLite hands dates back as text.
            day = date.fromisoformat(day) if isinstance(day, str) else day
            for i, d in whole:
                if d.first <= day < d.last:
                    totals[i] += int(n)
    partial = [
        select(literal(i).label("i"), func.count().label("n")).where(
            CLICK.c.workspace_id == workspace_id,
            within(CLICK.c.at, part.start, part.end),
            counted(CLICK),
        )
        for i, d in enumerate(spans)
        for part in d.partial
    ]
    if partial:
        for i, n in await rows(session, union_all(*partial)):
            totals[int(i)] += int(n)
    return totals
