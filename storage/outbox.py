"""The outbox: messages written with the change that causes them, sent later, never lost.

Rows move `pending` → `sending` (claimed with a lease) → `sent` or `failed`. A dispatcher
that dies mid-send leaves its lease to expire and another picks the row up again.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select as sql_select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.db import is_postgres
from storage.models import MessageRef, OutboxMessage, Workspace
from storage.upsert import insert_ignore, insert_ignore_many

PENDING, SENDING, SENT, FAILED, CANCELLED = "pending", "sending", "sent", "failed", "cancelled"

_table = OutboxMessage.__table__  # type: ignore[attr-defined]


def _row(
    *,
    workspace_id: int,
    dedupe_key: str,
    kind: str,
    target: dict[str, Any],
    payload: dict[str, Any],
    now: datetime,
    ref_key: str | None = None,
    not_before: datetime | None = None,
) -> dict[str, Any]:
    return {
        "workspace_id": workspace_id,
        "dedupe_key": dedupe_key[:200],
        "kind": kind,
        "target": target,
        "payload": payload,
        "ref_key": ref_key,
        "status": PENDING,
        "attempts": 0,
        "next_attempt_at": max(now, not_before) if not_before else now,
        "created_at": now,
    }


async def enqueue(
    session: AsyncSession,
    *,
    workspace_id: int,
    dedupe_key: str,
    kind: str,
    target: dict[str, Any],
    payload: dict[str, Any],
    now: datetime,
    ref_key: str | None = None,
    not_before: datetime | None = None,
) -> bool:
    """Queue a message in the caller's transaction; a repeated dedupe key is a no-op."""
    row = _row(
        workspace_id=workspace_id,
        dedupe_key=dedupe_key,
        kind=kind,
        target=target,
        payload=payload,
        now=now,
        ref_key=ref_key,
        not_before=not_before,
    )
    return await insert_ignore(session, _table, row, ("dedupe_key",))


async def enqueue_many(
    session: AsyncSession, rows: Sequence[dict[str, Any]], now: datetime
) -> None:
    """Queue many messages at once (a fan-out), each row with `enqueue`'s keywords.

    Rows whose dedupe key is already queued are skipped, so a repeated fan-out sends
    nothing twice.
    """
    values = [_row(**row, now=now) for row in rows]
    await insert_ignore_many(session, _table, values, ("dedupe_key",))


@dataclass(frozen=True, slots=True)
class Claimed:
    id: int
    workspace_id: int
    kind: str
    target: dict[str, Any]
    payload: dict[str, Any]
    ref_key: str | None
    attempts: int
    claimed_until: datetime


async def claim(
    engine: AsyncEngine,
    *,
    worker: str,
    now: datetime,
    limit: int,
    lease: timedelta,
    exclude_workspaces: Collection[int] = (),
    platforms: Collection[str] | None = None,
) -> list[Claimed]:
    """Take up to `limit` due rows (and rows whose lease expired) for this worker.

    `exclude_workspaces` leaves out workspaces the worker already holds enough rows for, so
    one workspace's backlog cannot crowd every other workspace out of a batch. `platforms`
    keeps to workspaces this worker can send to: a worker without, say, Slack credentials
    leaves Slack's rows for one that has them.
    """
    if platforms is not None and not platforms:
        return []
    due = or_(
        and_(_table.c.status == PENDING, _table.c.next_attempt_at <= now),
        and_(_table.c.status == SENDING, _table.c.claimed_until < now),
    )
    if exclude_workspaces:
        due = and_(due, _table.c.workspace_id.not_in(list(exclude_workspaces)))
    if platforms is not None:
        workspaces = Workspace.__table__  # type: ignore[attr-defined]
        sendable = select(workspaces.c.id).where(workspaces.c.platform.in_(list(platforms)))
        due = and_(due, _table.c.workspace_id.in_(sendable.scalar_subquery()))
    ids = select(_table.c.id).where(due).order_by(_table.c.id).limit(limit)
    if is_postgres(engine):
        # Two dispatchers never take the same row: locked rows are skipped, not waited on.
        ids = ids.with_for_update(skip_locked=True)
    until = now + lease
    stmt = (
        update(_table)
        .where(_table.c.id.in_(ids.scalar_subquery()))
        .values(
            status=SENDING,
            claimed_by=worker,
            claimed_until=until,
            attempts=_table.c.attempts + 1,
        )
        .returning(
            _table.c.id,
            _table.c.workspace_id,
            _table.c.kind,
            _table.c.target,
            _table.c.payload,
            _table.c.ref_key,
            _table.c.attempts,
        )
    )
    async with engine.begin() as conn:
        rows = (await conn.execute(stmt)).all()
    claimed = [
        Claimed(
            id=row.id,
            workspace_id=row.workspace_id,
            kind=row.kind,
            target=row.target,
            payload=row.payload,
            ref_key=row.ref_key,
            attempts=row.attempts,
            claimed_until=until,
        )
        for row in rows
    ]
    claimed.sort(key=lambda c: c.id)
    return claimed


