"""LinkedIn in Slack end to end: connect through OAuth, post in one click, and know it was
posted — through `/slack/events`, `/linkedin/connect`, `/linkedin/callback` and a fake
LinkedIn, on SQLite and PostgreSQL."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest
import structlog
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlmodel import SQLModel, select

from bot.app import Flywheel
from handlers.linkedin.api import escape
from storage.db import transaction
from storage.models import LinkedInAccount, LinkedInPost, LinkedInState, Member, Post, Workspace
from testing.builders import add_post, add_workspace
from testing.fakes.clock import FrozenClock
from testing.fakes.linkedin import FakeLinkedIn
from testing.fakes.slack_api import FakeSlack
from tests.http_edges import rows as all_rows
from tests.http_edges import watching
from tests.linkedin_flow import Browser, build_with_linkedin, settings_with_linkedin, state_of
from tests.slack_http import SlackHttp

NOW = datetime(2026, 11, 24, 14, 0, tzinfo=UTC)  # a Tuesday, 15:00 in Paris
RESERVED = "Zero downtime (really) #k8s @team [v2] {x} <y> *a* _b_ ~c~ |d| \\e"


@pytest.fixture
async def fake_linkedin() -> AsyncIterator[FakeLinkedIn]:
    fake = await FakeLinkedIn().start()
    yield fake
    await fake.close()


@pytest.fixture
async def flywheel(
    migrated_url: str, fake_slack: FakeSlack, fake_linkedin: FakeLinkedIn, clock: FrozenClock
) -> AsyncIterator[Flywheel]:
    app = build_with_linkedin(
        settings_with_linkedin(migrated_url, fake_slack, fake_linkedin), clock
    )
    yield app
    await app.close()


@pytest.fixture
async def slack(
    flywheel: Flywheel, fake_slack: FakeSlack, clock: FrozenClock
) -> AsyncIterator[SlackHttp]:
    clock.set(NOW)
    client: TestClient[Any, Any] = TestClient(TestServer(flywheel.web_app()))
    await client.start_server()
    yield SlackHttp(client, fake_slack, clock)
    await client.close()


@pytest.fixture
async def browser(slack: SlackHttp) -> AsyncIterator[Browser]:
    b = Browser(slack.client)
    yield b
    await b.close()


@pytest.fixture
async def post_id(flywheel: Flywheel, slack: SlackHttp) -> int:
    """An approved post in Alice's workspace (the Slack team of the fixtures)."""
    async with transaction(flywheel.sessions) as session:
        workspace = await add_workspace(session, NOW, external_id="T0001")
        author = Member(
            workspace_id=workspace.id or 0, user_id="UADMIN", created_at=NOW, updated_at=NOW
        )
        session.add(author)
        await session.flush()
        post = await add_post(
            session,
            workspace,
            author,
            NOW,
            topic="k8s",
            slug="zero-downtime",
            title="Zero-downtime Kubernetes upgrades",
            summary="Surge upgrades, PDBs and a rollback plan.",
            canonical_url="https://blog.acme.test/k8s",
            captions=["How we upgrade Kubernetes with zero downtime"],
        )
    return post.id or 0


