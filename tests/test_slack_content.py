"""Existing content in Slack end to end: `share <url>`, the message shortcut, review, feeds,
retiring, through `/slack/events` against a local site and the fake Slack API."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlmodel import select

from bot.app import Flywheel, build
from storage.db import transaction
from storage.models import (
    ContentLink,
    Feed,
    FeedItem,
    Post,
    ShareSuggestion,
    TrackedLink,
    Workspace,
)
from testing.fakes.clock import FrozenClock
from testing.fakes.slack_api import FakeSlack
from testing.fakes.web_site import FakeSite
from tests.conftest import slack_settings
from tests.slack_http import SlackHttp

ARTICLE = """<html><head><title>Fallback</title>
<meta property="og:title" content="Zero-downtime upgrades, the <b>Acme</b> way">
<meta property="og:description" content="Surge upgrades and PodDisruptionBudgets.">
<meta property="og:image" content="https://cdn.acme.test/cover.png">
<link rel="canonical" href="/blog/upgrades">
</head><body>…</body></html>"""


@pytest.fixture
async def site() -> AsyncIterator[FakeSite]:
    fake = FakeSite()
    await fake.start()
    yield fake
    await fake.close()


@pytest.fixture
async def app(
    migrated_url: str, fake_slack: FakeSlack, clock: FrozenClock
) -> AsyncIterator[Flywheel]:
    settings = slack_settings(
        migrated_url, fake_slack, flywheel_fetch_allow_networks="127.0.0.1/32"
    )
    flywheel = build(settings, clock=clock)
    yield flywheel
    await flywheel.close()


@pytest.fixture
async def slack(
    app: Flywheel, fake_slack: FakeSlack, clock: FrozenClock
) -> AsyncIterator[SlackHttp]:
    clock.set(datetime(2026, 12, 1, 10, 0, tzinfo=UTC))
    fake_slack.add_user("UKEN", "ken", email="ken@acme.test", tz="Europe/London")
    client: TestClient[Any, Any] = TestClient(TestServer(app.web_app()))
    await client.start_server()
    http = SlackHttp(client, fake_slack, clock)
    http.client = client  # type: ignore[attr-defined]
    # Ada reviews; Ken opted in to Kubernetes; a share channel hears new posts.
    await http.command("help", user="UADMIN")
    await http.command("stats", user="UALICE")
    await http.interact(http.block_action("share_prefs", user="UKEN"))
    await http.interact(
        http.submission(
            http.opened_view(), {"opt_in": "in", "interests": "kubernetes"}, user="UKEN"
        )
    )
    async with transaction(app.sessions) as session:
        workspace = (await session.exec(select(Workspace))).one()
        workspace.settings = {
            **workspace.settings,
            "reviewers": ["UADMIN"],
            "share_channels": ["CSHARE"],
        }
        session.add(workspace)
    yield http
    await client.close()


async def settle(app: Flywheel) -> None:
    """The worker's turn: read pages and feeds, plan distributions, send the outbox."""
    await app.sweeper.run_once()
    await app.sweeper.run_once()
    await app.dispatcher.drain()


def dms(fake: FakeSlack, user: str) -> list[dict[str, Any]]:
    return [c.args for c in fake.calls_to("chat.postMessage") if c.args["channel"] == user]


def buttons(args: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        e["action_id"]: e
        for b in args.get("blocks", [])
        if b["type"] == "actions"
        for e in b["elements"]
    }


async def rows(app: Flywheel, model: Any) -> list[Any]:
    async with app.sessions() as session:
        return list((await session.exec(select(model))).all())


async def share_and_preview(
    slack: SlackHttp, app: Flywheel, fake: FakeSlack, url: str, user: str
) -> dict[str, Any]:
    answer = await (await slack.command(f"share {url}", user=user)).json()
    assert answer["text"].startswith("🔎 Reading")
    await settle(app)
    preview = dms(fake, user)[-1]
    assert list(buttons(preview)) == ["link_edit", "link_cancel"]
    return preview


