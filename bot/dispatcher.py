"""The outbox dispatcher: claims due rows, sends them at each workspace's rate, retries.

Success, retry and failure are written back per row, fenced by the claim, so two
dispatchers (or a restarted one) never send a row twice unless a lease expired mid-send.
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import time
from collections.abc import Mapping
from datetime import timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from bot import metrics
from handlers.ports import Clock, Delivery, PermanentError, RateLimited, Sender, TransientError
from storage import outbox
from storage.db import SessionFactory, transaction
from storage.models import Workspace

log = structlog.get_logger(__name__)

LEASE = timedelta(seconds=60)
BACKOFF_BASE = 1.0
BACKOFF_CAP = 300.0


class TokenBucket:
    """`rate` sends per second with a small burst; `pause` obeys a platform's Retry-After."""

    def __init__(self, rate: float, burst: float | None = None) -> None:
        self.rate = rate
        self.capacity = burst if burst is not None else max(1.0, rate / 10)
        self.tokens = self.capacity
        self.updated = time.monotonic()
        self.paused_until = 0.0
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        async with self._lock:
            while True:
                now = time.monotonic()
                if now < self.paused_until:
                    await asyncio.sleep(self.paused_until - now)
                    continue
                self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
                self.updated = now
                if self.tokens >= 1:
                    self.tokens -= 1
                    return
                await asyncio.sleep((1 - self.tokens) / self.rate)

    def pause(self, seconds: float) -> None:
        self.paused_until = max(self.paused_until, time.monotonic() + seconds)
        self.tokens = 0


def backoff(attempt: int) -> float:
    """Exponential backoff with full jitter, in seconds."""
    return random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2 ** max(0, attempt - 1)))