def buttons(blocks: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {e["action_id"]: e for b in blocks if b["type"] == "actions" for e in b["elements"]}


def answers(fake: FakeSlack) -> list[dict[str, Any]]:
    """What went to the response URL of button presses, oldest first."""
    return [c.args for c in fake.calls_to("response_url:action")]


def dms(fake: FakeSlack, user: str = "UALICE") -> list[str]:
    return [
        str(c.args.get("text")).replace("*", "")
        for c in fake.calls_to("chat.postMessage")
        if c.args.get("channel") == user
    ]


async def connect_link(slack: SlackHttp, flywheel: Flywheel, user: str = "UALICE") -> str:
    """Press Connect LinkedIn; the link the answer carries."""
    before = len(answers(slack.fake))
    assert (await slack.interact(slack.block_action("linkedin_connect", user=user))).status == 200
    await flywheel.dispatcher.drain()
    [answer] = answers(slack.fake)[before:]
    url: str = buttons(answer["blocks"])["linkedin_open"]["url"]
    assert url.startswith(f"{flywheel.settings.base_url}/linkedin/connect?t=")
    return url


async def connected(slack: SlackHttp, flywheel: Flywheel, browser: Browser) -> None:
    landing = await browser.connect(await connect_link(slack, flywheel))
    assert landing.status == 200, landing.text
    assert "connected as Alice Martin" in landing.text


async def open_post_form(slack: SlackHttp, post_id: int, user: str = "UALICE") -> dict[str, Any]:
    before = len(slack.fake.calls_to("views.open"))
    await slack.interact(slack.block_action("linkedin_post", str(post_id), user=user))
    assert len(slack.fake.calls_to("views.open")) == before + 1, answers(slack.fake)[-1:]
    view = slack.opened_view()
    assert view["callback_id"] == "linkedin_post_form"
    return view


async def submit(
    slack: SlackHttp, view: dict[str, Any], values: dict[str, Any], user: str = "UALICE"
) -> dict[str, Any]:
    response = await slack.interact(slack.submission(view, values, user=user))
    assert response.status == 200
    body = await response.read()
    return await response.json() if body else {}


async def rows(flywheel: Flywheel, model: Any) -> list[Any]:
    async with flywheel.sessions() as session:
        return list((await session.exec(select(model))).all())


# -- connect and post now ------------------------------------------------------------------


async def test_connect_then_post_now_is_published_as_the_member_and_recorded_with_its_urn(
    slack: SlackHttp,
    flywheel: Flywheel,
    fake_linkedin: FakeLinkedIn,
    browser: Browser,
    post_id: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    with structlog.testing.capture_logs() as logs:
        # Before connecting, the share message offers to connect, beside the composer.
        await slack.interact(slack.block_action("share_post", str(post_id)))
        await flywheel.dispatcher.drain()
        shown = buttons(answers(slack.fake)[-1]["blocks"])
        assert list(shown)[:3] == ["share_linkedin", "linkedin_connect", "share_x"]

        await connected(slack, flywheel, browser)
        await flywheel.dispatcher.drain()
        assert any("Your LinkedIn is connected as Alice Martin" in t for t in dms(slack.fake))

        # Now the share message has Post on LinkedIn, which opens the form.
        await slack.interact(slack.block_action("share_post", str(post_id)))
        await flywheel.dispatcher.drain()
        assert "linkedin_post" in buttons(answers(slack.fake)[-1]["blocks"])
        view = await open_post_form(slack, post_id)
        assert "How we upgrade Kubernetes" in str(view["blocks"])
        assert await submit(slack, view, {"caption": RESERVED}) == {}
        # Nothing was sent on the acknowledgement path: the worker posts.
        assert fake_linkedin.posts == []
        await flywheel.sweeper.run_once()
        await flywheel.dispatcher.drain()

    [published] = fake_linkedin.posts
    body = published.body
    assert body["author"] == "urn:li:person:abc123XYZ"
    assert body["commentary"] == escape(RESERVED)
    assert body["commentary"].startswith("Zero downtime \\(really\\) \\#k8s \\@team \\[v2\\]")
    assert body["visibility"] == "PUBLIC" and body["lifecycleState"] == "PUBLISHED"
    assert body["distribution"] == {
        "feedDistribution": "MAIN_FEED",
        "targetEntities": [],
        "thirdPartyDistributionChannels": [],
    }
    article = body["content"]["article"]
    assert article["title"] == "Zero-downtime Kubernetes upgrades"
    assert article["description"] == "Surge upgrades, PDBs and a rollback plan."
    assert article["source"].startswith(f"{flywheel.settings.base_url}/r/")
    assert published.headers["X-Restli-Protocol-Version"] == "2.0.0"
    assert len(published.headers["LinkedIn-Version"]) == 6

    [row] = await rows(flywheel, LinkedInPost)
    assert (row.status, row.urn, row.caption) == ("posted", published.urn, RESERVED)
    live = f"https://www.linkedin.com/feed/update/{published.urn}/"
    assert any("live on LinkedIn" in t and live in t for t in dms(slack.fake))

    # The token is sealed in the database and never logged.
    [token] = fake_linkedin.issued
    [account] = await rows(flywheel, LinkedInAccount)
    assert account.person_id == "abc123XYZ" and token not in account.token
    async with flywheel.engine.connect() as conn:
        dump = [
            str(r)
            for table in SQLModel.metadata.sorted_tables
            for r in (await conn.execute(table.select())).all()
        ]
    assert any(account.token in r for r in dump)  # the scan does see the sealed token
    assert token not in "".join(dump)
    assert token not in caplog.text
    assert token not in repr(logs)


# -- the callback refuses, and stores nothing ---------------------------------------------


async def test_a_forged_state_is_refused_and_nothing_is_stored(
    slack: SlackHttp, flywheel: Flywheel, browser: Browser, post_id: int
) -> None:
    started = await browser.open_connect_link(await connect_link(slack, flywheel))
    back = await browser.consent(started.headers["Location"])
    state = state_of(back)
    body, _, mac = state.partition(".")
    forged = back.replace(state, f"{body[:-2]}AA.{mac}")
    landing = await browser.callback(forged)
    assert landing.status == 400 and "isn't valid" in landing.text
    assert await rows(flywheel, LinkedInAccount) == []
    assert await rows(flywheel, LinkedInState) == []


async def test_a_replayed_state_is_refused(
    slack: SlackHttp, flywheel: Flywheel, browser: Browser, clock: FrozenClock, post_id: int
) -> None:
    started = await browser.open_connect_link(await connect_link(slack, flywheel))
    back = await browser.consent(started.headers["Location"])
    assert (await browser.callback(back)).status == 200
    [account] = await rows(flywheel, LinkedInAccount)
    again = await browser.callback(back)
    assert again.status == 400 and "already used" in again.text
    assert [a.token for a in await rows(flywheel, LinkedInAccount)] == [account.token]
    # Once the state could no longer be accepted anyway, its record goes.
    clock.advance(minutes=21)
    await flywheel.sweeper.run_once()
    assert await rows(flywheel, LinkedInState) == []
    assert (await browser.callback(back)).status == 400


async def test_an_expired_state_is_refused(
    slack: SlackHttp, flywheel: Flywheel, browser: Browser, clock: FrozenClock, post_id: int
) -> None:
    started = await browser.open_connect_link(await connect_link(slack, flywheel))
    back = await browser.consent(started.headers["Location"])
    clock.advance(minutes=11)
    landing = await browser.callback(back)
    assert landing.status == 400 and "expired" in landing.text
    assert await rows(flywheel, LinkedInAccount) == []


async def test_an_expired_connect_link_is_refused(
    slack: SlackHttp, flywheel: Flywheel, browser: Browser, clock: FrozenClock, post_id: int
) -> None:
    link = await connect_link(slack, flywheel)
    clock.advance(minutes=31)
    page = await browser.open_connect_link(link)
    assert page.status == 400 and "expired" in await page.text()
    assert "Set-Cookie" not in page.headers


async def test_another_members_state_is_refused_in_my_browser(
    slack: SlackHttp,
    flywheel: Flywheel,
    browser: Browser,
    fake_slack: FakeSlack,
    post_id: int,
) -> None:
    # Bob starts connecting; his callback URL (his state) is opened in Alice's browser.
    bobs_browser = Browser(slack.client)
    try:
        started = await bobs_browser.open_connect_link(
            await connect_link(slack, flywheel, user="UBOB")
        )
        bobs_callback = await bobs_browser.consent(started.headers["Location"])
    finally:
        await bobs_browser.close()
    await browser.open_connect_link(await connect_link(slack, flywheel))
    landing = await browser.callback(bobs_callback)
    assert landing.status == 400 and "started somewhere else" in landing.text
    assert await rows(flywheel, LinkedInAccount) == []


async def test_cancelling_on_linkedin_shows_a_page_and_stores_nothing(
    slack: SlackHttp,
    flywheel: Flywheel,
    browser: Browser,
    fake_linkedin: FakeLinkedIn,
    post_id: int,
) -> None:
    fake_linkedin.consent = "cancel"
    landing = await browser.connect(await connect_link(slack, flywheel))
    assert landing.status == 200 and "You chose not to connect" in landing.text
    assert await rows(flywheel, LinkedInAccount) == []
    assert await rows(flywheel, LinkedInState) == []
    assert "accessToken" not in fake_linkedin.requests


async def test_a_callback_without_state_is_refused(
    slack: SlackHttp, flywheel: Flywheel, browser: Browser, post_id: int
) -> None:
    landing = await browser.callback(f"{flywheel.settings.base_url}/linkedin/callback?code=abc")
    assert landing.status == 400 and "missing" in landing.text.lower()
    assert await rows(flywheel, LinkedInAccount) == []


# -- the caption ----------------------------------------------------------------------------


async def test_an_empty_or_too_long_caption_is_an_inline_error_and_nothing_is_queued(
    slack: SlackHttp, flywheel: Flywheel, browser: Browser, post_id: int
) -> None:
    await connected(slack, flywheel, browser)
    view = await open_post_form(slack, post_id)
    empty = await submit(slack, view, {"caption": "   "})
    assert empty["response_action"] == "errors" and "caption" in empty["errors"]
    long = await submit(slack, view, {"caption": "x" * 3001})
    assert "3,000" in long["errors"]["caption"]
    # Sent escaped, reserved characters count twice towards LinkedIn's limit.
    reserved = await submit(slack, view, {"caption": "#" * 1501})
    assert "3,002 of its 3,000" in reserved["errors"]["caption"]
    assert await rows(flywheel, LinkedInPost) == []


# -- disconnecting, expiry ------------------------------------------------------------------


async def test_posting_after_disconnecting_is_refused_and_the_token_is_revoked(
    slack: SlackHttp,
    flywheel: Flywheel,
    browser: Browser,
    fake_linkedin: FakeLinkedIn,
    post_id: int,
) -> None:
    await connected(slack, flywheel, browser)
    view = await open_post_form(slack, post_id)
    await slack.interact(slack.block_action("linkedin_disconnect"))
    await flywheel.dispatcher.drain()
    assert "disconnected" in str(answers(slack.fake)[-1]["text"])
    await submit(slack, view, {"caption": "Still want this out"})
    await flywheel.sweeper.run_once()
    await flywheel.dispatcher.drain()
    assert "isn't connected, so nothing was posted" in dms(slack.fake)[-1]
    assert fake_linkedin.posts == []
    assert await rows(flywheel, LinkedInPost) == []
    # The worker revoked the token at LinkedIn and forgot it.
    assert fake_linkedin.revoked == fake_linkedin.issued
    assert await rows(flywheel, LinkedInAccount) == []


async def test_an_expired_token_is_refused_at_once_and_a_scheduled_post_waits_for_reconnecting(
    slack: SlackHttp,
    flywheel: Flywheel,
    browser: Browser,
    fake_linkedin: FakeLinkedIn,
    clock: FrozenClock,
    post_id: int,
) -> None:
    fake_linkedin.expires_in = 3 * 86400
    await connected(slack, flywheel, browser)
    view = await open_post_form(slack, post_id)
    when = [o["value"] for o in _select(view, "when")["options"]]
    assert when[0] == "now" and len(when) > 1
    await submit(slack, view, {"caption": "Tomorrow please", "when": when[1]})
    [row] = await rows(flywheel, LinkedInPost)
    # Tomorrow morning, 09:00 in Paris.
    assert row.due_at == datetime(2026, 11, 25, 8, 0, tzinfo=UTC)

    # The token expires before the post is due: the post waits, the person hears once.
    clock.set(datetime(2026, 11, 28, 8, 0, tzinfo=UTC))
    await flywheel.sweeper.run_once()
    clock.set(datetime(2026, 11, 30, 8, 0, tzinfo=UTC))
    row.due_at = clock.now()
    async with transaction(flywheel.sessions) as session:
        stored = await session.get(LinkedInPost, row.id)
        assert stored is not None
        stored.due_at = clock.now()
        session.add(stored)
    await flywheel.sweeper.run_once()
    await flywheel.sweeper.run_once()
    await flywheel.dispatcher.drain()
    assert fake_linkedin.posts == []
    [row] = await rows(flywheel, LinkedInPost)
    assert row.status == "waiting"
    assert sum("connection has expired" in t for t in dms(slack.fake)) == 1
    # Posting now with the expired token: a clear refusal, nothing sent.
    await slack.interact(slack.block_action("linkedin_post", str(post_id)))
    await flywheel.dispatcher.drain()
    refusal = answers(slack.fake)[-1]
    assert "expired, so nothing was posted" in str(refusal["text"])
    assert "linkedin_connect" in buttons(refusal["blocks"])

    # Reconnecting sends the waiting post, once.
    await connected(slack, flywheel, browser)
    await flywheel.sweeper.run_once()
    await flywheel.sweeper.run_once()
    assert len(fake_linkedin.posts) == 1
    [row] = await rows(flywheel, LinkedInPost)
    assert row.status == "posted"


async def test_a_reminder_goes_a_week_before_the_token_expires(
    slack: SlackHttp,
    flywheel: Flywheel,
    browser: Browser,
    clock: FrozenClock,
    post_id: int,
) -> None:
    await connected(slack, flywheel, browser)
    clock.advance(days=52)
    await flywheel.sweeper.run_once()
    await flywheel.dispatcher.drain()
    assert not any("expires on" in t for t in dms(slack.fake))
    clock.advance(days=2)
    await flywheel.sweeper.run_once()
    await flywheel.sweeper.run_once()
    clock.advance(days=1)
    await flywheel.dispatcher.drain()
    assert sum("expires on" in t for t in dms(slack.fake)) == 1


# -- LinkedIn failing -------------------------------------------------------------------------


async def post_now(
    slack: SlackHttp, flywheel: Flywheel, browser: Browser, post_id: int, caption: str = "Hi"
) -> None:
    await connected(slack, flywheel, browser)
    view = await open_post_form(slack, post_id)
    await submit(slack, view, {"caption": caption})
    await flywheel.sweeper.run_once()
    await flywheel.dispatcher.drain()


@pytest.mark.parametrize("fault", ["timeout", "reset"])
async def test_a_lost_answer_is_never_sent_again_and_the_person_checks_their_feed(
    slack: SlackHttp,
    flywheel: Flywheel,
    browser: Browser,
    fake_linkedin: FakeLinkedIn,
    clock: FrozenClock,
    post_id: int,
    fault: str,
) -> None:
    fake_linkedin.hold = 2.0
    fake_linkedin.fail_posts(fault)
    await post_now(slack, flywheel, browser, post_id)
    [row] = await rows(flywheel, LinkedInPost)
    assert row.status == "unconfirmed" and row.urn is None
    assert any("never came back" in t for t in dms(slack.fake))
    clock.advance(hours=3)
    await flywheel.sweeper.run_once()
    assert len(fake_linkedin.posts) == 1


@pytest.mark.parametrize("fault", ["429", "503"])
async def test_linkedin_busy_is_retried_later_in_working_hours_and_posted_once(
    slack: SlackHttp,
    flywheel: Flywheel,
    browser: Browser,
    fake_linkedin: FakeLinkedIn,
    clock: FrozenClock,
    post_id: int,
    fault: str,
) -> None:
    clock.set(datetime(2026, 11, 24, 17, 0, tzinfo=UTC))  # 18:00 in Paris: after hours
    fake_linkedin.fail_posts(fault)
    await post_now(slack, flywheel, browser, post_id)
    [row] = await rows(flywheel, LinkedInPost)
    assert (row.status, row.attempts) == ("scheduled", 1)
    assert row.due_at == datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
    assert fake_linkedin.posts == []
    clock.set(row.due_at)
    await flywheel.sweeper.run_once()
    [row] = await rows(flywheel, LinkedInPost)
    assert row.status == "posted" and len(fake_linkedin.posts) == 1


async def test_a_refused_token_asks_to_reconnect_and_the_post_waits(
    slack: SlackHttp,
    flywheel: Flywheel,
    browser: Browser,
    fake_linkedin: FakeLinkedIn,
    post_id: int,
) -> None:
    fake_linkedin.fail_posts("401")
    await post_now(slack, flywheel, browser, post_id)
    [row] = await rows(flywheel, LinkedInPost)
    assert row.status == "waiting"
    assert any("connection has expired" in t for t in dms(slack.fake))


async def test_linkedin_refusing_the_post_is_told_in_its_words(
    slack: SlackHttp,
    flywheel: Flywheel,
    browser: Browser,
    fake_linkedin: FakeLinkedIn,
    post_id: int,
) -> None:
    fake_linkedin.fail_posts("422")
    await post_now(slack, flywheel, browser, post_id)
    [row] = await rows(flywheel, LinkedInPost)
    assert row.status == "failed"
    assert any("Content is a duplicate" in t for t in dms(slack.fake))


async def test_the_same_post_is_not_queued_twice_while_one_is_on_its_way(
    slack: SlackHttp, flywheel: Flywheel, browser: Browser, post_id: int
) -> None:
    await connected(slack, flywheel, browser)
    view = await open_post_form(slack, post_id)
    await submit(slack, view, {"caption": "One"})
    await submit(slack, view, {"caption": "Two"})
    await flywheel.dispatcher.drain()
    assert len(await rows(flywheel, LinkedInPost)) == 1
    assert any("already" in t for t in dms(slack.fake))


# -- Post at…, cancel -----------------------------------------------------------------------


async def test_a_scheduled_post_can_be_cancelled_until_it_is_sent(
    slack: SlackHttp,
    flywheel: Flywheel,
    browser: Browser,
    fake_linkedin: FakeLinkedIn,
    clock: FrozenClock,
    post_id: int,
) -> None:
    await connected(slack, flywheel, browser)
    view = await open_post_form(slack, post_id)
    later = _select(view, "when")["options"][1]["value"]
    await submit(slack, view, {"caption": "Later", "when": later})
    await flywheel.dispatcher.drain()
    scheduled = [c.args for c in slack.fake.calls_to("chat.postMessage")][-1]
    assert "Scheduled for LinkedIn" in scheduled["text"]
    cancel = buttons(scheduled["blocks"])["linkedin_cancel"]
    await slack.interact(slack.block_action("linkedin_cancel", cancel["value"]))
    clock.advance(days=1)
    await flywheel.sweeper.run_once()
    [row] = await rows(flywheel, LinkedInPost)
    assert row.status == "cancelled" and fake_linkedin.posts == []


async def test_a_retired_post_is_not_offered_and_a_scheduled_one_is_not_sent(
    slack: SlackHttp,
    flywheel: Flywheel,
    browser: Browser,
    fake_linkedin: FakeLinkedIn,
    clock: FrozenClock,
    post_id: int,
) -> None:
    await connected(slack, flywheel, browser)
    view = await open_post_form(slack, post_id)
    later = _select(view, "when")["options"][1]["value"]
    await submit(slack, view, {"caption": "Later", "when": later})
    async with transaction(flywheel.sessions) as session:
        post = await session.get(Post, post_id)
        assert post is not None
        post.retired_at = clock.now()
        session.add(post)
    # The button of a retired post opens nothing, and says why.
    before = len(slack.fake.calls_to("views.open"))
    await slack.interact(slack.block_action("linkedin_post", str(post_id)))
    await flywheel.dispatcher.drain()
    assert len(slack.fake.calls_to("views.open")) == before
    assert "no longer shared" in str(answers(slack.fake)[-1])
    # The one scheduled before it was retired is cancelled when due, and the person told.
    clock.advance(days=1)
    await flywheel.sweeper.run_once()
    await flywheel.dispatcher.drain()
    [row] = await rows(flywheel, LinkedInPost)
    assert row.status == "cancelled" and fake_linkedin.posts == []
    assert any("was not posted on LinkedIn" in text for text in dms(slack.fake))


async def test_a_time_outside_working_hours_is_refused(
    slack: SlackHttp, flywheel: Flywheel, browser: Browser, post_id: int
) -> None:
    await connected(slack, flywheel, browser)
    view = await open_post_form(slack, post_id)
    # A tampered payload: a time at night, which the form never offered.
    night = f"at:{int(datetime(2026, 11, 25, 2, 0, tzinfo=UTC).timestamp())}"
    _select(view, "when")["options"].append(
        {"text": {"type": "plain_text", "text": "night"}, "value": night}
    )
    answer = await submit(slack, view, {"caption": "Hi", "when": night})
    assert answer["response_action"] == "errors" and "when" in answer["errors"]
    assert await rows(flywheel, LinkedInPost) == []


# -- keys -------------------------------------------------------------------------------------


async def test_a_rotated_secret_key_still_reads_tokens_and_seals_them_again(
    slack: SlackHttp,
    flywheel: Flywheel,
    browser: Browser,
    fake_linkedin: FakeLinkedIn,
    fake_slack: FakeSlack,
    clock: FrozenClock,
    post_id: int,
) -> None:
    await connected(slack, flywheel, browser)
    view = await open_post_form(slack, post_id)
    await submit(slack, view, {"caption": "After rotation"})
    [before] = await rows(flywheel, LinkedInAccount)
    old_key = flywheel.settings.flywheel_secret_key
    assert old_key is not None
    rotated = build_with_linkedin(
        settings_with_linkedin(
            flywheel.settings.database_url,
            fake_slack,
            fake_linkedin,
            flywheel_secret_key="a-brand-new-secret-key-0123456789",
            flywheel_secret_key_previous=old_key.get_secret_value(),
        ),
        clock,
    )
    try:
        await rotated.sweeper.run_once()
        assert len(fake_linkedin.posts) == 1
        async with rotated.sessions() as session:
            [after] = (await session.exec(select(LinkedInAccount))).all()
        assert after.token != before.token
        assert rotated.router.config.keyring is not None
        # Sealed under the new key alone now.
        from handlers.core.sealing import Keyring

        new_only = Keyring(["a-brand-new-secret-key-0123456789"])
        opened = new_only.open(
            after.token, purpose="linkedin-token", bound_to=f"member:{after.member_id}"
        )
        assert opened.value == fake_linkedin.issued[0] and not opened.stale
    finally:
        await rotated.close()


def _select(view: dict[str, Any], block_id: str) -> dict[str, Any]:
    for block in view["blocks"]:
        if block.get("block_id") == block_id:
            element: dict[str, Any] = block["element"]
            return element
    raise AssertionError(f"no {block_id} in the view")


async def test_without_linkedin_settings_no_linkedin_button_appears(
    migrated_url: str, fake_slack: FakeSlack, clock: FrozenClock
) -> None:
    from bot.app import build
    from tests.conftest import slack_settings

    app = build(slack_settings(migrated_url, fake_slack), clock=clock)
    clock.set(NOW)
    client: TestClient[Any, Any] = TestClient(TestServer(app.web_app()))
    await client.start_server()
    try:
        http = SlackHttp(client, fake_slack, clock)
        async with transaction(app.sessions) as session:
            workspace = await add_workspace(session, NOW, external_id="T0001")
            author = Member(
                workspace_id=workspace.id or 0, user_id="UADMIN", created_at=NOW, updated_at=NOW
            )
            session.add(author)
            await session.flush()
            post = await add_post(
                session, workspace, author, NOW, topic="t", slug="s", title="A post"
            )
        await http.interact(http.block_action("share_post", str(post.id)))
        await app.dispatcher.drain()
        shown = buttons(answers(fake_slack)[-1]["blocks"])
        assert not any(name.startswith("linkedin") for name in shown)
        assert (await client.get("/linkedin/connect?t=x")).status == 404
        async with app.sessions() as session:
            assert (await session.exec(select(Workspace))).all()
    finally:
        await client.close()
        await app.close()


# -- figures ----------------------------------------------------------------------------------


async def test_stats_notes_and_digests_count_confirmed_posts_apart_from_button_presses(
    slack: SlackHttp,
    flywheel: Flywheel,
    browser: Browser,
    fake_linkedin: FakeLinkedIn,
    clock: FrozenClock,
    post_id: int,
) -> None:
    from handlers.core.context import Scope
    from handlers.core.workspace_settings import load
    from handlers.impact import digest_figures, digest_message, notes
    from handlers.impact.query import Period

    # One composer button pressed (an intent), one post LinkedIn confirmed, one it refused.
    await slack.interact(slack.block_action("share_post", str(post_id)))
    await flywheel.dispatcher.drain()
    composer = buttons(answers(slack.fake)[-1]["blocks"])["share_linkedin"]
    await slack.interact(slack.block_action("share_linkedin", composer["value"]))
    await post_now(slack, flywheel, browser, post_id)
    fake_linkedin.fail_posts("422")
    view = await open_post_form(slack, post_id)
    await submit(slack, view, {"caption": "Again"})
    await flywheel.sweeper.run_once()

    answer = await (await slack.command("stats")).json()
    fields = " ".join(
        f["text"] for b in answer["blocks"] if b["type"] == "section" for f in b.get("fields", [])
    ).replace("*", "")
    assert "Shares\n1" in fields
    assert "Posted on LinkedIn (confirmed)\n1" in fields
    assert "Your LinkedIn posts (confirmed)\n1" in fields
    assert "linkedin_disconnect" in buttons(answer["blocks"])

    week = Period(clock.now() - timedelta(days=1), clock.now() + timedelta(days=1))
    async with transaction(flywheel.sessions) as session:
        workspace = (await session.exec(select(Workspace))).one()
        scope = Scope(session, clock, flywheel.router.config, workspace)
        assert await notes.send_all(scope, load(workspace), week, "2026-W48") >= 1
    await flywheel.dispatcher.drain()
    [alice_note] = [
        c.args
        for c in slack.fake.calls_to("chat.postMessage")
        if "Your week" in c.args["text"] and c.args["channel"] == "UALICE"
    ]
    assert "1 post published from Flywheel, confirmed by LinkedIn" in str(alice_note["blocks"])
    [author_note] = [
        c.args
        for c in slack.fake.calls_to("chat.postMessage")
        if "Your week" in c.args["text"] and c.args["channel"] == "UADMIN"
    ]
    assert "published 1 time from Flywheel" in str(author_note["blocks"])

    async with flywheel.sessions() as session:
        workspace = (await session.exec(select(Workspace))).one()
        figures = await digest_figures.build(
            session, workspace.id or 0, load(workspace), clock.now() + timedelta(days=6)
        )
    assert figures.linkedin_posts == 1 and figures.this.shares == 1
    shown = digest_message.message(figures, chart_url=None, page_url=None)
    assert "1 post on LinkedIn from Flywheel, confirmed by LinkedIn" in str(shown.blocks)


async def test_app_home_connects_and_shows_the_connection(
    slack: SlackHttp, flywheel: Flywheel, browser: Browser, post_id: int
) -> None:
    await slack.event(slack.home_opened())
    await flywheel.dispatcher.drain()
    view = slack.fake.calls_to("views.publish")[-1].args["view"]
    assert "linkedin_connect" in str(view["blocks"])
    await connected(slack, flywheel, browser)
    await slack.event(slack.home_opened())
    await flywheel.dispatcher.drain()
    view = slack.fake.calls_to("views.publish")[-1].args["view"]
    assert "Connected as" in str(view["blocks"]) and "Alice Martin" in str(view["blocks"])
    assert "linkedin_disconnect" in str(view["blocks"])


# -- the browser legs, fuzzed -------------------------------------------------------------------

_texts = st.one_of(
    st.none(),
    st.text(max_size=60),
    st.sampled_from(["", ".", "a.b", "user_cancelled_authorize", "\x00", "%00", "x" * 3000]),
)


@settings(max_examples=30)
@given(
    route=st.sampled_from(["/linkedin/connect", "/linkedin/callback"]),
    code=_texts,
    state=_texts,
    error=_texts,
    t=_texts,
    cookie=_texts,
)
async def test_the_browser_legs_answer_anything_without_5xx_and_write_nothing(
    slack: SlackHttp,
    flywheel: Flywheel,
    route: str,
    code: str | None,
    state: str | None,
    error: str | None,
    t: str | None,
    cookie: str | None,
) -> None:
    query = {
        k: v.replace("\x00", "")
        for k, v in {"code": code, "state": state, "error": error, "t": t}.items()
        if v is not None
    }
    headers = {"Cookie": f"flywheel_linkedin={quote(cookie)}"} if cookie else {}
    before = await all_rows(flywheel)
    with watching() as logs:
        answer = await slack.client.get(route, params=query, headers=headers, allow_redirects=False)
        await answer.read()
    assert answer.status < 500, answer.status
    assert logs.lines == []
    assert await all_rows(flywheel) == before


async def test_a_post_left_sending_by_a_stopped_worker_is_unconfirmed_never_resent(
    slack: SlackHttp,
    flywheel: Flywheel,
    browser: Browser,
    fake_linkedin: FakeLinkedIn,
    clock: FrozenClock,
    post_id: int,
) -> None:
    await connected(slack, flywheel, browser)
    view = await open_post_form(slack, post_id)
    await submit(slack, view, {"caption": "Mid-send"})
    # The worker marked it sending, then died before LinkedIn answered.
    async with transaction(flywheel.sessions) as session:
        [row] = (await session.exec(select(LinkedInPost))).all()
        row.status, row.sent_at = "sending", clock.now()
        session.add(row)
    clock.advance(minutes=11)
    await flywheel.sweeper.run_once()
    await flywheel.sweeper.run_once()
    await flywheel.dispatcher.drain()
    [row] = await rows(flywheel, LinkedInPost)
    assert row.status == "unconfirmed" and fake_linkedin.posts == []
    assert sum("never came back" in t for t in dms(slack.fake)) == 1


async def test_linkedin_failing_every_time_gives_up_and_says_nothing_was_published(
    slack: SlackHttp,
    flywheel: Flywheel,
    browser: Browser,
    fake_linkedin: FakeLinkedIn,
    clock: FrozenClock,
    post_id: int,
) -> None:
    fake_linkedin.fail_posts(*["500"] * 6)
    await post_now(slack, flywheel, browser, post_id)
    for _ in range(6):
        [row] = await rows(flywheel, LinkedInPost)
        clock.set(max(clock.now(), row.due_at))
        await flywheel.sweeper.run_once()
    await flywheel.dispatcher.drain()
    [row] = await rows(flywheel, LinkedInPost)
    assert (row.status, row.attempts) == ("failed", 6)
    assert fake_linkedin.posts == []
    assert any("LinkedIn kept failing" in t for t in dms(slack.fake))


async def test_connecting_again_before_the_worker_revoked_the_old_token_revokes_it_first(
    slack: SlackHttp,
    flywheel: Flywheel,
    browser: Browser,
    fake_linkedin: FakeLinkedIn,
    post_id: int,
) -> None:
    await connected(slack, flywheel, browser)
    await slack.interact(slack.block_action("linkedin_disconnect"))
    await flywheel.dispatcher.drain()
    await connected(slack, flywheel, browser)
    first, second = fake_linkedin.issued
    assert fake_linkedin.revoked == [first]
    [account] = await rows(flywheel, LinkedInAccount)
    assert account.disconnected_at is None
    await flywheel.sweeper.run_once()
    assert fake_linkedin.revoked == [first] and len(await rows(flywheel, LinkedInAccount)) == 1
    view = await open_post_form(slack, post_id)
    await submit(slack, view, {"caption": "Back again"})
    await flywheel.sweeper.run_once()
    assert [p.token for p in fake_linkedin.posts] == [second]
