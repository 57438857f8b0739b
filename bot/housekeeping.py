"""Periodic clean-up: processed event ids past every retry window, old sent outbox rows, and
Teams form cards nobody submitted in a month (submitting one later says the form expired)."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

import structlog
from sqlalchemy import delete
from sqlmodel import col

from handlers.core.ports import Clock
from storage import events, outbox
from storage.db import SessionFactory, transaction
from storage.models import TeamsFormCard

log = structlog.get_logger(__name__)

SENT_RETENTION = timedelta(days=14)
FORM_CARD_RETENTION = timedelta(days=30)
INTERVAL = 3600.0


async def sweep(sessions: SessionFactory, clock: Clock) -> tuple[int, int, int]:
    """Delete what is no longer needed; returns (event ids, outbox rows, form cards) removed."""
    now = clock.now()
    async with transaction(sessions) as session:
        forgotten = await events.forget_older_than(session, now - events.RETENTION)
        sent = await outbox.forget_sent_before(session, now - SENT_RETENTION)
        cards = await session.exec(
            delete(TeamsFormCard).where(col(TeamsFormCard.created_at) < now - FORM_CARD_RETENTION)
        )
    return forgotten, sent, int(cards.rowcount or 0)


async def run(sessions: SessionFactory, clock: Clock, stop: asyncio.Event) -> None:
    """Sweep every hour until `stop` is set; failed rows are kept for operators."""
    while not stop.is_set():
        try:
            forgotten, sent, cards = await sweep(sessions, clock)
            if forgotten or sent or cards:
                log.info(
                    "housekeeping.swept", event_ids=forgotten, sent_rows=sent, form_cards=cards
                )
        except Exception:
            log.exception("housekeeping.failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), INTERVAL)
