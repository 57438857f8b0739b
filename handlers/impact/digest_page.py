"""A sent digest read back for its web page and its chart: found by code, with its figures
and the names of the people it mentions."""

from __future__ import annotations

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.impact.digest_figures import Figures
from handlers.impact.digest_sweep import NOTES
from storage.models import Digest, Member


async def by_code(
    session: AsyncSession, *, chart: str | None = None, page: str | None = None
) -> Digest | None:
    """The digest with this chart or page code, or None."""
    query = select(Digest).where(
        Digest.chart_code == chart if chart is not None else Digest.page_code == page,
        Digest.channel != NOTES,
    )
    return (await session.exec(query)).first()


def figures_of(digest: Digest) -> Figures | None:
    """The figures the digest was sent with, or None for a row that kept none."""
    return None if digest.figures is None else Figures.model_validate(digest.figures)


async def names(session: AsyncSession, workspace_id: int, f: Figures) -> dict[str, str]:
    """Display names of everyone a digest mentions, by user id (the id where none is known)."""
    users = {
        *f.first_timers,
        *(r.author for r in f.top_posts if r.author),
        *(r.label for r in f.top_sharers),
        *(r.label for r in f.top_experts),
        *(w.member for w in f.wins),
        *(r.requester for r in f.open_requests),
    }
    if not users:
        return {}
    query = select(Member.user_id, Member.name).where(
        Member.workspace_id == workspace_id, col(Member.user_id).in_(sorted(users))
    )
    return {user: name or user for user, name in (await session.exec(query)).all()}
