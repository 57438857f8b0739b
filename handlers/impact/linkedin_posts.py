"""Confirmed LinkedIn posts: posts LinkedIn answered for with a URN, counted apart from
share intents (button presses), in all, per person and per post."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.impact.query import Period, rows, within
from handlers.linkedin.status import LinkedInPostStatus
from storage.models import LinkedInPost


@dataclass(frozen=True)
class Confirmed:
    """Confirmed LinkedIn posts in a period."""

    total: int = 0
    by_member: Counter[int] = field(default_factory=Counter)
    by_post: Counter[int] = field(default_factory=Counter)


async def confirmed(session: AsyncSession, workspace_id: int, period: Period) -> Confirmed:
    """Posts published on LinkedIn through Flywheel in `period`, by member and by post."""
    table = LinkedInPost.__table__  # type: ignore[attr-defined]
    found = await rows(
        session,
        select(table.c.member_id, table.c.post_id).where(
            table.c.workspace_id == workspace_id,
            table.c.status == LinkedInPostStatus.POSTED.value,
            within(table.c.posted_at, period.start, period.end),
        ),
    )
    by_member: Counter[int] = Counter(member for member, _ in found)
    by_post: Counter[int] = Counter(post for _, post in found)
    return Confirmed(len(found), by_member, by_post)
