"""Every kind of request Slack and Teams may send Flywheel, including the ones it ignores.

The payloads are recorded-style fixtures (`tests/fixtures/slack/*.json`,
`tests/fixtures/teams/activity_*.json`), sent signed or with a valid token through the real
endpoints. Each is answered with a 2xx or a clear 4xx, and never logged at error level.
An answer that does not come within 3 s counts as never answered (a liveness check, not
a measure of speed).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.app import Flywheel
from testing.fakes.clock import FrozenClock
from testing.fakes.slack_api import FakeSlack
from tests.http_edges import watching
from tests.slack_http import SlackHttp, fixture
from tests.teams_http import TeamsHttp, connector, key_server, teams, teams_app
from tests.teams_http import fixture as activity_fixture

__all__ = ["connector", "key_server", "teams", "teams_app"]

LIVENESS = 3.0


@pytest.fixture
async def slack(
    flywheel: Flywheel, fake_slack: FakeSlack, clock: FrozenClock
) -> AsyncIterator[SlackHttp]:
    client: TestClient[Any, Any] = TestClient(TestServer(flywheel.web_app()))
    await client.start_server()
    yield SlackHttp(client, fake_slack, clock)
    await client.close()


# How each Slack fixture travels, and what the answer must be: 200, or a 400 for what
# Flywheel never asks Slack for (legacy attachments, external selects, close notices).
SLACK = {
    "url_verification": ("json", 200),
    "app_rate_limited": ("json", 200),
    "event_app_mention": ("json", 200),
    "event_app_home_opened": ("json", 200),
    "event_message_im": ("json", 200),
    "event_app_uninstalled": ("json", 200),
    "event_tokens_revoked": ("json", 200),
    "event_member_joined_channel": ("json", 200),
    "event_reaction_added": ("json", 200),
    "event_user_change": ("json", 200),
    "event_channel_created": ("json", 200),
    "event_link_shared": ("json", 200),
    "event_org_wide": ("json", 200),
    "slash_command": ("form", 200),
    "block_actions_message": ("payload", 200),
    "block_actions_home": ("payload", 200),
    "view_submission": ("payload", 200),
    "shortcut_global": ("payload", 200),
    "shortcut_message": ("payload", 200),
    "view_closed": ("payload", 400),
    "block_suggestion": ("payload", 400),
    "interactive_message": ("payload", 400),
}


@pytest.mark.parametrize("name", sorted(SLACK))
async def test_every_slack_request_type_is_answered(
    slack: SlackHttp, fake_slack: FakeSlack, name: str
) -> None:
    how, expected = SLACK[name]
    body = fixture(name)
    if how == "form":
        body["response_url"] = fake_slack.response_url("command")
    elif isinstance(body.get("response_url"), str):
        body["response_url"] = fake_slack.response_url("action")
    with watching() as logs:
        if how == "json":
            sending = slack.event(body)
        elif how == "form":
            sending = slack.post(slack.form(body), "application/x-www-form-urlencoded")
        else:
            sending = slack.interact(body)
        response = await asyncio.wait_for(sending, LIVENESS)
        text = await response.text()
    assert response.status == expected, text
    if expected == 400:
        assert "malformed request" in json.loads(text)["error"]
    assert logs.lines == []


async def test_ssl_check_is_answered(slack: SlackHttp) -> None:
    body = slack.form({"ssl_check": "1", "token": "gIkuvaNzQIHg97ATvDxqgjtO"})
    response = await asyncio.wait_for(
        slack.post(body, "application/x-www-form-urlencoded"), LIVENESS
    )
    assert response.status == 200


# Teams activity fixtures: every type Flywheel may receive, every invoke name it may get.
TEAMS = [
    "message",
    "message_card_submit",
    "conversation_update_bot_added",
    "conversation_update_bot_removed",
    "conversation_update_channel_renamed",
    "installation_update_add",
    "installation_update_remove",
    "invoke_adaptive_card_action",
    "invoke_task_fetch",
    "invoke_task_submit",
    "invoke_compose_extension_query",
    "invoke_compose_extension_fetch_task",
    "invoke_compose_extension_submit_action",
    "invoke_config_fetch",
    "invoke_unknown",
    "message_reaction",
    "typing",
    "event_read_receipt",
    "end_of_conversation",
    "message_update",
    "message_delete",
]


@pytest.mark.parametrize("name", TEAMS)
async def test_every_teams_activity_type_is_answered(teams: TeamsHttp, name: str) -> None:
    activity = activity_fixture(name)
    # Addressed to the fake connector, from a member it knows, as Teams would for this bot.
    known = teams.base(activity["type"], "alice")
    activity.update(serviceUrl=known["serviceUrl"], recipient=known["recipient"])
    activity["from"] = known["from"]
    if activity["conversation"]["conversationType"] == "personal":
        activity["conversation"] = known["conversation"]
    with watching() as logs:
        posted = await asyncio.wait_for(teams.post(activity), LIVENESS)
    assert 200 <= posted.status < 300 or posted.status in (400, 401, 403, 404, 409, 415), (
        posted.status,
        posted.body,
    )
    # Every invoke gets a proper answer, never the SDK's 501.
    assert posted.status != 501
    assert logs.lines == []
