"""The outbox dispatcher against the fake Slack Web API: rate limits, failures, retries, targets.

Every send goes through the real `SlackSender` on a real `slack_sdk` AsyncWebClient pointed at
the fake; time moves only when the FrozenClock is advanced.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import pytest
import structlog
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from adapters.slack.sender import SlackSender
from bot import dispatcher as dispatcher_module
from bot.dispatcher import Dispatcher
from handlers.core.messages import Message
from storage import outbox
from storage.db import SessionFactory, create_engine, session_factory, transaction
from storage.models import MessageRef, OutboxMessage, Workspace
from testing.fakes.clock import FrozenClock
from testing.fakes.slack_api import FakeSlack
from testing.processes import free_port
from tests.conftest import BOT_TOKEN


@pytest.fixture
async def engine(migrated_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(migrated_url)
    yield engine
    await engine.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> SessionFactory:
    return session_factory(engine)


@pytest.fixture
async def workspace_id(sessions: SessionFactory, clock: FrozenClock) -> int:
    async with transaction(sessions) as session:
        workspace = Workspace(
            platform="slack", external_id="T0001", name="Acme", created_at=clock.now()
        )
        session.add(workspace)
        await session.flush()
        assert workspace.id is not None
        return workspace.id


MakeDispatcher = Callable[..., Dispatcher]


@pytest.fixture
async def make_dispatcher(
    engine: AsyncEngine, clock: FrozenClock, fake_slack: FakeSlack
) -> AsyncIterator[MakeDispatcher]:
    """Dispatchers sending through the real SlackSender to the fake; closed after the test."""
    senders: list[SlackSender] = []

    def make(*, timeout: int = 30, max_attempts: int = 3) -> Dispatcher:
        client = AsyncWebClient(token=BOT_TOKEN, base_url=fake_slack.url, timeout=timeout)
        senders.append(SlackSender(client))
        return Dispatcher(
            engine,
            session_factory(engine),
            clock,
            {"slack": senders[-1]},
            rate=1000.0,
            max_attempts=max_attempts,
        )

    yield make
    for sender in senders:
        await sender.close()


@pytest.fixture
def dispatcher(make_dispatcher: MakeDispatcher) -> Dispatcher:
    return make_dispatcher()


async def queue(
    sessions: SessionFactory,
    clock: FrozenClock,
    workspace_id: int,
    key: str,
    target: dict[str, Any],
    text: str = "hello",
    *,
    kind: str = "message",
    ref_key: str | None = None,
) -> None:
    async with transaction(sessions) as session:
        await outbox.enqueue(
            session,
            workspace_id=workspace_id,
            dedupe_key=key,
            kind=kind,
            target=target,
            payload=Message(text=text).model_dump(mode="json"),
            now=clock.now(),
            ref_key=ref_key,
        )


async def row(sessions: SessionFactory, key: str) -> OutboxMessage:
    async with sessions() as session:
        return (
            await session.exec(select(OutboxMessage).where(OutboxMessage.dedupe_key == key))
        ).one()


# -- rate limits -------------------------------------------------------------------------


async def test_429_is_not_an_attempt_waits_retry_after_pauses_the_workspace_then_sends_once(
    dispatcher: Dispatcher,
    sessions: SessionFactory,
    clock: FrozenClock,
    fake_slack: FakeSlack,
    workspace_id: int,
) -> None:
    await queue(
        sessions, clock, workspace_id, "k1", {"user": "UALICE"}, "Your request was captured"
    )
    fake_slack.fail("chat.postMessage", 429, retry_after=1)
    limited_at = clock.now()

    assert await dispatcher.drain() == 1
    held = await row(sessions, "k1")
    assert (held.status, held.attempts) == ("pending", 0)
    assert held.next_attempt_at == limited_at + timedelta(seconds=1)
    assert held.last_error is not None and "rate limit" in held.last_error.lower()

    # Not due until Retry-After has passed on the clock.
    assert await dispatcher.drain() == 0
    clock.advance(seconds=1)
    assert await dispatcher.drain() == 1

    sent = await row(sessions, "k1")
    assert (sent.status, sent.attempts, sent.last_error) == ("sent", 1, None)
    first, second = fake_slack.calls_to("chat.postMessage")
    assert second.args["channel"] == "UALICE" and second.args["text"] == "Your request was captured"
    # The workspace's bucket stayed paused for Retry-After in real time too.
    assert second.at - first.at >= 0.9
    assert len(fake_slack.calls_to("chat.postMessage")) == 2


# -- transient failures: 5xx, timeouts, connection errors --------------------------------


@pytest.mark.parametrize(
    "fault",
    [{"status": 500}, {"status": 503}, {"status": 200, "error": "internal_error"}],
    ids=["http-500", "http-503", "ok-false-internal_error"],
)
async def test_transient_errors_back_off_exponentially_then_send(
    dispatcher: Dispatcher,
    sessions: SessionFactory,
    clock: FrozenClock,
    fake_slack: FakeSlack,
    workspace_id: int,
    fault: dict[str, Any],
) -> None:
    await queue(sessions, clock, workspace_id, "k1", {"channel": "C0REVIEW"})
    fake_slack.fail("chat.postMessage", times=2, **fault)

    for attempt in (1, 2):
        tried_at = clock.now()
        assert await dispatcher.drain() == 1
        waiting = await row(sessions, "k1")
        assert (waiting.status, waiting.attempts) == ("pending", attempt)
        assert waiting.last_error
        # Full jitter under an exponential ceiling: 1 s after the first failure, then 2 s.
        ceiling = dispatcher_module.BACKOFF_BASE * 2 ** (attempt - 1)
        assert tried_at < waiting.next_attempt_at <= tried_at + timedelta(seconds=ceiling)
        assert await dispatcher.drain() == 0
        clock.set(waiting.next_attempt_at)

    assert await dispatcher.drain() == 1
    sent = await row(sessions, "k1")
    assert (sent.status, sent.attempts, sent.last_error) == ("sent", 3, None)
    assert [c.args["channel"] for c in fake_slack.calls_to("chat.postMessage")] == ["C0REVIEW"] * 3


def test_backoff_grows_exponentially_with_full_jitter_and_a_cap() -> None:
    rng_state = random.getstate()
    try:
        random.seed(7)
        for attempt in range(1, 8):
            ceiling = min(
                dispatcher_module.BACKOFF_CAP, dispatcher_module.BACKOFF_BASE * 2 ** (attempt - 1)
            )
            samples = [dispatcher_module.backoff(attempt) for _ in range(400)]
            assert all(0 <= s <= ceiling for s in samples)
            # Jitter spreads the retries over the whole window instead of synchronising them.
            assert max(samples) > 0.8 * ceiling and min(samples) < 0.2 * ceiling
        assert (
            max(dispatcher_module.backoff(40) for _ in range(100)) <= dispatcher_module.BACKOFF_CAP
        )
    finally:
        random.setstate(rng_state)


async def test_500s_beyond_max_attempts_leave_a_failed_row_with_its_error(
    dispatcher: Dispatcher,
    sessions: SessionFactory,
    clock: FrozenClock,
    fake_slack: FakeSlack,
    workspace_id: int,
) -> None:
    await queue(sessions, clock, workspace_id, "k1", {"user": "UBOB"})
    fake_slack.fail("chat.postMessage", 500, times=10)

    for _ in range(6):
        await dispatcher.drain()
        clock.advance(minutes=10)

    failed = await row(sessions, "k1")
    assert (failed.status, failed.attempts) == ("failed", 3)
    assert failed.last_error is not None
    assert "gave up after 3 attempts" in failed.last_error and "500" in failed.last_error
    assert len(fake_slack.calls_to("chat.postMessage")) == 3


async def test_a_slow_answer_beyond_the_client_timeout_is_retried(
    make_dispatcher: MakeDispatcher,
    sessions: SessionFactory,
    clock: FrozenClock,
    fake_slack: FakeSlack,
    workspace_id: int,
) -> None:
    dispatcher = make_dispatcher(timeout=1)
    await queue(sessions, clock, workspace_id, "k1", {"user": "UALICE"})
    fake_slack.slow("chat.postMessage", 2.0)

    assert await dispatcher.drain() == 1
    waiting = await row(sessions, "k1")
    assert (waiting.status, waiting.attempts) == ("pending", 1)
    assert waiting.last_error is not None and "Timeout" in waiting.last_error

    clock.advance(seconds=2)
    assert await dispatcher.drain() == 1
    sent = await row(sessions, "k1")
    assert (sent.status, sent.attempts) == ("sent", 2)
    assert any(c.args["channel"] == "UALICE" for c in fake_slack.calls_to("chat.postMessage"))


async def test_connection_refused_is_retried_until_max_attempts_then_failed(
    dispatcher: Dispatcher,
    sessions: SessionFactory,
    clock: FrozenClock,
    fake_slack: FakeSlack,
    workspace_id: int,
) -> None:
    await queue(sessions, clock, workspace_id, "k1", {"user": "UALICE"})
    await fake_slack.close()

    assert await dispatcher.drain() == 1
    waiting = await row(sessions, "k1")
    assert (waiting.status, waiting.attempts) == ("pending", 1)
    assert waiting.last_error is not None and "ClientConnectorError" in waiting.last_error

    for _ in range(4):
        clock.advance(minutes=10)
        await dispatcher.drain()
    failed = await row(sessions, "k1")
    assert (failed.status, failed.attempts) == ("failed", 3)
    assert failed.last_error is not None and "Cannot connect" in failed.last_error


@pytest.mark.parametrize("code", ["channel_not_found", "not_in_channel", "invalid_blocks"])
async def test_a_permanent_refusal_fails_at_once(
    dispatcher: Dispatcher,
    sessions: SessionFactory,
    clock: FrozenClock,
    fake_slack: FakeSlack,
    workspace_id: int,
    code: str,
) -> None:
    await queue(sessions, clock, workspace_id, "k1", {"channel": "CGONE"})
    fake_slack.fail("chat.postMessage", error=code)

    assert await dispatcher.drain() == 1
    failed = await row(sessions, "k1")
    assert (failed.status, failed.attempts) == ("failed", 1)
    assert failed.last_error is not None and code in failed.last_error
    clock.advance(hours=1)
    assert await dispatcher.drain() == 0
    assert len(fake_slack.calls_to("chat.postMessage")) == 1


# -- destinations ------------------------------------------------------------------------


async def test_a_dm_goes_to_the_user_id_without_opening_a_conversation(
    dispatcher: Dispatcher,
    sessions: SessionFactory,
    clock: FrozenClock,
    fake_slack: FakeSlack,
    workspace_id: int,
) -> None:
    await queue(
        sessions, clock, workspace_id, "k1", {"user": "UALICE"}, "Thanks!", ref_key="thanks"
    )

    assert await dispatcher.drain() == 1
    (call,) = fake_slack.calls
    assert call.method == "chat.postMessage"
    assert call.args["channel"] == "UALICE" and call.args["text"] == "Thanks!"
    assert call.token == BOT_TOKEN
    assert not fake_slack.calls_to("conversations.open")
    async with sessions() as session:
        ref = await outbox.message_ref(session, workspace_id, "thanks")
    assert ref is not None and ref.channel == "DALICE" and ref.message_id.endswith(".000100")


async def test_a_thread_reply_carries_thread_ts(
    dispatcher: Dispatcher,
    sessions: SessionFactory,
    clock: FrozenClock,
    fake_slack: FakeSlack,
    workspace_id: int,
) -> None:
    await queue(
        sessions, clock, workspace_id, "k1", {"channel": "CSALES", "thread": "1700000000.000200"}
    )
    assert await dispatcher.drain() == 1
    (call,) = fake_slack.calls_to("chat.postMessage")
    assert (call.args["channel"], call.args["thread_ts"]) == ("CSALES", "1700000000.000200")


async def test_an_update_waits_for_the_original_then_edits_it_in_place(
    dispatcher: Dispatcher,
    sessions: SessionFactory,
    clock: FrozenClock,
    fake_slack: FakeSlack,
    workspace_id: int,
) -> None:
    # The edit is queued first, and the original's first send fails: the edit must wait.
    await queue(sessions, clock, workspace_id, "edit", {"ref": "card:7"}, "2 votes", kind="update")
    await queue(sessions, clock, workspace_id, "orig", {"user": "UBOB"}, "1 vote", ref_key="card:7")
    fake_slack.fail("chat.postMessage", 500)

    assert await dispatcher.drain() == 2
    edit = await row(sessions, "edit")
    assert (edit.status, edit.attempts) == ("pending", 0)
    assert not fake_slack.calls_to("chat.update")

    for _ in range(5):
        clock.advance(seconds=2)
        await dispatcher.drain()
        if (await row(sessions, "edit")).status == "sent":
            break
    edit = await row(sessions, "edit")
    assert (edit.status, edit.attempts) == ("sent", 1)

    post = [c for c in fake_slack.calls if c.method == "chat.postMessage"][-1]
    (update,) = fake_slack.calls_to("chat.update")
    assert fake_slack.calls.index(update) > fake_slack.calls.index(post)
    async with sessions() as session:
        ref = (await session.exec(select(MessageRef))).one()
    assert (update.args["channel"], update.args["ts"]) == (ref.channel, ref.message_id)
    assert ref.channel == "DBOB" and update.args["text"] == "2 votes"


async def test_an_update_whose_original_failed_fails_too(
    dispatcher: Dispatcher,
    sessions: SessionFactory,
    clock: FrozenClock,
    fake_slack: FakeSlack,
    workspace_id: int,
) -> None:
    await queue(
        sessions, clock, workspace_id, "orig", {"channel": "CGONE"}, "1 vote", ref_key="card:8"
    )
    fake_slack.fail("chat.postMessage", error="channel_not_found")
    assert await dispatcher.drain() == 1
    await queue(sessions, clock, workspace_id, "edit", {"ref": "card:8"}, "2 votes", kind="update")

    assert await dispatcher.drain() == 1
    edit = await row(sessions, "edit")
    assert edit.status == "failed" and edit.last_error == "the message to update was never sent"
    assert not fake_slack.calls_to("chat.update")


async def test_a_payload_the_sender_cannot_render_ends_failed_not_stuck(
    dispatcher: Dispatcher,
    sessions: SessionFactory,
    clock: FrozenClock,
    fake_slack: FakeSlack,
    workspace_id: int,
) -> None:
    async with transaction(sessions) as session:
        await outbox.enqueue(
            session,
            workspace_id=workspace_id,
            dedupe_key="bad",
            kind="message",
            target={"user": "UALICE"},
            payload={"txet": "typo"},
            now=clock.now(),
        )
    for _ in range(4):
        assert await dispatcher.drain() == 1
        clock.advance(minutes=10)
        if (await row(sessions, "bad")).status == "failed":
            break
    failed = await row(sessions, "bad")
    assert (failed.status, failed.attempts) == ("failed", 3)
    assert failed.last_error is not None and "ValidationError" in failed.last_error
    assert fake_slack.calls == []


async def test_a_response_url_reply_is_posted_there(
    dispatcher: Dispatcher,
    sessions: SessionFactory,
    clock: FrozenClock,
    fake_slack: FakeSlack,
    workspace_id: int,
) -> None:
    url = fake_slack.response_url("cmd1")
    await queue(
        sessions, clock, workspace_id, "k1", {"response_url": url, "user": "UALICE"}, "Here's help"
    )

    assert await dispatcher.drain() == 1
    (call,) = fake_slack.calls
    assert call.method == "response_url:cmd1"
    assert call.args["text"] == "Here's help" and call.args["response_type"] == "ephemeral"
    assert (await row(sessions, "k1")).status == "sent"


async def test_an_expired_response_url_falls_back_to_a_dm(
    dispatcher: Dispatcher,
    sessions: SessionFactory,
    clock: FrozenClock,
    fake_slack: FakeSlack,
    workspace_id: int,
) -> None:
    url = fake_slack.response_url("old")
    await queue(
        sessions, clock, workspace_id, "k1", {"response_url": url, "user": "UALICE"}, "Here's help"
    )
    fake_slack.fail("response_url", 404)

    assert await dispatcher.drain() == 1
    assert [c.method for c in fake_slack.calls] == ["response_url:old", "chat.postMessage"]
    assert fake_slack.calls[1].args["channel"] == "UALICE"
    assert fake_slack.calls[1].args["text"] == "Here's help"
    assert (await row(sessions, "k1")).status == "sent"


@pytest.mark.parametrize("failure", ["503", "refused"])
async def test_a_response_url_that_keeps_failing_becomes_a_dm_sent_once(
    dispatcher: Dispatcher,
    sessions: SessionFactory,
    clock: FrozenClock,
    fake_slack: FakeSlack,
    workspace_id: int,
    failure: str,
) -> None:
    if failure == "503":
        url = fake_slack.response_url("down")
        fake_slack.fail("response_url", 503, times=5)
    else:
        url = f"http://127.0.0.1:{free_port()}/response/gone"  # nothing listens there
    await queue(
        sessions, clock, workspace_id, "k1", {"response_url": url, "user": "UALICE"}, "Your stats"
    )

    with structlog.testing.capture_logs() as logs:
        assert await dispatcher.drain() == 1
        # First failure: tried again shortly, in the hope the reply can stay in place.
        waiting = await row(sessions, "k1")
        assert (waiting.status, waiting.attempts) == ("pending", 1)
        assert not fake_slack.calls_to("chat.postMessage")
        clock.set(waiting.next_attempt_at)
        assert await dispatcher.drain() == 1
        clock.advance(hours=1)
        assert await dispatcher.drain() == 0
    [dm] = fake_slack.calls_to("chat.postMessage")
    assert (dm.args["channel"], dm.args["text"]) == ("UALICE", "Your stats")
    assert (await row(sessions, "k1")).status == "sent"
    assert [e["event"] for e in logs if e["log_level"] == "warning"].count(
        "slack.response_url_failed"
    ) == 1
    assert not [e for e in logs if e["log_level"] in ("error", "critical")]


async def test_on_the_last_try_a_failing_response_url_becomes_a_dm_at_once(
    make_dispatcher: MakeDispatcher,
    sessions: SessionFactory,
    clock: FrozenClock,
    fake_slack: FakeSlack,
    workspace_id: int,
) -> None:
    dispatcher = make_dispatcher(max_attempts=1)
    url = fake_slack.response_url("down")
    fake_slack.fail("response_url", 502)
    await queue(sessions, clock, workspace_id, "k1", {"response_url": url, "user": "UALICE"})

    assert await dispatcher.drain() == 1
    assert [c.method for c in fake_slack.calls] == ["response_url:down", "chat.postMessage"]
    assert (await row(sessions, "k1")).status == "sent"


async def test_a_failing_response_url_whose_dm_fails_too_waits_for_slack(
    dispatcher: Dispatcher,
    sessions: SessionFactory,
    clock: FrozenClock,
    fake_slack: FakeSlack,
    workspace_id: int,
) -> None:
    url = fake_slack.response_url("down")
    fake_slack.fail("response_url", 503, times=5)
    fake_slack.fail("chat.postMessage", 503)
    await queue(sessions, clock, workspace_id, "k1", {"response_url": url, "user": "UALICE"})

    for _ in range(3):
        assert await dispatcher.drain() == 1
        waiting = await row(sessions, "k1")
        if waiting.status == "sent":
            break
        clock.set(waiting.next_attempt_at)
    assert (await row(sessions, "k1")).status == "sent"
    assert len([c for c in fake_slack.calls_to("chat.postMessage")]) == 2


async def test_an_expired_response_url_without_a_user_fails_with_the_reason(
    dispatcher: Dispatcher,
    sessions: SessionFactory,
    clock: FrozenClock,
    fake_slack: FakeSlack,
    workspace_id: int,
) -> None:
    await queue(
        sessions, clock, workspace_id, "k1", {"response_url": fake_slack.response_url("old")}
    )
    fake_slack.fail("response_url", 404)

    assert await dispatcher.drain() == 1
    failed = await row(sessions, "k1")
    assert failed.status == "failed" and failed.last_error is not None
    assert "response_url expired" in failed.last_error
    assert not fake_slack.calls_to("chat.postMessage")


async def test_a_response_url_answering_500_is_retried_not_replaced_by_a_dm(
    dispatcher: Dispatcher,
    sessions: SessionFactory,
    clock: FrozenClock,
    fake_slack: FakeSlack,
    workspace_id: int,
) -> None:
    url = fake_slack.response_url("busy")
    await queue(sessions, clock, workspace_id, "k1", {"response_url": url, "user": "UALICE"})
    fake_slack.fail("response_url", 500)

    assert await dispatcher.drain() == 1
    waiting = await row(sessions, "k1")
    assert (waiting.status, waiting.attempts) == ("pending", 1)
    clock.set(waiting.next_attempt_at)
    assert await dispatcher.drain() == 1
    assert (await row(sessions, "k1")).status == "sent"
    assert [c.method for c in fake_slack.calls] == ["response_url:busy", "response_url:busy"]
