"""What became of a digest: its statuses and the moves between them, checked in one place.

A channel's digest is `queued` with its outbox row, then `sent` or `failed` as that row
ends; the week's personal notes are recorded `sent` as they are queued. Nothing moves out
of `sent` or `failed`: a refused channel is tried again next week, with a new row.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from sqlalchemy import update
from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.core.errors import InvalidTransition
from storage.models import Digest


class DigestStatus(StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    FAILED = "failed"


ALLOWED: dict[DigestStatus, frozenset[DigestStatus]] = {
    DigestStatus.QUEUED: frozenset({DigestStatus.SENT, DigestStatus.FAILED}),
    DigestStatus.SENT: frozenset(),
    DigestStatus.FAILED: frozenset(),
}


async def move_digest(session: AsyncSession, digest: Digest, target: DigestStatus) -> bool:
    """Move `digest` to `target` if it is still in the status it was read in.

    An illegal move raises `InvalidTransition` and writes nothing. The check and the write
    are one UPDATE, so of two workers following the same digest exactly one moves it; the
    other gets False.
    """
    current = DigestStatus(digest.status)
    if target not in ALLOWED[current]:
        raise InvalidTransition(
            f"The {digest.week} digest for {digest.channel} is {current.value}, "
            f"so it can't be {target.value}."
        )
    table: Any = Digest.__table__  # type: ignore[attr-defined]
    moved = await session.exec(
        update(table)
        .where(table.c.id == digest.id, table.c.status == current.value)
        .values(status=target.value)
    )
    return bool(moved.rowcount)