async def test_a_colleagues_link_is_previewed_reviewed_and_distributed(
    slack: SlackHttp, app: Flywheel, fake_slack: FakeSlack, site: FakeSite
) -> None:
    site.page("/blog/upgrades", ARTICLE)
    url = site.url("/blog/upgrades?utm_source=newsletter&fbclid=abc")
    preview = await share_and_preview(slack, app, fake_slack, url, "UALICE")
    text = str(preview["blocks"])
    # The page's title is text: its tags are gone and nothing of it is Slack markup.
    assert "Zero-downtime upgrades, the Acme way" in text and "<b>" not in text
    assert any(b["type"] == "image" for b in preview["blocks"])

    await slack.interact(slack.block_action("link_edit", buttons(preview)["link_edit"]["value"]))
    form = slack.opened_view()
    assert form["callback_id"] == "link_form"
    # No "why": the form says so and nothing moves on.
    answer = await (await slack.interact(slack.submission(form, {"why": None}))).json()
    assert answer["response_action"] == "errors" and "why" in answer["errors"]
    await slack.interact(
        slack.submission(form, {"why": "Customers ask about upgrades.", "tags": "Kubernetes"})
    )
    await settle(app)
    [link] = await rows(app, ContentLink)
    assert (link.status, link.canonical_url) == ("in_review", site.url("/blog/upgrades"))
    [review] = [m for m in dms(fake_slack, "UADMIN") if m["text"].startswith("Please review")]
    assert list(buttons(review)) == ["link_approve", "link_approve_until", "link_reject"]
    assert await rows(app, Post) == []

    # Alice may not approve; Ada does.
    refused = await (
        await slack.command("stats", user="UALICE")
    ).json()  # Alice is a member; she is not a reviewer
    assert refused["response_type"] == "ephemeral"
    await slack.interact(slack.block_action("link_approve", str(link.id), user="UALICE"))
    assert await rows(app, Post) == []
    await slack.interact(slack.block_action("link_approve", str(link.id), user="UADMIN"))
    await settle(app)
    [post] = await rows(app, Post)
    assert (post.source, post.draft_id, post.canonical_url) == ("link", None, link.canonical_url)
    announce = [
        c.args for c in fake_slack.calls_to("chat.postMessage") if c.args["channel"] == "CSHARE"
    ]
    assert len(announce) == 1 and "Shared by" in str(announce[0]["blocks"])
    # Ken (interested in Kubernetes) and Alice get personal share buttons with tracked links.
    suggested = {s.member_id for s in await rows(app, ShareSuggestion)}
    assert len(suggested) == 2
    ken = [m for m in dms(fake_slack, "UKEN") if m["text"].startswith("Ready to share")]
    assert list(buttons(ken[0])) == ["share_linkedin", "share_x", "share_email", "win_log"]
    assert any("approved" in m["text"] for m in dms(fake_slack, "UALICE"))


async def test_a_reviewers_link_is_published_at_once_and_the_same_article_is_one_post(
    slack: SlackHttp, app: Flywheel, fake_slack: FakeSlack, site: FakeSite
) -> None:
    site.page("/blog/upgrades", ARTICLE)
    preview = await share_and_preview(slack, app, fake_slack, site.url("/blog/upgrades"), "UADMIN")
    await slack.interact(
        slack.block_action("link_edit", buttons(preview)["link_edit"]["value"], user="UADMIN")
    )
    form = slack.opened_view()
    assert form["submit"]["text"] == "Publish"
    await slack.interact(slack.submission(form, {"why": "Our best post."}, user="UADMIN"))
    await settle(app)
    [post] = await rows(app, Post)
    assert post.approved_by_id == post.author_id
    # Shared again with tracking parameters: the same article, so my links, not a new post.
    again = await (
        await slack.command(f"share {site.url('/blog/upgrades?utm_campaign=x')}", user="UKEN")
    ).json()
    assert again["text"].startswith("That article is already shared")
    assert "share_linkedin" in buttons(again)
    assert len(await rows(app, Post)) == 1 and len(await rows(app, ContentLink)) == 1
    # `stats` tells the loop's own posts from the ones that came from outside it.
    stats = await (await slack.command("stats", user="UKEN")).json()
    fields = [f["text"] for b in stats["blocks"] for f in b.get("fields", [])]
    assert "*Posts from requests*\n0" in fields and "*Posts from links and feeds*\n1" in fields


