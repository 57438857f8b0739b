"""A new company's first week in one terminal (`flywheel console --new`): the welcome, a
request nobody can take yet, the first expert offered it, claim, draft, review, approval,
share and the first digest. On SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlmodel import select

from bot.app import Flywheel, build
from bot.settings import load_settings
from storage.db import transaction
from storage.models import ContentRequest, ShareSuggestion, Workspace
from testing.fakes.clock import FrozenClock
from tests.console_harness import ConsoleBot

QUESTION = "How do we migrate Oracle to PostgreSQL without downtime?"


@pytest.fixture
async def bot(migrated_url: str, clock: FrozenClock) -> AsyncIterator[tuple[Flywheel, ConsoleBot]]:
    clock.set(datetime(2026, 11, 23, 10, 0, tzinfo=UTC))  # a Monday morning
    app = build(load_settings(database_url=migrated_url, _env_file=None), clock=clock)
    console = ConsoleBot(app, empty=True)
    yield app, console
    await console.stop()
    await app.close()


def button(out: str, label: str) -> str:
    found = re.findall(rf"\[(\d+)\] {re.escape(label)}", out)
    assert found, f"no {label!r} button in:\n{out}"
    return str(found[-1])


async def test_a_new_companys_first_week_in_the_console(
    bot: tuple[Flywheel, ConsoleBot], clock: FrozenClock
) -> None:
    app, console = bot
    opened = await console.start()
    assert "A new workspace: nobody is an expert yet" in opened
    assert "Demo data" not in opened
    assert "Welcome to Flywheel" in opened
    for label in ("Request content", "Create my expert profile", "Sharing preferences"):
        button(opened, label)
    # Switching away and back: nobody is welcomed twice.
    await console.say("/as pia")
    again = await console.say("/as alice")
    assert "Welcome to Flywheel" not in again

    # Monday: the first request, and the truth about experts.
    await console.say(f"request {QUESTION}")
    out = await console.fill()
    assert "Nobody has an expert profile yet" in out
    assert "busy or passed" not in out
    out = await console.say(button(out, "Suggest a colleague"))
    out += await console.fill({"Colleague": "pia", "A word for them": "You moved Globex."})
    assert "I've invited @pia" in out
    assert "thinks you know the subject" in out

    # Pia says what she knows, and is offered the request at once.
    invite = out
    await console.say("/as pia")
    out = await console.say(button(invite, "Create my expert profile"))
    out += await console.fill({"Topics you know": "oracle, postgresql"})
    assert "1 request matches what you know" in out
    out = await console.say(button(out, "I'll take it"))
    assert "It's yours" in out

    # Tuesday: the draft, and a reviewer to approve it.
    clock.set(datetime(2026, 11, 24, 10, 0, tzinfo=UTC))
    async with transaction(app.sessions) as session:
        workspace = (await session.exec(select(Workspace))).one()
        workspace.settings = {**workspace.settings, "reviewers": ["dana"]}
        session.add(workspace)
    out = await console.say("home")
    out = await console.say(button(out, "Open draft"))
    out = await console.fill(
        {
            "Title": "Zero-downtime Oracle to PostgreSQL",
            "Body": "Dual writes, then a cut-over in seconds.",
            "Published at (URL)": "https://blog.acme.test/zdm",
            "Share caption 1": "How we moved off Oracle without downtime",
        }
    )
    out = await console.say(button(out, "Submit for review"))
    assert "Sent for review" in out
    await console.say("/as dana")
    out = await console.say("home")
    out = await console.say(button(out, "Approve"))
    assert "Your request is live" in out
    await console.say("/as alice")

    # The post reaches Alice to share, with her own links, in her working hours.
    shared = "[DM to @alice] Zero-downtime Oracle to PostgreSQL (https://blog.acme.test/zdm)"
    assert shared in out and "Suggested caption" in out
    button(out, "Share on LinkedIn")
    async with app.sessions() as session:
        suggestion = (await session.exec(select(ShareSuggestion))).first()
        request = (await session.exec(select(ContentRequest))).one()
    assert request.status == "published"
    assert suggestion is not None and f"> {suggestion.caption}" in out

    # The first digest, as it stands.
    out = await console.say("digest preview")
    assert "Flywheel weekly" in out
    assert "nowhere yet" not in out
