"""Routing in Slack, end to end: profiles, pings, claims and suggestions through /slack/events.

Pings are DMs sent by the outbox; a claim edits the other experts' DMs in place with
`chat.update` on the timestamps Slack returned when they were sent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlmodel import select

from bot.app import Flywheel
from storage.models import ContentRequest, MessageRef, Ping
from testing.fakes.clock import FrozenClock
from testing.fakes.slack_api import Call, FakeSlack
from tests.slack_http import SlackHttp

TUESDAY_14 = datetime(2026, 11, 24, 14, 0, tzinfo=UTC)  # 15:00 Paris, 09:00 New York


@pytest.fixture
async def slack(
    flywheel: Flywheel, fake_slack: FakeSlack, clock: FrozenClock
) -> AsyncIterator[SlackHttp]:
    clock.set(TUESDAY_14)
    fake_slack.add_user("UPIA", "pia", email="pia@acme.test", tz="Europe/Paris")
    fake_slack.add_user("UROBOT", "deploybot", is_bot=True)
    client: TestClient[Any, Any] = TestClient(TestServer(flywheel.web_app()))
    await client.start_server()
    yield SlackHttp(client, fake_slack, clock)
    await client.close()


async def become_expert(slack: SlackHttp, user: str, topics: str) -> None:
    assert (await slack.command("expert", user=user)).status == 200
    view = slack.opened_view()
    assert view["callback_id"] == "expert_form"
    response = await slack.interact(
        slack.submission(view, {"other_topics": topics, "capacity": "2"}, user=user)
    )
    assert response.status == 200
    assert await response.text() in ("", "{}")


async def request(slack: SlackHttp, topic: str, user: str = "UALICE") -> None:
    await slack.command(f"request {topic}", user=user)
    response = await slack.interact(
        slack.submission(slack.opened_view(), {"tags": "postgresql"}, user=user)
    )
    assert response.status == 200


async def settle(flywheel: Flywheel) -> None:
    await flywheel.sweeper.run_once()
    await flywheel.dispatcher.drain()


def pings_to(fake: FakeSlack, user: str) -> list[Call]:
    return [
        c
        for c in fake.calls_to("chat.postMessage")
        if c.args.get("channel") == user and "Can you help" in str(c.args.get("text"))
    ]


def action_ids(call: Call) -> list[str]:
    return [
        element["action_id"]
        for block in call.args["blocks"]
        if block["type"] == "actions"
        for element in block["elements"]
    ]


async def test_a_request_pings_experts_and_the_first_claim_edits_the_other_dm(
    slack: SlackHttp, flywheel: Flywheel, fake_slack: FakeSlack
) -> None:
    await become_expert(slack, "UPIA", "postgresql, oracle, database migration")
    await become_expert(slack, "UBOB", "postgresql, replication")
    await request(slack, "How do we migrate Oracle to PostgreSQL without downtime?")
    await settle(flywheel)

    [to_pia], [_] = pings_to(fake_slack, "UPIA"), pings_to(fake_slack, "UBOB")
    assert action_ids(to_pia) == ["request_claim", "request_suggest", "request_decline"]
    context = [b for b in to_pia.args["blocks"] if b["type"] == "context"]
    assert "Why you: you listed" in context[0]["elements"][0]["text"]
    async with flywheel.sessions() as session:
        request_id = (await session.exec(select(ContentRequest.id))).one()

    claimed = await slack.interact(
        slack.block_action("request_claim", str(request_id), user="UPIA")
    )
    assert claimed.status == 200
    await flywheel.dispatcher.drain()

    [edit] = [c for c in fake_slack.calls_to("chat.update") if c.args["channel"] == "DBOB"]
    async with flywheel.sessions() as session:
        [bob_ping] = (await session.exec(select(Ping).where(Ping.status == "withdrawn"))).all()
        stored = (
            await session.exec(
                select(MessageRef).where(MessageRef.ref_key == f"ping:{bob_ping.id}")
            )
        ).one()
    assert (stored.channel, edit.args["ts"]) == ("DBOB", stored.message_id)
    assert "Claimed by <@UPIA>" in edit.args["text"]
    assert not [b for b in edit.args["blocks"] if b["type"] == "actions"]
    replies = [c.args["text"] for c in fake_slack.calls if c.method == "response_url:action"]
    assert any("It's yours" in text for text in replies)
    told = [c for c in fake_slack.calls_to("chat.postMessage") if c.args["channel"] == "UALICE"]
    assert any("is on" in str(c.args["text"]) for c in told)

    await slack.interact(slack.block_action("request_claim", str(request_id), user="UBOB"))
    await flywheel.dispatcher.drain()
    replies = [c.args["text"] for c in fake_slack.calls if c.method == "response_url:action"]
    assert replies[-1] == "This request is already claimed by <@UPIA>."


async def test_suggesting_a_colleague_through_the_user_picker(
    slack: SlackHttp, flywheel: Flywheel, fake_slack: FakeSlack
) -> None:
    await become_expert(slack, "UPIA", "postgresql, oracle")
    await request(slack, "Oracle to PostgreSQL migration checklist")
    await settle(flywheel)
    async with flywheel.sessions() as session:
        request_id = (await session.exec(select(ContentRequest.id))).one()

    await slack.interact(slack.block_action("request_suggest", str(request_id), user="UPIA"))
    view = slack.opened_view()
    assert view["callback_id"] == "suggest_form"
    picker = next(b for b in view["blocks"] if b.get("block_id") == "colleague")
    assert picker["element"]["type"] == "users_select"

    for colleague, error in [
        ("UROBOT", "That's a bot"),
        ("UALICE", "They asked for it"),
        ("UPIA", "That's you"),
        ("UNOBODY", "can't find that person"),
    ]:
        response = await slack.interact(
            slack.submission(view, {"colleague": colleague}, user="UPIA")
        )
        body = await response.json()
        assert body["response_action"] == "errors"
        assert error in body["errors"]["colleague"]

    response = await slack.interact(slack.submission(view, {"colleague": "UBOB"}, user="UPIA"))
    assert response.status == 200
    await settle(flywheel)
    [to_bob] = pings_to(fake_slack, "UBOB")
    why = next(b for b in to_bob.args["blocks"] if b["type"] == "context")["elements"][0]["text"]
    assert "suggested by <@UPIA>" in why
    async with flywheel.sessions() as session:
        statuses = sorted((await session.exec(select(Ping.status))).all())
    assert statuses == ["passed", "pending"]
