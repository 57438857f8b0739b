"""A brand-new Slack workspace's first week, through /slack/events and the fake Web API:
known at start-up, welcomed on first open, written to in the Messages tab, and the whole
loop from a request nobody can take yet to the first digest. On SQLite and PostgreSQL."""

from __future__ import annotations

import copy
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlmodel import select

from bot.app import Flywheel, build
from bot.cli import _digest_preview
from storage.db import transaction
from storage.models import ContentRequest, Draft, Member, MessageRef, Workspace
from testing.fakes.clock import FrozenClock
from testing.fakes.slack_api import Call, FakeSlack
from tests.conftest import BOT_TOKEN, slack_settings
from tests.slack_http import SlackHttp, fixture

QUESTION = "How do we migrate Oracle to PostgreSQL without downtime?"


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


_ids = iter(range(1, 10_000))


def dm_event(
    text: str, *, user: str = "UALICE", thread_ts: str | None = None, **event: Any
) -> dict[str, Any]:
    """A `message.im` delivery: someone writing in the bot's Messages tab."""
    body = copy.deepcopy(fixture("event_app_mention"))
    n = next(_ids)
    body["event"] = {
        "type": "message",
        "channel_type": "im",
        "channel": "D" + user[1:],
        "user": user,
        "text": text,
        "ts": f"1763893{n:03d}.000100",
        "event_ts": f"1763893{n:03d}.000100",
        "team": "T0001",
        **({"thread_ts": thread_ts} if thread_ts else {}),
        **event,
    }
    body["event_id"] = f"EvDM{n:08d}"
    return body


def posted_to(fake: FakeSlack, channel: str) -> list[Call]:
    return [c for c in fake.calls_to("chat.postMessage") if c.args.get("channel") == channel]


def button_values(call: Call, action_id: str) -> list[str]:
    return [
        str(e.get("value", ""))
        for b in call.args.get("blocks") or []
        for e in (b.get("elements") or []) + ([b["accessory"]] if b.get("accessory") else [])
        if isinstance(e, dict) and e.get("action_id") == action_id
    ]


async def test_the_tokens_workspace_is_known_at_start_up(
    slack: SlackHttp, flywheel: Flywheel, capsys: pytest.CaptureFixture[str]
) -> None:
    assert flywheel.slack is not None
    assert await _digest_preview(flywheel, "T0001") == 2
    capsys.readouterr()
    await flywheel.slack.start()
    async with flywheel.sessions() as session:
        workspace = (await session.exec(select(Workspace))).one()
    assert (workspace.platform, workspace.external_id, workspace.name) == (
        "slack",
        "T0001",
        "Acme",
    )
    assert await _digest_preview(flywheel, "T0001") == 0
    assert "Flywheel weekly" in capsys.readouterr().out


async def test_slack_unreachable_at_start_up_stores_nothing_and_says_so_once(
    slack: SlackHttp, flywheel: Flywheel, fake_slack: FakeSlack
) -> None:
    assert flywheel.slack is not None
    fake_slack.fail("auth.test", error="service_unavailable")
    await flywheel.slack.start()
    async with flywheel.sessions() as session:
        assert (await session.exec(select(Workspace))).all() == []


async def test_first_open_welcomes_once_and_admins_get_the_checklist(
    slack: SlackHttp, flywheel: Flywheel, fake_slack: FakeSlack
) -> None:
    await slack.event(slack.home_opened(user="UALICE"))
    await slack.event(slack.home_opened(user="UALICE"))
    await slack.event(slack.home_opened(user="UADMIN"))
    await flywheel.dispatcher.drain()
    [alice] = [c for c in posted_to(fake_slack, "UALICE") if "Welcome" in str(c.args["text"])]
    assert button_values(alice, "expert_open") == [""]
    assert button_values(alice, "request_open") == [""]
    assert button_values(alice, "share_prefs") == [""]
    assert not button_values(alice, "admin_open")
    [ada] = [c for c in posted_to(fake_slack, "UADMIN") if "Welcome" in str(c.args["text"])]
    assert button_values(ada, "admin_open") == [""]
    assert "Reviewers" in str(ada.args["blocks"])
    # The home tab itself is published each time.
    assert len(fake_slack.calls_to("views.publish")) == 3


async def test_people_write_to_the_bot_in_its_messages_tab(
    slack: SlackHttp, flywheel: Flywheel, fake_slack: FakeSlack
) -> None:
    assert (await slack.event(dm_event("stats"))).status == 200
    await slack.event(dm_event("request Kubernetes upgrade guide"))
    # Not a person writing: an edit, another bot, the bot itself, a channel message.
    await slack.event(dm_event("stats", subtype="message_changed"))
    await slack.event(dm_event("stats", bot_id="B0OTHER"))
    await slack.event(dm_event("stats", user="UBOT"))
    await slack.event(dm_event("stats", channel_type="channel", channel="C0SALES"))
    await flywheel.dispatcher.drain()
    answers = [a for a in posted_to(fake_slack, "UALICE") if "Welcome" not in str(a.args["text"])]
    assert len(answers) == 2
    [stats] = [a for a in answers if "This week" in str(a.args["text"])]
    [offer] = [a for a in answers if a is not stats]
    # No trigger to open a form with: the form is offered as a button, prefilled.
    assert button_values(offer, "request_open") == ["Kubernetes upgrade guide"]


