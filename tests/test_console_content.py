"""Existing content in the console: `share <url>` to a live post, a bad link, and feeds."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlmodel import select

from bot.app import Flywheel, build
from bot.settings import load_settings
from storage.models import ContentLink, Post
from testing.fakes.clock import FrozenClock
from testing.fakes.web_site import FakeSite
from tests.console_harness import ConsoleBot
from tests.test_console_drafting import button

ARTICLE = """<title>Ignored</title><meta property="og:title" content="Oracle to PostgreSQL, live">
<meta name="description" content="Dual writes &amp; a cut-over in seconds.">"""


@pytest.fixture
async def site() -> AsyncIterator[FakeSite]:
    fake = FakeSite()
    await fake.start()
    yield fake
    await fake.close()


@pytest.fixture
async def bot(migrated_url: str, clock: FrozenClock) -> AsyncIterator[tuple[Flywheel, ConsoleBot]]:
    settings = load_settings(
        database_url=migrated_url, flywheel_fetch_allow_networks="127.0.0.1/32", _env_file=None
    )
    app = build(settings, clock=clock)
    console = ConsoleBot(app)
    await console.start()
    yield app, console
    await console.stop()
    await app.close()


async def test_a_shared_link_goes_through_review_to_a_live_post(
    bot: tuple[Flywheel, ConsoleBot], site: FakeSite
) -> None:
    app, console = bot
    url = site.page("/zdm", ARTICLE)
    out = await console.say(f"share {url}?utm_source=console")
    # The answer, then the preview the worker sent once it had read the page.
    assert "Reading" in out and "[DM to @alice] Oracle to PostgreSQL, live" in out
    assert "Dual writes & a cut-over in seconds." in out
    await console.say(button(out, "Add details and share"))
    out = await console.fill({"Why should colleagues share it?": "Buyers ask.", "Tags": "oracle"})
    assert "Sent for review" in out
    approve = button(out, "Approve")
    await console.say("/as dana")
    out = await console.say(approve)
    assert "is live" in out
    async with app.sessions() as session:
        [post] = (await session.exec(select(Post))).all()
    assert (post.source, post.canonical_url) == ("link", url)


async def test_a_link_that_is_not_a_page_gets_one_line(
    bot: tuple[Flywheel, ConsoleBot], site: FakeSite
) -> None:
    app, console = bot
    out = await console.say(f"share {site.page('/x.pdf', b'%PDF', content_type='application/pdf')}")
    assert "not a web page" in out
    out = await console.say("share")
    assert "Give me the link" in out
    async with app.sessions() as session:
        assert (await session.exec(select(ContentLink))).all() == []


async def test_a_reviewer_approves_a_link_until_a_date_in_the_console(
    bot: tuple[Flywheel, ConsoleBot], site: FakeSite
) -> None:
    app, console = bot
    url = site.page("/zdm", ARTICLE)
    out = await console.say(f"share {url}")
    await console.say(button(out, "Add details and share"))
    out = await console.fill({"Why should colleagues share it?": "Buyers ask."})
    until = button(out, "With an end date…")
    await console.say("/as dana")
    await console.say(until)
    # A date that is not one, then one in the past: asked again; then a good one.
    out = await console.fill(
        {"Shared until (YYYY-MM-DD)": ["31/12/2099", "2000-01-01", "2099-12-31"]}
    )
    assert "Use a date like" in out and "Pick a day from today on" in out
    async with app.sessions() as session:
        [post] = (await session.exec(select(Post))).all()
    assert post.ends_at is not None and post.ends_at.date().isoformat() == "2099-12-31"
