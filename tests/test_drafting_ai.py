"""AI help end to end: queued by the button, done by the worker through the real openai client.

The acknowledgement path never calls the model: the fake sees nothing until the sweep runs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlmodel import select

from bot.app import Flywheel, build
from bot.settings import load_settings
from handlers.core.interactions import Action, Actor, Origin, Submission
from storage.models import AiTask, Draft, OutboxMessage
from testing.fakes.clock import FrozenClock
from testing.fakes.openai_api import CHAT, FakeOpenAI

ACME = Origin(platform="console", workspace_id="acme")
ALICE = Actor("alice", "Alice", tz="Europe/London")
PIA = Actor("pia", "Pia", tz="Europe/Paris")
TOPIC = "How do we upgrade Kubernetes without downtime?"


@pytest.fixture
async def fake_openai() -> AsyncIterator[FakeOpenAI]:
    fake = FakeOpenAI()
    await fake.start()
    yield fake
    await fake.close()


@pytest.fixture
async def app(
    migrated_url: str, clock: FrozenClock, fake_openai: FakeOpenAI
) -> AsyncIterator[Flywheel]:
    clock.set(datetime(2026, 11, 24, 10, 0, tzinfo=UTC))
    settings = load_settings(
        database_url=migrated_url,
        openai_api_key=fake_openai.api_key,
        openai_base_url=fake_openai.url,
        _env_file=None,
    )
    flywheel = build(settings, clock=clock)
    await flywheel.router.dispatch(
        Submission(
            ACME, PIA, "expert_form", {"other_topics": "kubernetes, upgrades", "capacity": "2"}
        )
    )
    await flywheel.router.dispatch(
        Submission(ACME, ALICE, "request_form", {"topic": TOPIC, "similar": "new"})
    )
    await flywheel.sweeper.run_once()
    claimed = await flywheel.router.dispatch(Action(ACME, PIA, "request_claim", "1"))
    assert claimed.message is not None and "It's yours" in claimed.message.text
    yield flywheel
    await flywheel.close()


async def draft_of(app: Flywheel) -> Draft:
    async with app.sessions() as session:
        return (await session.exec(select(Draft))).one()


async def dms_to(app: Flywheel, user: str) -> list[str]:
    async with app.sessions() as session:
        rows = (await session.exec(select(OutboxMessage).order_by(OutboxMessage.id))).all()
    return [str(r.payload["text"]) for r in rows if r.target.get("user") == user]


async def test_the_button_queues_and_the_worker_drafts(
    app: Flywheel, fake_openai: FakeOpenAI
) -> None:
    reply = await app.router.dispatch(Action(ACME, PIA, "draft_ai", "1"))
    assert reply.message is not None and "I'll message you" in reply.message.text
    assert fake_openai.chats() == []  # nothing on the acknowledgement path
    again = await app.router.dispatch(Action(ACME, PIA, "draft_ai", "1"))
    assert again.message is not None
    async with app.sessions() as session:
        assert (
            len((await session.exec(select(AiTask))).all()) == 1
        )  # a second press queues nothing more

    await app.sweeper.run_once()
    draft = await draft_of(app)
    assert draft.ai_assisted and draft.ai_label and "AI" in draft.ai_label
    assert TOPIC.split()[3].lower() in (draft.title + draft.body).lower()
    assert len(draft.captions) == 3
    assert len(fake_openai.chats()) == 3  # outline, first draft, captions
    assert any(t.startswith("Your AI first draft is ready") for t in await dms_to(app, "pia"))
    async with app.sessions() as session:
        [task] = (await session.exec(select(AiTask))).all()
    assert task.status == "done"


async def test_an_ai_failure_is_a_clear_message_and_changes_nothing(
    app: Flywheel, fake_openai: FakeOpenAI
) -> None:
    await app.router.dispatch(Action(ACME, PIA, "draft_open", "1"))
    before = await draft_of(app)
    fake_openai.fail(CHAT, 500, times=10)
    await app.router.dispatch(Action(ACME, PIA, "draft_ai", "1"))
    await app.sweeper.run_once()
    after = await draft_of(app)
    assert (after.title, after.body, after.captions, after.ai_assisted) == (
        before.title,
        before.body,
        before.captions,
        False,
    )
    [failure] = [t for t in await dms_to(app, "pia") if t.startswith("AI help didn't work")]
    assert "unchanged" in failure
    async with app.sessions() as session:
        [task] = (await session.exec(select(AiTask))).all()
    assert task.status == "failed" and task.error
