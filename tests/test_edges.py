"""Bodies the platforms would never send, and the world's faults, at the real HTTP edges.

Each test sends one kind of thing Slack or Teams would not (an id past the id columns,
control characters, JSON nested hundreds deep, `channelData` that is not an object, an
org-wide event without a workspace, a malformed request line) and checks the answer is a
clear 2xx or 4xx, that nothing is logged at error level, and what was or was not written.
Every test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlmodel import select

from bot.app import Flywheel
from handlers.core.controls import clean_text, cleaned
from handlers.core.errors import APOLOGY, NotFound
from handlers.core.ids import MAX_ID, maybe_id, parse_id
from storage.models import ContentRequest, Member
from testing.fakes.bot_connector import FakeBotConnector
from testing.fakes.clock import FrozenClock
from testing.fakes.slack_api import FakeSlack
from tests.http_edges import rows, warnings_and_errors, watching
from tests.slack_http import SlackHttp, fixture
from tests.teams_http import TeamsHttp, connector, key_server, teams, teams_app

__all__ = ["connector", "key_server", "teams", "teams_app"]


@pytest.fixture
async def slack(
    flywheel: Flywheel, fake_slack: FakeSlack, clock: FrozenClock
) -> AsyncIterator[SlackHttp]:
    client: TestClient[Any, Any] = TestClient(TestServer(flywheel.web_app()))
    await client.start_server()
    yield SlackHttp(client, fake_slack, clock)
    await client.close()


def answers(fake: FakeSlack, name: str = "action") -> list[str]:
    return [str(c.args.get("text")) for c in fake.calls_to(f"response_url:{name}")]


# -- ids past the id columns ----------------------------------------------------------------


@pytest.mark.parametrize("raw", ["0", "-1", " 7", "007", "１２", "١٢", "1_0", "+5", "2:3", ""])
def test_an_id_is_plain_digits_in_range(raw: str) -> None:
    expected = 7 if raw == " 7" else None
    assert maybe_id(raw) == expected
    assert parse_id(str(MAX_ID), "gone") == MAX_ID
    for too_big in (MAX_ID + 1, 2**63, 2**64, 10**30):
        with pytest.raises(NotFound, match="gone"):
            parse_id(str(too_big), "gone")


@pytest.mark.parametrize("value", [str(2**31), str(2**63), str(2**64), "9" * 40])
@pytest.mark.parametrize(
    "action", ["request_vote", "request_claim", "draft_open", "review_approve", "share_post"]
)
async def test_a_button_naming_an_id_past_the_columns_is_a_polite_not_found(
    slack: SlackHttp, fake_slack: FakeSlack, flywheel: Flywheel, action: str, value: str
) -> None:
    if action not in flywheel.router.actions:
        pytest.skip(f"{action} is not an action of this build")
    before = await rows(flywheel)
    with watching() as logs:
        response = await slack.interact(slack.block_action(action, value))
        await flywheel.dispatcher.drain()
    assert response.status == 200
    assert logs.lines == []
    [answer] = answers(fake_slack)
    assert answer != APOLOGY
    assert "can't find" in answer or "no longer exists" in answer
    after = await rows(flywheel)
    # The person, their workspace and the delivery are known now, and the answer took its
    # slot in the shared send limits; nothing else was written.
    assert {k: v for k, v in after.items() if after[k] != before[k]}.keys() <= {
        "workspace",
        "member",
        "outbox",
        "inbound_event",
        "send_limit",
    }


async def test_form_state_naming_an_id_past_the_columns_is_a_polite_not_found(
    slack: SlackHttp, fake_slack: FakeSlack
) -> None:
    payload = fixture("view_submission")
    payload["view"].update(callback_id="draft_form", private_metadata=str(2**64))
    with watching() as logs:
        response = await slack.interact(payload)
    assert response.status == 200
    assert logs.lines == []
    assert APOLOGY not in await response.text()


# -- control characters ---------------------------------------------------------------------


def test_control_characters_go_and_newlines_and_tabs_stay() -> None:
    assert clean_text("a\x00b\x07c\x1bd\x7fe\x85f\x9fg") == "abcdefg"
    assert clean_text("one\r\ntwo\rthree\nfour\tfive") == "one\ntwo\nthree\nfour\tfive"
    kept = "\ue000 private use stays \U0001f680"
    assert clean_text(kept) == kept
    nested = {"k\x00": ["x\x00", ("y", "z\x01")], "n": 1}
    assert cleaned(nested) == {"k": ["x", ("y", "z")], "n": 1}
    untouched = {"a": ["b", ("c",)]}
    assert cleaned(untouched) is untouched


async def test_a_request_typed_with_nul_and_controls_is_stored_without_them(
    slack: SlackHttp, flywheel: Flywheel, fake_slack: FakeSlack
) -> None:
    assert (await slack.interact(slack.global_shortcut())).status == 200
    with watching() as logs:
        response = await slack.interact(
            slack.submission(
                slack.opened_view(),
                {
                    "topic": "Oracle\x00 to PostgreSQL\x1b[31m",
                    "context": "line one\r\nline\ttwo\x07",
                },
            )
        )
    assert response.status == 200
    assert await response.text() == ""
    assert logs.lines == []
    async with flywheel.sessions() as session:
        [request] = (await session.exec(select(ContentRequest))).all()
    assert request.topic == "Oracle to PostgreSQL[31m"
    assert request.context == "line one\nline\ttwo"


async def test_a_teams_activity_with_nul_in_names_is_answered_and_stored_clean(
    teams: TeamsHttp, teams_app: Flywheel, connector: FakeBotConnector
) -> None:
    activity = teams.message("help\x00")
    activity["from"]["name"] = "Ali\x00ce"
    activity["conversation"]["name"] = "chat\x00"
    with watching() as logs:
        posted = await teams.post(activity)
    assert posted.status == 200
    assert logs.lines == []
    async with teams_app.sessions() as session:
        names = [m.name for m in (await session.exec(select(Member))).all()]
    assert all("\x00" not in name for name in names)


# -- deeply nested JSON ---------------------------------------------------------------------


def _nested_activity(depth: int) -> bytes:
    inner = "{}"
    for _ in range(depth):
        inner = '{"a":' + inner + "}"
    return ('{"type":"message","channelId":"msteams","channelData":' + inner + "}").encode()


@pytest.mark.parametrize("depth", [40, 5000])
async def test_deep_json_on_api_messages_is_400_before_authentication(
    teams: TeamsHttp, teams_app: Flywheel, depth: int
) -> None:
    before = await rows(teams_app)
    with watching() as logs, warnings_and_errors() as records:
        response = await teams.client.post(
            "/api/messages",
            data=_nested_activity(depth),
            headers={"Content-Type": "application/json"},
        )
    assert response.status == 400
    assert "nested" in (await response.json())["error"] or depth > 1000
    assert logs.lines == [] and records == []
    assert await rows(teams_app) == before


@pytest.mark.parametrize("depth", [40, 5000])
async def test_deep_json_on_slack_events_is_400(
    slack: SlackHttp, flywheel: Flywheel, depth: int
) -> None:
    body = fixture("event_app_mention")
    raw = json.dumps(body).encode()[:-1] + b', "deep": ' + b"[" * depth + b"]" * depth + b"}"
    with watching() as logs:
        response = await slack.post(raw, "application/json")
    assert response.status == 400
    assert logs.lines == []
    assert (await rows(flywheel))["inbound_event"] == 0


# -- ill-typed activities and payloads ------------------------------------------------------


@pytest.mark.parametrize(
    "field, value",
    [
        ("channelData", ["tenant"]),
        ("channelData", None),
        ("channelData", "tenant-acme"),
        ("membersAdded", "28:bot"),
        ("membersAdded", [{"id": None}]),
        ("conversation", ["a:chat"]),
        ("replyToId", 5),
        ("entities", [1, 2]),
    ],
)
async def test_ill_typed_activity_fields_are_400(
    teams: TeamsHttp, teams_app: Flywheel, field: str, value: Any
) -> None:
    activity = teams.bot_added_to_team()
    activity[field] = value
    if field == "channelData" or field == "conversation":
        activity.setdefault("conversation", {})
        if isinstance(activity["conversation"], dict):
            activity["conversation"]["tenantId"] = "tenant-acme"
    with watching() as logs:
        posted = await teams.post(activity)
    assert posted.status == 400, posted.body
    assert logs.lines == []


def _odd_payloads() -> dict[str, dict[str, Any]]:
    no_view = fixture("view_submission")
    del no_view["view"]
    view_list = fixture("view_submission")
    view_list["view"] = ["not", "a", "view"]
    values_list = fixture("view_submission")
    values_list["view"]["state"]["values"] = []
    team_list = fixture("shortcut_global")
    team_list["team"] = {"id": [None]}
    actions_strings = fixture("block_actions_message")
    actions_strings["actions"] = ["request_vote"]
    action_id_number = fixture("block_actions_message")
    action_id_number["actions"][0]["action_id"] = 7
    response_url_number = fixture("block_actions_message")
    response_url_number["response_url"] = 7
    view_without_type = fixture("view_submission")
    del view_without_type["view"]["type"]
    return {
        "view-without-type": view_without_type,
        "view-missing": no_view,
        "view-a-list": view_list,
        "state-values-a-list": values_list,
        "team-id-a-list": team_list,
        "actions-of-strings": actions_strings,
        "action-id-a-number": action_id_number,
        "response-url-a-number": response_url_number,
    }


@pytest.mark.parametrize("case", sorted(_odd_payloads()))
async def test_interactions_of_odd_shapes_are_400_and_write_nothing(
    slack: SlackHttp, flywheel: Flywheel, fake_slack: FakeSlack, case: str
) -> None:
    with watching() as logs:
        response = await slack.interact(_odd_payloads()[case])
    assert response.status == 400
    assert "malformed request" in (await response.json())["error"]
    assert logs.lines == []
    assert sum((await rows(flywheel)).values()) == 0
    assert fake_slack.calls == []


# -- org-wide events ------------------------------------------------------------------------


async def test_an_org_wide_event_without_a_team_is_acknowledged_and_writes_nothing(
    slack: SlackHttp, flywheel: Flywheel, fake_slack: FakeSlack
) -> None:
    event = slack.mention("help")
    del event["team_id"]
    event.update(
        enterprise_id="E0ACME",
        authorizations=[
            {
                "enterprise_id": "E0ACME",
                "team_id": None,
                "user_id": "U0BOT",
                "is_bot": True,
                "is_enterprise_install": True,
            }
        ],
        is_ext_shared_channel=False,
    )
    with watching() as logs:
        response = await slack.event(event)
    assert response.status == 200
    assert logs.lines == []
    assert sum((await rows(flywheel)).values()) == 0
    assert fake_slack.calls == []


async def test_an_event_naming_neither_team_nor_enterprise_is_400(slack: SlackHttp) -> None:
    event = slack.mention("help")
    del event["team_id"]
    assert (await slack.event(event)).status == 400


# -- the world's faults are warnings --------------------------------------------------------


async def _raw(client: TestClient[Any, Any], data: bytes) -> bytes:
    assert client.server.port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", client.server.port)
    writer.write(data)
    await writer.drain()
    answer = await reader.read(200)
    writer.close()
    await writer.wait_closed()
    return answer


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET / HTTP/1.1\r\nHost: x\r\nthis is no header\r\n\r\n",
        b"GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n",
        b"GET /\x00 HTTP/1.1\r\nHost: x\r\n\r\n",
    ],
)
async def test_a_malformed_request_is_400_and_one_warning_line(
    slack: SlackHttp, request_bytes: bytes
) -> None:
    with warnings_and_errors() as records:
        answer = await _raw(slack.client, request_bytes)
    assert answer.split(b"\r\n", 1)[0].endswith(b" 400 Bad Request")
    assert [r.levelno for r in records] == [logging.WARNING]
    [record] = records
    assert record.exc_info is None and "\n" not in record.getMessage()


async def test_slack_failing_inside_a_listener_is_a_warning_and_an_apology(
    slack: SlackHttp, fake_slack: FakeSlack
) -> None:
    fake_slack.fail("views.open", 500)
    with watching() as logs:
        response = await slack.command("request zero-downtime migrations")
    assert response.status == 200
    assert await response.json() == {"response_type": "ephemeral", "text": APOLOGY}
    assert logs.lines == []
