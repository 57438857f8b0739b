"""The dispatcher and the shared limits: without them nothing is sent (and it says so once);
an outage of the platform uses up no message's attempts and sends each message once after.

Sends go through the real `SlackSender` to the fake Slack API; the limiter's clock is the
test's FrozenClock, so pauses end when the test moves time on.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Callable

import pytest
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select
from structlog.testing import capture_logs

from adapters.limits import Limiter
from adapters.limits.memory import MemoryLimiter
from adapters.limits.redis import RedisLimiter
from adapters.slack.sender import SlackSender
from bot.dispatcher import Dispatcher
from storage.db import SessionFactory
from storage.models import OutboxMessage
from testing.fakes.clock import FrozenClock
from testing.fakes.slack_api import FakeSlack
from tests.conftest import BOT_TOKEN
from tests.test_dispatcher_slack import engine, queue, sessions, workspace_id

__all__ = ["engine", "sessions", "workspace_id"]

MakeDispatcher = Callable[[Limiter], Dispatcher]


@pytest.fixture
async def make_dispatcher(
    engine: AsyncEngine, sessions: SessionFactory, clock: FrozenClock, fake_slack: FakeSlack
) -> AsyncIterator[MakeDispatcher]:
    senders: list[SlackSender] = []

    def make(limiter: Limiter) -> Dispatcher:
        senders.append(SlackSender(AsyncWebClient(token=BOT_TOKEN, base_url=fake_slack.url)))
        return Dispatcher(
            engine,
            sessions,
            clock,
            {"slack": senders[-1]},
            rate=1000.0,
            max_attempts=3,
            limiter=limiter,
        )

    yield make
    for sender in senders:
        await sender.close()


def clocked(clock: FrozenClock) -> MemoryLimiter:
    return MemoryLimiter(lambda: clock.now().timestamp())


async def rows(sessions: SessionFactory) -> list[OutboxMessage]:
    async with sessions() as session:
        return list((await session.exec(select(OutboxMessage).order_by(OutboxMessage.id))).all())


def dms(fake: FakeSlack) -> Counter[str]:
    return Counter(str(c.args["channel"]) for c in fake.calls_to("chat.postMessage"))


async def test_without_its_limits_nothing_is_sent_and_it_is_said_once(
    make_dispatcher: MakeDispatcher,
    sessions: SessionFactory,
    clock: FrozenClock,
    fake_slack: FakeSlack,
    workspace_id: int,
) -> None:
    users = ["UALICE", "UBOB", "UADMIN"]
    for user in users:
        await queue(sessions, clock, workspace_id, f"k-{user}", {"user": user})
    unreachable = RedisLimiter("redis://127.0.0.1:1/0")
    dispatcher = make_dispatcher(unreachable)
    with capture_logs() as logs:
        await dispatcher.drain()
        clock.advance(seconds=10)
        await dispatcher.drain()
    assert fake_slack.calls_to("chat.postMessage") == []
    waiting = await rows(sessions)
    assert {(r.status, r.attempts) for r in waiting} == {("pending", 0)}
    assert all("send limits unavailable" in (r.last_error or "") for r in waiting)
    warnings = [e for e in logs if e["event"] == "outbox.limits_unavailable"]
    assert len(warnings) == 1 and warnings[0]["log_level"] == "warning"
    await unreachable.close()

    # The store answers again: everything goes, once.
    dispatcher.limiter = MemoryLimiter()
    clock.advance(seconds=10)
    with capture_logs() as logs:
        await dispatcher.drain()
    assert dms(fake_slack) == Counter({user: 1 for user in users})
    assert [e["event"] for e in logs if e["event"].startswith("outbox.limits")] == [
        "outbox.limits_available"
    ]


async def test_an_outage_uses_up_no_attempts_and_each_message_goes_once_after(
    make_dispatcher: MakeDispatcher,
    sessions: SessionFactory,
    clock: FrozenClock,
    fake_slack: FakeSlack,
    workspace_id: int,
) -> None:
    users = [f"U{n:03d}" for n in range(6)]
    for user in users:
        await queue(sessions, clock, workspace_id, f"k-{user}", {"user": user})
    dispatcher = make_dispatcher(clocked(clock))
    await fake_slack.stop_listening()
    for _ in range(3):  # refused, several rounds: far more than max_attempts
        await dispatcher.drain()
        clock.advance(minutes=5)
    await fake_slack.listen_again()
    fake_slack.unavailable = 503
    for _ in range(3):
        await dispatcher.drain()
        clock.advance(minutes=5)
    during = await rows(sessions)
    assert {r.status for r in during} == {"pending"}
    # Only the first failure, before the outage was recognised, was an attempt.
    assert sum(r.attempts for r in during) <= 1
    assert len(fake_slack.calls_to("chat.postMessage:unavailable")) >= len(users)

    fake_slack.unavailable = None
    with capture_logs() as logs:
        while await dispatcher.drain():
            clock.advance(minutes=5)
    assert dms(fake_slack) == Counter({user: 1 for user in users})
    assert {r.status for r in await rows(sessions)} == {"sent"}
    assert any(e["event"] == "outbox.platform_back" for e in logs)


async def test_a_single_failing_message_still_uses_up_its_attempts(
    make_dispatcher: MakeDispatcher,
    sessions: SessionFactory,
    clock: FrozenClock,
    fake_slack: FakeSlack,
    workspace_id: int,
) -> None:
    await queue(sessions, clock, workspace_id, "broken", {"user": "UALICE"})
    fake_slack.fail("chat.postMessage", 500, times=10)
    dispatcher = make_dispatcher(clocked(clock))
    for _ in range(5):
        await dispatcher.drain()
        clock.advance(minutes=10)
    (broken,) = await rows(sessions)
    assert (broken.status, broken.attempts) == ("failed", 3)
