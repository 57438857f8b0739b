"""Reach: the shares and counted clicks of a period, by post, by sharer or by author."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Integer, cast, func, literal, select, union_all
from sqlalchemy.sql import Select

from handlers.impact.clicks import Days, clicks
from handlers.impact.query import POST, SHARE, Period, within


def reach(workspace_id: int, period: Period, span: Days, key: str) -> Select[Any]:
    """Shares and counted clicks in the period as (k, shares, clicks), by `key`.

    `key` is post_id or member_id (the sharer).
    """
    shares = (
        select(
            SHARE.c[key].label("k"),
            func.count().label("shares"),
            literal(0).label("clicks"),
        )
        .where(SHARE.c.workspace_id == workspace_id, within(SHARE.c.at, period.start, period.end))
        .group_by(SHARE.c[key])
    )
    counted = clicks(workspace_id, span, key)
    clicked = select(
        counted.c[key].label("k"),
        literal(0).label("shares"),
        func.sum(counted.c.clicks).label("clicks"),
    ).group_by(counted.c[key])
    both = union_all(shares, clicked).subquery()
    return select(
        both.c.k.label("k"),
        cast(func.sum(both.c.shares), Integer).label("shares"),
        cast(func.sum(both.c.clicks), Integer).label("clicks"),
    ).group_by(both.c.k)


def by_author(workspace_id: int, period: Period, by_post: Any) -> Any:
    """Per author: shares of and clicks on their posts, and posts published in the period.

    `by_post` is the period's reach by post_id (a subquery or a CTE of `reach`), so a caller
    that also ranks the posts reads the clicks once.
    """
    reached = (
        select(
            POST.c.author_id.label("author"),
            by_post.c.shares.label("shares"),
            by_post.c.clicks.label("clicks"),
            literal(0).label("published"),
        )
        .join(by_post, by_post.c.k == POST.c.id)
        .where(POST.c.workspace_id == workspace_id)
    )
    published = select(
        POST.c.author_id.label("author"),
        literal(0).label("shares"),
        literal(0).label("clicks"),
        literal(1).label("published"),
    ).where(
        POST.c.workspace_id == workspace_id,
        within(POST.c.published_at, period.start, period.end),
    )
    both = union_all(reached, published).subquery()
    return (
        select(
            both.c.author.label("author"),
            cast(func.sum(both.c.shares), Integer).label("shares"),
            cast(func.sum(both.c.clicks), Integer).label("clicks"),
            cast(func.sum(both.c.published), Integer).label("published"),
        )
        .group_by(both.c.author)
        .subquery()
    )
