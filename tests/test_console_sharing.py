"""Sharing in the console: the approved post arrives with share buttons; find; a win."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlmodel import select

from bot.app import Flywheel, build
from bot.settings import load_settings
from storage.models import Share, Win
from testing.fakes.clock import FrozenClock
from tests.console_harness import ConsoleBot
from tests.test_console_drafting import QUESTION, button


@pytest.fixture
async def bot(migrated_url: str, clock: FrozenClock) -> AsyncIterator[tuple[Flywheel, ConsoleBot]]:
    app = build(load_settings(database_url=migrated_url, _env_file=None), clock=clock)
    console = ConsoleBot(app)
    await console.start()
    yield app, console
    await console.stop()
    await app.close()


async def approve(console: ConsoleBot) -> str:
    await console.say(f"request {QUESTION}")
    out = await console.fill()
    await console.say("/as bob")
    out = await console.say(button(out, "Claim"))
    out = await console.say(button(out, "Write the draft"))
    out = await console.fill(
        {
            "Title": "Zero-downtime Oracle to PostgreSQL",
            "Body": "Dual writes, then a cut-over in seconds.",
            "Published at (URL)": "https://blog.acme.test/zdm",
            "Share caption 1": "How we moved off Oracle without downtime",
        }
    )
    out = await console.say(button(out, "Submit for review"))
    approve = button(out, "Approve")
    await console.say("/as dana")
    return await console.say(approve)


async def test_an_approved_post_arrives_with_share_buttons_that_record_shares(
    bot: tuple[Flywheel, ConsoleBot],
) -> None:
    app, console = bot
    out = await approve(console)
    assert "[#general] 📣 New post ready to share" in out
    assert "[DM to @alice] Zero-downtime Oracle to PostgreSQL (https://blog.acme.test/zdm)" in out
    assert "> How we moved off Oracle without downtime" in out
    await console.say("/as alice")
    out = await console.say("home")
    out = await console.say("find oracle downtime")
    assert "Zero-downtime Oracle to PostgreSQL" in out
    out = await console.say(button(out, "Share on LinkedIn"))
    assert f"Opens {app.settings.base_url}/s/" in out
    async with app.sessions() as session:
        [share] = (await session.exec(select(Share))).all()
    assert share.network == "linkedin"

    out = await console.say("win")
    out = await console.fill(
        {
            "What happened?": "deal",
            "Tell the story": "Initech signed after the migration post.",
            "Account": "Initech",
            "Which post helped?": "1",
            "Value (optional)": "12000",
        }
    )
    assert "Win logged: deal won with Initech" in out
    async with app.sessions() as session:
        [win] = (await session.exec(select(Win))).all()
    assert (win.value, win.post_id) == (12000, share.post_id)