async def test_the_message_shortcut_shares_the_link_in_the_message(
    slack: SlackHttp, app: Flywheel, fake_slack: FakeSlack, site: FakeSite
) -> None:
    site.page("/blog/upgrades", ARTICLE)
    shortcut = slack.message_shortcut(f"Great read: <{site.url('/blog/upgrades')}>")
    shortcut["callback_id"] = "share_from_message"
    assert (await slack.interact(shortcut)).status == 200
    await settle(app)
    said = [c.args for c in fake_slack.calls_to("response_url:shortcut")]
    assert said and said[0]["text"].startswith("🔎 Reading")
    assert list(buttons(dms(fake_slack, "UALICE")[-1])) == ["link_edit", "link_cancel"]


BAD_SHARES = {
    "no-url": (lambda s: "", "Give me the link"),
    "ftp": (lambda s: "ftp://files.acme.test/a.pdf", "Only http and https"),
    "private": (lambda s: "http://10.1.2.3/admin", "private or internal address"),
    "metadata": (lambda s: "http://169.254.169.254/latest/", "private or internal address"),
    "unreachable": (lambda s: "http://127.0.0.1:9/page", "couldn't reach"),
    "404": (lambda s: s.status("/gone", 404), "answered 404"),
    "not-html": (
        lambda s: s.page("/a.pdf", b"%PDF", content_type="application/pdf"),
        "not a web page",
    ),
    "redirect-loop": (lambda s: s.redirect("/loop", "/loop"), "redirects more than 5"),
    "redirect-private": (
        lambda s: s.redirect("/out", "http://192.168.0.10/"),
        "private or internal address",
    ),
    "20MB": (lambda s: s.big("/huge", 20 * 1024 * 1024), "larger than 2 MB"),
}


@pytest.mark.parametrize("case", list(BAD_SHARES))
async def test_a_link_that_cannot_be_shared_gets_one_clear_line_and_creates_nothing(
    slack: SlackHttp, app: Flywheel, fake_slack: FakeSlack, site: FakeSite, case: str
) -> None:
    make, line = BAD_SHARES[case]
    url = make(site)
    answer = await (await slack.command(f"share {url}".strip(), user="UALICE")).json()
    await settle(app)
    said = [answer["text"], *(m["text"] for m in dms(fake_slack, "UALICE"))]
    assert any(line in text for text in said), said
    assert await rows(app, ContentLink) == [] and await rows(app, Post) == []


RSS = """<?xml version="1.0"?><rss version="2.0"><channel><title>Acme blog</title>{items}
</channel></rss>"""
ITEM = (
    "<item><title>{title}</title><link>{link}</link>"
    "<guid isPermaLink='false'>{guid}</guid>{date}</item>"
)


def rss(*items: tuple[str, str, str], date: str = "") -> str:
    return RSS.format(
        items="".join(ITEM.format(title=t, link=u, guid=g, date=date) for t, u, g in items)
    )


async def add_feed(
    slack: SlackHttp, url: str, *, review: str = "review", tags: str = "kubernetes"
) -> dict[str, Any]:
    listing = await (await slack.command("feeds", user="UADMIN")).json()
    assert "feed_add" in buttons(listing)
    await slack.interact(slack.block_action("feed_add", user="UADMIN"))
    form = slack.opened_view()
    assert form["callback_id"] == "feed_form"
    response = await slack.interact(
        slack.submission(
            form,
            {"url": url, "review": review, "tags": tags, "audience": "interests"},
            user="UADMIN",
        )
    )
    return await response.json() if response.content_length else {}


