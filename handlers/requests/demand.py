"""Demand: how many people want a request, and the requests no expert could take.

Read by every flow that shows a request: capture, pings, home, stats and digests.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func
from sqlmodel import col, select

from handlers.core.context import Scope
from handlers.core.lifecycle import Status
from storage.models import ContentRequest, Vote


def wanted(votes: int) -> str:
    """How many people want a request: its requester plus the +1s."""
    return "1 person wants this" if votes == 0 else f"{votes + 1} people want this"


async def vote_counts(ctx: Scope, request_ids: Sequence[int]) -> dict[int, int]:
    """+1s per request, in one query."""
    if not request_ids:
        return {}
    query = (
        select(Vote.request_id, func.count())
        .where(Vote.workspace_id == ctx.workspace_id, col(Vote.request_id).in_(request_ids))
        .group_by(col(Vote.request_id))
    )
    return {request_id: int(n) for request_id, n in (await ctx.session.exec(query)).all()}


async def unmet(scope: Scope, limit: int = 10) -> list[tuple[ContentRequest, int]]:
    """Requests no expert took, most wanted first."""
    votes = func.count(col(Vote.id))
    query = (
        select(ContentRequest, votes)
        .outerjoin(Vote, col(Vote.request_id) == ContentRequest.id)
        .where(
            ContentRequest.workspace_id == scope.workspace_id,
            ContentRequest.status == Status.DECLINED,
        )
        .group_by(col(ContentRequest.id))
        .order_by(votes.desc(), col(ContentRequest.id).desc())
        .limit(limit)
    )
    return [(request, int(n)) for request, n in (await scope.session.exec(query)).all()]
