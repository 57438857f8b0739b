"""Outbox throughput: queued DMs against a fake Slack API that allows `--limit` calls a second.

Baseline: the fake API's own rate limit (it answers 429 + Retry-After beyond it). Figures:
the rate achieved as a fraction of that limit (target ≥ 0.9), messages lost (target 0) and
duplicated (target 0). The dispatcher runs as in `flywheel worker`: the real SlackSender on
a real slack_sdk client, the system clock, its per-workspace rate set to the limit.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import tempfile
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.slack.sender import SlackSender
from benchmarks import POSTGRES_URL, Figures, Stopwatch, report, verdict
from bot import logs
from bot.dispatcher import Dispatcher
from handlers.core.messages import Message
from handlers.core.ports import SystemClock
from storage import outbox
from storage.db import create_engine, session_factory, transaction
from storage.migrate import upgrade
from storage.models import OutboxMessage, Workspace
from testing.fakes.slack_api import FakeSlack

TARGET_FRACTION = 0.9
TOKEN = "xoxb-benchmark"


@contextlib.asynccontextmanager
async def database(postgres: bool) -> AsyncIterator[str]:
    """A migrated, empty database: a temporary SQLite file, or a PostgreSQL schema of its own."""
    if not postgres:
        with tempfile.TemporaryDirectory(prefix="flywheel-bench-") as folder:
            url = f"sqlite+aiosqlite:///{Path(folder) / 'outbox.db'}"
            await _migrate(url)
            yield url
        return
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    parsed = make_url(POSTGRES_URL)
    conninfo = {
        "host": parsed.host,
        "port": parsed.port or 5432,
        "user": parsed.username,
        "password": parsed.password,
        "dbname": parsed.database,
        "autocommit": True,
    }
    with psycopg.connect(**conninfo) as conn:  # type: ignore[arg-type]
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        url = parsed.update_query_dict({"options": f"-csearch_path={schema}"})
        rendered = url.render_as_string(hide_password=False)
        await _migrate(rendered)
        yield rendered
    finally:
        with psycopg.connect(**conninfo) as conn:  # type: ignore[arg-type]
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


async def _migrate(url: str) -> None:
    engine = create_engine(url)
    await upgrade(engine)
    await engine.dispose()


async def queue_dms(engine: AsyncEngine, count: int, clock: SystemClock) -> None:
    sessions = session_factory(engine)
    async with transaction(sessions) as session:
        workspace = Workspace(platform="slack", external_id="TBENCH", created_at=clock.now())
        session.add(workspace)
        await session.flush()
        assert workspace.id is not None
        workspace_id = workspace.id
    payload = Message(text="Your weekly Flywheel digest is ready").model_dump(mode="json")
    for start in range(0, count, 1000):
        async with transaction(sessions) as session:
            for i in range(start, min(count, start + 1000)):
                await outbox.enqueue(
                    session,
                    workspace_id=workspace_id,
                    dedupe_key=f"bench:{i}",
                    kind="message",
                    target={"user": user_id(i)},
                    payload=payload,
                    now=clock.now(),
                )


def user_id(i: int) -> str:
    return f"U{i:07d}"


async def unfinished(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        query = select(func.count()).where(
            OutboxMessage.status.in_((outbox.PENDING, outbox.SENDING))  # type: ignore[attr-defined]
        )
        return int((await conn.execute(query)).scalar_one())


async def by_status(engine: AsyncEngine) -> Counter[str]:
    async with engine.connect() as conn:
        query = select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
        return Counter({str(s): int(n) for s, n in (await conn.execute(query)).all()})


async def measure(count: int, limit: float, postgres: bool, concurrency: int) -> Figures:
    clock = SystemClock()
    fake = FakeSlack(rate_limit=limit)
    await fake.start()
    async with database(postgres) as url:
        engine = create_engine(url)
        try:
            await queue_dms(engine, count, clock)
            wall, statuses = await send_all(engine, clock, fake, limit, concurrency, count)
        finally:
            await engine.dispose()
            await fake.close()

    delivery = Delivery.of(fake, {user_id(i) for i in range(count)}, statuses)
    achieved, lost, duplicated, times = (
        delivery.achieved,
        delivery.lost,
        delivery.duplicated,
        delivery.times,
    )
    busiest = busiest_second(times)
    fraction = achieved / limit
    return {
        "database": "postgresql" if postgres else "sqlite",
        "messages queued": count,
        "API limit (calls/s, baseline)": limit,
        "dispatcher rate (calls/s)": limit,
        "achieved (calls/s)": round(achieved, 2),
        "achieved / limit": round(fraction, 3),
        "target ≥ 0.9": verdict(fraction, TARGET_FRACTION),
        "lost": lost,
        "duplicated": duplicated,
        "429 answers": len(fake.calls_to("chat.postMessage:limited")),
        "busiest second at the API (calls)": busiest,
        "rows by status": dict(statuses),
        "wall time (s)": round(wall, 1),
    }


async def send_all(
    engine: AsyncEngine,
    clock: SystemClock,
    fake: FakeSlack,
    limit: float,
    concurrency: int,
    total: int,
) -> tuple[float, Counter[str]]:
    """Run a dispatcher (real SlackSender, rate set to the limit) until the outbox is empty;
    the wall time and the rows by status."""
    sender = SlackSender(AsyncWebClient(token=TOKEN, base_url=fake.url, timeout=10))
    dispatcher = Dispatcher(
        engine,
        session_factory(engine),
        clock,
        {"slack": sender},
        rate=limit,
        concurrency=concurrency,
    )
    elapsed = Stopwatch()
    worker = asyncio.create_task(dispatcher.run())
    last_report = 0.0
    while (left := await unfinished(engine)) > 0:
        if elapsed() - last_report >= 10:
            last_report = elapsed()
            print(f"  {elapsed():6.1f} s  {total - left:>6} sent", flush=True)
        await asyncio.sleep(0.2)
    wall = elapsed()
    await dispatcher.stop()
    await worker
    await sender.close()
    return wall, await by_status(engine)


@dataclass(frozen=True, slots=True)
class Delivery:
    """What reached the fake API: the rate achieved, and messages lost and duplicated."""

    achieved: float
    lost: int
    duplicated: int
    times: list[float]

    @classmethod
    def of(cls, fake: FakeSlack, expected: set[str], statuses: Counter[str]) -> Delivery:
        delivered = fake.calls_to("chat.postMessage")
        per_user = Counter(str(c.args["channel"]) for c in delivered)
        lost = len(expected - set(per_user)) + statuses.get(outbox.FAILED, 0)
        extra = len(set(per_user) - expected)
        duplicated = sum(n - 1 for n in per_user.values() if n > 1) + extra
        times = sorted(c.at for c in delivered)
        span = times[-1] - times[0] if len(times) > 1 else float("nan")
        achieved = (len(times) - 1) / span if len(times) > 1 else float("nan")
        return cls(achieved, lost, duplicated, times)


async def drain_with_workers(
    folder: Path, url: str, env: dict[str, str], workers: int, engine: AsyncEngine, count: int
) -> float:
    """Start `workers` real `flywheel worker` processes and wait until the outbox is sent;
    the seconds it took."""
    from testing.processes import processes

    elapsed = Stopwatch()
    async with processes(folder, url, **env) as group:
        running = [await group.start("worker") for _ in range(workers)]
        last_report = 0.0
        while (left := await unfinished(engine)) > 0:
            if elapsed() - last_report >= 10:
                last_report = elapsed()
                print(f"  {elapsed():6.1f} s  {count - left:>6} sent", flush=True)
            await asyncio.sleep(0.2)
        wall = elapsed()
        for worker in running:
            await worker.terminate()
    return wall


def busiest_second(times: list[float]) -> int:
    """The most calls the API saw within any one second."""
    best = start = 0
    for end, at in enumerate(times):
        while at - times[start] >= 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


async def measure_workers(
    count: int, limit: float, rate: float, workers: int, concurrency: int, redis_url: str | None
) -> Figures:
    """`workers` real `flywheel worker` processes on one PostgreSQL sending `count` DMs."""
    from testing.processes import BOT_TOKEN, SIGNING_SECRET

    clock = SystemClock()
    fake = FakeSlack(rate_limit=limit)
    await fake.start()
    env = {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": fake.url,
        "FLYWHEEL_OUTBOX_RATE": str(rate),
        "FLYWHEEL_OUTBOX_CONCURRENCY": str(concurrency),
        "LOG_LEVEL": "WARNING",
        **({"REDIS_URL": redis_url} if redis_url else {}),
    }
    with tempfile.TemporaryDirectory(prefix="flywheel-bench-") as folder:
        async with database(True) as url:
            engine = create_engine(url)
            try:
                await queue_dms(engine, count, clock)
                wall = await drain_with_workers(Path(folder), url, env, workers, engine, count)
                statuses = await by_status(engine)
            finally:
                await engine.dispose()
                await fake.close()
    delivery = Delivery.of(fake, {user_id(i) for i in range(count)}, statuses)
    limited = len(fake.calls_to("chat.postMessage:limited"))
    calls = len(delivery.times) + limited
    fraction = delivery.achieved / limit
    return {
        "database": "postgresql",
        "limits kept in": "redis" if redis_url else "postgresql",
        "worker processes": workers,
        "messages queued": count,
        "API limit (calls/s, baseline)": limit,
        "FLYWHEEL_OUTBOX_RATE of each worker (shared)": rate,
        "achieved together (calls/s)": round(delivery.achieved, 2),
        "achieved / limit": round(fraction, 3),
        "target ≥ 0.9": verdict(fraction, TARGET_FRACTION),
        "429 answers": limited,
        "429 answers / calls": round(limited / calls, 4) if calls else 0.0,
        "target ≤ 0.01": verdict(limited / calls if calls else 0.0, 0.01, at_most=True),
        "lost": delivery.lost,
        "duplicated": delivery.duplicated,
        "busiest second at the API (calls)": busiest_second(delivery.times),
        "rows by status": dict(statuses),
        "wall time (s)": round(wall, 1),
    }


def main(argv: list[str] | None = None) -> Figures:
    parser = argparse.ArgumentParser(prog="python -m benchmarks outbox", description=__doc__)
    parser.add_argument("--count", type=int, default=10_000, help="DMs to queue (10,000)")
    parser.add_argument("--limit", type=float, default=50.0, help="API calls/s allowed (50)")
    parser.add_argument("--concurrency", type=int, default=8, help="calls in flight (8)")
    parser.add_argument("--postgres", action="store_true", help=f"use {POSTGRES_URL}")
    parser.add_argument(
        "--workers",
        type=int,
        default=0,
        help="start N real `flywheel worker` processes on PostgreSQL instead of a dispatcher "
        "in this process (their limits shared through PostgreSQL, or Redis with --redis)",
    )
    parser.add_argument("--redis", default=None, metavar="URL", help="REDIS_URL for --workers")
    parser.add_argument(
        "--rate",
        type=float,
        default=None,
        help="FLYWHEEL_OUTBOX_RATE of the --workers (0.95 × --limit: room for the jitter "
        "between a process's send slot and the call's arrival at the API)",
    )
    args = parser.parse_args(argv)
    logs.configure("WARNING")
    logging.getLogger("slack_sdk").setLevel(logging.ERROR)
    print(f"outbox: {args.count} DMs at {args.limit:g} calls/s (≈{args.count / args.limit:.0f} s)")
    if args.workers:
        print(f"  with {args.workers} worker processes")
        figures = asyncio.run(
            measure_workers(
                args.count,
                args.limit,
                args.rate or 0.95 * args.limit,
                args.workers,
                args.concurrency,
                args.redis,
            )
        )
        report(f"outbox-{args.workers}-workers", figures)
        return figures
    figures = asyncio.run(measure(args.count, args.limit, args.postgres, args.concurrency))
    report("outbox", figures)
    return figures


if __name__ == "__main__":
    main()
