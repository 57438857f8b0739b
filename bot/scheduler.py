"""Scheduled work: APScheduler with its job store in our database, one leader at a time.

The scheduler only issues commands: its job runs the routing sweep, the same handler code
a button press would reach. Sweeps are idempotent, so a misfire caught up after a restart,
or a second process that briefly believed it led, sends nothing twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import structlog
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlmodel import select

from handlers.core.context import Config, Scope
from handlers.core.ports import AI, NO_AI, Clock
from handlers.core.router import Job, Router, Sweep
from storage.db import SessionFactory, is_postgres, transaction
from storage.models import Workspace

log = structlog.get_logger(__name__)

SWEEP_JOB = "routing-sweep"
SWEEP_EVERY = 60.0
LEADER_RETRY = 15.0
# A graceful stop waits this long for a sweep under way before cutting it off.
SWEEP_GRACE = 20.0
# pg_advisory_lock key: "flywheel" in ASCII, as a stable 64-bit number.
LEADER_LOCK = 0x666C79776865656C


class Sweeper:
    """Runs every flow's scheduled work over every workspace; `wake` asks for a run soon."""

    def __init__(
        self,
        sessions: SessionFactory,
        clock: Clock,
        config: Config,
        ai: AI = NO_AI,
    ) -> None:
        self.sessions = sessions
        self.clock = clock
        self.config = config
        self.ai = ai
        self.sweeps: Sequence[Sweep] = ()
        self.jobs: Sequence[Job] = ()
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()

    def schedule(self, router: Router) -> None:
        """Run the scheduled work the flows registered with the router."""
        self.sweeps, self.jobs = tuple(router.sweeps), tuple(router.jobs)

    def wake(self) -> None:
        self._wake.set()

    async def run_once(self) -> None:
        """Each sweep in each workspace in its own transaction, so one failing never blocks
        or undoes another; then the jobs, outside any transaction (a model may think for
        seconds)."""
        async with self._lock:
            async with self.sessions() as session:
                workspaces = (await session.exec(select(Workspace))).all()
            for workspace in workspaces:
                for sweep in self.sweeps:
                    try:
                        async with transaction(self.sessions) as session:
                            current = await session.get(Workspace, workspace.id)
                            assert current is not None
                            scope = Scope(session, self.clock, self.config, current)
                            await sweep(scope, self.ai)
                    except Exception:
                        log.exception(
                            "sweep.failed", workspace=workspace.external_id, job=_name(sweep)
                        )
            for job in self.jobs:
                try:
                    await job(self.sessions, self.clock, self.config, self.ai)
                except Exception:
                    log.exception("job.failed", job=_name(job))

    async def idle(self, within: float) -> bool:
        """Wait until no sweep is under way; False when one outlasts `within`."""
        try:
            async with asyncio.timeout(within):
                async with self._lock:
                    return True
        except TimeoutError:
            return False

    async def follow_wakes(self, stop: asyncio.Event) -> None:
        """Between scheduled runs, sweep soon after changes made in this process."""
        while not stop.is_set():
            waiters = [asyncio.create_task(self._wake.wait()), asyncio.create_task(stop.wait())]
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            for waiter in waiters:
                waiter.cancel()
            if stop.is_set():
                return
            self._wake.clear()
            await self.run_once()


def _name(work: Sweep | Job) -> str:
    return f"{work.__module__}.{work.__qualname__}"


# Jobs are stored by reference ("module:function"), so a job loaded from the database finds
# this process's sweeper here.
_ACTIVE: Sweeper | None = None


async def sweep_job() -> None:
    """The stored job: one sweep with the running process's sweeper."""
    if _ACTIVE is not None:
        await _ACTIVE.run_once()


def sync_url(async_url: str) -> str:
    """The job store is synchronous SQLAlchemy: same database, synchronous driver."""
    url = make_url(async_url)
    driver = {"sqlite+aiosqlite": "sqlite", "postgresql+psycopg": "postgresql+psycopg"}.get(
        url.drivername
    )
    return url.set(drivername=driver or url.drivername).render_as_string(hide_password=False)


