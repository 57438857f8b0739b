"""The Slack adapter through its real HTTP endpoint: signed requests in, the fake Web API out.

Every test runs on SQLite and on PostgreSQL (the `flywheel` fixture's database). The last
section drives the same listeners over Socket Mode.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import ClientSession, WSMsgType, web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func
from sqlmodel import select

from bot.app import Flywheel, build
from handlers.core.errors import APOLOGY
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
from tests.conftest import SIGNING_SECRET, slack_settings
from tests.slack_http import SlackHttp, fixture

ORACLE = "How do we migrate Oracle to PostgreSQL without downtime?"


@pytest.fixture
async def slack(
    flywheel: Flywheel, fake_slack: FakeSlack, clock: FrozenClock
) -> AsyncIterator[SlackHttp]:
    client: TestClient[Any, Any] = TestClient(TestServer(flywheel.web_app()))
    await client.start_server()
    yield SlackHttp(client, fake_slack, clock)
    await client.close()


async def count(flywheel: Flywheel, model: Any, *where: Any) -> int:
    async with flywheel.sessions() as session:
        query = select(func.count()).select_from(model).where(*where)
        return int((await session.exec(query)).one())


async def nothing_written(flywheel: Flywheel) -> bool:
    tables = (Workspace, Member, ContentRequest, Vote, InboundEvent, OutboxMessage)
    return all([await count(flywheel, t) == 0 for t in tables])


async def requests(flywheel: Flywheel) -> list[ContentRequest]:
    async with flywheel.sessions() as session:
        return list((await session.exec(select(ContentRequest))).all())


async def request_by(slack: SlackHttp, user: str, topic: str) -> None:
    """`user` asks for `topic` through the global shortcut and submits the form."""
    assert (await slack.interact(slack.global_shortcut(user=user))).status == 200
    response = await slack.interact(
        slack.submission(slack.opened_view(), {"topic": topic}, user=user)
    )
    assert response.status == 200
    assert await response.text() == ""


def responses(fake: FakeSlack, name: str) -> list[str]:
    return [str(c.args.get("text")) for c in fake.calls_to(f"response_url:{name}")]


def buttons(view: dict[str, Any], action_id: str) -> list[dict[str, Any]]:
    found = []
    for block in view["blocks"]:
        elements = [block.get("accessory"), *(block.get("elements") or [])]
        found += [e for e in elements if isinstance(e, dict) and e.get("action_id") == action_id]
    return found


# -- capture: slash command, modal, submission ---------------------------------------------


async def test_slash_request_opens_the_prefilled_form(
    slack: SlackHttp, fake_slack: FakeSlack
) -> None:
    body = slack.slash_command("request zero-downtime migrations")
    response = await slack.post(slack.form(body), "application/x-www-form-urlencoded")

    assert response.status == 200
    assert await response.text() == ""
    [call] = fake_slack.calls_to("views.open")
    assert call.args["trigger_id"] == body["trigger_id"]
    view = call.args["view"]
    assert view["callback_id"] == "request_form"
    topic = next(b for b in view["blocks"] if b.get("block_id") == "topic")
    assert topic["element"]["initial_value"] == "zero-downtime migrations"
    assert {"topic", "context", "audience", "needed_by", "tags"} <= {
        b.get("block_id") for b in view["blocks"]
    }


async def test_submission_stores_the_request_and_confirms_by_dm(
    slack: SlackHttp, flywheel: Flywheel, fake_slack: FakeSlack
) -> None:
    await slack.command("request zero-downtime migrations")
    response = await slack.interact(
        slack.submission(
            slack.opened_view(),
            {
                "context": "Retail customer, 2 TB, nightly window of 10 minutes",
                "audience": "CTOs of mid-size retailers",
                "needed_by": "2026-12-15",
                "tags": "postgresql, Migration",
            },
        )
    )

    assert response.status == 200
    assert await response.text() == ""  # the modal closes
    [stored] = await requests(flywheel)
    assert stored.topic == "zero-downtime migrations"
    assert stored.audience == "CTOs of mid-size retailers"
    assert str(stored.needed_by) == "2026-12-15"
    assert stored.tags == ["postgresql", "migration"]
    assert stored.status == "open"

    await flywheel.dispatcher.drain()
    [dm] = [c for c in fake_slack.calls_to("chat.postMessage") if c.args["channel"] == "UALICE"]
    assert dm.args["text"] == "Request captured: zero-downtime migrations"


@pytest.mark.parametrize(
    ("topic", "error"),
    [("", "Tell us what buyers ask"), ("x" * 201, "Keep it under 200 characters")],
    ids=["empty", "over-long"],
)
async def test_topic_errors_are_shown_inline_and_nothing_is_written(
    slack: SlackHttp, flywheel: Flywheel, topic: str, error: str
) -> None:
    await slack.command("request")
    response = await slack.interact(slack.submission(slack.opened_view(), {"topic": topic}))

    assert response.status == 200
    body = await response.json()
    assert body["response_action"] == "errors"
    assert list(body["errors"]) == ["topic"]
    assert error in body["errors"]["topic"]
    assert await count(flywheel, ContentRequest) == 0
    assert await count(flywheel, OutboxMessage) == 0


async def test_message_shortcut_prefills_the_topic_and_keeps_the_permalink(
    slack: SlackHttp, flywheel: Flywheel, fake_slack: FakeSlack
) -> None:
    payload = slack.message_shortcut(f"{ORACLE}\nWe have 40 TB and a 10-minute window.")
    response = await slack.interact(payload)

    assert response.status == 200
    [permalink_call] = fake_slack.calls_to("chat.getPermalink")
    assert permalink_call.args["channel"] == "C0CUSTOMER"
    assert permalink_call.args["message_ts"] == payload["message"]["ts"]
    view = slack.opened_view()
    fields = {b["block_id"]: b["element"] for b in view["blocks"] if b["type"] == "input"}
    assert fields["topic"]["initial_value"] == ORACLE
    assert "40 TB" in fields["context"]["initial_value"]

    assert (await slack.interact(slack.submission(view))).status == 200
    [stored] = await requests(flywheel)
    assert stored.topic == ORACLE
    assert stored.source_permalink == (
        "https://acme.slack.com/archives/C0CUSTOMER/p" + payload["message"]["ts"]
    )


async def test_global_shortcut_opens_an_empty_form(slack: SlackHttp, fake_slack: FakeSlack) -> None:
    response = await slack.interact(slack.global_shortcut())

    assert response.status == 200
    view = slack.opened_view()
    assert view["callback_id"] == "request_form"
    topic = next(b for b in view["blocks"] if b.get("block_id") == "topic")
    assert "initial_value" not in topic["element"]
    assert "private_metadata" not in view


async def test_a_slash_command_mentioning_payload_is_still_a_command(
    slack: SlackHttp, fake_slack: FakeSlack
) -> None:
    # Bolt's own body parser reads any form body containing "payload" as interactivity.
    response = await slack.command("request payload size limits of our API")

    assert response.status == 200
    topic = next(b for b in slack.opened_view()["blocks"] if b.get("block_id") == "topic")
    assert topic["element"]["initial_value"] == "payload size limits of our API"


# -- mentions, help, home ------------------------------------------------------------------


async def test_mention_in_a_channel_replies_in_the_thread_through_the_outbox(
    slack: SlackHttp, flywheel: Flywheel, fake_slack: FakeSlack
) -> None:
    event = slack.mention("request zero-downtime migrations", ts="1763892000.000900")
    response = await slack.event(event)

    assert response.status == 200
    assert fake_slack.calls_to("chat.postMessage") == []  # queued, not sent inline
    assert await count(flywheel, OutboxMessage) == 1
    await flywheel.dispatcher.drain()
    [reply] = fake_slack.calls_to("chat.postMessage")
    assert reply.args["channel"] == "C0SALES"
    assert reply.args["thread_ts"] == "1763892000.000900"
    [open_button] = buttons(reply.args, "request_open")
    assert open_button["value"] == "zero-downtime migrations"

    # The button opens the form the mention could not.
    click = slack.block_action("request_open", open_button["value"])
    assert (await slack.interact(click)).status == 200
    topic = next(b for b in slack.opened_view()["blocks"] if b.get("block_id") == "topic")
    assert topic["element"]["initial_value"] == "zero-downtime migrations"


async def test_mention_inside_a_thread_stays_in_that_thread(
    slack: SlackHttp, flywheel: Flywheel, fake_slack: FakeSlack
) -> None:
    event = slack.mention("help", ts="1763892000.000950", thread_ts="1763891000.000100")
    assert (await slack.event(event)).status == 200
    await flywheel.dispatcher.drain()
    [reply] = fake_slack.calls_to("chat.postMessage")
    assert reply.args["thread_ts"] == "1763891000.000100"
    assert "Here is what I can do" in reply.args["text"]


@pytest.mark.parametrize(
    ("text", "lead"),
    [
        ("help", "Here is what I can do:"),
        ("", "Here is what I can do:"),
        ("frobnicate now", "I don't know `frobnicate`. Here is what I can do:"),
    ],
    ids=["help", "bare", "unknown"],
)
async def test_help_and_unknown_subcommands_answer_with_the_vocabulary(
    slack: SlackHttp, flywheel: Flywheel, fake_slack: FakeSlack, text: str, lead: str
) -> None:
    response = await slack.command(text)

    assert response.status == 200
    body = await response.json()
    assert body["response_type"] == "ephemeral"
    assert body["text"].startswith(lead)
    for usage in ("request [topic]", "help", "admin"):
        assert f"`{usage}`" in body["text"]
    assert fake_slack.calls_to("views.open") == []
    # Help reads nothing stored: answering it neither reads nor creates rows.
    assert await nothing_written(flywheel)


async def test_home_tab_lists_others_open_requests_with_vote_buttons(
    slack: SlackHttp, flywheel: Flywheel, fake_slack: FakeSlack
) -> None:
    await request_by(slack, "UBOB", ORACLE)
    await request_by(slack, "UALICE", "Case study: retail loyalty analytics")
    bob_request = next(r for r in await requests(flywheel) if r.topic == ORACLE)
    await flywheel.dispatcher.drain()
    fake_slack.calls.clear()

    assert (await slack.event(slack.home_opened(user="UALICE"))).status == 200
    await flywheel.dispatcher.drain()

    [publish] = fake_slack.calls_to("views.publish")
    assert publish.args["user_id"] == "UALICE"
    view = publish.args["view"]
    assert view["type"] == "home"
    [vote] = buttons(view, "request_vote")
    assert vote["value"] == str(bob_request.id)
    texts = json.dumps(view)
    assert "Case study: retail loyalty analytics" in texts  # her own, without a +1 button


async def test_the_messages_tab_publishes_nothing(
    slack: SlackHttp, flywheel: Flywheel, fake_slack: FakeSlack
) -> None:
    assert (await slack.event(slack.home_opened(tab="messages"))).status == 200
    await flywheel.dispatcher.drain()
    assert fake_slack.calls_to("views.publish") == []


async def test_a_form_asked_for_inside_a_modal_is_pushed_onto_it(
    slack: SlackHttp, fake_slack: FakeSlack
) -> None:
    click = slack.block_action("request_open", "migrations", home=True)
    click["view"].update(type="modal", callback_id="request_form")
    click["container"] = {"type": "view", "view_id": click["view"]["id"]}

    assert (await slack.interact(click)).status == 200

    [push] = fake_slack.calls_to("views.push")
    assert push.args["trigger_id"] == click["trigger_id"]
    assert push.args["view"]["callback_id"] == "request_form"
    assert fake_slack.calls_to("views.open") == []


# -- votes and similar requests ------------------------------------------------------------


async def test_a_vote_counts_once_and_a_second_gets_a_polite_note(
    slack: SlackHttp, flywheel: Flywheel, fake_slack: FakeSlack
) -> None:
    await request_by(slack, "UBOB", ORACLE)
    [request] = await requests(flywheel)
    await flywheel.dispatcher.drain()

    first = await slack.interact(slack.block_action("request_vote", str(request.id)))
    assert first.status == 200
    await flywheel.dispatcher.drain()
    assert responses(fake_slack, "action") == [
        "Thanks — your +1 is counted. 2 people want this now."
    ]

    second = await slack.interact(slack.block_action("request_vote", str(request.id)))
    assert second.status == 200
    await flywheel.dispatcher.drain()
    notes = responses(fake_slack, "action")
    assert len(notes) == 2
    assert "already +1'd" in notes[1]
    assert await count(flywheel, Vote) == 1


async def test_a_vote_from_the_home_tab_is_answered_by_dm(
    slack: SlackHttp, flywheel: Flywheel, fake_slack: FakeSlack
) -> None:
    await request_by(slack, "UBOB", ORACLE)
    [request] = await requests(flywheel)
    await flywheel.dispatcher.drain()
    fake_slack.calls.clear()

    click = slack.block_action("request_vote", str(request.id), home=True)
    assert (await slack.interact(click)).status == 200
    await flywheel.dispatcher.drain()

    [dm] = [c for c in fake_slack.calls_to("chat.postMessage") if c.args["channel"] == "UALICE"]
    assert dm.args["text"].startswith("Thanks — your +1 is counted")
    assert await count(flywheel, Vote) == 1


async def test_a_similar_second_request_offers_a_vote_instead(
    slack: SlackHttp, flywheel: Flywheel, fake_slack: FakeSlack
) -> None:
    await request_by(slack, "UBOB", ORACLE)
    [first] = await requests(flywheel)

    await slack.interact(slack.global_shortcut(user="UALICE"))
    response = await slack.interact(
        slack.submission(
            slack.opened_view(), {"topic": "Migrating Oracle to PostgreSQL with zero downtime"}
        )
    )

    assert response.status == 200
    body = await response.json()
    assert body["response_action"] == "update"
    updated = body["view"]
    assert updated["callback_id"] == "request_form"
    [similar] = [b for b in updated["blocks"] if b.get("block_id") == "similar"]
    assert similar["element"]["initial_option"]["value"] == str(first.id)
    assert len(await requests(flywheel)) == 1  # nothing stored yet

    # Keeping the suggested choice counts a +1 instead of a duplicate request.
    assert (await slack.interact(slack.submission(updated))).status == 200
    assert len(await requests(flywheel)) == 1
    assert await count(flywheel, Vote) == 1
    await flywheel.dispatcher.drain()
    assert any(
        c.args["channel"] == "UALICE" and c.args["text"].startswith("Your +1 on")
        for c in fake_slack.calls_to("chat.postMessage")
    )


async def test_choosing_a_different_request_stores_a_new_one(
    slack: SlackHttp, flywheel: Flywheel
) -> None:
    await request_by(slack, "UBOB", ORACLE)
    await slack.interact(slack.global_shortcut(user="UALICE"))
    response = await slack.interact(
        slack.submission(slack.opened_view(), {"topic": "Oracle to PostgreSQL, zero downtime"})
    )
    updated = (await response.json())["view"]

    again = await slack.interact(slack.submission(updated, {"similar": "new"}))

    assert again.status == 200
    assert sorted(r.topic for r in await requests(flywheel)) == sorted(
        [ORACLE, "Oracle to PostgreSQL, zero downtime"]
    )


# -- admin ---------------------------------------------------------------------------------


async def test_admin_is_refused_politely_to_a_non_admin(
    slack: SlackHttp, fake_slack: FakeSlack
) -> None:
    response = await slack.command("admin", user="UALICE")

    assert response.status == 200
    body = await response.json()
    assert body["response_type"] == "ephemeral"
    assert "Only workspace admins" in body["text"]
    assert fake_slack.calls_to("views.open") == []


async def test_an_admin_opens_and_saves_the_settings(
    slack: SlackHttp, flywheel: Flywheel, fake_slack: FakeSlack
) -> None:
    response = await slack.command("admin", user="UADMIN")

    assert response.status == 200
    view = slack.opened_view()
    assert view["callback_id"] == "admin_form"
    submitted = await slack.interact(
        slack.submission(
            view,
            {
                "reviewers": ["UALICE", "UBOB"],
                "review_channel": "C0REVIEW",
                "share_channels": ["C0GENERAL", "C0SALES"],
                "timezone": "Europe/Paris",
            },
            user="UADMIN",
        )
    )

    assert submitted.status == 200
    assert await submitted.text() == ""
    async with flywheel.sessions() as session:
        workspace = (await session.exec(select(Workspace))).one()
    assert workspace.external_id == "T0001"
    assert workspace.settings["reviewers"] == ["UALICE", "UBOB"]
    assert workspace.settings["review_channel"] == "C0REVIEW"
    assert workspace.settings["share_channels"] == ["C0GENERAL", "C0SALES"]
    assert workspace.settings["timezone"] == "Europe/Paris"


async def test_an_admin_form_with_a_bad_value_is_answered_inline(
    slack: SlackHttp, flywheel: Flywheel
) -> None:
    await slack.command("admin", user="UADMIN")
    response = await slack.interact(
        slack.submission(slack.opened_view(), {"timezone": "Mars/Olympus"}, user="UADMIN")
    )

    body = await response.json()
    assert body["response_action"] == "errors"
    assert "timezone" in body["errors"]
    async with flywheel.sessions() as session:
        workspace = (await session.exec(select(Workspace))).one()
    assert workspace.settings.get("timezone", "UTC") == "UTC"


# -- actors --------------------------------------------------------------------------------


async def test_profiles_come_from_users_info_once(
    slack: SlackHttp, flywheel: Flywheel, fake_slack: FakeSlack
) -> None:
    await slack.command("home", user="UBOB")
    await slack.command("home", user="UBOB")

    assert len(fake_slack.calls_to("users.info")) == 1
    assert len(fake_slack.calls_to("auth.test")) == 1
    async with flywheel.sessions() as session:
        bob = (await session.exec(select(Member).where(Member.user_id == "UBOB"))).one()
    assert (bob.name, bob.email, bob.tz) == ("bob", "bob@acme.test", "America/New_York")


async def test_the_calls_slack_waits_on_share_one_connection(
    slack: SlackHttp, fake_slack: FakeSlack
) -> None:
    await slack.command("request onboarding guide", user="UALICE")
    await slack.command("request pricing page", user="UBOB")

    calls = [
        *fake_slack.calls_to("auth.test"),
        *fake_slack.calls_to("users.info"),
        *fake_slack.calls_to("views.open"),
    ]
    assert len(calls) == 5
    # A new connection per call would cost a session and a handshake each time.
    assert len({call.peer for call in calls}) == 1


async def test_an_unknown_profile_falls_back_to_the_payload(
    slack: SlackHttp, flywheel: Flywheel, fake_slack: FakeSlack
) -> None:
    response = await slack.command("request onboarding guide", user="UGHOST", user_name="ghost")

    assert response.status == 200
    assert slack.opened_view()["callback_id"] == "request_form"
    async with flywheel.sessions() as session:
        ghost = (await session.exec(select(Member).where(Member.user_id == "UGHOST"))).one()
    assert ghost.name == "ghost"
    assert ghost.is_platform_admin is False


# -- failures and bad input ----------------------------------------------------------------


async def test_a_failure_inside_a_listener_is_an_apology_not_a_500(
    slack: SlackHttp, fake_slack: FakeSlack
) -> None:
    fake_slack.fail("views.open", 500)

    response = await slack.command("request zero-downtime migrations")

    assert response.status == 200
    assert await response.json() == {"response_type": "ephemeral", "text": APOLOGY}


async def test_a_failing_button_apologises_through_its_response_url(
    slack: SlackHttp, fake_slack: FakeSlack
) -> None:
    fake_slack.fail("views.open", 500)

    response = await slack.interact(slack.block_action("request_open", "migrations"))

    assert response.status == 200
    assert responses(fake_slack, "action") == [APOLOGY]


def _bad_signatures(slack: SlackHttp) -> dict[str, dict[str, Any]]:
    now = int(slack.clock.now().timestamp())
    return {
        "unsigned": {"signed": False},
        "wrong-secret": {"secret": SIGNING_SECRET + "-not"},
        "six-minutes-old": {"timestamp": now - 6 * 60},
        "six-minutes-ahead": {"timestamp": now + 6 * 60},
    }


@pytest.mark.parametrize(
    "case", ["unsigned", "wrong-secret", "six-minutes-old", "six-minutes-ahead"]
)
async def test_unverified_requests_are_refused_and_write_nothing(
    slack: SlackHttp, flywheel: Flywheel, fake_slack: FakeSlack, case: str
) -> None:
    options = _bad_signatures(slack)[case]
    command = slack.form(slack.slash_command("request zero-downtime migrations"))
    event = json.dumps(slack.mention("help")).encode()

    assert (await slack.post(command, "application/x-www-form-urlencoded", **options)).status == 401
    assert (await slack.post(event, "application/json", **options)).status == 401
    assert await nothing_written(flywheel)
    assert fake_slack.calls == []


async def test_a_tampered_body_is_refused(slack: SlackHttp, flywheel: Flywheel) -> None:
    signed = slack.form(slack.slash_command("help", user="UALICE"))
    headers = slack.headers(signed, "application/x-www-form-urlencoded")
    tampered = signed.replace(b"UALICE", b"UADMIN")

    response = await slack.client.post("/slack/events", data=tampered, headers=headers)

    assert response.status == 401
    assert await nothing_written(flywheel)


def _malformed() -> dict[str, tuple[bytes, str]]:
    form = "application/x-www-form-urlencoded"
    no_event_id = fixture("event_app_mention")
    del no_event_id["event_id"]
    mention_without_user = fixture("event_app_mention")
    del mention_without_user["event"]["user"]
    command_without_user = fixture("slash_command")
    del command_without_user["user_id"]
    no_actions = fixture("block_actions_message")
    no_actions["actions"] = []
    no_state = fixture("view_submission")
    del no_state["view"]["state"]
    return {
        "bad-json": (b'{"type": "event_callback", ', "application/json"),
        "json-array": (b"[1, 2, 3]", "application/json"),
        "unknown-type": (json.dumps({"type": "surprise"}).encode(), "application/json"),
        "event-without-id": (json.dumps(no_event_id).encode(), "application/json"),
        "mention-without-user": (json.dumps(mention_without_user).encode(), "application/json"),
        "payload-not-json": (b"payload=%7Bnot+json", form),
        "payload-not-object": (b"payload=%22text%22", form),
        "command-without-user": (SlackHttp.form(command_without_user), form),
        "actions-empty": (SlackHttp.form({"payload": json.dumps(no_actions)}), form),
        "view-without-state": (SlackHttp.form({"payload": json.dumps(no_state)}), form),
        "plain-text": (b"hello", "text/plain"),
    }


@pytest.mark.parametrize("case", sorted(_malformed()))
async def test_malformed_bodies_are_refused_and_write_nothing(
    slack: SlackHttp, flywheel: Flywheel, fake_slack: FakeSlack, case: str
) -> None:
    body, content_type = _malformed()[case]

    response = await slack.post(body, content_type)

    assert response.status == 400
    assert "malformed request" in (await response.json())["error"]
    assert await nothing_written(flywheel)
    assert fake_slack.calls == []


async def test_a_retried_event_is_acknowledged_and_processed_once(
    slack: SlackHttp, flywheel: Flywheel, fake_slack: FakeSlack
) -> None:
    event = slack.mention("help", event_id="Ev0RETRY01")

    first = await slack.event(event)
    retry = await slack.event(event, retry=1)
    again = await slack.event(event, retry=2)

    assert (first.status, retry.status, again.status) == (200, 200, 200)
    assert await count(flywheel, InboundEvent) == 1
    await flywheel.dispatcher.drain()
    assert len(fake_slack.calls_to("chat.postMessage")) == 1


async def test_ssl_check_is_acknowledged_without_touching_anything(
    slack: SlackHttp, flywheel: Flywheel, fake_slack: FakeSlack
) -> None:
    body = slack.form({"ssl_check": "1", "token": "gIkuvaNzQIHg97ATvDxqgjtO"})

    response = await slack.post(body, "application/x-www-form-urlencoded")

    assert response.status == 200
    assert await nothing_written(flywheel)
    assert fake_slack.calls == []


async def test_url_verification_is_answered_with_the_challenge(slack: SlackHttp) -> None:
    challenge = fixture("url_verification")

    response = await slack.event(challenge)

    assert response.status == 200
    assert (await response.json()) == {"challenge": challenge["challenge"]}


# -- Socket Mode ---------------------------------------------------------------------------


class SocketGateway:
    """Slack's Socket Mode side: `apps.connections.open` and the websocket; every other
    Web API method is passed on to the fake Slack, so one SLACK_API_URL serves both."""

    def __init__(self, fake: FakeSlack) -> None:
        self.fake = fake
        self.opened_with: list[str] = []
        self.acks: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.connected = asyncio.Event()
        self._ws: web.WebSocketResponse | None = None
        self.server: TestServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("/api/"))

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/api/apps.connections.open", self._open)
        app.router.add_get("/link", self._link)
        app.router.add_route("*", "/api/{method}", self._pass_on)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server()

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self.server is not None:
            await self.server.close()

    async def _open(self, request: web.Request) -> web.Response:
        self.opened_with.append(request.headers.get("Authorization", "").removeprefix("Bearer "))
        assert self.server is not None
        url = str(self.server.make_url("/link")).replace("http://", "ws://")
        return web.json_response({"ok": True, "url": url})

    async def _link(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._ws = ws
        await ws.send_json({"type": "hello", "num_connections": 1})
        self.connected.set()
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                await self.acks.put(json.loads(message.data))
        return ws

    async def _pass_on(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        headers = {
            k: v for k, v in request.headers.items() if k in ("Authorization", "Content-Type")
        }
        async with (
            ClientSession() as session,
            session.request(
                request.method, self.fake.url + method, data=await request.read(), headers=headers
            ) as answer,
        ):
            return web.Response(
                body=await answer.read(), status=answer.status, content_type="application/json"
            )

    async def deliver(self, envelope: dict[str, Any]) -> dict[str, Any]:
        """Send one envelope; the client's acknowledgement of it."""
        assert self._ws is not None
        await self._ws.send_json(envelope)
        return await asyncio.wait_for(self.acks.get(), timeout=10)


