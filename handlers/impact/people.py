"""One person's part of the loop in a period: as a sharer, an author and a requester."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.impact.clicks import days_of
from handlers.impact.query import MEMBER, POST, REQUEST, SHARE, WIN, Period, rows, within
from handlers.impact.reach import by_author, reach


@dataclass(frozen=True, slots=True)
class PersonFigures:
    """What one person's part of the loop did in a period."""

    member_id: int
    user_id: str
    # as a sharer
    shares: int = 0
    clicks: int = 0
    # as an author: reach of their posts, wins on them, and who shared them
    post_shares: int = 0
    post_clicks: int = 0
    post_wins: int = 0
    sharers: tuple[str, ...] = ()
    # as a requester, and wins they logged
    requests: int = 0
    posts: int = 0
    wins_logged: int = 0


async def people(
    session: AsyncSession,
    workspace_id: int,
    period: Period,
    member_id: int | None = None,
    *,
    with_sharers: bool = True,
) -> dict[int, PersonFigures]:
    """Per person (or for one), what their shares, posts, requests and wins did; without
    `with_sharers`, who shared each author's posts is left out (a long period's tables)."""
    figures: dict[int, dict[str, Any]] = {}

    def add(member: int, **values: Any) -> None:
        figures.setdefault(member, {}).update(values)

    def only(column: Any) -> list[Any]:
        return [] if member_id is None else [column == member_id]

    span = await days_of(session, workspace_id, period)
    sharing = reach(workspace_id, period, span, "member_id").subquery()
    for k, s, c in await rows(
        session,
        select(sharing.c.k, sharing.c.shares, sharing.c.clicks).where(*only(sharing.c.k)),
    ):
        add(int(k), shares=int(s), clicks=int(c))
    by_post = reach(workspace_id, period, span, "post_id").subquery()
    authors = by_author(workspace_id, period, by_post)
    for author, s, c, published in await rows(
        session,
        select(authors.c.author, authors.c.shares, authors.c.clicks, authors.c.published).where(
            *only(authors.c.author)
        ),
    ):
        add(int(author), post_shares=int(s), post_clicks=int(c), posts=int(published))
    post_wins = (
        select(POST.c.author_id, func.count())
        .join(WIN, WIN.c.post_id == POST.c.id)
        .where(
            POST.c.workspace_id == workspace_id,
            within(WIN.c.at, period.start, period.end),
            *only(POST.c.author_id),
        )
        .group_by(POST.c.author_id)
    )
    for author, n in await rows(session, post_wins):
        add(int(author), post_wins=int(n))
    sharers = (
        select(POST.c.author_id, MEMBER.c.user_id)
        .join(SHARE, SHARE.c.post_id == POST.c.id)
        .join(MEMBER, MEMBER.c.id == SHARE.c.member_id)
        .where(
            POST.c.workspace_id == workspace_id,
            within(SHARE.c.at, period.start, period.end),
            SHARE.c.member_id != POST.c.author_id,
            *only(POST.c.author_id),
        )
        .group_by(POST.c.author_id, MEMBER.c.user_id)
        .order_by(POST.c.author_id, func.count().desc(), MEMBER.c.user_id)
    )
    names: dict[int, list[str]] = {}
    found = await rows(session, sharers) if with_sharers else []
    for author, user in found:
        names.setdefault(int(author), []).append(user)
    for author, users in names.items():
        add(author, sharers=tuple(users))
    for figure, member, table, at in (
        ("requests", REQUEST.c.requester_id, REQUEST, REQUEST.c.created_at),
        ("wins_logged", WIN.c.member_id, WIN, WIN.c.at),
    ):
        made = (
            select(member, func.count())
            .where(
                table.c.workspace_id == workspace_id,
                within(at, period.start, period.end),
                *only(member),
            )
            .group_by(member)
        )
        for who, n in await rows(session, made):
            add(int(who), **{figure: int(n)})
    if not figures:
        return {}
    user_ids: dict[int, str] = dict(
        await rows(
            session,
            select(MEMBER.c.id, MEMBER.c.user_id).where(MEMBER.c.id.in_(list(figures))),
        )
    )
    return {
        m: PersonFigures(member_id=m, user_id=user_ids[m], **values)
        for m, values in figures.items()
        if m in user_ids
    }


@dataclass(frozen=True, slots=True)
class RequestOutcome:
    """What became of a request, for the person who asked."""

    request_id: int
    requester_id: int
    topic: str
    status: str
    assignee: str | None
    post_title: str | None
    shares: int
    clicks: int
    wins: int


async def request_outcomes(
    session: AsyncSession, workspace_id: int, period: Period, requester_id: int | None = None
) -> list[RequestOutcome]:
    """Requests that moved in the period: asked, claimed, published, or whose post travelled
    (only `requester_id`'s, if given)."""
    span = await days_of(session, workspace_id, period)
    reached = reach(workspace_id, period, span, "post_id").subquery()
    post_wins = (
        select(WIN.c.post_id.label("post_id"), func.count().label("wins"))
        .where(
            WIN.c.workspace_id == workspace_id,
            WIN.c.post_id.is_not(None),
            within(WIN.c.at, period.start, period.end),
        )
        .group_by(WIN.c.post_id)
        .subquery()
    )
    assignee = MEMBER.alias("assignee")
    query = (
        select(
            REQUEST.c.id,
            REQUEST.c.requester_id,
            REQUEST.c.topic,
            REQUEST.c.status,
            assignee.c.user_id,
            POST.c.title,
            func.coalesce(reached.c.shares, 0),
            func.coalesce(reached.c.clicks, 0),
            func.coalesce(post_wins.c.wins, 0),
        )
        .outerjoin(assignee, assignee.c.id == REQUEST.c.assignee_id)
        .outerjoin(POST, POST.c.request_id == REQUEST.c.id)
        .outerjoin(reached, reached.c.k == POST.c.id)
        .outerjoin(post_wins, post_wins.c.post_id == POST.c.id)
        .where(
            REQUEST.c.workspace_id == workspace_id,
            *([] if requester_id is None else [REQUEST.c.requester_id == requester_id]),
            or_(
                within(REQUEST.c.created_at, period.start, period.end),
                within(REQUEST.c.claimed_at, period.start, period.end),
                within(POST.c.published_at, period.start, period.end),
                reached.c.k.is_not(None),
                post_wins.c.post_id.is_not(None),
            ),
        )
        .order_by(REQUEST.c.requester_id, REQUEST.c.id)
    )
    return [
        RequestOutcome(i, r, t, s, a, title, int(sh), int(cl), int(w))
        for i, r, t, s, a, title, sh, cl, w in await rows(session, query)
    ]
