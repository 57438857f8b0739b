"""The loop as a funnel over a period, and the weekly series of the program page.

Every count is of something that happened in the period: a request asked, a +1 given, a
request claimed, a draft first sent for review, a version approved, a post published (from
a request, or other content shared with `share <url>` or a feed), a share button pressed
(an intent), a share confirmed (of a tracked link a person had clicked by the period's end), a
counted click (the tally; see `clicks`) and a win logged. The weekly series reuse
`totals.weekly_totals`, so a participant and a click mean what they mean in the digest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, literal, select, union_all
from sqlalchemy.sql import Select
from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.impact.clicks import click_totals, days, tally_zone
from handlers.impact.query import (
    MEMBER,
    POST,
    REQUEST,
    SHARE,
    VOTE,
    WIN,
    Period,
    rows,
    within,
)
from handlers.impact.totals import Totals, _acts, weekly_totals
from storage.models import AuditEvent, DraftVersion, TrackedLink

LINK: Any = TrackedLink.__table__  # type: ignore[attr-defined]
AUDIT: Any = AuditEvent.__table__  # type: ignore[attr-defined]
VERSION: Any = DraftVersion.__table__  # type: ignore[attr-defined]

STAGES = (
    "requests",
    "votes",
    "claimed",
    "drafted",
    "approved",
    "published_requested",
    "published_other",
    "share_intents",
    "shares_confirmed",
    "clicks",
    "wins",
)


@dataclass(frozen=True, slots=True)
class Funnel:
    """One period's funnel: how far the loop turned."""

    requests: int = 0
    votes: int = 0
    claimed: int = 0
    drafted: int = 0
    approved: int = 0
    published_requested: int = 0
    published_other: int = 0
    share_intents: int = 0
    shares_confirmed: int = 0
    clicks: int = 0
    wins: int = 0

    @property
    def published(self) -> int:
        return self.published_requested + self.published_other


async def funnels(
    session: AsyncSession, workspace_id: int, periods: Sequence[Period]
) -> list[Funnel]:
    """The funnel of each period (any periods, such as a period and the one before it)."""
    if not periods:
        return []

    def counted(name: str, table: Any, at: Any, *extra: Any) -> Select[Any]:
        columns = [func.count().filter(within(at, p.start, p.end)) for p in periods]
        start, end = min(p.start for p in periods), max(p.end for p in periods)
        return select(literal(name).label("figure"), *columns).where(
            table.c.workspace_id == workspace_id, within(at, start, end), *extra
        )

    tz = await tally_zone(session, workspace_id)
    # Shares of links a person had clicked by the period's end: each share's link read by its
    # key, with the day of its first click (kept by the click writer), so no click or tally
    # row is read; the periods in one pass.
    start, end = min(p.start for p in periods), max(p.end for p in periods)
    confirmed = (
        select(
            literal("shares_confirmed").label("figure"),
            *(
                func.count().filter(
                    within(SHARE.c.at, p.start, p.end),
                    LINK.c.first_click_day < days(p, tz).last,
                )
                for p in periods
            ),
        )
        .select_from(SHARE.join(LINK, LINK.c.id == SHARE.c.link_id))
        .where(SHARE.c.workspace_id == workspace_id, within(SHARE.c.at, start, end))
    )
    statement = union_all(
        confirmed,
        counted("requests", REQUEST, REQUEST.c.created_at),
        counted("votes", VOTE, VOTE.c.created_at),
        counted("claimed", REQUEST, REQUEST.c.claimed_at, REQUEST.c.claimed_at.is_not(None)),
        counted("drafted", VERSION, VERSION.c.submitted_at, VERSION.c.version == 1),
        counted("approved", AUDIT, AUDIT.c.created_at, AUDIT.c.action == "approved"),
        counted("published_requested", POST, POST.c.published_at, POST.c.request_id.is_not(None)),
        counted("published_other", POST, POST.c.published_at, POST.c.request_id.is_(None)),
        counted("share_intents", SHARE, SHARE.c.at),
        counted("wins", WIN, WIN.c.at),
    )
    figures: list[dict[str, int]] = [{} for _ in periods]
    for name, *values in await rows(session, statement):
        for i, n in enumerate(values):
            figures[i][name] = int(n or 0)
    for i, n in enumerate(await click_totals(session, workspace_id, periods)):
        figures[i]["clicks"] = n
    return [Funnel(**f) for f in figures]


@dataclass(frozen=True, slots=True)
class Week:
    """One week of the trends: the digest's headline numbers and first-time contributors."""

    period: Period
    totals: Totals
    first_timers: int


async def weeks(session: AsyncSession, workspace_id: int, periods: Sequence[Period]) -> list[Week]:
    """The weekly series: participants, shares, clicks, wins and first-time contributors."""
    totals = await weekly_totals(session, workspace_id, periods)
    firsts = await first_timers_by_period(session, workspace_id, periods)
    return [Week(p, t, n) for p, t, n in zip(periods, totals, firsts, strict=True)]


async def first_timers_by_period(
    session: AsyncSession, workspace_id: int, periods: Sequence[Period]
) -> list[int]:
    """How many people's first act of participation ever fell in each period."""
    if not periods:
        return []
    kinds = _acts(workspace_id, None, None)
    # Each member's first share is one probe of the share index, as in `first_timers`.
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
    columns = [func.count().filter(within(first.c.first, p.start, p.end)) for p in periods]
    [counts] = await rows(session, select(*columns))
    return [int(n or 0) for n in counts]