async def test_a_first_direct_message_is_welcomed_once_before_its_answer(
    slack: SlackHttp, flywheel: Flywheel, fake_slack: FakeSlack
) -> None:
    first = dm_event("stats")
    await slack.event(first)
    await slack.event(first, retry=1)  # Slack delivers it again
    await slack.event(dm_event("stats"))
    await flywheel.dispatcher.drain()
    texts = [str(a.args["text"]) for a in posted_to(fake_slack, "UALICE")]
    assert [t.startswith("Welcome") for t in texts] == [True, False, False]
    assert "This week" in str(posted_to(fake_slack, "UALICE")[1].args["blocks"]) + texts[1]
    # Someone already welcomed (on first opening the home tab) is not welcomed again.
    await slack.event(slack.home_opened(user="UADMIN"))
    await slack.event(dm_event("stats", user="UADMIN"))
    await flywheel.dispatcher.drain()
    assert sum("Welcome" in str(a.args["text"]) for a in posted_to(fake_slack, "UADMIN")) == 1


async def test_a_new_workspaces_first_week(
    slack: SlackHttp, flywheel: Flywheel, fake_slack: FakeSlack
) -> None:
    assert flywheel.slack is not None
    await flywheel.slack.start()
    await slack.event(slack.home_opened(user="UALICE"))

    # The first request, and nobody is an expert yet.
    await slack.command(f"request {QUESTION}")
    await slack.interact(slack.submission(slack.opened_view(), {}))
    await flywheel.sweeper.run_once()
    await flywheel.dispatcher.drain()
    [told] = [
        c
        for c in posted_to(fake_slack, "UALICE")
        if "Nobody has an expert profile yet" in str(c.args["text"])
    ]
    [request_id] = button_values(told, "request_nominate")

    # Alice suggests Pia; Pia's new profile is offered the request, and she takes it.
    await slack.interact(slack.block_action("request_nominate", request_id))
    await slack.interact(slack.submission(slack.opened_view(), {"colleague": "UPIA"}))
    await flywheel.dispatcher.drain()
    [invite] = [
        c for c in posted_to(fake_slack, "UPIA") if "thinks you know" in str(c.args["text"])
    ]
    assert button_values(invite, "expert_open") == [""]
    await slack.interact(slack.block_action("expert_open", user="UPIA"))
    await slack.interact(
        slack.submission(slack.opened_view(), {"other_topics": "oracle, postgresql"}, user="UPIA")
    )
    await flywheel.dispatcher.drain()
    [offer] = [c for c in posted_to(fake_slack, "UPIA") if "matches" in str(c.args["blocks"])]
    assert button_values(offer, "request_take") == [request_id]
    await slack.interact(slack.block_action("request_take", request_id, user="UPIA"))
    await flywheel.dispatcher.drain()
    taken = [c for c in posted_to(fake_slack, "UPIA") if "taking" in str(c.args["text"])]
    assert taken

    # Pia replies in the thread of that message: her words become the draft's notes.
    async with flywheel.sessions() as session:
        ref = (await session.exec(select(MessageRef).where(MessageRef.channel == "DPIA"))).one()
    thread = ref.message_id
    await slack.event(
        dm_event("We did this for Globex: dual writes.", user="UPIA", thread_ts=thread)
    )
    await flywheel.dispatcher.drain()
    [noted] = [
        c
        for c in posted_to(fake_slack, "DPIA")
        if c.args.get("thread_ts") == thread and "Added to your draft" in str(c.args["text"])
    ]
    assert button_values(noted, "draft_open") == [request_id]
    async with flywheel.sessions() as session:
        draft = (await session.exec(select(Draft))).one()
    assert draft.body == "We did this for Globex: dual writes."

    # The draft, the review, the approval.
    async with transaction(flywheel.sessions) as session:
        workspace = (await session.exec(select(Workspace))).one()
        workspace.settings = {**workspace.settings, "reviewers": ["UADMIN"]}
        session.add(workspace)
    await slack.interact(slack.block_action("draft_open", request_id, user="UPIA"))
    form = slack.opened_view()
    assert "dual writes" in str(form)
    values = {
        "title": "Zero-downtime Oracle to PostgreSQL",
        "body": "Dual writes, then a cut-over in seconds.",
        "canonical_url": "https://blog.acme.test/zdm",
        "caption_1": "How we moved off Oracle without downtime",
    }
    await slack.interact(slack.submission(form, values, user="UPIA"))
    await slack.interact(slack.block_action("draft_submit", str(draft.id), user="UPIA"))
    await slack.interact(slack.block_action("review_approve", f"{draft.id}:1", user="UADMIN"))
    await flywheel.sweeper.run_once()
    await flywheel.dispatcher.drain()
    async with flywheel.sessions() as session:
        request = (await session.exec(select(ContentRequest))).one()
        alice = (await session.exec(select(Member).where(Member.user_id == "UALICE"))).one()
    assert request.status == "published"
    assert any(
        "Your request is live" in str(c.args["text"]) for c in posted_to(fake_slack, "UALICE")
    )
    assert alice.welcomed_at is not None

    # The first digest, previewed.
    preview = await slack.command("digest preview", user="UADMIN")
    assert preview.status == 200
    assert "Flywheel weekly" in await preview.text()


async def test_bolts_token_will_be_unused_warning_stays_out_of_the_terminal(
    migrated_url: str,
    fake_slack: FakeSlack,
    clock: FrozenClock,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Bolt reads the token from the environment, as it is set in production.
    monkeypatch.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)
    caplog.set_level(logging.WARNING)
    app = build(slack_settings(migrated_url, fake_slack), clock=clock)
    await app.close()
    assert not [r for r in caplog.records if "will be unused" in r.getMessage()]