@pytest.fixture
async def socket_mode(
    migrated_url: str, fake_slack: FakeSlack, clock: FrozenClock
) -> AsyncIterator[tuple[Flywheel, SocketGateway]]:
    gateway = SocketGateway(fake_slack)
    await gateway.start()
    app = build(
        slack_settings(
            migrated_url, fake_slack, slack_api_url=gateway.url, slack_app_token="xapp-1-A0-1-abc"
        ),
        clock=clock,
    )
    yield app, gateway
    await app.close()
    await gateway.close()


async def test_socket_mode_serves_commands_and_deduplicates_events(
    socket_mode: tuple[Flywheel, SocketGateway], fake_slack: FakeSlack, clock: FrozenClock
) -> None:
    app, gateway = socket_mode
    assert app.slack is not None
    await app.slack.start()
    await asyncio.wait_for(gateway.connected.wait(), timeout=10)
    assert gateway.opened_with == ["xapp-1-A0-1-abc"]
    slack = SlackHttp(None, fake_slack, clock)  # type: ignore[arg-type]  # payloads only

    ack = await gateway.deliver(
        {
            "envelope_id": "env-1",
            "type": "slash_commands",
            "accepts_response_payload": True,
            "payload": slack.slash_command("help"),
        }
    )
    assert ack["envelope_id"] == "env-1"
    assert ack["payload"]["response_type"] == "ephemeral"
    assert ack["payload"]["text"].startswith("Here is what I can do:")

    event = slack.mention("help", event_id="Ev0SOCKET01")
    for attempt, envelope_id in ((None, "env-2"), (1, "env-3")):
        envelope: dict[str, Any] = {
            "envelope_id": envelope_id,
            "type": "events_api",
            "payload": event,
        }
        if attempt is not None:
            envelope.update(retry_attempt=attempt, retry_reason="timeout")
        assert (await gateway.deliver(envelope))["envelope_id"] == envelope_id
    assert await count(app, InboundEvent) == 1
    await app.dispatcher.drain()
    [reply] = fake_slack.calls_to("chat.postMessage")
    assert reply.args["channel"] == "C0SALES"
