"""Every post's reach in a period: shares by network, counted clicks and wins."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.impact.clicks import days_of
from handlers.impact.query import MEMBER, POST, SHARE, WIN, Period, rows, within
from handlers.impact.reach import reach
from handlers.sharing.share import SHARE_NETWORKS


@dataclass(frozen=True, slots=True)
class PostReach:
    id: int
    title: str
    author: str
    published_at: datetime
    from_request: bool
    shares_by_network: dict[str, int] = field(default_factory=dict)
    clicks: int = 0
    wins: int = 0

    @property
    def shares(self) -> int:
        return sum(self.shares_by_network.values())


async def post_reach(
    session: AsyncSession, workspace_id: int, period: Period, author_id: int | None = None
) -> list[PostReach]:
    """Posts published in the period or shared, clicked or credited with a win in it
    (only `author_id`'s, if given), most clicked first."""
    span = await days_of(session, workspace_id, period)
    theirs = select(POST.c.id).where(POST.c.author_id == author_id).scalar_subquery()

    def mine(column: Any) -> list[Any]:
        """Only the author's posts, when an author is given."""
        return [] if author_id is None else [column.in_(theirs)]

    reached = reach(workspace_id, period, span, "post_id").subquery()
    clicks: dict[int, int] = {}
    networks: dict[int, dict[str, int]] = {}
    wins: dict[int, int] = {}
    for post, _shares, n in await rows(session, select(reached).where(*mine(reached.c.k))):
        clicks[int(post)] = int(n)
    by_network = (
        select(SHARE.c.post_id, SHARE.c.network, func.count())
        .where(
            SHARE.c.workspace_id == workspace_id,
            within(SHARE.c.at, period.start, period.end),
            *mine(SHARE.c.post_id),
        )
        .group_by(SHARE.c.post_id, SHARE.c.network)
    )
    for post, network, n in await rows(session, by_network):
        networks.setdefault(int(post), {})[str(network)] = int(n)
    credited = (
        select(WIN.c.post_id, func.count())
        .where(
            WIN.c.workspace_id == workspace_id,
            WIN.c.post_id.is_not(None),
            within(WIN.c.at, period.start, period.end),
            *mine(WIN.c.post_id),
        )
        .group_by(WIN.c.post_id)
    )
    for post, n in await rows(session, credited):
        wins[int(post)] = int(n)
    published = select(POST.c.id).where(
        POST.c.workspace_id == workspace_id,
        within(POST.c.published_at, period.start, period.end),
        *mine(POST.c.id),
    )
    ids = {*clicks, *networks, *wins, *(int(p) for (p,) in await rows(session, published))}
    if not ids:
        return []
    posts = (
        select(
            POST.c.id,
            POST.c.title,
            MEMBER.c.user_id,
            POST.c.published_at,
            POST.c.request_id,
            POST.c.author_id,
        )
        .join(MEMBER, MEMBER.c.id == POST.c.author_id)
        .where(POST.c.workspace_id == workspace_id, POST.c.id.in_(sorted(ids)))
    )
    if author_id is not None:
        posts = posts.where(POST.c.author_id == author_id)
    found = [
        PostReach(
            id=int(i),
            title=title,
            author=author,
            published_at=at,
            from_request=request is not None,
            shares_by_network={n: networks.get(int(i), {}).get(n, 0) for n in SHARE_NETWORKS},
            clicks=clicks.get(int(i), 0),
            wins=wins.get(int(i), 0),
        )
        for i, title, author, at, request, _by in await rows(session, posts)
    ]
    return sorted(found, key=lambda p: (-p.clicks, -p.shares, p.id))
