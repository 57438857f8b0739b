"""The outbox: written in the caller's transaction, claimed once, sent once, never lost.

Rows are sent by the real `SlackSender` on a real `slack_sdk` AsyncWebClient pointed at the
fake Slack API; leases and schedules move with the FrozenClock.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import func, select

from adapters.slack.sender import SlackSender
from bot.dispatcher import LEASE, Dispatcher
from handlers.core.messages import Message
from storage import outbox
from storage.db import SessionFactory, create_engine, session_factory, transaction
from storage.models import Member, OutboxMessage, Workspace
from testing.fakes.clock import FrozenClock
from testing.fakes.slack_api import FakeSlack
from tests.conftest import BOT_TOKEN


class Boom(Exception):
    """The caller's change failed after queueing a message."""


@pytest.fixture
async def engine(migrated_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(migrated_url)
    yield engine
    await engine.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> SessionFactory:
    return session_factory(engine)


async def add_workspace(
    sessions: SessionFactory, clock: FrozenClock, external_id: str = "T0001"
) -> int:
    async with transaction(sessions) as session:
        workspace = Workspace(platform="slack", external_id=external_id, created_at=clock.now())
        session.add(workspace)
        await session.flush()
        assert workspace.id is not None
        return workspace.id


@pytest.fixture
async def workspace_id(sessions: SessionFactory, clock: FrozenClock) -> int:
    return await add_workspace(sessions, clock)


MakeDispatcher = Callable[..., Dispatcher]


@pytest.fixture
async def make_dispatcher(
    engine: AsyncEngine, clock: FrozenClock, fake_slack: FakeSlack
) -> AsyncIterator[MakeDispatcher]:
    """Dispatchers sending through the real SlackSender to the fake; closed after the test."""
    senders: list[SlackSender] = []

    def make(
        *, on: AsyncEngine | None = None, rate: float = 1000.0, concurrency: int = 8
    ) -> Dispatcher:
        senders.append(SlackSender(AsyncWebClient(token=BOT_TOKEN, base_url=fake_slack.url)))
        return Dispatcher(
            on or engine,
            session_factory(on or engine),
            clock,
            {"slack": senders[-1]},
            rate=rate,
            concurrency=concurrency,
        )

    yield make
    for sender in senders:
        await sender.close()


async def enqueue(
    session: Any, clock: FrozenClock, workspace_id: int, key: str, user: str, text: str = "hi"
) -> bool:
    return await outbox.enqueue(
        session,
        workspace_id=workspace_id,
        dedupe_key=key,
        kind="message",
        target={"user": user},
        payload=Message(text=text).model_dump(mode="json"),
        now=clock.now(),
    )


async def queue_dms(
    sessions: SessionFactory, clock: FrozenClock, workspace_id: int, users: list[str]
) -> None:
    async with transaction(sessions) as session:
        for user in users:
            await enqueue(
                session, clock, workspace_id, f"{workspace_id}:dm:{user}", user, f"for {user}"
            )


async def statuses(sessions: SessionFactory) -> Counter[str]:
    async with sessions() as session:
        rows = await session.exec(
            select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
        )
        return Counter({status: n for status, n in rows.all()})


async def by_key(sessions: SessionFactory, key: str) -> OutboxMessage:
    async with sessions() as session:
        return (
            await session.exec(select(OutboxMessage).where(OutboxMessage.dedupe_key == key))
        ).one()


def dm_counts(fake: FakeSlack) -> Counter[str]:
    return Counter(str(c.args["channel"]) for c in fake.calls_to("chat.postMessage"))


# -- written with the change that causes them ----------------------------------------------


async def test_a_rolled_back_transaction_queues_nothing(
    make_dispatcher: MakeDispatcher,
    sessions: SessionFactory,
    clock: FrozenClock,
    workspace_id: int,
    engine: AsyncEngine,
    fake_slack: FakeSlack,
) -> None:
    with pytest.raises(Boom):
        async with transaction(sessions) as session:
            session.add(
                Member(
                    workspace_id=workspace_id,
                    user_id="UALICE",
                    created_at=clock.now(),
                    updated_at=clock.now(),
                )
            )
            assert await enqueue(session, clock, workspace_id, "welcome:UALICE", "UALICE")
            raise Boom

    async with sessions() as session:
        assert (await session.exec(select(func.count()).select_from(Member))).one() == 0
    assert await statuses(sessions) == Counter()
    assert await make_dispatcher().drain() == 0
    assert fake_slack.calls == []


async def test_a_committed_change_and_its_message_land_together(
    make_dispatcher: MakeDispatcher,
    sessions: SessionFactory,
    clock: FrozenClock,
    workspace_id: int,
    engine: AsyncEngine,
    fake_slack: FakeSlack,
) -> None:
    async with transaction(sessions) as session:
        session.add(
            Member(
                workspace_id=workspace_id,
                user_id="UALICE",
                created_at=clock.now(),
                updated_at=clock.now(),
            )
        )
        await enqueue(session, clock, workspace_id, "welcome:UALICE", "UALICE", "Welcome")

    assert await statuses(sessions) == Counter(pending=1)
    assert await make_dispatcher().drain() == 1
    assert fake_slack.sent_texts() == ["Welcome"]


async def test_a_repeated_dedupe_key_queues_once(
    make_dispatcher: MakeDispatcher,
    sessions: SessionFactory,
    clock: FrozenClock,
    workspace_id: int,
    engine: AsyncEngine,
    fake_slack: FakeSlack,
) -> None:
    async with transaction(sessions) as session:
        assert await enqueue(session, clock, workspace_id, "vote:7:UBOB", "UBOB", "first")
        assert not await enqueue(session, clock, workspace_id, "vote:7:UBOB", "UBOB", "same tx")
    async with transaction(sessions) as session:
        assert not await enqueue(session, clock, workspace_id, "vote:7:UBOB", "UBOB", "later tx")

    dispatcher = make_dispatcher()
    assert await dispatcher.drain() == 1
    # Even once sent, the key still refuses a duplicate.
    async with transaction(sessions) as session:
        assert not await enqueue(session, clock, workspace_id, "vote:7:UBOB", "UBOB", "after send")
    assert await dispatcher.drain() == 0
    assert fake_slack.sent_texts() == ["first"]


async def test_a_row_is_not_sent_before_its_time(
    make_dispatcher: MakeDispatcher,
    sessions: SessionFactory,
    clock: FrozenClock,
    workspace_id: int,
    engine: AsyncEngine,
    fake_slack: FakeSlack,
) -> None:
    async with transaction(sessions) as session:
        await outbox.enqueue(
            session,
            workspace_id=workspace_id,
            dedupe_key="later",
            kind="message",
            target={"user": "UBOB"},
            payload=Message(text="morning").model_dump(mode="json"),
            now=clock.now(),
            not_before=clock.now() + timedelta(hours=8),
        )
    dispatcher = make_dispatcher()
    assert await dispatcher.drain() == 0
    clock.advance(hours=8)
    assert await dispatcher.drain() == 1
    assert fake_slack.sent_texts() == ["morning"]


# -- claimed once --------------------------------------------------------------------------


async def test_a_claimed_row_is_leased_to_one_worker(
    sessions: SessionFactory,
    clock: FrozenClock,
    workspace_id: int,
    engine: AsyncEngine,
) -> None:
    await queue_dms(sessions, clock, workspace_id, ["UA", "UB", "UC"])

    first = await outbox.claim(engine, worker="w1", now=clock.now(), limit=2, lease=LEASE)
    second = await outbox.claim(engine, worker="w2", now=clock.now(), limit=10, lease=LEASE)
    third = await outbox.claim(engine, worker="w3", now=clock.now(), limit=10, lease=LEASE)

    assert [r.target["user"] for r in first] == ["UA", "UB"]
    assert [r.target["user"] for r in second] == ["UC"]
    assert third == []
    assert all(r.attempts == 1 and r.claimed_until == clock.now() + LEASE for r in first + second)


async def test_an_expired_lease_is_picked_up_again_and_sent_once(
    make_dispatcher: MakeDispatcher,
    sessions: SessionFactory,
    clock: FrozenClock,
    workspace_id: int,
    engine: AsyncEngine,
    fake_slack: FakeSlack,
) -> None:
    await queue_dms(sessions, clock, workspace_id, ["UALICE"])
    # A dispatcher claims the row and dies before sending it.
    (orphan,) = await outbox.claim(engine, worker="dead", now=clock.now(), limit=10, lease=LEASE)
    dispatcher = make_dispatcher()

    assert await dispatcher.drain() == 0
    clock.advance(seconds=LEASE.total_seconds() - 1)
    assert await dispatcher.drain() == 0
    clock.advance(seconds=2)
    assert await dispatcher.drain() == 1

    sent = await by_key(sessions, f"{workspace_id}:dm:UALICE")
    assert (sent.status, sent.attempts, sent.claimed_by) == ("sent", 2, dispatcher.worker_id)
    assert dm_counts(fake_slack) == Counter(UALICE=1)

    # The dead worker waking up cannot overwrite what the live one recorded.
    async with transaction(sessions) as session:
        await outbox.reschedule(session, orphan, worker="dead", at=clock.now(), error="late")
        await outbox.mark_failed(session, orphan, worker="dead", error="late")
    assert (await by_key(sessions, f"{workspace_id}:dm:UALICE")).status == "sent"
    assert await dispatcher.drain() == 0
    assert dm_counts(fake_slack) == Counter(UALICE=1)


async def test_two_dispatchers_send_every_row_exactly_once(
    make_dispatcher: MakeDispatcher,
    migrated_url: str,
    sessions: SessionFactory,
    clock: FrozenClock,
    workspace_id: int,
    fake_slack: FakeSlack,
) -> None:
    users = [f"U{i:04d}" for i in range(500)]
    await queue_dms(sessions, clock, workspace_id, users)
    engines = [create_engine(migrated_url), create_engine(migrated_url)]
    try:
        first, second = (make_dispatcher(on=e, rate=10_000) for e in engines)
        handled = await asyncio.gather(first.drain(), second.drain())
        # On a loaded machine a send can fail for real (a reset connection) and is then
        # rescheduled with backoff: move the clock past it rather than lose the check.
        for _ in range(5):
            if await statuses(sessions) == Counter(sent=500):
                break
            clock.advance(seconds=400)
            again = await asyncio.gather(first.drain(), second.drain())
            handled = [handled[0] + again[0], handled[1] + again[1]]
    finally:
        for e in engines:
            await e.dispose()

    assert sum(handled) >= 500
    assert dm_counts(fake_slack) == Counter({user: 1 for user in users})
    assert await statuses(sessions) == Counter(sent=500)
    async with sessions() as session:
        workers = Counter((await session.exec(select(OutboxMessage.claimed_by))).all())
    # Both really worked the queue at the same time.
    assert set(workers) == {first.worker_id, second.worker_id}


# -- shutdown and pace ---------------------------------------------------------------------


async def test_stop_lets_in_flight_sends_finish_and_leaves_nothing_sending(
    make_dispatcher: MakeDispatcher,
    sessions: SessionFactory,
    clock: FrozenClock,
    workspace_id: int,
    engine: AsyncEngine,
    fake_slack: FakeSlack,
) -> None:
    users = [f"U{i:03d}" for i in range(40)]
    await queue_dms(sessions, clock, workspace_id, users)
    fake_slack.slow("chat.postMessage", 0.3, times=40)
    dispatcher = make_dispatcher(concurrency=4)

    worker = asyncio.create_task(dispatcher.run())
    for _ in range(200):
        if fake_slack.in_flight:
            break
        await asyncio.sleep(0.01)
    assert fake_slack.in_flight > 0
    await dispatcher.stop()
    await asyncio.wait_for(worker, 10)
    fake_slack.faults.clear()

    assert fake_slack.in_flight == 0
    after_stop = await statuses(sessions)
    assert after_stop["sending"] == 0
    # What was in flight was sent and recorded; the rest waits, untouched, for the next worker.
    assert 0 < after_stop["sent"] < 40
    assert after_stop["sent"] + after_stop["pending"] == 40
    assert sum(dm_counts(fake_slack).values()) == after_stop["sent"]
    async with sessions() as session:
        waiting = (
            await session.exec(select(OutboxMessage).where(OutboxMessage.status == "pending"))
        ).all()
    assert all(r.attempts == 0 for r in waiting)

    assert await make_dispatcher().drain() == after_stop["pending"]
    assert dm_counts(fake_slack) == Counter({user: 1 for user in users})


async def test_drain_goes_on_when_a_busy_workspace_settles_during_the_claim(
    make_dispatcher: MakeDispatcher,
    sessions: SessionFactory,
    clock: FrozenClock,
    workspace_id: int,
    fake_slack: FakeSlack,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    users = [f"U{i:03d}" for i in range(12)]
    await queue_dms(sessions, clock, workspace_id, users)
    real_claim = outbox.claim

    async def claim_outlived_by_sends(*args: Any, **kwargs: Any) -> list[outbox.Claimed]:
        rows = await real_claim(*args, **kwargs)
        if kwargs.get("exclude_workspaces"):
            # A slow claim on a busy machine: every send it left out settles meanwhile.
            for _ in range(500):
                if not (await statuses(sessions))["sending"]:
                    break
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.05)
        return rows

    monkeypatch.setattr(outbox, "claim", claim_outlived_by_sends)
    # Two rows held at a time: the second claim leaves the workspace out.
    dispatcher = make_dispatcher(concurrency=1)

    assert await dispatcher.drain() == 12
    assert dm_counts(fake_slack) == Counter({user: 1 for user in users})
    assert await statuses(sessions) == Counter(sent=12)


async def test_each_workspace_is_sent_to_at_its_own_rate(
    make_dispatcher: MakeDispatcher,
    sessions: SessionFactory,
    clock: FrozenClock,
    engine: AsyncEngine,
    fake_slack: FakeSlack,
) -> None:
    rate, per_workspace = 20.0, 40
    acme = await add_workspace(sessions, clock, "TACME")
    globex = await add_workspace(sessions, clock, "TGLOBEX")
    await queue_dms(sessions, clock, acme, [f"UA{i:02d}" for i in range(per_workspace)])
    await queue_dms(sessions, clock, globex, [f"UG{i:02d}" for i in range(per_workspace)])
    dispatcher = make_dispatcher(rate=rate)

    started = time.monotonic()
    assert await dispatcher.drain() == 2 * per_workspace
    elapsed = time.monotonic() - started

    calls = fake_slack.calls_to("chat.postMessage")
    burst = 1  # a workspace's rate is a spacing: one send per 1/rate seconds
    for prefix in ("UA", "UG"):
        times = sorted(c.at for c in calls if str(c.args["channel"]).startswith(prefix))
        assert len(times) == per_workspace
        # In any one-second window, no more than the rate plus the burst (plus one for the
        # network's jitter between the dispatcher and the API).
        busiest = max(sum(1 for t in times if start <= t < start + 1.0) for start in times)
        assert busiest <= rate + burst + 1
        span = times[-1] - times[0]
        assert span >= (per_workspace - burst) / rate * 0.85
    # The two workspaces were paced side by side, not one after the other: the second
    # workspace's first message did not wait for the first workspace's backlog.
    assert elapsed < 2 * (per_workspace / rate) * 0.9  # one after the other: ≥ 3.95 s
    first_globex = min(c.at for c in calls if str(c.args["channel"]).startswith("UG"))
    first_acme = min(c.at for c in calls if str(c.args["channel"]).startswith("UA"))
    assert first_globex - first_acme < 0.5


async def test_a_worker_leaves_rows_of_platforms_it_cannot_send_to(
    engine: AsyncEngine, sessions: SessionFactory, clock: FrozenClock, workspace_id: int
) -> None:
    await queue_dms(sessions, clock, workspace_id, ["U1", "U2"])
    console_only = Dispatcher(engine, sessions, clock, {}, rate=1000.0)
    assert await console_only.drain() == 0
    assert await statuses(sessions) == Counter({"pending": 2})
