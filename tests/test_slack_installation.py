"""A single-workspace install answers its own workspace only.

The team (and for an org-wide install, the organisation) comes from the bot token's
`auth.test`. Properly signed requests naming any other team go through the real
`/slack/events` endpoint and must be acknowledged with nothing read from Slack and nothing
written: no workspace, no member, no delivery record, no outbox row. FLYWHEEL_ADMINS lists
a user of the stranger team too, who is no admin anywhere. On SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func
from sqlmodel import select

from adapters.slack.adapter import NOT_INSTALLED
from adapters.slack.installations import Installation
from bot.app import Flywheel, build
from handlers.core.context import Scope
from handlers.impact.digest_sweep import admins
from storage.db import transaction
from storage.models import (
    ContentRequest,
    InboundEvent,
    Member,
    OutboxMessage,
    Vote,
    Workspace,
)
from testing.fakes.clock import FrozenClock
from testing.fakes.slack_api import FakeSlack
from tests.conftest import slack_settings
from tests.slack_http import SlackHttp

STRANGER = "T0BAD"
TABLES = (Workspace, Member, ContentRequest, Vote, InboundEvent, OutboxMessage)
REQUEST_VIEW = {
    "blocks": [],
    "callback_id": "request_form",
    "title": {"type": "plain_text", "text": "Request content"},
}


@pytest.fixture
async def flywheel(
    migrated_url: str, fake_slack: FakeSlack, clock: FrozenClock
) -> AsyncIterator[Flywheel]:
    fake_slack.add_user("UMALLORY", "mallory", email="mallory@globex.test")
    settings = slack_settings(
        migrated_url, fake_slack, flywheel_admins="UMALLORY, mallory@globex.test, UALICE"
    )
    app = build(settings, clock=clock)
    yield app
    await app.close()


@pytest.fixture
async def slack(
    flywheel: Flywheel, fake_slack: FakeSlack, clock: FrozenClock
) -> AsyncIterator[SlackHttp]:
    client: TestClient[Any, Any] = TestClient(TestServer(flywheel.web_app()))
    await client.start_server()
    yield SlackHttp(client, fake_slack, clock)
    await client.close()


async def count(flywheel: Flywheel, model: Any) -> int:
    async with flywheel.sessions() as session:
        return int((await session.exec(select(func.count()).select_from(model))).one())


async def nothing_written(flywheel: Flywheel) -> bool:
    return all([await count(flywheel, table) == 0 for table in TABLES])


def slack_was_only_asked_who_we_are(fake: FakeSlack) -> bool:
    return {c.method for c in fake.calls} <= {"auth.test"}


def _to(team: str, payload: dict[str, Any]) -> dict[str, Any]:
    """An interaction payload from a user of `team`."""
    payload["team"]["id"] = team
    payload["user"]["team_id"] = team
    if isinstance(payload.get("view"), dict):
        payload["view"].update(team_id=team, app_installed_team_id=team)
    return payload


def _mention(slack: SlackHttp, team: str) -> dict[str, Any]:
    body = slack.mention("request a case study", user="UMALLORY")
    body["team_id"] = body["event"]["team"] = team
    body["authorizations"][0]["team_id"] = team
    return body


INTERACTIONS: dict[str, Callable[[SlackHttp, str], dict[str, Any]]] = {
    "vote": lambda s, team: _to(team, s.block_action("request_vote", "1", user="UMALLORY")),
    "home button": lambda s, team: _to(
        team, s.block_action("request_open", user="UMALLORY", home=True)
    ),
    "submission": lambda s, team: _to(
        team, s.submission(REQUEST_VIEW, {"topic": "Globex wants this"}, user="UMALLORY")
    ),
    "shortcut": lambda s, team: _to(team, s.global_shortcut(user="UMALLORY")),
    "message shortcut": lambda s, team: _to(team, s.message_shortcut("hi", user="UMALLORY")),
}


async def test_a_stranger_teams_slash_command_is_told_and_nothing_is_written(
    slack: SlackHttp, flywheel: Flywheel, fake_slack: FakeSlack
) -> None:
    for text in ("admin", "request a case study", "share https://globex.test/post", "help"):
        response = await slack.command(text, user="UMALLORY", team_id=STRANGER)

        assert response.status == 200
        assert await response.json() == {"response_type": "ephemeral", "text": NOT_INSTALLED}
    assert await nothing_written(flywheel)
    assert slack_was_only_asked_who_we_are(fake_slack)


@pytest.mark.parametrize("case", sorted(INTERACTIONS))
async def test_a_stranger_teams_interaction_is_acknowledged_and_nothing_is_written(
    slack: SlackHttp, flywheel: Flywheel, fake_slack: FakeSlack, case: str
) -> None:
    response = await slack.interact(INTERACTIONS[case](slack, STRANGER))

    assert response.status == 200
    assert await response.text() == ""
    assert await nothing_written(flywheel)
    assert slack_was_only_asked_who_we_are(fake_slack)


async def test_a_stranger_teams_event_is_acknowledged_so_slack_stops_and_nothing_is_written(
    slack: SlackHttp, flywheel: Flywheel, fake_slack: FakeSlack
) -> None:
    body = _mention(slack, STRANGER)

    first = await slack.event(body)
    retry = await slack.event(body, retry=1)

    assert (first.status, retry.status) == (200, 200)
    assert await nothing_written(flywheel)
    assert slack_was_only_asked_who_we_are(fake_slack)


async def test_neither_the_payloads_team_nor_the_authorised_one_may_be_a_stranger(
    slack: SlackHttp, flywheel: Flywheel, fake_slack: FakeSlack
) -> None:
    # Flywheel would keep the work under `team_id`; Bolt authorises `authorizations[0]`.
    names_stranger = _mention(slack, "T0001")
    names_stranger["team_id"] = STRANGER
    authorised_stranger = _mention(slack, "T0001")
    authorised_stranger["authorizations"][0]["team_id"] = STRANGER
    # A modal opened elsewhere (Slack Connect) names its installing team apart.
    installed_elsewhere = _to("T0001", INTERACTIONS["submission"](slack, "T0001"))
    installed_elsewhere["view"]["app_installed_team_id"] = STRANGER

    for body in (names_stranger, authorised_stranger):
        assert (await slack.event(body)).status == 200
    assert (await slack.interact(installed_elsewhere)).status == 200

    assert await nothing_written(flywheel)
    assert slack_was_only_asked_who_we_are(fake_slack)


async def test_the_own_team_is_served_and_its_flywheel_admins_are_admins(
    slack: SlackHttp, flywheel: Flywheel, fake_slack: FakeSlack
) -> None:
    await slack.command("admin", user="UMALLORY", team_id=STRANGER)
    assert fake_slack.calls_to("views.open") == []

    response = await slack.command("admin", user="UALICE")

    assert response.status == 200
    [opened] = fake_slack.calls_to("views.open")
    assert opened.args["view"]["callback_id"] == "admin_form"
    async with flywheel.sessions() as session:
        [workspace] = (await session.exec(select(Workspace))).all()
    assert workspace.external_id == "T0001"


async def test_flywheel_admins_do_not_reach_a_stranger_workspace_already_stored(
    slack: SlackHttp, flywheel: Flywheel, clock: FrozenClock
) -> None:
    # A row from before strangers were refused: scheduled work must not treat Mallory as
    # an admin there, though FLYWHEEL_ADMINS names her by id and by email.
    assert (await slack.command("stats", user="UALICE")).status == 200
    async with transaction(flywheel.sessions) as session:
        stranger = Workspace(platform="slack", external_id=STRANGER, created_at=clock.now())
        session.add(stranger)
        await session.flush()
        assert stranger.id is not None
        for user, email in (("UMALLORY", "mallory@globex.test"), ("UALICE", None)):
            session.add(
                Member(
                    workspace_id=stranger.id,
                    user_id=user,
                    email=email,
                    created_at=clock.now(),
                    updated_at=clock.now(),
                )
            )
    async with transaction(flywheel.sessions) as session:
        workspaces = {w.external_id: w for w in (await session.exec(select(Workspace))).all()}
        found = {
            team: [
                m.user_id for m in await admins(Scope(session, clock, flywheel.router.config, w))
            ]
            for team, w in workspaces.items()
        }

    assert found == {"T0001": ["UALICE"], STRANGER: []}


async def test_an_org_wide_install_serves_its_organisations_teams_only(
    slack: SlackHttp, flywheel: Flywheel, fake_slack: FakeSlack
) -> None:
    fake_slack.enterprise_id, fake_slack.org_wide = "E0001", True
    fake_slack.team_id = "E0001"  # an org-level token names no one workspace

    own = await slack.command(
        "request a case study", team_id="T0777", enterprise_id="E0001", is_enterprise_install="true"
    )
    other_org = await slack.command("request x", team_id="T0888", enterprise_id="E0BAD")
    no_org = await slack.command("request x", team_id="T0999")
    payload = INTERACTIONS["shortcut"](slack, "T0999")
    payload["enterprise"] = {"id": "E0BAD", "name": "Globex"}
    shortcut = await slack.interact(payload)

    assert own.status == 200 and await own.text() == ""
    assert [await r.json() for r in (other_org, no_org)] == [
        {"response_type": "ephemeral", "text": NOT_INSTALLED}
    ] * 2
    assert await shortcut.text() == ""
    assert len(fake_slack.calls_to("views.open")) == 1
    async with flywheel.sessions() as session:
        [workspace] = (await session.exec(select(Workspace))).all()
    assert workspace.external_id == "T0777"


def test_which_requests_an_installation_covers() -> None:
    workspace = Installation(bot_token="xoxb-1", team_id="T0001", enterprise_id=None)
    in_a_grid = Installation(bot_token="xoxb-2", team_id="T0001", enterprise_id="E0001")
    organisation = Installation(
        bot_token="xoxb-3", team_id=None, enterprise_id="E0001", is_enterprise_install=True
    )

    # No team named: nowhere to keep the work, so no installation's request.
    for installation in (workspace, in_a_grid, organisation):
        assert not installation.covers(team_id=None, enterprise_id="E0001")
        assert not installation.covers(team_id="", enterprise_id=None)
    assert workspace.covers(team_id="T0001", enterprise_id=None)
    assert not workspace.covers(team_id="T0002", enterprise_id=None)
    assert in_a_grid.covers(team_id="T0001", enterprise_id="E0001")
    assert not in_a_grid.covers(team_id="T0001", enterprise_id="E0BAD")
    assert organisation.covers(team_id="T0777", enterprise_id="E0001")
    assert not organisation.covers(team_id="T0777", enterprise_id=None)
    assert not organisation.covers(team_id="T0777", enterprise_id="E0BAD")


async def test_the_team_is_learnt_at_start_up_and_asked_once(
    slack: SlackHttp, flywheel: Flywheel, fake_slack: FakeSlack
) -> None:
    assert flywheel.slack is not None
    await flywheel.slack.start()
    identity = flywheel.slack.installations.identity
    assert identity is not None and (identity.team_id, identity.bot_user_id) == ("T0001", "UBOT")

    await slack.command("stats", user="UALICE")
    await slack.command("stats", user="UMALLORY", team_id=STRANGER)

    assert len(fake_slack.calls_to("auth.test")) == 1


async def test_slack_unreachable_at_start_up_is_asked_again_by_the_first_request(
    slack: SlackHttp, flywheel: Flywheel, fake_slack: FakeSlack
) -> None:
    assert flywheel.slack is not None
    fake_slack.fail("auth.test", error="service_unavailable")
    await flywheel.slack.start()
    assert flywheel.slack.installations.identity is None
    own = Workspace(platform="slack", external_id="T0001")
    # Until the team is known, FLYWHEEL_ADMINS count nowhere on Slack.
    assert flywheel.router.config.admins_in(own) == frozenset()

    response = await slack.command("admin", user="UALICE")

    assert response.status == 200
    assert [c.args["view"]["callback_id"] for c in fake_slack.calls_to("views.open")] == [
        "admin_form"
    ]
    assert len(fake_slack.calls_to("auth.test")) == 2