async def test_a_feed_adds_new_items_never_old_ones_and_one_article_is_one_post(
    slack: SlackHttp, app: Flywheel, fake_slack: FakeSlack, site: FakeSite, clock: FrozenClock
) -> None:
    old = [(f"Old {n}", site.url(f"/old/{n}"), f"old-{n}") for n in range(3)]
    site.feed("/feed.xml", rss(*old), etag='"1"')
    await add_feed(slack, site.url("/feed.xml"), review="publish")
    await settle(app)
    [feed] = await rows(app, Feed)
    assert (feed.status, feed.title) == ("active", "Acme blog")
    assert any(
        "3 items already in it won't be shared" in m["text"] for m in dms(fake_slack, "UADMIN")
    )
    assert await rows(app, Post) == []

    # Unchanged: a 304, nothing new.
    clock.advance(minutes=16)
    await settle(app)
    assert site.served[-1].headers.get("If-None-Match") == '"1"'
    assert await rows(app, Post) == []

    # A new item, and one whose article someone already shared: one post each article.
    site.page("/blog/upgrades", ARTICLE)
    preview = await share_and_preview(slack, app, fake_slack, site.url("/blog/upgrades"), "UADMIN")
    await slack.interact(
        slack.block_action("link_edit", buttons(preview)["link_edit"]["value"], user="UADMIN")
    )
    await slack.interact(slack.submission(slack.opened_view(), {"why": "Good."}, user="UADMIN"))
    new = [
        ("New <script>x</script>launch", site.url("/new?utm_source=rss"), "new-1"),
        ("Upgrades again", site.url("/blog/upgrades?utm_medium=feed"), "up-1"),
        ("Duplicate guid", site.url("/dup"), "new-1"),
        ("Internal", "http://10.0.0.7/secret", "int-1"),
        ("No link", "", "nolink-1"),
    ]
    site.feed("/feed.xml", rss(*new, *old), etag='"2"')
    clock.advance(minutes=16)
    await settle(app)
    posts = await rows(app, Post)
    assert sorted((p.source, p.title) for p in posts) == [
        ("feed", "New launch"),
        ("link", "Zero-downtime upgrades, the Acme way"),
    ]
    outcomes = {i.guid: i.outcome for i in await rows(app, FeedItem)}
    assert outcomes["up-1"] == "duplicate" and outcomes["int-1"] == "skipped"
    assert outcomes["nolink-1"] == "skipped"
    assert outcomes["new-1"] == "posted" and outcomes["old-0"] == "old"


FEED_FAILURES = {
    "not-a-feed": (lambda s: s.page("/page", "<title>Just a page</title>"), "does not serve"),
    "500": (lambda s: s.status("/broken", 500), "answered 500"),
    "timeout": (lambda s: s.slow("/slow", 8.0), "longer than 5 seconds"),
    "redirect-private": (lambda s: s.redirect("/r", "http://10.0.0.1/feed"), "private"),
}


@pytest.mark.parametrize("case", list(FEED_FAILURES))
async def test_a_feed_that_does_not_work_is_not_saved_and_the_admin_hears_why(
    slack: SlackHttp, app: Flywheel, fake_slack: FakeSlack, site: FakeSite, case: str
) -> None:
    make, line = FEED_FAILURES[case]
    await add_feed(slack, make(site))
    await settle(app)
    assert await rows(app, Feed) == []
    said = [m["text"] for m in dms(fake_slack, "UADMIN")]
    assert any("couldn't add the feed" in t and line in t for t in said), said


async def test_a_feed_that_keeps_failing_backs_off_and_is_paused_with_one_notice(
    slack: SlackHttp, app: Flywheel, fake_slack: FakeSlack, site: FakeSite, clock: FrozenClock
) -> None:
    # Bo is an admin too (a Slack admin who has used Flywheel); Ken is not.
    fake_slack.add_user("UBO", "bo", email="bo@acme.test", is_admin=True)
    await slack.command("stats", user="UBO")
    site.feed("/feed.xml", rss(("A", site.url("/a"), "a")))
    await add_feed(slack, site.url("/feed.xml"))
    await settle(app)
    site.status("/feed.xml", 500)
    waits = []
    for _ in range(6):
        [feed] = await rows(app, Feed)
        waits.append(feed.next_poll_at)
        clock.set(feed.next_poll_at + timedelta(seconds=1))
        await settle(app)
    [feed] = await rows(app, Feed)
    assert feed.status == "paused" and "500" in (feed.paused_reason or "")
    gaps = [b - a for a, b in itertools.pairwise(waits)]
    assert gaps[1] < gaps[2] < gaps[3]
    # It paused in the night: the notice waits for working hours, then every admin has it
    # once, with the reason; nobody else.
    clock.set(datetime(2026, 12, 2, 10, 30, tzinfo=UTC))
    await settle(app)
    await settle(app)
    for admin in ("UADMIN", "UBO"):
        paused = [m for m in dms(fake_slack, admin) if "paused the feed" in m["text"]]
        assert len(paused) == 1 and "answered 500" in paused[0]["text"], admin
    assert not any("paused the feed" in m["text"] for m in dms(fake_slack, "UKEN"))
    listing = await (await slack.command("admin feeds", user="UADMIN")).json()
    assert "feed_resume" in buttons(listing)
    # Not an admin: no feeds.
    refused = await (await slack.command("feeds", user="UALICE")).json()
    assert "Only workspace admins" in refused["text"]


