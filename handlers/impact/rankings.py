"""The week's lists: top posts, sharers and experts, the wins logged, and open requests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, literal, null, select, union_all
from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.core.lifecycle import Status
from handlers.impact.clicks import days_of
from handlers.impact.query import MEMBER, POST, REQUEST, VOTE, WIN, Period, count, rows, within
from handlers.impact.reach import by_author, reach

# Requests that still need an expert: nobody took them yet, or nobody could.
NEEDS_EXPERT = (Status.OPEN.value, Status.DECLINED.value)


@dataclass(frozen=True, slots=True)
class Ranked:
    """A post, sharer or expert with what it did in the period."""

    id: int
    label: str  # a post's title; a person's platform user id
    shares: int
    clicks: int
    extra: int = 0  # experts: posts published in the period
    author: str | None = None  # posts: the author's user id


@dataclass(frozen=True, slots=True)
class LoggedWin:
    member: str
    kind: str
    account: str
    description: str
    value: int | None
    post: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class OpenRequest:
    id: int
    topic: str
    requester: str
    status: str
    votes: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Rankings:
    posts: list[Ranked]
    posts_total: int
    sharers: list[Ranked]
    sharers_total: int
    experts: list[Ranked]
    experts_total: int


def _people(kind: str, figures: Any, member_id: Any, extra: Any | None, *, limit: int) -> Any:
    """The top `limit` people of `figures` (shares, clicks and any `extra` per `member_id`):
    by clicks, then shares, then `extra`, then user id, with how many there are in all."""
    ties = [] if extra is None else [extra.desc()]
    return (
        select(
            literal(kind).label("kind"),
            MEMBER.c.id.label("id"),
            MEMBER.c.user_id.label("label"),
            null().label("author"),
            figures.c.shares.label("shares"),
            figures.c.clicks.label("clicks"),
            (literal(0) if extra is None else extra).label("extra"),
            func.count().over().label("total"),
        )
        .join(MEMBER, MEMBER.c.id == member_id)
        .order_by(figures.c.clicks.desc(), figures.c.shares.desc(), *ties, MEMBER.c.user_id)
        .limit(limit)
        .subquery()
    )


async def rankings(
    session: AsyncSession, workspace_id: int, period: Period, limit: int
) -> Rankings:
    """Top posts, sharers and experts of the period, and how many of each, in one statement.

    Shares and tallied clicks are added up by post and by sharer, a few thousand groups
    each; experts are ranked from the posts' figures, so the clicks are read once per key.
    """
    span = await days_of(session, workspace_id, period)
    by_post = reach(workspace_id, period, span, "post_id").cte("by_post")
    by_sharer = reach(workspace_id, period, span, "member_id").subquery()
    author = MEMBER.alias("author")
    posts = (
        select(
            literal("post").label("kind"),
            POST.c.id.label("id"),
            POST.c.title.label("label"),
            author.c.user_id.label("author"),
            by_post.c.shares.label("shares"),
            by_post.c.clicks.label("clicks"),
            literal(0).label("extra"),
            func.count().over().label("total"),
        )
        .join(POST, POST.c.id == by_post.c.k)
        .join(author, author.c.id == POST.c.author_id)
        .order_by(by_post.c.clicks.desc(), by_post.c.shares.desc(), POST.c.id)
        .limit(limit)
        .subquery()
    )
    sharers = _people("sharer", by_sharer, by_sharer.c.k, None, limit=limit)
    authors = by_author(workspace_id, period, by_post)
    experts = _people("expert", authors, authors.c.author, authors.c.published, limit=limit)
    everything = union_all(*(select(q) for q in (posts, sharers, experts)))
    found: dict[str, list[Ranked]] = {"post": [], "sharer": [], "expert": []}
    totals: dict[str, int] = {}
    for kind, i, label, by, s, c, extra, total in await rows(session, everything):
        found[kind].append(
            Ranked(
                id=int(i), label=label, shares=int(s), clicks=int(c), extra=int(extra), author=by
            )
        )
        totals[kind] = int(total)
    # The union keeps no order: each list is put back in the order its LIMIT ranked it by.
    found["post"].sort(key=lambda r: (-r.clicks, -r.shares, r.id))
    found["sharer"].sort(key=lambda r: (-r.clicks, -r.shares, r.label))
    found["expert"].sort(key=lambda r: (-r.clicks, -r.shares, -r.extra, r.label))
    return Rankings(
        found["post"],
        totals.get("post", 0),
        found["sharer"],
        totals.get("sharer", 0),
        found["expert"],
        totals.get("expert", 0),
    )


async def wins(
    session: AsyncSession, workspace_id: int, period: Period, limit: int
) -> tuple[list[LoggedWin], int]:
    """Wins logged in the period, newest first, and how many there were."""
    in_period = and_(WIN.c.workspace_id == workspace_id, within(WIN.c.at, period.start, period.end))
    query = (
        select(
            MEMBER.c.user_id,
            WIN.c.kind,
            WIN.c.account,
            WIN.c.description,
            WIN.c.value,
            POST.c.title,
            WIN.c.at,
        )
        .join(MEMBER, MEMBER.c.id == WIN.c.member_id)
        .outerjoin(POST, POST.c.id == WIN.c.post_id)
        .where(in_period)
        .order_by(WIN.c.at.desc(), WIN.c.id.desc())
        .limit(limit)
    )
    logged = [LoggedWin(*row) for row in await rows(session, query)]
    return logged, await count(session, select(func.count()).select_from(WIN).where(in_period))


async def open_requests(
    session: AsyncSession, workspace_id: int, limit: int
) -> tuple[list[OpenRequest], int]:
    """Requests that still need an expert, most wanted first, and how many there are."""
    votes = (
        select(VOTE.c.request_id, func.count().label("votes"))
        .where(VOTE.c.workspace_id == workspace_id)
        .group_by(VOTE.c.request_id)
        .subquery()
    )
    waiting = and_(REQUEST.c.workspace_id == workspace_id, REQUEST.c.status.in_(NEEDS_EXPERT))
    n_votes = func.coalesce(votes.c.votes, 0)
    query = (
        select(
            REQUEST.c.id,
            REQUEST.c.topic,
            MEMBER.c.user_id,
            REQUEST.c.status,
            n_votes,
            REQUEST.c.created_at,
        )
        .join(MEMBER, MEMBER.c.id == REQUEST.c.requester_id)
        .outerjoin(votes, votes.c.request_id == REQUEST.c.id)
        .where(waiting)
        .order_by(n_votes.desc(), REQUEST.c.created_at, REQUEST.c.id)
        .limit(limit)
    )
    found = [
        OpenRequest(id=i, topic=t, requester=u, status=s, votes=int(v), created_at=c)
        for i, t, u, s, v, c in await rows(session, query)
    ]
    return found, await count(session, select(func.count()).select_from(REQUEST).where(waiting))
