"""A signed Slack request replayed within the signature window runs once.

Interactivity and slash commands carry no event id, and Slack never retries them: the
same signed bytes arriving twice are a captured request played again. Each case sends one
exact request twice through the real `/slack/events` endpoint and counts what it did; a
person repeating an action is a new request and still meets the domain's own rules.
On SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func
from sqlmodel import select

from bot.app import Flywheel
from storage import events
from storage.db import transaction
from storage.events import RETENTION
from storage.models import ContentRequest, Draft, InboundEvent, Post, Vote, Workspace
from testing.fakes.clock import FrozenClock
from testing.fakes.slack_api import FakeSlack
from tests.slack_http import SlackHttp

ORACLE = "How do we migrate Oracle to PostgreSQL without downtime?"
FORM = "application/x-www-form-urlencoded"


@pytest.fixture
async def slack(
    flywheel: Flywheel, fake_slack: FakeSlack, clock: FrozenClock
) -> AsyncIterator[SlackHttp]:
    clock.set(datetime(2026, 11, 24, 14, 0, tzinfo=UTC))
    fake_slack.add_user("UPIA", "pia", email="pia@acme.test", tz="Europe/Paris")
    client: TestClient[Any, Any] = TestClient(TestServer(flywheel.web_app()))
    await client.start_server()
    yield SlackHttp(client, fake_slack, clock)
    await client.close()


async def count(flywheel: Flywheel, model: Any) -> int:
    async with flywheel.sessions() as session:
        return int((await session.exec(select(func.count()).select_from(model))).one())


class Captured:
    """One signed request, as an eavesdropper would keep it: bytes and headers."""

    def __init__(self, slack: SlackHttp, raw: bytes, content_type: str) -> None:
        self.slack = slack
        self.raw = raw
        self.content_type = content_type
        self.timestamp = int(slack.clock.now().timestamp())

    @classmethod
    def interaction(cls, slack: SlackHttp, payload: dict[str, Any]) -> Captured:
        return cls(slack, slack.form({"payload": json.dumps(payload)}), FORM)

    @classmethod
    def command(cls, slack: SlackHttp, text: str, **fields: Any) -> Captured:
        return cls(slack, slack.form(slack.slash_command(text, **fields)), FORM)

    async def send(self) -> ClientResponse:
        return await self.slack.post(self.raw, self.content_type, timestamp=self.timestamp)


def responses(fake: FakeSlack) -> list[str]:
    return [str(c.args.get("text")) for c in fake.calls_to("response_url:action")]


async def request_by(slack: SlackHttp, user: str, topic: str) -> None:
    await slack.interact(slack.global_shortcut(user=user))
    await slack.interact(slack.submission(slack.opened_view(), {"topic": topic}, user=user))


async def test_a_replayed_submission_stores_one_request(
    slack: SlackHttp, flywheel: Flywheel, fake_slack: FakeSlack, clock: FrozenClock
) -> None:
    await slack.interact(slack.global_shortcut())
    submitted = Captured.interaction(
        slack, slack.submission(slack.opened_view(), {"topic": ORACLE})
    )

    first = await submitted.send()
    clock.advance(minutes=4)  # still inside Slack's five-minute signature window
    replay = await submitted.send()

    assert (first.status, replay.status) == (200, 200)
    assert await replay.text() == ""
    assert await count(flywheel, ContentRequest) == 1
    await flywheel.dispatcher.drain()
    confirmations = [
        c for c in fake_slack.calls_to("chat.postMessage") if c.args["channel"] == "UALICE"
    ]
    assert len(confirmations) == 1


async def only_request(flywheel: Flywheel) -> ContentRequest:
    async with flywheel.sessions() as session:
        return (await session.exec(select(ContentRequest))).one()


async def test_a_replayed_vote_counts_once_and_says_nothing_more(
    slack: SlackHttp, flywheel: Flywheel, fake_slack: FakeSlack
) -> None:
    await request_by(slack, "UBOB", ORACLE)
    request = await only_request(flywheel)
    vote = Captured.interaction(slack, slack.block_action("request_vote", str(request.id)))

    first = await vote.send()
    replay = await vote.send()

    assert (first.status, replay.status) == (200, 200)
    assert await count(flywheel, Vote) == 1
    await flywheel.dispatcher.drain()
    assert responses(fake_slack) == ["Thanks — your +1 is counted. 2 people want this now."]


async def test_pressing_plus_one_again_is_a_new_request_the_domain_answers(
    slack: SlackHttp, flywheel: Flywheel, fake_slack: FakeSlack
) -> None:
    await request_by(slack, "UBOB", ORACLE)
    request = await only_request(flywheel)

    # Same person, same button, same second: Slack sends each press with its own trigger.
    await slack.interact(slack.block_action("request_vote", str(request.id)))
    await slack.interact(slack.block_action("request_vote", str(request.id)))

    assert await count(flywheel, Vote) == 1
    await flywheel.dispatcher.drain()
    # The outbox sends both answers at once, so in either order.
    notes = sorted(responses(fake_slack))
    assert len(notes) == 2
    assert notes[0].startswith("Thanks — your +1 is counted") and "already +1'd" in notes[1]


async def _draft_in_review(slack: SlackHttp, flywheel: Flywheel) -> Draft:
    await slack.command("expert", user="UPIA")
    await slack.interact(
        slack.submission(slack.opened_view(), {"other_topics": "postgresql, oracle"}, user="UPIA")
    )
    await slack.command("request Oracle to PostgreSQL without downtime")
    await slack.interact(slack.submission(slack.opened_view(), {}))
    async with transaction(flywheel.sessions) as session:
        workspace = (await session.exec(select(Workspace))).one()
        workspace.settings = {**workspace.settings, "reviewers": ["UADMIN"]}
        session.add(workspace)
    await flywheel.sweeper.run_once()
    await slack.interact(slack.block_action("request_claim", "1", user="UPIA"))
    await slack.interact(slack.block_action("draft_open", "1", user="UPIA"))
    values = {
        "title": "Zero-downtime Oracle to PostgreSQL",
        "body": "Dual writes, then a cut-over in seconds.",
        "canonical_url": "https://blog.acme.test/zdm",
        "caption_1": "How we moved off Oracle without downtime",
    }
    await slack.interact(slack.submission(slack.opened_view(), values, user="UPIA"))
    async with flywheel.sessions() as session:
        draft = (await session.exec(select(Draft))).one()
    await slack.interact(slack.block_action("draft_submit", str(draft.id), user="UPIA"))
    return draft


async def test_a_replayed_approval_publishes_once(
    slack: SlackHttp, flywheel: Flywheel, fake_slack: FakeSlack
) -> None:
    draft = await _draft_in_review(slack, flywheel)
    await flywheel.dispatcher.drain()
    fake_slack.calls.clear()
    approve = Captured.interaction(
        slack, slack.block_action("review_approve", f"{draft.id}:1", user="UADMIN")
    )

    first = await approve.send()
    replay = await approve.send()

    assert (first.status, replay.status) == (200, 200)
    assert await count(flywheel, Post) == 1
    await flywheel.dispatcher.drain()
    # The second delivery reached no handler: not even "already approved" was said.
    [answer] = responses(fake_slack)
    assert "is live" in answer
    assert (await only_request(flywheel)).status == "published"


async def test_a_replayed_slash_command_runs_once(
    slack: SlackHttp, flywheel: Flywheel, fake_slack: FakeSlack
) -> None:
    command = Captured.command(slack, "request zero-downtime migrations")

    first = await command.send()
    replay = await command.send()

    assert (first.status, replay.status) == (200, 200)
    assert await replay.text() == ""
    assert len(fake_slack.calls_to("views.open")) == 1


async def test_a_replayed_shortcut_opens_one_form(slack: SlackHttp, fake_slack: FakeSlack) -> None:
    for payload in (slack.global_shortcut(), slack.message_shortcut("Oracle, anyone?")):
        shortcut = Captured.interaction(slack, payload)
        assert (await shortcut.send()).status == 200
        assert (await shortcut.send()).status == 200

    assert len(fake_slack.calls_to("views.open")) == 2


async def test_help_writes_nothing_so_a_replay_is_simply_answered_again(
    slack: SlackHttp, flywheel: Flywheel
) -> None:
    command = Captured.command(slack, "help")

    answers = [await (await command.send()).json() for _ in range(2)]

    assert [a["text"].startswith("Here is what I can do:") for a in answers] == [True, True]
    assert await count(flywheel, InboundEvent) == 0
    assert await count(flywheel, Workspace) == 0


async def test_interactions_are_remembered_in_the_event_id_table_beside_events(
    slack: SlackHttp, flywheel: Flywheel, clock: FrozenClock
) -> None:
    await slack.interact(slack.global_shortcut())
    await slack.event(slack.mention("stats"))

    async with flywheel.sessions() as session:
        keys = sorted(e.event_id for e in (await session.exec(select(InboundEvent))).all())
    assert [k[:2] for k in keys] == ["Ev", "si"]
    assert keys[1].startswith("signed:")
    # Swept with them too, long after the signature window closed.
    async with transaction(flywheel.sessions) as session:
        assert await events.forget_older_than(session, clock.now() + RETENTION) == 2