class Dispatcher:
    """Sends outbox rows through the platform senders."""

    def __init__(
        self,
        engine: AsyncEngine,
        sessions: SessionFactory,
        clock: Clock,
        senders: Mapping[str, Sender],
        *,
        rate: float = 20.0,
        max_attempts: int = 8,
        concurrency: int = 8,
        poll_interval: float = 0.5,
    ) -> None:
        self.engine = engine
        self.sessions = sessions
        self.clock = clock
        self.senders = dict(senders)
        self.rate = rate
        self.max_attempts = max_attempts
        self.concurrency = concurrency
        self.poll_interval = poll_interval
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self._buckets: dict[int, TokenBucket] = {}
        self._workspaces: dict[int, tuple[str, str]] = {}
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._slots = asyncio.Semaphore(concurrency)

    def wake(self) -> None:
        """New rows were committed in this process: look now rather than at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        """Send until `stop()`; in-flight sends finish before it returns."""
        log.info("dispatcher.started", worker=self.worker_id, rate=self.rate)
        while not self._stopping.is_set():
            try:
                sent = await self.run_once()
            except Exception:
                log.exception("dispatcher.cycle_failed")
                sent = 0
            if sent == 0:
                self._wake.clear()
                waiters = [
                    asyncio.create_task(self._wake.wait()),
                    asyncio.create_task(self._stopping.wait()),
                ]
                await asyncio.wait(
                    waiters, timeout=self.poll_interval, return_when=asyncio.FIRST_COMPLETED
                )
                for waiter in waiters:
                    waiter.cancel()
        log.info("dispatcher.stopped", worker=self.worker_id)

    async def stop(self) -> None:
        self._stopping.set()

    async def run_once(self) -> int:
        """Claim one batch of due rows and send them all; returns how many were handled."""
        rows = await outbox.claim(
            self.engine,
            worker=self.worker_id,
            now=self.clock.now(),
            limit=self.concurrency * 4,
            lease=LEASE,
        )
        if rows:
            await asyncio.gather(*(self._send(row) for row in rows))
        return len(rows)

    async def drain(self, max_cycles: int = 1000) -> int:
        """Send everything due now (tests, the console); returns how many rows were handled."""
        total = 0
        for _ in range(max_cycles):
            handled = await self.run_once()
            if handled == 0:
                break
            total += handled
        return total

    async def _send(self, row: outbox.Claimed) -> None:
        async with self._slots:
            platform, external_id = await self._workspace(row.workspace_id)
            sender = self.senders.get(platform)
            bound = log.bind(
                outbox_id=row.id, workspace=external_id, kind=row.kind, attempt=row.attempts
            )
            if sender is None:
                await self._fail(
                    row, f"no sender configured for platform {platform!r}", platform, bound
                )
                return
            bucket = self._bucket(row.workspace_id)
            await bucket.acquire()
            if self._stopping.is_set() or self.clock.now() >= row.claimed_until - timedelta(
                seconds=5
            ):
                # Shutting down, or the lease is about to lapse: hand the row back untried.
                await self._retry(row, 0, None, counts=False)
                return
            try:
                delivery = await self._delivery(row, external_id)
                if delivery is None:
                    await self._retry(
                        row, 2.0, "the message to update has not been sent yet", counts=False
                    )
                    return
                started = time.perf_counter()
                landed = await sender.send(delivery)
                metrics.OUTBOX_SEND_SECONDS.labels(platform).observe(time.perf_counter() - started)
            except RateLimited as limited:
                bucket.pause(limited.retry_after)
                metrics.OUTBOX_RATE_LIMITED.labels(platform).inc()
                bound.info("outbox.rate_limited", retry_after=limited.retry_after)
                await self._retry(row, limited.retry_after, str(limited), counts=False)
            except TransientError as error:
                if row.attempts >= self.max_attempts:
                    await self._fail(
                        row, f"gave up after {row.attempts} attempts: {error}", platform, bound
                    )
                else:
                    bound.warning("outbox.retry", error=str(error))
                    await self._retry(row, backoff(row.attempts), str(error))
            except PermanentError as error:
                await self._fail(row, str(error), platform, bound)
            else:
                async with transaction(self.sessions) as session:
                    await outbox.mark_sent(
                        session,
                        row,
                        worker=self.worker_id,
                        now=self.clock.now(),
                        channel=landed.channel,
                        message_id=landed.message_id,
                    )
                metrics.OUTBOX_SENT.labels(platform).inc()

    async def _delivery(self, row: outbox.Claimed, external_id: str) -> Delivery | None:
        channel = message_id = None
        if row.kind == "update":
            async with self.sessions() as session:
                ref = await outbox.message_ref(
                    session, row.workspace_id, str(row.target.get("ref"))
                )
            if ref is None:
                return None
            channel, message_id = ref.channel, ref.message_id
        return Delivery(
            workspace=external_id,
            kind=row.kind,
            target=row.target,
            payload=row.payload,
            channel=channel,
            message_id=message_id,
        )

    async def _retry(
        self, row: outbox.Claimed, delay: float, error: str | None, counts: bool = True
    ) -> None:
        async with transaction(self.sessions) as session:
            await outbox.reschedule(
                session,
                row,
                worker=self.worker_id,
                at=self.clock.now() + timedelta(seconds=delay),
                error=error,
                counts_as_attempt=counts,
            )

    async def _fail(
        self,
        row: outbox.Claimed,
        error: str,
        platform: str,
        bound: structlog.typing.FilteringBoundLogger,
    ) -> None:
        bound.error("outbox.failed", error=error)
        metrics.OUTBOX_FAILED.labels(platform).inc()
        async with transaction(self.sessions) as session:
            await outbox.mark_failed(session, row, worker=self.worker_id, error=error)

    def _bucket(self, workspace_id: int) -> TokenBucket:
        bucket = self._buckets.get(workspace_id)
        if bucket is None:
            bucket = self._buckets[workspace_id] = TokenBucket(self.rate)
        return bucket

    async def _workspace(self, workspace_id: int) -> tuple[str, str]:
        known = self._workspaces.get(workspace_id)
        if known is None:
            async with self.sessions() as session:
                workspace = await session.get(Workspace, workspace_id)
            assert workspace is not None, f"outbox row for unknown workspace {workspace_id}"
            known = self._workspaces[workspace_id] = (workspace.platform, workspace.external_id)
        return known
