"""The processed-inbound-events table: the first delivery of an event id wins."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import InboundEvent
from storage.upsert import insert_ignore


async def first_delivery(
    session: AsyncSession, *, platform: str, workspace: str, event_id: str, now: datetime
) -> bool:
    """Record an inbound event id; False if it was already processed (a retry)."""
    return await insert_ignore(
        session,
        InboundEvent.__table__,  # type: ignore[attr-defined]
        {
            "platform": platform,
            "workspace_external_id": workspace,
            "event_id": event_id,
            "received_at": now,
        },
        ("platform", "workspace_external_id", "event_id"),
    )


async def forget_older_than(session: AsyncSession, cutoff: datetime) -> int:
    """Drop ids past any platform's retry window."""
    result = await session.exec(delete(InboundEvent).where(col(InboundEvent.received_at) < cutoff))
    return int(result.rowcount or 0)


RETENTION = timedelta(days=3)
