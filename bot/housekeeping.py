"""Periodic clean-up: processed event ids past every retry window, old sent outbox rows."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

import structlog

from handlers.ports import Clock
from storage import events, outbox
from storage.db import SessionFactory, transaction

log = structlog.get_logger(__name__)

SENT_RETENTION = timedelta(days=14)
INTERVAL = 3600.0


async def sweep(sessions: SessionFactory, clock: Clock) -> tuple[int, int]:
    """Delete what is no longer needed; returns (event ids, outbox rows) removed."""
    now = clock.now()
    async with transaction(sessions) as session:
        forgotten = await events.forget_older_than(session, now - events.RETENTION)
        sent = await outbox.forget_sent_before(session, now - SENT_RETENTION)
    return forgotten, sent


async def run(sessions: SessionFactory, clock: Clock, stop: asyncio.Event) -> None:
    """Sweep every hour until `stop` is set; failed rows are kept for operators."""
    while not stop.is_set():
        try:
            forgotten, sent = await sweep(sessions, clock)
            if forgotten or sent:
                log.info("housekeeping.swept", event_ids=forgotten, sent_rows=sent)
        except Exception:
            log.exception("housekeeping.failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), INTERVAL)
