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
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta

import structlog
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from adapters.limits import Limit, Limiter, LimiterUnavailable, rate
from adapters.limits.memory import MemoryLimiter
from bot import metrics
from handlers.core.ports import Clock, Delivery, PermanentError, RateLimited, Sender, TransientError
from handlers.core.quiet_hours import deferred_until
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
# A send slot further off than this is not waited for in place: the row goes back to the
# outbox for then, and the dispatcher's hands are free for other workspaces.
MAX_SLOT_WAIT = 10.0
# A send woken this much after its slot takes a new one (at most SLOT_TRIES slots in all).
LATE = 0.05
SLOT_TRIES = 3
# When the store of the shared limits cannot be reached, rows are tried again this much later.
LIMITS_RETRY = 5.0
# While a platform fails every send (an outage), its workspace pauses this long at least and
# at most, growing with the outage, and the failures use up no message's attempts.
OUTAGE_PAUSE_MIN = 1.0
OUTAGE_PAUSE_MAX = 30.0


@dataclass
class Outage:
    """A workspace whose sends have all failed since `started` (monotonic seconds).

    One message failing on its own is that message's problem and uses up its attempts; once
    a second one fails with no success in between, the platform is down, and no message
    should be given up for it.
    """

    started: float
    first_row: int
    confirmed: bool = False


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
        limiter: Limiter | None = None,
        lease: timedelta = LEASE,
    ) -> None:
        self.engine = engine
        self.sessions = sessions
        self.clock = clock
        self.senders = dict(senders)
        self.rate = rate
        self.max_attempts = max_attempts
        self.concurrency = concurrency
        self.poll_interval = poll_interval
        self.limiter: Limiter = limiter if limiter is not None else MemoryLimiter()
        self.lease = lease
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self._outages: dict[int, Outage] = {}
        self._limits_down = False
        self._database_down = False
        self._workspaces: dict[int, tuple[str, str]] = {}
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._slots = asyncio.Semaphore(concurrency)

    def wake(self) -> None:
        """New rows were committed in this process: look now rather than at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        """Send until `stop()`; in-flight sends finish before it returns."""
        log.info(
            "dispatcher.started", worker=self.worker_id, rate=self.rate, limits=self.limiter.store
        )
        while not self._stopping.is_set():
            try:
                await self._pump(until_idle=False)
            except (DBAPIError, OSError) as error:
                # The database restarting, say: said once, then tried again until it answers.
                if not self._database_down:
                    log.warning("dispatcher.database_unavailable", error=_short(error))
                self._database_down = True
                await self._wait(listen=False, within=max(1.0, self.poll_interval))
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
                busy: list[int] = []
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
                        lease=self.lease,
                        exclude_workspaces=busy,
                        platforms=list(self.senders),
                    )
                    if self._database_down:
                        log.info("dispatcher.database_available")
                        self._database_down = False
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
                    if busy:
                        # The claim left out workspaces whose sends all finished while it
                        # ran: their remaining rows may be due, so look again at once.
                        continue
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
        opens = deferred_until(row.target, self.clock.now())
        if opens is not None:
            # Nobody asked for it just now and the recipient's day is over (the send was
            # held up by an outage or a backlog): it waits for their next working hours.
            bound.info("outbox.held_for_working_hours", until=opens.isoformat())
            await self._retry(row, (opens - self.clock.now()).total_seconds(), None, counts=False)
            return
        limit = rate(f"{platform}:{external_id}:workspace", self.rate, f"{platform}_workspace")
        if not await self._slot(row, limit):
            return  # handed back untried
        if self.clock.now() >= row.claimed_until - LEASE_MARGIN:
            # The send could outlive the lease, and another dispatcher could send it too.
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
        except LimiterUnavailable as error:
            # A platform's own limits (Teams' conversations) out of reach: not sent, not failed.
            await self._limits_unavailable(row, error)
        except RateLimited as limited:
            # A limit on one conversation (Teams counts per chat) leaves the workspace's
            # other conversations alone; only a workspace-wide limit pauses them all.
            if limited.workspace_wide:
                await self._block(limit, limited.retry_after)
            metrics.OUTBOX_RATE_LIMITED.labels(platform).inc()
            bound.info("outbox.rate_limited", retry_after=limited.retry_after)
            await self._retry(row, limited.retry_after, str(limited), counts=False)
        except TransientError as error:
            await self._transient(row, str(error), platform, bound, limit)
        except PermanentError as error:
            self._outages.pop(row.workspace_id, None)
            await self._fail(row, str(error), platform, bound)
        except Exception as error:
            # A sender bug (a payload it cannot render, say) must not leave the row leased
            # and retried forever: it counts as an attempt, and ends as `failed` with the reason.
            bound.exception("outbox.send_crashed")
            await self._transient(row, f"{type(error).__name__}: {error}", platform, bound, None)
        else:
            self._recovered(row.workspace_id, bound)

            async def sent(session: AsyncSession) -> None:
                await outbox.mark_sent(
                    session,
                    row,
                    worker=self.worker_id,
                    now=self.clock.now(),
                    channel=landed.channel,
                    message_id=landed.message_id,
                )

            await self._write_back(row, sent, bound)
            metrics.OUTBOX_SENT.labels(platform).inc()

    async def _slot(self, row: outbox.Claimed, limit: Limit) -> bool:
        """Reserve the workspace's next send slot and wait for it.

        False, with the row handed back, when the slot is further off than MAX_SLOT_WAIT or
        the limits' store is out of reach; False as well when `stop()` comes first.
        """
        loop = asyncio.get_running_loop()
        missed: float | None = None
        for _ in range(SLOT_TRIES):
            if self._stopping.is_set():
                await self._retry(row, 0, None, counts=False)
                return False
            try:
                slot = await self.limiter.reserve([limit], MAX_SLOT_WAIT, replacing=missed)
            except LimiterUnavailable as error:
                await self._limits_unavailable(row, error)
                return False
            if self._limits_down:
                log.info("outbox.limits_available", store=self.limiter.store)
                self._limits_down = False
            if not slot.reserved:
                await self._retry(row, slot.wait, None, counts=False)
                return False
            due = loop.time() + slot.wait
            if slot.wait > 0:
                stopping = asyncio.create_task(self._stopping.wait())
                try:
                    await asyncio.wait((stopping,), timeout=slot.wait)
                finally:
                    stopping.cancel()
                if self._stopping.is_set():
                    await self._retry(row, 0, None, counts=False)
                    return False
            if loop.time() - due <= LATE:
                return True
            # Woken late (a busy machine): sent now, it would land among the sends of later
            # slots and crowd the platform's window. A new slot keeps the spacing, and the
            # missed one is handed back with it, so it does not take a send from the rate.
            missed = slot.at
        return True

    async def _limits_unavailable(self, row: outbox.Claimed, error: LimiterUnavailable) -> None:
        """Nothing is sent without limits: the row waits, and the outage is said once."""
        if not self._limits_down:
            log.warning(
                "outbox.limits_unavailable",
                store=self.limiter.store,
                error=str(error),
                note=f"nothing is sent until it answers; rows are tried every {LIMITS_RETRY:g} s",
            )
            self._limits_down = True
        await self._retry(row, LIMITS_RETRY, f"send limits unavailable: {error}", counts=False)

    async def _block(self, limit: Limit, seconds: float) -> None:
        """Pause the workspace for everyone who shares the limits."""
        try:
            await self.limiter.block(limit, seconds)
        except LimiterUnavailable as error:
            log.warning("outbox.pause_not_shared", error=str(error))

    def _recovered(self, workspace_id: int, bound: structlog.typing.FilteringBoundLogger) -> None:
        outage = self._outages.pop(workspace_id, None)
        if outage is not None and outage.confirmed:
            bound.info("outbox.platform_back", down_for=round(time.monotonic() - outage.started, 1))

    async def _write_back(
        self,
        row: outbox.Claimed,
        write: Callable[[AsyncSession], Awaitable[None]],
        bound: structlog.typing.FilteringBoundLogger,
    ) -> None:
        """Record a row's outcome, trying again while the database is away (a restart), for as
        long as the row's lease lasts: a send recorded late is not sent twice."""
        deadline = time.monotonic() + (row.claimed_until - self.clock.now()).total_seconds()
        pause = 0.25
        while True:
            try:
                async with transaction(self.sessions) as session:
                    await write(session)
                return
            except (DBAPIError, OSError) as error:
                if time.monotonic() + pause >= deadline - LEASE_MARGIN.total_seconds():
                    bound.error("outbox.outcome_unrecorded", error=_short(error))
                    raise
                bound.warning("outbox.outcome_delayed", error=_short(error), retry_in=pause)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 5.0)

    async def _transient(
        self,
        row: outbox.Claimed,
        error: str,
        platform: str,
        bound: structlog.typing.FilteringBoundLogger,
        limit: Limit | None,
    ) -> None:
        now = time.monotonic()
        outage = self._outages.get(row.workspace_id)
        if outage is None:
            self._outages[row.workspace_id] = Outage(now, row.id)
        elif limit is not None and (outage.confirmed or row.id != outage.first_row):
            # Another message failed too, with nothing sent in between: the platform is down.
            # The workspace pauses for everyone, and no message uses up an attempt on it.
            if not outage.confirmed:
                bound.warning("outbox.platform_down", error=error)
                outage.confirmed = True
            pause = min(OUTAGE_PAUSE_MAX, max(OUTAGE_PAUSE_MIN, now - outage.started))
            await self._block(limit, pause)
            await self._retry(row, pause + random.uniform(0, 1), error, counts=False)
            return
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
        async def later(session: AsyncSession) -> None:
            await outbox.reschedule(
                session,
                row,
                worker=self.worker_id,
                at=self.clock.now() + timedelta(seconds=delay),
                error=error,
                counts_as_attempt=counts,
            )

        await self._write_back(row, later, log.bind(outbox_id=row.id))

    async def _fail(
        self,
        row: outbox.Claimed,
        error: str,
        platform: str,
        bound: structlog.typing.FilteringBoundLogger,
    ) -> None:
        bound.error("outbox.failed", error=error)
        metrics.OUTBOX_FAILED.labels(platform).inc()

        async def failed(session: AsyncSession) -> None:
            await outbox.mark_failed(session, row, worker=self.worker_id, error=error)

        await self._write_back(row, failed, bound)

    async def _workspace(self, workspace_id: int) -> tuple[str, str]:
        known = self._workspaces.get(workspace_id)
        if known is None:
            async with self.sessions() as session:
                workspace = await session.get(Workspace, workspace_id)
            assert workspace is not None, f"outbox row for unknown workspace {workspace_id}"
            known = self._workspaces[workspace_id] = (workspace.platform, workspace.external_id)
        return known


def _short(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"[:200]


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
