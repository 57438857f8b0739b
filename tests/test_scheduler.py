"""One scheduler leads at a time; its job lives in our database; a sweep run twice sends once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlmodel import select

from bot import scheduler as scheduling
from bot.app import Flywheel, build
from bot.scheduler import Leadership, Scheduler, sync_url
from bot.settings import load_settings
from handlers.core.context import Config
from handlers.core.ports import AI, Clock
from storage.db import SessionFactory, create_engine
from storage.models import Workspace
from testing.fakes.clock import FrozenClock


@pytest.fixture
async def app(migrated_url: str, clock: FrozenClock) -> AsyncIterator[Flywheel]:
    flywheel = build(load_settings(database_url=migrated_url, _env_file=None), clock=clock)
    yield flywheel
    await flywheel.close()


async def test_only_one_process_leads(app: Flywheel, migrated_url: str) -> None:
    other_engine = create_engine(migrated_url)
    first, second = Leadership(app.engine), Leadership(other_engine)
    try:
        assert await first.acquire()
        assert not await second.acquire()
        assert await first.still_held()
        await first.release()
        assert await second.acquire()
    finally:
        await first.release()
        await second.release()
        await other_engine.dispose()


async def test_the_sweep_job_is_stored_in_the_database_and_leadership_moves(
    app: Flywheel, migrated_url: str
) -> None:
    scheduling.LEADER_RETRY = 0.05
    other = create_engine(migrated_url)
    one = Scheduler(app.engine, migrated_url, app.sweeper)
    two = Scheduler(other, migrated_url, app.sweeper)
    stop_one, stop_two = asyncio.Event(), asyncio.Event()
    first = asyncio.create_task(one.run(stop_one))
    for _ in range(100):
        if one.leading:
            break
        await asyncio.sleep(0.02)
    second = asyncio.create_task(two.run(stop_two))
    await asyncio.sleep(0.2)
    try:
        assert one.leading and not two.leading
        async with app.engine.connect() as conn:
            jobs = (await conn.execute(text("SELECT id FROM apscheduler_jobs"))).scalars().all()
        assert jobs == [scheduling.SWEEP_JOB]
        stop_one.set()
        await first
        for _ in range(100):
            if two.leading:
                break
            await asyncio.sleep(0.02)
        assert two.leading
    finally:
        stop_one.set()
        stop_two.set()
        await asyncio.gather(first, second)
        await other.dispose()
        scheduling.LEADER_RETRY = 15.0


def test_the_job_store_uses_the_same_database_synchronously() -> None:
    assert sync_url("sqlite+aiosqlite:///./flywheel.db") == "sqlite:///./flywheel.db"
    assert sync_url("postgresql+psycopg://u:p@h/db") == "postgresql+psycopg://u:p@h/db"


async def test_a_graceful_stop_lets_the_sweep_under_way_finish(
    app: Flywheel, migrated_url: str
) -> None:
    runs: list[str] = []
    woken = asyncio.Event()

    async def slow_job(sessions: SessionFactory, clock: Clock, config: Config, ai: AI) -> None:
        if not runs:
            runs.append("first")  # the new leader's own run
            return
        woken.set()
        async with sessions() as session:
            await session.exec(select(Workspace))
            await asyncio.sleep(0.3)  # the stop arrives here
            await session.exec(select(Workspace))
        runs.append("finished")

    app.sweeper.sweeps, app.sweeper.jobs = (), (slow_job,)
    leader = Scheduler(app.engine, migrated_url, app.sweeper)
    stop = asyncio.Event()
    running = asyncio.create_task(leader.run(stop))
    for _ in range(250):
        if runs:
            break
        await asyncio.sleep(0.02)
    app.sweeper.wake()  # a change in this process asks for a sweep soon
    await asyncio.wait_for(woken.wait(), 5)
    stop.set()
    await asyncio.wait_for(running, 30)

    assert runs == ["first", "finished"]
