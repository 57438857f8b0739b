"""Existing content in Teams, end to end through `POST /api/messages`: the Slack twins of
`share <url>`, the "Share this with the company" message action, review and a bad link."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlmodel import select

from bot.app import Flywheel, build
from storage.db import transaction
from storage.models import ContentLink, Post, Workspace
from testing.fakes.bot_connector import FakeBotConnector
from testing.fakes.clock import FrozenClock
from testing.fakes.web_site import FakeSite
from tests.teams_http import (
    KeyServer,
    TeamsHttp,
    button,
    connector,
    credentials_factory,
    fill,
    key_server,
    personal,
    submit_data,
    teams,
    teams_settings,
)

__all__ = ["connector", "key_server", "teams"]

ARTICLE = """<html><head><meta property="og:title" content="Multi-region failover, *explained*">
<meta property="og:description" content="How we fail over in minutes."></head></html>"""


@pytest.fixture
async def site() -> AsyncIterator[FakeSite]:
    fake = FakeSite()
    await fake.start()
    yield fake
    await fake.close()


@pytest.fixture
async def teams_app(
    migrated_url: str, key_server: KeyServer, clock: FrozenClock
) -> AsyncIterator[Flywheel]:
    app = build(
        teams_settings(migrated_url, key_server, flywheel_fetch_allow_networks="127.0.0.1/32"),
        clock=clock,
        teams_credentials=credentials_factory(),
    )
    yield app
    await app.close()


async def reviewers(app: Flywheel) -> None:
    async with transaction(app.sessions) as session:
        workspace = (await session.exec(select(Workspace))).one()
        workspace.settings = {**workspace.settings, "reviewers": ["aad-admin"]}
        session.add(workspace)


def with_button(connector: FakeBotConnector, conversation: str, action: str) -> Any:
    """The card sent to a conversation with a button for `action` (sends run side by side,
    so the order they land in is not the order they were queued in)."""
    return next(c for c in connector.to(conversation) if action in str(c.card))


async def settle(app: Flywheel) -> None:
    await app.sweeper.run_once()
    await app.dispatcher.drain()


async def test_a_shared_link_is_previewed_sent_for_review_and_approved_in_teams(
    teams: TeamsHttp, teams_app: Flywheel, connector: FakeBotConnector, site: FakeSite
) -> None:
    await teams.post(teams.message("help", "admin"))
    url = site.page("/failover", ARTICLE)
    answered = await teams.post(teams.message(f"share {url}?utm_source=teams"))
    assert answered.status == 200
    await reviewers(teams_app)
    await settle(teams_app)
    alice = personal(teams.member("alice"))
    preview = with_button(connector, alice, "link_edit")
    assert "Multi-region failover, *explained*" in str(preview.card)
    await teams.post(teams.submit(button(preview.card, "link_edit")))
    form = teams.form_call(alice)
    assert submit_data(form.card)["form"] == "link_form"
    await teams.post(
        teams.submit(
            fill(form.card, {"why": "Buyers ask.", "tags": "resilience"}), reply_to=form.landed
        )
    )
    await settle(teams_app)
    [link] = await _rows(teams_app, ContentLink)
    assert link.status == "in_review" and link.canonical_url == url
    admin = personal(teams.member("admin"))
    review = next(c for c in connector.to(admin) if "link_approve" in str(c.card))
    await teams.post(teams.submit(button(review.card, "link_approve"), "admin"))
    await settle(teams_app)
    [post] = await _rows(teams_app, Post)
    assert (post.source, post.title) == ("link", "Multi-region failover, *explained*")
    assert any("approved" in (c.text or "") for c in connector.to(alice))


async def test_the_message_action_shares_the_link_in_the_message(
    teams: TeamsHttp, teams_app: Flywheel, connector: FakeBotConnector, site: FakeSite
) -> None:
    url = site.page("/failover", ARTICLE)
    activity = teams.fetch_task(f'Worth a read: <a href="{url}">{url}</a>')
    activity["value"]["commandId"] = "share_from_message"
    answered = await teams.post(activity)
    assert answered.status == 200
    assert "Reading" in str(answered.body)
    await settle(teams_app)
    assert with_button(connector, personal(teams.member("alice")), "link_edit")


async def test_a_link_to_a_private_address_gets_one_line_and_nothing_is_created(
    teams: TeamsHttp, teams_app: Flywheel, connector: FakeBotConnector, site: FakeSite
) -> None:
    redirect = site.redirect("/out", "http://10.0.0.5/intranet")
    await teams.post(teams.message(f"share {redirect}"))
    await settle(teams_app)
    said = [c.text or "" for c in connector.to(personal(teams.member("alice")))]
    assert any("private or internal address" in t for t in said), said
    assert await _rows(teams_app, ContentLink) == []


async def _rows(app: Flywheel, model: type) -> list:  # type: ignore[type-arg]
    async with app.sessions() as session:
        return list((await session.exec(select(model))).all())


async def test_a_reviewer_approves_a_colleagues_link_until_a_date_in_teams(
    teams: TeamsHttp, teams_app: Flywheel, connector: FakeBotConnector, site: FakeSite
) -> None:
    from datetime import UTC, datetime

    await teams.post(teams.message("help", "admin"))
    url = site.page("/failover", ARTICLE)
    await teams.post(teams.message(f"share {url}"))
    await reviewers(teams_app)
    await settle(teams_app)
    alice = personal(teams.member("alice"))
    await teams.post(
        teams.submit(button(with_button(connector, alice, "link_edit").card, "link_edit"))
    )
    form = teams.form_call(alice)
    await teams.post(teams.submit(fill(form.card, {"why": "Buyers ask."}), reply_to=form.landed))
    await settle(teams_app)
    admin = personal(teams.member("admin"))
    review = next(c for c in connector.to(admin) if "link_approve_until" in str(c.card))
    await teams.post(teams.submit(button(review.card, "link_approve_until"), "admin"))
    until = teams.form_call(admin)
    assert submit_data(until.card)["form"] == "link_approve_form"
    await teams.post(
        teams.submit(fill(until.card, {"ends_on": "2020-01-01"}), "admin", reply_to=until.landed)
    )
    await settle(teams_app)
    assert await _rows(teams_app, Post) == []
    await teams.post(
        teams.submit(fill(until.card, {"ends_on": "2099-06-30"}), "admin", reply_to=until.landed)
    )
    await settle(teams_app)
    [post] = await _rows(teams_app, Post)
    assert post.ends_at == datetime(2099, 6, 30, 23, 59, tzinfo=UTC)