async def test_a_retired_post_is_not_found_nor_shared_and_its_links_still_redirect(
    slack: SlackHttp, app: Flywheel, fake_slack: FakeSlack, site: FakeSite
) -> None:
    site.page("/blog/upgrades", ARTICLE)
    preview = await share_and_preview(slack, app, fake_slack, site.url("/blog/upgrades"), "UADMIN")
    await slack.interact(
        slack.block_action("link_edit", buttons(preview)["link_edit"]["value"], user="UADMIN")
    )
    await slack.interact(
        slack.submission(slack.opened_view(), {"why": "Good.", "tags": "kubernetes"}, user="UADMIN")
    )
    await settle(app)
    found = await (await slack.command("find zero downtime upgrades", user="UKEN")).json()
    assert "share_linkedin" in buttons(found)
    [post] = await rows(app, Post)

    refused = await (await slack.command(f"retire {post.canonical_url}", user="UKEN")).json()
    assert "Only the workspace's reviewers" in refused["text"]
    done = await (await slack.command(f"retire {post.canonical_url}", user="UADMIN")).json()
    assert done["text"].startswith("Retired")
    gone = await (await slack.command("find zero downtime upgrades", user="UKEN")).json()
    assert gone["text"].startswith("No approved posts match")
    response = await slack.interact(slack.block_action("share_post", str(post.id), user="UKEN"))
    assert response.status == 200
    await app.dispatcher.drain()
    said = [c.args["text"] for c in fake_slack.calls if c.method.startswith("response_url")]
    assert any("no longer shared" in t for t in said)
    client: TestClient[Any, Any] = slack.client  # type: ignore[attr-defined]
    [link, *_] = await rows(app, TrackedLink)
    clicked = await client.get(f"/r/{link.code}", allow_redirects=False)
    assert clicked.status == 302


async def test_a_post_past_its_end_date_is_no_longer_found(
    slack: SlackHttp, app: Flywheel, fake_slack: FakeSlack, site: FakeSite, clock: FrozenClock
) -> None:
    site.page("/blog/upgrades", ARTICLE)
    preview = await share_and_preview(slack, app, fake_slack, site.url("/blog/upgrades"), "UADMIN")
    await slack.interact(
        slack.block_action("link_edit", buttons(preview)["link_edit"]["value"], user="UADMIN")
    )
    form = slack.opened_view()
    past = await (
        await slack.interact(
            slack.submission(form, {"why": "Good.", "ends_on": "2026-11-30"}, user="UADMIN")
        )
    ).json()
    assert "ends_on" in past["errors"]
    await slack.interact(
        slack.submission(form, {"why": "Good.", "ends_on": "2026-12-04"}, user="UADMIN")
    )
    await settle(app)
    found = await (await slack.command("find zero downtime upgrades", user="UKEN")).json()
    assert "share_linkedin" in buttons(found)
    clock.set(datetime(2026, 12, 5, 9, tzinfo=UTC))
    gone = await (await slack.command("find zero downtime upgrades", user="UKEN")).json()
    assert gone["text"].startswith("No approved posts match")


