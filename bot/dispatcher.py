"""The outbox dispatcher: claims due rows, sends them at each workspace's rate, retries.

Success, retry and failure are written back per row, fenced by the claim, so two
dispatchers (or a restarted one) never send a row twice unless a lease expired mid-send.
"""

from __future__ import annotations

import asyncio
import functools
import math
import os
import random
import socket
import time
from collections import Counter
from collections.abc import Mapping
from datetime import timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from bot import metrics
from handlers.core.ports import Clock, Delivery, PermanentError, RateLimited, Sender, TransientError
from storage import outbox
from storage.db import SessionFactory, transaction
from storage.models import MessageRef, Workspace

log = structlog.get_logger(__name__)

LEASE = timedelta(seconds=60)
# A row whose lease ends within this margin is handed back rather than sent: the send could
# outlive the lease and another dispatcher could send it too.
LEASE_MARGIN = timedelta(seconds=5)
BACKOFF_BASE = 1.0
BACKOFF_CAP = 300.0


class TokenBucket:
    """`rate` sends per second, `burst` at once; `pause` obeys a platform's Retry-After.

    The default burst of one makes `rate` a ceiling in every one-second window rather than
    an average: platforms count calls in sliding windows, and time saved up during a lull
    and spent at once is what earns a 429 (and a whole Retry-After of silence).
    """

    def __init__(self, rate: float, burst: float = 1.0) -> None:
        self.rate = rate
        self.capacity = burst
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
                await self._pump(until_idle=False)
            except Exception:
                log.exception("dispatcher.cycle_failed")
                await self._wait(listen=True, within=self.poll_interval)
        log.info("dispatcher.stopped", worker=self.worker_id)

    async def stop(self) -> None:
        """Ask `run()` to finish: no new claims, sends already on the wire complete."""
        self._stopping.set()

    async def run_once(self) -> int:
        """Claim one batch of due rows and send them all; returns how many were handled."""
        return await self._pump(until_idle=True, max_claims=1)

    async def drain(self, max_cycles: int = 10_000) -> int:
        """Send everything due now (tests, the console); returns how many rows were handled."""
        return await self._pump(until_idle=True, max_claims=max_cycles)

    @property
    def capacity(self) -> int:
        """Rows one dispatcher holds at a time: enough to keep `concurrency` calls busy."""
        return self.concurrency * 4

    @property
    def hold_per_workspace(self) -> int:
        """Rows held for one workspace: about a second of its rate, and never the whole
        capacity, so a workspace with a backlog leaves room for the others."""
        return max(1, min(math.ceil(self.rate), self.capacity // 2))

    async def _pump(self, *, until_idle: bool, max_claims: int | None = None) -> int:
        """Keep rows flowing: claim more whenever a workspace's held rows run low.

        There is no batch barrier, and each workspace holds at most `hold_per_workspace`
        rows: a workspace waiting on its rate limit (or a Retry-After) neither holds up the
        rows of other workspaces nor crowds them out of the claims.
        """
        tasks: set[asyncio.Task[None]] = set()
        held: Counter[int] = Counter()
        hold = self.hold_per_workspace
        low = hold // 2  # refill a workspace once half of what it holds is sent
        refill = asyncio.Event()
        handled = claims = 0
        try:
            while not self._stopping.is_set():
                room = self.capacity - len(tasks)
                may_claim = room > 0 and (max_claims is None or claims < max_claims)
                limit = claimed = 0
                if may_claim:
                    # Whichever workspace the rows turn out to belong to, none goes past `hold`.
                    limit = min(room, hold - max((n for n in held.values() if n <= low), default=0))
                    busy = [ws for ws, n in held.items() if n > low]
                    refill.clear()
                    self._wake.clear()
                    rows = await outbox.claim(
                        self.engine,
                        worker=self.worker_id,
                        now=self.clock.now(),
                        limit=limit,
                        lease=LEASE,
                        exclude_workspaces=busy,
                        platforms=list(self.senders),
                    )
                    claims += 1
                    claimed = len(rows)
                    handled += claimed
                    for row in rows:
                        held[row.workspace_id] += 1
                        task = asyncio.create_task(self._send(row))
                        task.add_done_callback(
                            functools.partial(_settled, tasks, held, low, refill, row.workspace_id)
                        )
                        tasks.add(task)
                if not tasks:
                    if until_idle:
                        break
                    await self._wait(listen=True, within=self.poll_interval)
                    continue
                if claimed and claimed == limit and claimed < room:
                    continue  # the claim was cut short by `hold`: other workspaces may be due
                await self._wait(
                    refill,
                    listen=may_claim,
                    within=None if until_idle else self.poll_interval,
                )
        finally:
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
        return handled

    async def _wait(self, *events: asyncio.Event, listen: bool, within: float | None) -> None:
        """Wait for one of `events`, `stop()`, new rows (`wake`, when `listen`), or `within`."""
        watched = [self._stopping, *events, *([self._wake] if listen else [])]
        waiters = [asyncio.create_task(event.wait()) for event in watched]
        try:
            await asyncio.wait(waiters, timeout=within, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    async def _send(self, row: outbox.Claimed) -> None:
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
        if not await self._token(bucket) or self.clock.now() >= row.claimed_until - LEASE_MARGIN:
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
            # The slot bounds calls on the wire; rows waiting for their workspace's rate
            # above do not take one.
            async with self._slots:
                started = time.perf_counter()
                landed = await sender.send(delivery)
            metrics.OUTBOX_SEND_SECONDS.labels(platform).observe(time.perf_counter() - started)
        except RateLimited as limited:
            # A limit on one conversation (Teams counts per chat) leaves the workspace's
            # other conversations alone; only a workspace-wide limit pauses them all.
            if limited.workspace_wide:
                bucket.pause(limited.retry_after)
            metrics.OUTBOX_RATE_LIMITED.labels(platform).inc()
            bound.info("outbox.rate_limited", retry_after=limited.retry_after)
            await self._retry(row, limited.retry_after, str(limited), counts=False)
        except TransientError as error:
            await self._transient(row, str(error), platform, bound)
        except PermanentError as error:
            await self._fail(row, str(error), platform, bound)
        except Exception as error:
            # A sender bug (a payload it cannot render, say) must not leave the row leased
            # and retried forever: it counts as an attempt, and ends as `failed` with the reason.
            bound.exception("outbox.send_crashed")
            await self._transient(row, f"{type(error).__name__}: {error}", platform, bound)
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

    async def _token(self, bucket: TokenBucket) -> bool:
        """Wait for the workspace's next send slot; False when `stop()` came first."""
        if self._stopping.is_set():
            return False
        acquire = asyncio.create_task(bucket.acquire())
        stopping = asyncio.create_task(self._stopping.wait())
        await asyncio.wait((acquire, stopping), return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if acquire.done() and not self._stopping.is_set():
            return True
        acquire.cancel()
        return False

    async def _transient(
        self,
        row: outbox.Claimed,
        error: str,
        platform: str,
        bound: structlog.typing.FilteringBoundLogger,
    ) -> None:
        if row.attempts >= self.max_attempts:
            await self._fail(
                row, f"gave up after {row.attempts} attempts: {error}", platform, bound
            )
        else:
            bound.warning("outbox.retry", error=error)
            await self._retry(row, backoff(row.attempts), error)

    async def _ref(self, workspace_id: int, ref_key: str) -> MessageRef | None:
        async with self.sessions() as session:
            return await outbox.message_ref(session, workspace_id, ref_key)

    async def _delivery(self, row: outbox.Claimed, external_id: str) -> Delivery | None:
        channel = message_id = None
        if row.kind == "update":
            ref_key = str(row.target.get("ref"))
            ref = await self._ref(row.workspace_id, ref_key)
            waiting = False
            if ref is None:
                async with self.sessions() as session:
                    waiting = await outbox.original_pending(session, row.workspace_id, ref_key)
                if not waiting:
                    # The original may have landed between the two reads: look once more,
                    # in a new session (SQLite keeps one snapshot for a whole transaction).
                    ref = await self._ref(row.workspace_id, ref_key)
            if ref is None:
                if not waiting:
                    raise PermanentError("the message to update was never sent")
                return None
            channel, message_id = ref.channel, ref.message_id
        return Delivery(
            workspace=external_id,
            kind=row.kind,
            target=row.target,
            payload=row.payload,
            channel=channel,
            message_id=message_id,
            attempt=row.attempts,
            last_attempt=row.attempts >= self.max_attempts,
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


def _settled(
    tasks: set[asyncio.Task[None]],
    held: Counter[int],
    low: int,
    refill: asyncio.Event,
    workspace_id: int,
    task: asyncio.Task[None],
) -> None:
    tasks.discard(task)
    held[workspace_id] -= 1
    if held[workspace_id] <= low:
        refill.set()
    if not task.cancelled() and task.exception() is not None:
        log.error("outbox.send_task_failed", error=repr(task.exception()))
