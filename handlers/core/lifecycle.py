"""The content-request state machine: every status change goes through `transition`."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import update
from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.core.errors import InvalidTransition
from storage.models import ContentRequest


class Status(StrEnum):
    OPEN = "open"
    CLAIMED = "claimed"
    IN_REVIEW = "in_review"
    CHANGES_REQUESTED = "changes_requested"
    APPROVED = "approved"
    PUBLISHED = "published"
    DECLINED = "declined"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


ALLOWED: dict[Status, frozenset[Status]] = {
    Status.OPEN: frozenset({Status.CLAIMED, Status.DECLINED, Status.CANCELLED, Status.EXPIRED}),
    Status.CLAIMED: frozenset({Status.OPEN, Status.IN_REVIEW, Status.CANCELLED, Status.EXPIRED}),
    Status.IN_REVIEW: frozenset(
        {Status.CHANGES_REQUESTED, Status.APPROVED, Status.DECLINED, Status.CANCELLED}
    ),
    Status.CHANGES_REQUESTED: frozenset({Status.IN_REVIEW, Status.CANCELLED, Status.EXPIRED}),
    Status.APPROVED: frozenset({Status.PUBLISHED}),
    Status.PUBLISHED: frozenset(),
    Status.DECLINED: frozenset({Status.OPEN}),
    Status.CANCELLED: frozenset(),
    Status.EXPIRED: frozenset({Status.OPEN}),
}

# Statuses in which a request still asks for something and can gather +1s.
ACTIVE = frozenset({Status.OPEN, Status.CLAIMED, Status.IN_REVIEW, Status.CHANGES_REQUESTED})

LABELS: dict[Status, str] = {
    Status.OPEN: "waiting for an expert",
    Status.CLAIMED: "being drafted",
    Status.IN_REVIEW: "in review",
    Status.CHANGES_REQUESTED: "being revised",
    Status.APPROVED: "approved",
    Status.PUBLISHED: "published",
    Status.DECLINED: "no expert found yet",
    Status.CANCELLED: "cancelled",
    Status.EXPIRED: "expired",
}


def transition(current: str | Status, target: Status) -> Status:
    """Return `target` if the move from `current` is allowed, else raise politely."""
    status = Status(current)
    if target not in ALLOWED[status]:
        raise InvalidTransition(
            f"This request is {LABELS[status]}, so it can't be {target.value.replace('_', ' ')}."
        )
    return target


async def move(
    session: AsyncSession,
    request: ContentRequest,
    target: Status,
    now: datetime,
    **changes: Any,
) -> bool:
    """Move a request to `target` if it is still in the status it was read in.

    The check and the write are one UPDATE, so of two people acting at once exactly one
    wins; the loser gets False and the request as it now is (refreshed).
    """
    current = Status(request.status)
    transition(current, target)
    table = ContentRequest.__table__  # type: ignore[attr-defined]
    result = await session.exec(
        update(table)
        .where(table.c.id == request.id, table.c.status == current.value)
        .values(status=target.value, updated_at=now, **changes)
    )
    await session.refresh(request)
    return bool(result.rowcount)