class Leadership:
    """Only one process schedules: a PostgreSQL advisory lock, or a lock file beside SQLite."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._conn: AsyncConnection | None = None
        self._file: IO[Any] | None = None

    async def acquire(self) -> bool:
        if is_postgres(self.engine):
            conn = await self.engine.connect()
            got = bool(
                (
                    await conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": LEADER_LOCK})
                ).scalar()
            )
            if got:
                self._conn = conn
            else:
                await conn.close()
            return got
        database = make_url(str(self.engine.url)).database
        if not database or database == ":memory:":
            return True
        # Held open while leading; opening a local lock file does not block the loop.
        handle = Path(database + ".scheduler.lock").open("a")  # noqa: SIM115, ASYNC230
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        self._file = handle
        return True

    async def still_held(self) -> bool:
        """The advisory lock lives as long as its connection: check that it does."""
        if self._conn is None:
            return True
        try:
            await self._conn.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    async def release(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": LEADER_LOCK})
            await self._conn.close()
            self._conn = None
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None


class Scheduler:
    """Leads when it can; while leading, APScheduler runs the sweep every minute."""

    def __init__(self, engine: AsyncEngine, database_url: str, sweeper: Sweeper) -> None:
        self.engine = engine
        self.database_url = database_url
        self.sweeper = sweeper
        self.leadership = Leadership(engine)
        self.leading = False
        self._aps: AsyncIOScheduler | None = None

    def _start(self) -> None:
        global _ACTIVE
        _ACTIVE = self.sweeper
        self._aps = AsyncIOScheduler(
            jobstores={"default": SQLAlchemyJobStore(url=sync_url(self.database_url))},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600},
            timezone="UTC",
        )
        self._aps.start()
        self._aps.add_job(
            "bot.scheduler:sweep_job",
            "interval",
            seconds=SWEEP_EVERY,
            id=SWEEP_JOB,
            replace_existing=True,
        )

    def _stop(self) -> None:
        global _ACTIVE
        if self._aps is not None:
            self._aps.shutdown(wait=False)
            self._aps = None
        _ACTIVE = None

    async def run(self, stop: asyncio.Event) -> None:
        """Try to lead until `stop`; follow in-process wakes only while leading."""
        follower: asyncio.Task[None] | None = None
        try:
            while not stop.is_set():
                if not self.leading and await self.leadership.acquire():
                    self.leading = True
                    self._start()
                    follower = asyncio.create_task(self.sweeper.follow_wakes(stop))
                    log.info("scheduler.leading")
                    await self.sweeper.run_once()
                elif self.leading and not await self.leadership.still_held():
                    log.warning("scheduler.lost_leadership")
                    self.leading = False
                    self._stop()
                    if follower is not None:
                        follower.cancel()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), LEADER_RETRY)
        finally:
            await self._finish(follower, graceful=stop.is_set())
            await self.leadership.release()
            self.leading = False

    async def _finish(self, follower: asyncio.Task[None] | None, *, graceful: bool) -> None:
        """Stop scheduling; on a graceful stop, the sweep under way ends first.

        Cancelled in the middle, a sweep's transaction is cut off in the database driver
        (nothing is lost, sweeps being idempotent, but the pool logs an error and the sweep's
        work waits for the next leader), and APScheduler's shutdown cancels its running jobs.
        """
        if self._aps is not None:
            self._aps.pause()  # no new scheduled sweep starts
        if graceful:
            if follower is not None:
                # It returns once `stop` is set, after the sweep it may be running.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(follower), SWEEP_GRACE)
            if not await self.sweeper.idle(SWEEP_GRACE):
                log.warning("scheduler.sweep_abandoned", grace=SWEEP_GRACE)
        if follower is not None:
            follower.cancel()
        # Only sweeps still waiting for their turn (nothing done yet) are cancelled here.
        self._stop()
