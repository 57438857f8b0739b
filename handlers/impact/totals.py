"""A workspace's headline numbers: requests, posts, shares, clicks, wins and participants.

A participant is anyone who, in the period, asked for content, +1'd a request, claimed one,
published a post, shared one or logged a win; clicks come from outside and do not count.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Float, case, cast, func, literal, or_, select, union_all
from sqlalchemy.sql import Select
from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.impact.clicks import click_totals
from handlers.impact.query import MEMBER, POST, REQUEST, SHARE, VOTE, WIN, Period, rows, within
from storage.upsert import on_postgres


@dataclass(frozen=True, slots=True)
class Totals:
    """One period's headline numbers."""

    requests: int = 0
    posts: int = 0
    # Of `posts`, those that came from outside the loop (shared links and feeds): the rest
    # were drafted for a request, which is how the program sees the loop itself growing.
    outside_posts: int = 0
    shares: int = 0
    clicks: int = 0
    wins: int = 0
    participants: int = 0


def _bucket(column: Any, periods: Sequence[Period], first: int = 0, last: int = -1) -> Any:
    """The index of the period `column` falls in (periods are consecutive and ordered), as a
    halving CASE: a year of weeks costs each row six comparisons rather than up to 52."""
    last = len(periods) if last < 0 else last
    if last - first == 1:
        return case((column < periods[first].end, first), else_=None)
    middle = (first + last) // 2
    return case(
        (column < periods[middle].start, _bucket(column, periods, first, middle)),
        else_=_bucket(column, periods, middle, last),
    )


def _acts(workspace_id: int, start: datetime | None, end: datetime | None) -> dict[str, Any]:
    """(member_id, at) of every act of participation by kind, optionally within [start, end)."""

    def part(member: Any, at: Any, table: Any, *extra: Any) -> Select[Any]:
        conditions = [table.c.workspace_id == workspace_id, *extra]
        if start is not None and end is not None:
            conditions.append(within(at, start, end))
        return select(member.label("member_id"), at.label("at")).where(*conditions)

    return {
        "requests": part(REQUEST.c.requester_id, REQUEST.c.created_at, REQUEST),
        "votes": part(VOTE.c.member_id, VOTE.c.created_at, VOTE),
        "claims": part(
            REQUEST.c.assignee_id,
            REQUEST.c.claimed_at,
            REQUEST,
            REQUEST.c.assignee_id.is_not(None),
            REQUEST.c.claimed_at.is_not(None),
        ),
        "posts": part(POST.c.author_id, POST.c.published_at, POST),
        "shares": part(SHARE.c.member_id, SHARE.c.at, SHARE),
        "wins": part(WIN.c.member_id, WIN.c.at, WIN),
    }


def _activity(workspace_id: int, start: datetime | None, end: datetime | None) -> Any:
    """Every act of participation as one (member_id, at) subquery."""
    return union_all(*_acts(workspace_id, start, end).values()).subquery()


async def weekly_totals(
    session: AsyncSession, workspace_id: int, periods: Sequence[Period]
) -> list[Totals]:
    """Headline numbers for consecutive periods (the digest's weeks), in a few statements."""
    if not periods:
        return []
    start, end = periods[0].start, periods[-1].end

    def counted(name: str, table: Any, at: Any, *extra: Any) -> Select[Any]:
        # Rows before each period's end, in one pass without grouping: each week's count is
        # the difference of two of these (a CASE bucket and a GROUP BY cost twice as much).
        before = [func.count().filter(at < p.end) for p in periods]
        return select(literal(name).label("figure"), *before).where(
            table.c.workspace_id == workspace_id, within(at, start, end), *extra
        )

    statement = union_all(
        counted("requests", REQUEST, REQUEST.c.created_at),
        counted("posts", POST, POST.c.published_at),
        counted("outside_posts", POST, POST.c.published_at, POST.c.source != "request"),
        counted("shares", SHARE, SHARE.c.at),
        counted("wins", WIN, WIN.c.at),
    )
    figures: list[dict[str, int]] = [{} for _ in periods]
    for name, *cumulative in await rows(session, statement):
        previous = 0
        for i, total in enumerate(cumulative):
            figures[i][name] = int(total or 0) - previous
            previous = int(total or 0)
    for i, n in enumerate(await click_totals(session, workspace_id, periods)):
        figures[i]["clicks"] = n
    acts = _activity(workspace_id, start, end)
    bucket = _bucket(acts.c.at, periods)
    # Each (week, person) once, then people per week: a hashed GROUP BY, where a count
    # (DISTINCT) per week would sort every act of the eight weeks.
    pairs = (
        select(bucket.label("bucket"), acts.c.member_id)
        .group_by(bucket, acts.c.member_id)
        .subquery()
    )
    people = select(pairs.c.bucket, func.count()).group_by(pairs.c.bucket)
    for bucket, n in await rows(session, people):
        if bucket is not None:
            figures[int(bucket)]["participants"] = int(n)
    return [Totals(**f) for f in figures]


async def first_timers(session: AsyncSession, workspace_id: int, period: Period) -> list[str]:
    """User ids of the people whose first act of participation ever fell in the period."""
    kinds = _acts(workspace_id, None, None)
    # Shares are most of all activity: each member's first is one probe of the share index
    # on (member_id, at), so this follows the number of members, not the years of shares.
    first_share = (
        select(func.min(SHARE.c.at))
        .where(SHARE.c.workspace_id == workspace_id, SHARE.c.member_id == MEMBER.c.id)
        .scalar_subquery()
    )
    kinds["shares"] = select(MEMBER.c.id.label("member_id"), first_share.label("at")).where(
        MEMBER.c.workspace_id == workspace_id
    )
    acts = union_all(*kinds.values()).subquery()
    first = (
        select(acts.c.member_id, func.min(acts.c.at).label("first"))
        .group_by(acts.c.member_id)
        .subquery()
    )
    query = (
        select(MEMBER.c.user_id)
        .join(first, first.c.member_id == MEMBER.c.id)
        .where(first.c.first >= period.start, first.c.first < period.end)
        .order_by(first.c.first, MEMBER.c.user_id)
    )
    return [row[0] for row in await rows(session, query)]


def _seconds_between(session: AsyncSession, later: Any, earlier: Any) -> Any:
    if on_postgres(session):
        return func.round(cast(func.extract("epoch", later - earlier), Float))
    # SQLite keeps naive UTC text: julianday reads it; a day is 86,400 seconds.
    return func.round((func.julianday(later) - func.julianday(earlier)) * 86400.0)


async def median_turnaround(
    session: AsyncSession, workspace_id: int, period: Period
) -> float | None:
    """Median seconds from request to published, over the posts published in the period."""
    seconds = _seconds_between(session, POST.c.published_at, REQUEST.c.created_at)
    durations = (
        select(
            seconds.label("d"),
            func.row_number().over(order_by=seconds).label("rn"),
            func.count().over().label("n"),
        )
        .select_from(POST.join(REQUEST, REQUEST.c.id == POST.c.request_id))
        .where(
            POST.c.workspace_id == workspace_id,
            within(POST.c.published_at, period.start, period.end),
        )
        .subquery()
    )
    # The middle row, or the mean of the two middle rows: integer division in both databases.
    query = select(func.avg(durations.c.d)).where(
        or_(
            durations.c.rn == (durations.c.n + 1) // 2,
            durations.c.rn == (durations.c.n + 2) // 2,
        )
    )
    value = (await rows(session, query))[0][0]
    return None if value is None else float(value)