async def test_an_abandoned_preview_holds_the_article_for_a_day_only(
    slack: SlackHttp, app: Flywheel, fake_slack: FakeSlack, site: FakeSite, clock: FrozenClock
) -> None:
    url = site.page("/blog/upgrades", ARTICLE)
    alice = await share_and_preview(slack, app, fake_slack, url, "UALICE")
    held = await (await slack.command(f"share {url}", user="UADMIN")).json()
    assert "on its way to the reviewers" in held["text"]
    clock.advance(days=2)
    ada = await share_and_preview(slack, app, fake_slack, url, "UADMIN")
    await slack.interact(
        slack.block_action("link_edit", buttons(ada)["link_edit"]["value"], user="UADMIN")
    )
    await slack.interact(slack.submission(slack.opened_view(), {"why": "Good."}, user="UADMIN"))
    # Alice comes back to her old preview: the article is a post already.
    await slack.interact(slack.block_action("link_edit", buttons(alice)["link_edit"]["value"]))
    late = await (
        await slack.interact(slack.submission(slack.opened_view(), {"why": "Me too."}))
    ).json()
    assert "in the meantime" in late["errors"]["title"]
    assert len(await rows(app, Post)) == 1


async def test_a_reviewer_approves_a_colleagues_link_until_a_date(
    slack: SlackHttp, app: Flywheel, fake_slack: FakeSlack, site: FakeSite, clock: FrozenClock
) -> None:
    site.page("/blog/upgrades", ARTICLE)
    preview = await share_and_preview(slack, app, fake_slack, site.url("/blog/upgrades"), "UALICE")
    await slack.interact(slack.block_action("link_edit", buttons(preview)["link_edit"]["value"]))
    await slack.interact(
        slack.submission(slack.opened_view(), {"why": "Good.", "tags": "kubernetes"})
    )
    await settle(app)
    [link] = await rows(app, ContentLink)
    # Only a reviewer opens the form.
    await slack.interact(slack.block_action("link_approve_until", str(link.id), user="UKEN"))
    assert all(
        c.args["view"]["callback_id"] != "link_approve_form"
        for c in fake_slack.calls_to("views.open")
    )
    await slack.interact(slack.block_action("link_approve_until", str(link.id), user="UADMIN"))
    form = slack.opened_view()
    assert form["callback_id"] == "link_approve_form"
    for bad, line in (
        ("31/12/2026", "2026-12-31"),
        ("2026-11-30", "from today on"),
        (None, "last day"),
    ):
        answer = await (
            await slack.interact(slack.submission(form, {"ends_on": bad}, user="UADMIN"))
        ).json()
        assert answer["response_action"] == "errors" and line in answer["errors"]["ends_on"]
        assert await rows(app, Post) == []
        [still] = await rows(app, ContentLink)
        assert (still.status, still.ends_at) == ("in_review", None)
    await slack.interact(slack.submission(form, {"ends_on": "2026-12-04"}, user="UADMIN"))
    await settle(app)
    [post] = await rows(app, Post)
    assert post.ends_at == datetime(2026, 12, 4, 23, 59, tzinfo=UTC)
    assert post.approved_by_id != post.author_id
    found = await (await slack.command("find zero downtime upgrades", user="UKEN")).json()
    assert "share_linkedin" in buttons(found)
    clock.set(datetime(2026, 12, 5, 9, tzinfo=UTC))
    gone = await (await slack.command("find zero downtime upgrades", user="UKEN")).json()
    assert gone["text"].startswith("No approved posts match")


