"""LinkedIn in Teams and in the console: the Slack tests' twins, through `/api/messages`
(and the console's own loop), `/linkedin/*` and the fake LinkedIn."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlmodel import select

from bot.app import Flywheel
from bot.settings import load_settings
from storage.db import transaction
from storage.models import LinkedInPost, Member, Workspace
from testing.builders import add_post
from testing.fakes.bot_connector import FakeBotConnector
from testing.fakes.clock import FrozenClock
from testing.fakes.linkedin import FakeLinkedIn
from tests.conftest import SECRET_KEY
from tests.console_harness import ConsoleBot
from tests.linkedin_flow import Browser, build_with_linkedin, linkedin_settings
from tests.teams_http import (
    TENANT,
    KeyServer,
    TeamsHttp,
    actions,
    button,
    connector,
    credentials_factory,
    fill,
    key_server,
    open_urls,
    personal,
    teams,
    teams_settings,
)
from tests.test_console_drafting import button as console_button
from tests.test_console_sharing import approve

__all__ = ["connector", "key_server", "teams"]


@pytest.fixture
async def fake_linkedin() -> AsyncIterator[FakeLinkedIn]:
    fake = await FakeLinkedIn().start()
    yield fake
    await fake.close()


@pytest.fixture
async def teams_app(
    migrated_url: str, key_server: KeyServer, fake_linkedin: FakeLinkedIn, clock: FrozenClock
) -> AsyncIterator[Flywheel]:
    app = build_with_linkedin(
        teams_settings(migrated_url, key_server, **linkedin_settings(fake_linkedin)),
        clock,
        teams_credentials=credentials_factory(),
    )
    yield app
    await app.close()


def chat(teams: TeamsHttp, user: str = "alice") -> str:
    return personal(teams.member(user))


async def a_post(teams: TeamsHttp, teams_app: Flywheel) -> int:
    """Alice has spoken to the bot; a post of her workspace is approved."""
    await teams.post(teams.message("home"))
    await teams_app.dispatcher.drain()
    async with transaction(teams_app.sessions) as session:
        workspace = (
            await session.exec(select(Workspace).where(Workspace.external_id == TENANT))
        ).one()
        alice = (await session.exec(select(Member))).first()
        assert alice is not None
        post = await add_post(
            session,
            workspace,
            alice,
            teams.clock.now(),
            topic="k8s",
            slug="k8s",
            title="Zero-downtime Kubernetes upgrades",
            canonical_url="https://blog.acme.test/k8s",
            captions=["How we upgrade Kubernetes"],
        )
    return post.id or 0


async def connect_in_teams(teams: TeamsHttp, teams_app: Flywheel, post_id: int) -> None:
    """Connect LinkedIn from the share card, through the browser."""
    await teams.post(teams.submit({"action": "share_post", "value": str(post_id)}))
    await teams_app.dispatcher.drain()
    card = teams.last(chat(teams)).card
    assert "linkedin_connect" in [a["data"]["action"] for a in actions(card)]
    await teams.post(teams.submit(button(card, "linkedin_connect")))
    await teams_app.dispatcher.drain()
    [link] = [u["url"] for u in open_urls(teams.last(chat(teams)).card)]
    assert link.startswith(f"{teams_app.settings.base_url}/linkedin/connect?t=")
    browser = Browser(teams.client)
    try:
        landing = await browser.connect(link)
    finally:
        await browser.close()
    assert landing.status == 200 and "Alice Martin" in landing.text
    await teams_app.dispatcher.drain()
    assert "Your LinkedIn is connected" in teams.last(chat(teams)).text


async def post_from_teams(
    teams: TeamsHttp, teams_app: Flywheel, post_id: int, caption: str
) -> None:
    await teams.post(teams.submit({"action": "share_post", "value": str(post_id)}))
    await teams_app.dispatcher.drain()
    card = teams.last(chat(teams)).card
    await teams.post(teams.submit(button(card, "linkedin_post")))
    await teams_app.dispatcher.drain()
    form = teams.form_call(chat(teams))
    done = await teams.post(
        teams.submit(fill(form.card, {"caption": caption}), reply_to=form.landed)
    )
    assert done.status == 200
    await teams_app.sweeper.run_once()
    await teams_app.dispatcher.drain()


async def test_connect_and_post_now_from_teams(
    teams: TeamsHttp,
    teams_app: Flywheel,
    connector: FakeBotConnector,
    fake_linkedin: FakeLinkedIn,
) -> None:
    post_id = await a_post(teams, teams_app)
    await connect_in_teams(teams, teams_app, post_id)
    await post_from_teams(teams, teams_app, post_id, "Our #k8s (upgrade) notes")
    [published] = fake_linkedin.posts
    assert published.body["commentary"] == "Our \\#k8s \\(upgrade\\) notes"
    async with teams_app.sessions() as session:
        [row] = (await session.exec(select(LinkedInPost))).all()
    assert row.status == "posted" and row.urn == published.urn
    assert any("live on LinkedIn" in c.text for c in connector.to(chat(teams)))


async def test_a_lost_answer_and_disconnecting_in_teams(
    teams: TeamsHttp,
    teams_app: Flywheel,
    connector: FakeBotConnector,
    fake_linkedin: FakeLinkedIn,
) -> None:
    post_id = await a_post(teams, teams_app)
    await connect_in_teams(teams, teams_app, post_id)
    fake_linkedin.fail_posts("reset")
    await post_from_teams(teams, teams_app, post_id, "Lost on the way")
    assert "never came back" in teams.last(chat(teams)).text
    await teams.post(teams.submit({"action": "linkedin_disconnect"}))
    await teams_app.dispatcher.drain()
    assert "disconnected" in teams.last(chat(teams)).text
    await teams_app.sweeper.run_once()
    assert fake_linkedin.revoked == fake_linkedin.issued
    await teams.post(teams.submit({"action": "linkedin_post", "value": str(post_id)}))
    await teams_app.dispatcher.drain()
    refusal = teams.last(chat(teams))
    assert "isn't connected, so nothing was posted" in refusal.text
    assert "linkedin_connect" in [a["data"]["action"] for a in actions(refusal.card)]
    assert len(fake_linkedin.posts) == 1


@pytest.fixture
async def console_app(
    migrated_url: str, fake_linkedin: FakeLinkedIn, clock: FrozenClock
) -> AsyncIterator[tuple[Flywheel, ConsoleBot]]:
    settings = load_settings(
        database_url=migrated_url,
        flywheel_secret_key=SECRET_KEY,
        _env_file=None,
        **linkedin_settings(fake_linkedin),
    )
    app = build_with_linkedin(settings, clock)
    console = ConsoleBot(app)
    await console.start()
    yield app, console
    await console.stop()
    await app.close()


async def test_connect_and_post_from_the_console(
    console_app: tuple[Flywheel, ConsoleBot], fake_linkedin: FakeLinkedIn
) -> None:
    app, console = console_app
    await approve(console)
    await console.say("/as alice")
    out = await console.say("find oracle downtime")
    out = await console.say(console_button(out, "Connect LinkedIn to post"))
    out = await console.say(console_button(out, "Open LinkedIn"))
    prefix = f"Opens {app.settings.base_url}/linkedin/connect?t="
    [line] = [line for line in out.splitlines() if prefix in line]
    link = line[line.index(prefix) + len("Opens ") :].split()[0]
    client: TestClient[Any, Any] = TestClient(TestServer(app.web_app()))
    await client.start_server()
    browser = Browser(client)
    try:
        landing = await browser.connect(link)
    finally:
        await browser.close()
        await client.close()
    assert landing.status == 200
    out = await console.say("find oracle downtime")
    assert "Your LinkedIn is connected" in console.transcript
    out = await console.say(console_button(out, "Post on LinkedIn"))
    out = await console.fill({"Your post": "Moved off Oracle [no downtime]", "When": "now"})
    await app.sweeper.run_once()
    out = await console.say("home")
    [published] = fake_linkedin.posts
    assert published.body["commentary"] == "Moved off Oracle \\[no downtime\\]"
    assert "live on LinkedIn" in console.transcript
