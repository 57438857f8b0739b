"""Drafting and review in Slack, end to end through /slack/events and the fake Web API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlmodel import select

from bot.app import Flywheel
from storage.db import transaction
from storage.models import ContentRequest, Draft, Post, Workspace
from testing.fakes.clock import FrozenClock
from testing.fakes.slack_api import FakeSlack
from tests.slack_http import SlackHttp


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


async def test_draft_review_changes_and_approval_in_slack(
    slack: SlackHttp, flywheel: Flywheel, fake_slack: FakeSlack
) -> None:
    await slack.command("expert", user="UPIA")
    await slack.interact(
        slack.submission(slack.opened_view(), {"other_topics": "postgresql, oracle"}, user="UPIA")
    )
    await slack.command("request Oracle to PostgreSQL without downtime")
    await slack.interact(slack.submission(slack.opened_view(), {}))
    async with transaction(flywheel.sessions) as session:
        workspace = (await session.exec(select(Workspace))).one()
        workspace.settings = {
            **workspace.settings,
            "reviewers": ["UADMIN"],
            "review_channel": "CREVIEW",
        }
        session.add(workspace)
    await flywheel.sweeper.run_once()
    await slack.interact(slack.block_action("request_claim", "1", user="UPIA"))

    # The claim confirmation offers the draft form; an invalid URL is an inline error.
    await slack.interact(slack.block_action("draft_open", "1", user="UPIA"))
    form = slack.opened_view()
    assert form["callback_id"] == "draft_form"
    values = {
        "title": "Zero-downtime Oracle to PostgreSQL",
        "body": "Dual writes, then a cut-over in seconds.",
        "canonical_url": "ftp://example.com/x",
        "caption_1": "How we moved off Oracle without downtime",
    }
    invalid = await (await slack.interact(slack.submission(form, values, user="UPIA"))).json()
    assert invalid["response_action"] == "errors" and "canonical_url" in invalid["errors"]
    values["canonical_url"] = "https://blog.acme.test/zdm"
    assert (await slack.interact(slack.submission(form, values, user="UPIA"))).status == 200
    async with flywheel.sessions() as session:
        draft = (await session.exec(select(Draft))).one()

    await slack.interact(slack.block_action("draft_submit", str(draft.id), user="UPIA"))
    await flywheel.dispatcher.drain()
    [review] = [
        c for c in fake_slack.calls_to("chat.postMessage") if c.args["channel"] == "CREVIEW"
    ]
    actions = [
        e["action_id"]
        for b in review.args["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
    ]
    assert actions == ["review_approve", "review_changes", "review_reject"]

    await slack.interact(slack.block_action("review_changes", f"{draft.id}:1", user="UADMIN"))
    review_form = slack.opened_view()
    assert review_form["callback_id"] == "review_form"
    empty = await (
        await slack.interact(slack.submission(review_form, {"comment": ""}, user="UADMIN"))
    ).json()
    assert empty["response_action"] == "errors"
    await slack.interact(
        slack.submission(review_form, {"comment": "Add the rollback plan."}, user="UADMIN")
    )
    await flywheel.dispatcher.drain()
    [closed] = [c for c in fake_slack.calls_to("chat.update") if c.args["channel"] == "CREVIEW"]
    assert "Changes requested by <@UADMIN>" in closed.args["text"]

    await slack.interact(slack.block_action("draft_open", "1", user="UPIA"))
    values["body"] += "\nRollback: switch the writes back."
    await slack.interact(slack.submission(slack.opened_view(), values, user="UPIA"))
    await slack.interact(slack.block_action("draft_submit", str(draft.id), user="UPIA"))
    await slack.interact(slack.block_action("review_approve", f"{draft.id}:1", user="UADMIN"))
    await slack.interact(slack.block_action("review_approve", f"{draft.id}:2", user="UADMIN"))
    await flywheel.dispatcher.drain()
    replies = [c.args["text"] for c in fake_slack.calls if c.method == "response_url:action"]
    assert "Version 2 is the current one — please review that instead." in replies
    assert any("is live" in text for text in replies)
    async with flywheel.sessions() as session:
        post = (await session.exec(select(Post))).one()
        request = (await session.exec(select(ContentRequest))).one()
    assert (post.version, post.canonical_url, request.status) == (
        2,
        "https://blog.acme.test/zdm",
        "published",
    )
    live = [c for c in fake_slack.calls_to("chat.postMessage") if c.args["channel"] == "UALICE"]
    assert any("Your request is live" in str(c.args["text"]) for c in live)
