"""Weekly digests in Slack, end to end: admin settings through /slack/events, the digest and
the notes through the outbox to the fake Web API, the chart and the page over HTTP, and the
claim button through /slack/events.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlmodel import col, select

from bot.app import Flywheel
from storage.models import ContentRequest, Digest, OutboxMessage, Workspace
from testing.fakes.clock import FrozenClock
from testing.fakes.slack_api import Call, FakeSlack
from tests.slack_http import SlackHttp
from tests.test_digest_figures import seed_week

SET_UP = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
SEND = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)  # Monday 09:00 in Paris
CHANNELS = ["C0GENERAL", "C0ARCHIVED", "C0OUTSIDE"]


@pytest.fixture
async def slack(
    flywheel: Flywheel, fake_slack: FakeSlack, clock: FrozenClock
) -> AsyncIterator[SlackHttp]:
    clock.set(SET_UP)
    fake_slack.add_user("UPIA", "pia", email="pia@acme.test")
    client: TestClient[Any, Any] = TestClient(TestServer(flywheel.web_app()))
    await client.start_server()
    yield SlackHttp(client, fake_slack, clock)
    await client.close()


async def configure(slack: SlackHttp, **values: Any) -> Any:
    await slack.command("admin", user="UADMIN")
    intro = str(slack.opened_view()["blocks"])
    assert "<http://127.0.0.1:3978/program|open the program page>" in intro
    fields = {"digest_channels": CHANNELS, "timezone": "Europe/Paris", **values}
    response = await slack.interact(slack.submission(slack.opened_view(), fields, user="UADMIN"))
    assert response.status == 200
    return response


async def workspace_id(flywheel: Flywheel) -> int:
    async with flywheel.sessions() as session:
        return (await session.exec(select(Workspace.id))).one() or 0


def posts_to(fake: FakeSlack, where: str) -> list[Call]:
    return [c for c in fake.calls_to("chat.postMessage") if c.args.get("channel") == where]


async def test_the_digest_reaches_each_channel_once_and_admins_hear_of_refusals(
    slack: SlackHttp, flywheel: Flywheel, fake_slack: FakeSlack, clock: FrozenClock
) -> None:
    await configure(slack)
    await seed_week(flywheel.sessions, await workspace_id(flywheel))
    fake_slack.refuse("C0ARCHIVED", "is_archived")
    fake_slack.refuse("C0OUTSIDE", "not_in_channel")

    await flywheel.dispatcher.drain()

    clock.set(SEND)
    await flywheel.sweeper.run_once()
    # Slack fails every call for a while: everything is retried through the outbox.
    fake_slack.fail("chat.postMessage", 500, times=100)
    await flywheel.dispatcher.drain()
    failed_first = [
        c.args["channel"]
        for c in fake_slack.calls_to("chat.postMessage")
        if c.args["channel"] in CHANNELS or "Your week in Flywheel" in c.args["text"]
    ]
    assert len(failed_first) == 3 + 6  # three channels, six personal notes
    fake_slack.faults.clear()
    clock.advance(minutes=5)
    await flywheel.dispatcher.drain()
    await flywheel.sweeper.run_once()
    await flywheel.dispatcher.drain()
    clock.advance(minutes=5)
    await flywheel.sweeper.run_once()
    await flywheel.dispatcher.drain()

    all_general = posts_to(fake_slack, "C0GENERAL")
    assert len(all_general) == 2  # the 500, then the one that landed
    digest = all_general[-1].args
    blocks = digest["blocks"]
    assert len(blocks) <= 50
    assert blocks[0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "Flywheel weekly · 23 – 29 Nov 2026", "emoji": True},
    }
    [image] = [b for b in blocks if b["type"] == "image"]
    assert image["image_url"].startswith("http://127.0.0.1:3978/c/")
    assert "shares 0, 0, 0, 0, 0, 0, 1, 4" in image["alt_text"]
    assert digest["text"].startswith("Flywheel weekly, 23 – 29 Nov 2026: 2 requests")
    claims = [b["accessory"] for b in blocks if "accessory" in b]
    assert {c["action_id"] for c in claims} == {"digest_claim"}
    footer = blocks[-1]["elements"][0]["text"]
    assert footer.startswith("<http://127.0.0.1:3978/d/") and "|See the whole digest>" in footer
    assert footer.endswith(" · <http://127.0.0.1:3978/program|The program over time>")

    async with flywheel.sessions() as session:
        rows = {d.channel: d for d in (await session.exec(select(Digest))).all()}
    assert {c: rows[c].status for c in CHANNELS} == {
        "C0GENERAL": "sent",
        "C0ARCHIVED": "failed",
        "C0OUTSIDE": "failed",
    }
    told = [
        c.args["text"]
        for c in fake_slack.calls_to("chat.postMessage")
        if c.args["channel"] == "UADMIN" and "weekly digest" in c.args["text"]
    ]
    assert sorted(told) == [
        "I couldn't post the weekly digest (2026-W48) in <#C0ARCHIVED>: the channel was "
        "archived. The other digest channels got theirs; choose the channels with `admin`.",
        "I couldn't post the weekly digest (2026-W48) in <#C0OUTSIDE>: I'm not a member of "
        "that channel. Invite me with `/invite @Flywheel`. The other digest channels got "
        "theirs; choose the channels with `admin`.",
    ]
    async with flywheel.sessions() as session:
        notes = (
            await session.exec(
                select(OutboxMessage).where(col(OutboxMessage.dedupe_key).contains(":note:"))
            )
        ).all()
    # Each note was refused once, then sent; refusals in a row count as the platform being
    # down, which uses up no message's attempts.
    assert sorted((n.target["user"], n.status) for n in notes) == [
        (user, "sent") for user in ("UALICE", "UBOB", "UCAROL", "UDAN", "UERIN", "UFRANK")
    ]
    assert all(1 <= n.attempts <= 2 for n in notes)

    [carol] = [n for n in notes if n.target["user"] == "UCAROL"]
    assert "Shared by <@UDAN> and <@UERIN>" in str(carol.payload)

    # The chart, drawn on first request, and the whole digest as a page.
    png = await slack.client.get(image["image_url"].removeprefix("http://127.0.0.1:3978"))
    assert png.status == 200 and png.content_type == "image/png"
    assert (await png.read()).startswith(b"\x89PNG\r\n\x1a\n")
    page_path = footer[1:].split("|")[0].removeprefix("http://127.0.0.1:3978")
    page = await slack.client.get(page_path)
    body = await page.text()
    assert page.status == 200 and "Globex signed after reading the migration guide" in body
    assert "<script" not in body and "Post P2" in body
    assert (await slack.client.get("/d/AAAAAAAAAAAAAAAA")).status == 404
    assert (await slack.client.get("/c/nope.png")).status == 404

    # A week later nothing is repeated; the next digest goes out once.
    before = len(fake_slack.calls_to("chat.postMessage"))
    clock.advance(days=6)
    await flywheel.sweeper.run_once()
    await flywheel.dispatcher.drain()
    assert len(fake_slack.calls_to("chat.postMessage")) == before
    clock.advance(days=1)
    await flywheel.sweeper.run_once()
    await flywheel.dispatcher.drain()
    later = posts_to(fake_slack, "C0GENERAL")[2:]
    assert [c.args["text"][:35] for c in later] == ["Flywheel weekly, 30 Nov – 6 Dec 202"]


async def test_the_claim_button_lets_an_expert_take_an_open_request(
    slack: SlackHttp, flywheel: Flywheel, fake_slack: FakeSlack, clock: FrozenClock
) -> None:
    await slack.command("expert", user="UBOB")
    await slack.interact(
        slack.submission(
            slack.opened_view(), {"other_topics": "postgresql", "capacity": "2"}, user="UBOB"
        )
    )
    ids = await seed_week(flywheel.sessions, await workspace_id(flywheel))
    await flywheel.dispatcher.drain()

    async def press(user: str, value: str) -> str:
        response = await slack.interact(slack.block_action("digest_claim", value, user=user))
        assert response.status == 200
        await flywheel.dispatcher.drain()
        replies = [c.args["text"] for c in fake_slack.calls if c.method == "response_url:action"]
        return str(replies[-1])

    assert "Requests are taken by experts" in await press("UPIA", str(ids["R2"]))
    assert "You asked for this one" in await press("UALICE", str(ids["R2"]))
    assert "can't find that request" in await press("UBOB", "not-a-number")
    assert "It's yours: “Topic R2”" in await press("UBOB", str(ids["R2"]))
    assert await press("UBOB", str(ids["R2"])) == "This request is already claimed by you."
    # A request no expert could take is reopened by the volunteer, then claimed.
    assert "It's yours: “Topic R5”" in await press("UBOB", str(ids["R5"]))
    clock.advance(seconds=5)
    await flywheel.dispatcher.drain()

    async with flywheel.sessions() as session:
        taken = (
            await session.exec(
                select(ContentRequest).where(col(ContentRequest.id).in_([ids["R2"], ids["R5"]]))
            )
        ).all()
    assert {(r.status, r.assignee_id) for r in taken} == {("claimed", ids["UBOB"])}
    told = [c.args["text"] for c in posts_to(fake_slack, "UALICE")]
    assert any("is on “Topic R2”" in text for text in told)
    # Bob's DM became the drafting message, like a ping's.
    edits = [c for c in fake_slack.calls_to("chat.update") if c.args["channel"] == "DBOB"]
    assert len(edits) == 2
    assert all("You claimed" in c.args["text"] for c in edits)
    ids_in_edit = [
        e["action_id"]
        for b in edits[0].args["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
    ]
    assert ids_in_edit == ["draft_open", "draft_ai"]


async def test_digest_settings_are_validated_inline_and_saved(
    slack: SlackHttp, flywheel: Flywheel
) -> None:
    await slack.command("admin", user="UADMIN")
    view = slack.opened_view()
    labels = {b["block_id"] for b in view["blocks"] if b["type"] == "input"}
    assert {"digest_day", "digest_time", "personal_notes_default"} <= labels
    response = await slack.interact(
        slack.submission(view, {"digest_time": "25:61", "digest_channels": CHANNELS}, user="UADMIN")
    )
    body = await response.json()
    assert body["response_action"] == "errors"
    assert body["errors"] == {"digest_time": "“25:61” is not a time like 09:00 (24-hour clock)."}
    async with flywheel.sessions() as session:
        assert (await session.exec(select(Workspace))).one().settings.get("digest_channels") in (
            None,
            [],
        )

    response = await configure(
        slack, digest_day="friday", digest_time="7:30", personal_notes_default="no"
    )
    async with flywheel.sessions() as session:
        saved = (await session.exec(select(Workspace))).one().settings
    assert (saved["digest_day"], saved["digest_time"], saved["personal_notes_default"]) == (
        "friday",
        "07:30",
        False,
    )
    assert saved["digest_channels"] == CHANNELS
    assert saved["digests_from"] == SET_UP.isoformat()


async def test_the_digest_tells_posts_from_requests_from_links_and_feeds(
    slack: SlackHttp, flywheel: Flywheel, fake_slack: FakeSlack, clock: FrozenClock
) -> None:
    from storage.models import Member, Post

    await slack.command("admin", user="UADMIN")
    fields = {"digest_channels": ["C0GENERAL"], "timezone": "Europe/Paris"}
    await slack.interact(slack.submission(slack.opened_view(), fields, user="UADMIN"))
    workspace = await workspace_id(flywheel)
    await seed_week(flywheel.sessions, workspace)
    async with flywheel.sessions() as session:
        week_posts = (
            await session.exec(
                select(Post).where(
                    col(Post.published_at) >= datetime(2026, 11, 23, tzinfo=UTC),
                    col(Post.published_at) < datetime(2026, 11, 30, tzinfo=UTC),
                )
            )
        ).all()
        admin = (await session.exec(select(Member).where(Member.user_id == "UADMIN"))).one()
    from_requests = len(week_posts)
    assert from_requests >= 1 and all(p.source == "request" for p in week_posts)
    async with flywheel.sessions() as session:
        # One article from a feed this week, one shared link the week before (not counted).
        for slug, source, day in (("from-feed", "feed", 27), ("old-link", "link", 20)):
            session.add(
                Post(
                    workspace_id=workspace,
                    source=source,
                    slug=slug,
                    title=f"Outside {slug}",
                    canonical_url=f"https://blog.acme.test/{slug}",
                    author_id=admin.id or 0,
                    approved_by_id=admin.id or 0,
                    published_at=datetime(2026, 11, day, 10, tzinfo=UTC),
                )
            )
        await session.commit()
    await flywheel.dispatcher.drain()
    clock.set(SEND)
    await flywheel.sweeper.run_once()
    await flywheel.dispatcher.drain()
    [digest] = posts_to(fake_slack, "C0GENERAL")
    text = str(digest.args["blocks"])
    assert (
        f"Of the posts, {from_requests} came from requests and 1 from shared links and feeds"
        in text
    )