async def test_a_new_feeds_newest_item_is_offered_to_its_admin_only_and_publishes_on_request(
    slack: SlackHttp, app: Flywheel, fake_slack: FakeSlack, site: FakeSite
) -> None:
    items = [
        ("Newest", site.url("/n/2"), "n-2", "Tue, 24 Nov 2026 10:00:00 GMT"),
        ("Older", site.url("/n/1"), "n-1", "Mon, 23 Nov 2026 10:00:00 GMT"),
    ]
    body = RSS.format(
        items="".join(
            ITEM.format(title=t, link=u, guid=g, date=f"<pubDate>{d}</pubDate>")
            for t, u, g, d in reversed(items)
        )
    )
    site.feed("/feed.xml", body)
    await app.dispatcher.drain()
    await add_feed(slack, site.url("/feed.xml"), review="publish")
    before = {user: len(dms(fake_slack, user)) for user in ("UALICE", "UKEN")}
    await settle(app)
    offers = [m for m in dms(fake_slack, "UADMIN") if m["text"].startswith("To try the feed")]
    assert len(offers) == 1 and "Newest" in offers[0]["text"]
    assert list(buttons(offers[0])) == ["feed_try"]
    # Nobody else heard anything, and nothing is a post yet.
    assert {u: len(dms(fake_slack, u)) for u in before} == before
    assert [
        c for c in fake_slack.calls_to("chat.postMessage") if c.args["channel"] == "CSHARE"
    ] == []
    assert await rows(app, Post) == [] and await rows(app, ShareSuggestion) == []

    value = buttons(offers[0])["feed_try"]["value"]
    refused = await slack.interact(slack.block_action("feed_try", value, user="UKEN"))
    assert refused.status == 200
    assert await rows(app, Post) == []
    await slack.interact(slack.block_action("feed_try", value, user="UADMIN"))
    await settle(app)
    [post] = await rows(app, Post)
    assert (post.source, post.title) == ("feed", "Newest")
    outcomes = {i.guid: (i.outcome, i.post_id) for i in await rows(app, FeedItem)}
    assert outcomes == {"n-2": ("posted", post.id), "n-1": ("old", None)}
    assert any(m["text"].startswith("Ready to share") for m in dms(fake_slack, "UKEN"))
    # Pressed again: one post still.
    await slack.interact(slack.block_action("feed_try", value, user="UADMIN"))
    await settle(app)
    assert len(await rows(app, Post)) == 1


async def test_a_removed_feed_is_not_polled_and_its_posts_and_links_stay(
    slack: SlackHttp, app: Flywheel, fake_slack: FakeSlack, site: FakeSite, clock: FrozenClock
) -> None:
    site.feed("/feed.xml", rss(("Old", site.url("/old"), "old")))
    await add_feed(slack, site.url("/feed.xml"), review="publish")
    await settle(app)
    site.feed("/feed.xml", rss(("New", site.url("/new"), "new"), ("Old", site.url("/old"), "old")))
    clock.advance(minutes=16)
    await settle(app)
    [post] = await rows(app, Post)
    [feed] = await rows(app, Feed)
    listing = await (await slack.command("feeds", user="UADMIN")).json()
    assert "feed_remove" in buttons(listing)

    # Not an admin: refused. An admin is asked first, then it is removed.
    await slack.interact(slack.block_action("feed_remove", str(feed.id), user="UKEN"))
    await slack.interact(slack.block_action("feed_remove", str(feed.id), user="UADMIN"))
    await app.dispatcher.drain()
    asked = [
        c.args
        for c in fake_slack.calls
        if c.method.startswith("response_url") and "feed_remove_confirm" in str(c.args)
    ]
    assert len(asked) == 1
    assert [f.status for f in await rows(app, Feed)] == ["active"]
    await slack.interact(slack.block_action("feed_remove_confirm", str(feed.id), user="UKEN"))
    assert [f.status for f in await rows(app, Feed)] == ["active"]
    await slack.interact(slack.block_action("feed_remove_confirm", str(feed.id), user="UADMIN"))
    assert [f.status for f in await rows(app, Feed)] == ["removed"]
    listing = await (await slack.command("feeds", user="UADMIN")).json()
    assert "feed_remove" not in buttons(listing) and feed.url not in str(listing)

    # Its new items are no longer read; its post and tracked links stay.
    served = len(site.served)
    site.feed("/feed.xml", rss(("Newer", site.url("/newer"), "newer")))
    clock.advance(hours=2)
    await settle(app)
    assert len(site.served) == served
    assert [p.id for p in await rows(app, Post)] == [post.id]
    found = await (await slack.command("find new", user="UKEN")).json()
    assert "share_linkedin" in buttons(found)
    client: TestClient[Any, Any] = slack.client  # type: ignore[attr-defined]
    tracked = await rows(app, TrackedLink)
    assert tracked
    clicked = await client.get(f"/r/{tracked[0].code}", allow_redirects=False)
    assert clicked.status == 302
    # Added again: the same feed comes back, what it had is known, nothing floods.
    await add_feed(slack, site.url("/feed.xml"), review="publish")
    await settle(app)
    [again] = await rows(app, Feed)
    assert (again.id, again.status) == (feed.id, "active")
    assert [p.id for p in await rows(app, Post)] == [post.id]
    guids = sorted(i.guid for i in await rows(app, FeedItem))
    assert guids == ["new", "newer", "old"]
