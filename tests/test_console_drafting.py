"""The whole loop in one terminal: request, ping, claim, draft, review, live."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
from sqlmodel import select

from bot.app import Flywheel, build
from bot.settings import load_settings
from storage.models import ContentRequest, Post
from testing.fakes.clock import FrozenClock
from tests.console_harness import ConsoleBot

QUESTION = "How do we migrate Oracle to PostgreSQL without downtime?"


@pytest.fixture
async def bot(migrated_url: str, clock: FrozenClock) -> AsyncIterator[tuple[Flywheel, ConsoleBot]]:
    app = build(load_settings(database_url=migrated_url, _env_file=None), clock=clock)
    console = ConsoleBot(app)
    await console.start()
    yield app, console
    await console.stop()
    await app.close()


def button(out: str, label: str) -> str:
    found = re.findall(rf"\[(\d+)\] {re.escape(label)}", out)
    assert found, f"no {label!r} button in:\n{out}"
    return str(found[-1])


async def test_from_request_to_live_post_in_the_console(bot: tuple[Flywheel, ConsoleBot]) -> None:
    app, console = bot
    await console.say(f"request {QUESTION}")
    out = await console.fill()
    await console.say("/as bob")
    out = await console.say(button(out, "Claim"))
    draft = button(out, "Write the draft")
    out = await console.say(draft)
    assert "== Your draft ==" in out
    out = await console.fill(
        {
            "Title": "Zero-downtime Oracle to PostgreSQL",
            "Body": "Dual writes, then a cut-over in seconds.",
            "Published at (URL)": "https://blog.acme.test/zdm",
            "Share caption 1": "How we moved off Oracle without downtime",
        }
    )
    assert "Draft saved" in out
    out = await console.say(button(out, "Submit for review"))
    assert "Sent for review" in out
    assert "[#reviews]" in out
    assert "Review: Zero-downtime Oracle to PostgreSQL — version 1 by @bob" in out
    approve = button(out, "Approve")
    await console.say("/as dana")
    out = await console.say(approve)
    assert "[DM to @alice] 🎉 Your request is live: Zero-downtime Oracle to PostgreSQL" in out
    assert "[#reviews, edited]" in out
    async with app.sessions() as session:
        post = (await session.exec(select(Post))).one()
        request = (
            await session.exec(select(ContentRequest).where(ContentRequest.id == post.request_id))
        ).one()
    assert request.status == "published"