def _mine(row_id: int, worker: str) -> Any:
    return and_(_table.c.id == row_id, _table.c.claimed_by == worker, _table.c.status == SENDING)


async def mark_sent(
    session: AsyncSession,
    row: Claimed,
    *,
    worker: str,
    now: datetime,
    channel: str | None,
    message_id: str | None,
) -> None:
    """Record success, and where the message landed when it may be updated later."""
    await session.exec(
        update(_table)
        .where(_mine(row.id, worker))
        .values(status=SENT, sent_at=now, claimed_until=None, last_error=None)
    )
    if row.ref_key and channel and message_id:
        await insert_ignore(
            session,
            MessageRef.__table__,  # type: ignore[attr-defined]
            {
                "workspace_id": row.workspace_id,
                "ref_key": row.ref_key,
                "channel": channel,
                "message_id": message_id,
                "created_at": now,
            },
            ("workspace_id", "ref_key"),
        )


async def reschedule(
    session: AsyncSession,
    row: Claimed,
    *,
    worker: str,
    at: datetime,
    error: str | None,
    counts_as_attempt: bool = True,
) -> None:
    """Put a row back for a later try (a transient failure, a rate limit, a shutdown)."""
    attempts = _table.c.attempts if counts_as_attempt else _table.c.attempts - 1
    await session.exec(
        update(_table)
        .where(_mine(row.id, worker))
        .values(
            status=PENDING,
            next_attempt_at=at,
            claimed_by=None,
            claimed_until=None,
            attempts=attempts,
            last_error=error[:1000] if error else None,
        )
    )


async def mark_failed(session: AsyncSession, row: Claimed, *, worker: str, error: str) -> None:
    """Give up on a row, keeping the reason; failed rows stay for operators to see."""
    await session.exec(
        update(_table)
        .where(_mine(row.id, worker))
        .values(status=FAILED, claimed_until=None, last_error=error[:1000])
    )


async def message_ref(session: AsyncSession, workspace_id: int, ref_key: str) -> MessageRef | None:
    query = sql_select(MessageRef).where(
        MessageRef.workspace_id == workspace_id, MessageRef.ref_key == ref_key
    )
    return (await session.exec(query)).first()


async def original_pending(session: AsyncSession, workspace_id: int, ref_key: str) -> bool:
    """Whether a message queued under `ref_key` may still be sent (it has not failed)."""
    query = sql_select(OutboxMessage.id).where(
        OutboxMessage.workspace_id == workspace_id,
        OutboxMessage.ref_key == ref_key,
        _table.c.status.in_((PENDING, SENDING)),
    )
    return (await session.exec(query.limit(1))).first() is not None


async def depth(session: AsyncSession) -> dict[str, int]:
    """Rows by status, for /metrics."""
    query = select(_table.c.status, func.count()).group_by(_table.c.status)
    result = await session.exec(query)  # type: ignore[call-overload]
    return {status: int(n) for status, n in result.all()}


# Ages of unsent rows on /metrics: (label, up to this many seconds since queued).
BACKLOG_AGES = ("under_1m", "1m_to_5m", "5m_to_1h", "over_1h")
_AGE_BOUNDS = (60, 300, 3600)


@dataclass(frozen=True, slots=True)
class Backlog:
    """Unsent rows by time since they were queued, and the oldest one's age in seconds."""

    rows: dict[str, int]
    oldest_seconds: float


async def backlog(session: AsyncSession, now: datetime) -> Backlog:
    """Pending and sending rows by age, for /metrics: one grouped count, no rows loaded."""
    created = _table.c.created_at
    age = case(
        *(
            (created > now - timedelta(seconds=bound), label)
            for bound, label in zip(_AGE_BOUNDS, BACKLOG_AGES, strict=False)
        ),
        else_=BACKLOG_AGES[-1],
    ).label("age")
    unsent = _table.c.status.in_((PENDING, SENDING))
    grouped = select(age, func.count(), func.min(created)).where(unsent).group_by(age)
    result = await session.exec(grouped)  # type: ignore[call-overload]
    rows: dict[str, int] = {}
    oldest: datetime | None = None
    for label, n, first in result.all():
        rows[str(label)] = int(n)
        oldest = first if oldest is None or first < oldest else oldest
    return Backlog(rows, max(0.0, (now - oldest).total_seconds()) if oldest else 0.0)


async def forget_sent_before(session: AsyncSession, cutoff: datetime) -> int:
    result = await session.exec(
        delete(_table).where(_table.c.status == SENT, _table.c.sent_at < cutoff)
    )
    return int(result.rowcount or 0)


async def cancel_pending(session: AsyncSession, dedupe_key: str) -> bool:
    """Withdraw a row that has not been claimed yet; False if it is on its way or sent."""
    result = await session.exec(
        update(_table)
        .where(_table.c.dedupe_key == dedupe_key, _table.c.status == PENDING)
        .values(status=CANCELLED, claimed_until=None)
    )
    return bool(result.rowcount)
