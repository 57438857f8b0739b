"""Sharing in Slack end to end: approval, fan-out DMs, share intents, tracked clicks, find, wins."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlmodel import select

from bot.app import Flywheel
from storage.db import transaction
from storage.models import Click, Draft, Member, Share, TrackedLink, Win, Workspace
from testing.fakes.clock import FrozenClock
from testing.fakes.slack_api import FakeSlack
from tests.slack_http import SlackHttp

BROWSER = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Safari/605.1.15"


@pytest.fixture
async def slack(
    flywheel: Flywheel, fake_slack: FakeSlack, clock: FrozenClock
) -> AsyncIterator[SlackHttp]:
    clock.set(datetime(2026, 11, 24, 14, 0, tzinfo=UTC))
    fake_slack.add_user("UPIA", "pia", email="pia@acme.test", tz="Europe/Paris")
    fake_slack.add_user("UKEN", "ken", email="ken@acme.test", tz="Europe/London")
    fake_slack.add_user("UOLGA", "olga", email="olga@acme.test", tz="Europe/London")
    client: TestClient[Any, Any] = TestClient(TestServer(flywheel.web_app()))
    await client.start_server()
    http = SlackHttp(client, fake_slack, clock)
    http.client = client  # type: ignore[attr-defined]
    yield http
    await client.close()


def buttons(call_args: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        e["action_id"]: e
        for b in call_args["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
    }


async def approve_a_post(slack: SlackHttp, flywheel: Flywheel) -> None:
    """Pia is the expert; Alice asks; Olga +1s; Ada reviews and approves."""
    await slack.command("expert", user="UPIA")
    await slack.interact(
        slack.submission(slack.opened_view(), {"other_topics": "kubernetes"}, user="UPIA")
    )
    await slack.command("request Zero-downtime Kubernetes upgrades")
    await slack.interact(slack.submission(slack.opened_view(), {"tags": "kubernetes"}))
    await slack.interact(slack.block_action("request_vote", "1", user="UOLGA"))
    async with transaction(flywheel.sessions) as session:
        workspace = (await session.exec(select(Workspace))).one()
        workspace.settings = {
            **workspace.settings,
            "reviewers": ["UADMIN"],
            "share_channels": ["CSHARE"],
        }
        session.add(workspace)
    await flywheel.sweeper.run_once()
    await slack.interact(slack.block_action("request_claim", "1", user="UPIA"))
    await slack.interact(slack.block_action("draft_open", "1", user="UPIA"))
    values = {
        "title": "Zero-downtime Kubernetes upgrades",
        "body": "Surge upgrades, PodDisruptionBudgets and a rollback plan for every cluster.",
        "canonical_url": "https://blog.acme.test/k8s",
        "caption_1": "How we upgrade Kubernetes with zero downtime",
        "caption_2": "Surge upgrades and PDBs: our checklist",
        "tags": "kubernetes, platform",
    }
    await slack.interact(slack.submission(slack.opened_view(), values, user="UPIA"))
    async with flywheel.sessions() as session:
        draft = (await session.exec(select(Draft))).one()
    await slack.interact(slack.block_action("draft_submit", str(draft.id), user="UPIA"))
    await slack.interact(slack.block_action("review_approve", f"{draft.id}:1", user="UADMIN"))


async def test_an_approved_post_reaches_the_right_people_with_working_share_buttons(
    slack: SlackHttp, flywheel: Flywheel, fake_slack: FakeSlack, clock: FrozenClock
) -> None:
    # Ken opts in with his interests from the preferences form; Olga opts out.
    await slack.interact(slack.block_action("share_prefs", user="UKEN"))
    prefs = slack.opened_view()
    assert prefs["callback_id"] == "share_prefs_form"
    await slack.interact(
        slack.submission(prefs, {"opt_in": "in", "interests": "Kubernetes"}, user="UKEN")
    )
    await slack.interact(slack.block_action("share_prefs", user="UOLGA"))
    await slack.interact(slack.submission(slack.opened_view(), {"opt_in": "out"}, user="UOLGA"))

    await approve_a_post(slack, flywheel)
    await flywheel.sweeper.run_once()
    await flywheel.dispatcher.drain()

    [announce] = [
        c for c in fake_slack.calls_to("chat.postMessage") if c.args["channel"] == "CSHARE"
    ]
    assert list(buttons(announce.args)) == ["share_post", "win_log"]
    shares = {
        c.args["channel"]: c.args
        for c in fake_slack.calls_to("chat.postMessage")
        if str(c.args.get("text", "")).startswith("Ready to share")
    }
    # The requester, the author and the opted-in Kubernetes fan; not Olga, who opted out.
    assert set(shares) == {"UALICE", "UPIA", "UKEN"}
    ken = buttons(shares["UKEN"])
    assert list(ken) == ["share_linkedin", "share_x", "share_email", "win_log"]
    linkedin = ken["share_linkedin"]
    assert linkedin["url"] == f"{flywheel.settings.base_url}/s/{linkedin['value']}"

    # Slack reports the press of a URL button, and the browser opens the button's address:
    # one share intent, Ken's, on LinkedIn; the browser lands in LinkedIn's composer.
    response = await slack.interact(
        slack.block_action("share_linkedin", linkedin["value"], user="UKEN")
    )
    assert response.status == 200
    client: TestClient[Any, Any] = slack.client  # type: ignore[attr-defined]
    opened = await client.get(
        f"/s/{linkedin['value']}", allow_redirects=False, headers={"User-Agent": BROWSER}
    )
    assert opened.status == 302
    composer = opened.headers["Location"]
    assert composer.startswith("https://www.linkedin.com/feed/?shareActive=true&text=")
    async with flywheel.sessions() as session:
        [share] = (await session.exec(select(Share))).all()
        ken_member = (await session.exec(select(Member).where(Member.user_id == "UKEN"))).one()
        link = (
            await session.exec(select(TrackedLink).where(TrackedLink.id == share.link_id))
        ).one()
    assert (share.member_id, share.network) == (ken_member.id, "linkedin")
    assert quote(f"/r/{link.code}", safe="") in composer

    # A reader clicks Ken's link: redirected with UTM, counted for Ken on LinkedIn.
    clicked = await client.get(
        f"/r/{link.code}", allow_redirects=False, headers={"User-Agent": BROWSER}
    )
    assert clicked.status == 302
    assert clicked.headers["Location"].startswith("https://blog.acme.test/k8s?utm_source=linkedin")
    await flywheel.links.clicks.flush()
    async with flywheel.sessions() as session:
        [click] = (await session.exec(select(Click))).all()
    assert (click.member_id, click.network, click.is_preview) == (ken_member.id, "linkedin", False)


async def test_find_answers_with_my_share_buttons_and_a_request_button_when_nothing_fits(
    slack: SlackHttp, flywheel: Flywheel, fake_slack: FakeSlack
) -> None:
    await approve_a_post(slack, flywheel)
    found = await (await slack.command("find kubernetes upgrade downtime", user="UKEN")).json()
    assert found["response_type"] == "ephemeral"
    assert list(buttons(found)) == ["share_linkedin", "share_x", "share_email", "win_log"]
    assert "Zero-downtime Kubernetes upgrades" in str(found["blocks"])
    nothing = await (await slack.command("find tax law in bolivia", user="UKEN")).json()
    assert nothing["text"].startswith("No approved posts match")
    assert list(buttons(nothing)) == ["request_open"]
    empty = await (await slack.command("find", user="UKEN")).json()
    assert "Tell me what to look for" in empty["text"]


async def test_logging_a_win_from_a_shared_post_checks_every_field(
    slack: SlackHttp, flywheel: Flywheel, fake_slack: FakeSlack
) -> None:
    await approve_a_post(slack, flywheel)
    await flywheel.sweeper.run_once()
    await slack.interact(slack.block_action("win_log", "1", user="UALICE"))
    form = slack.opened_view()
    assert form["callback_id"] == "win_form"
    bad = {"description": "", "value": "-5"}
    answer = await (await slack.interact(slack.submission(form, bad))).json()
    assert answer["response_action"] == "errors"
    assert set(answer["errors"]) == {"description", "value"}
    answer = await (
        await slack.interact(slack.submission(form, {"description": "Call", "value": "lots"}))
    ).json()
    assert "isn't a number" in answer["errors"]["value"]
    async with flywheel.sessions() as session:
        assert (await session.exec(select(Win))).all() == []

    good = {
        "kind": "deal",
        "description": "Globex signed after reading the upgrade post.",
        "account": "Globex",
        "value": "25,000",
    }
    assert (await slack.interact(slack.submission(form, good))).status == 200
    await flywheel.dispatcher.drain()
    async with flywheel.sessions() as session:
        [win] = (await session.exec(select(Win))).all()
    assert (win.kind, win.account, win.value, win.post_id) == ("deal", "Globex", 25000, 1)
    thanks = [c for c in fake_slack.calls_to("chat.postMessage") if c.args["channel"] == "UPIA"]
    assert any("Your post helped" in str(c.args["text"]) for c in thanks)


async def test_find_in_a_channel_answers_in_a_direct_message(
    slack: SlackHttp, flywheel: Flywheel, fake_slack: FakeSlack
) -> None:
    await approve_a_post(slack, flywheel)
    before = len(fake_slack.calls_to("chat.postMessage"))
    await slack.event(slack.mention("find kubernetes upgrades", user="UKEN", channel="C0SALES"))
    await flywheel.dispatcher.drain()
    sent = fake_slack.calls_to("chat.postMessage")[before:]
    # The answer carries Ken's own links: the channel only hears where it went.
    [in_channel] = [c.args for c in sent if c.args["channel"] == "C0SALES"]
    assert "direct message" in in_channel["text"] and not in_channel["blocks"]
    [to_ken] = [c.args for c in sent if c.args["channel"] == "UKEN"]
    assert list(buttons(to_ken)) == ["share_linkedin", "share_x", "share_email", "win_log"]
