"""Tracked links through the real `/r/{code}` and `/p/{code}` endpoints, clicks and their counts."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import text
from sqlmodel import col, select

from bot.app import Flywheel, build
from bot.settings import ConfigurationError, load_settings
from handlers.core.context import Config, Scope
from handlers.sharing import tracked_links, visits
from storage.db import create_engine, session_factory, transaction
from storage.migrate import upgrade
from storage.models import Click, Member, Post, TrackedLink, Workspace
from testing.builders import add_members, add_post, add_workspace
from testing.fakes.clock import FrozenClock
from testing.processes import flywheel_run
from tests.conftest import SECRET_KEY

BASE = "https://go.acme.test"
CHROME = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"
)
CUBOT = (
    "Mozilla/5.0 (Linux; Android 10; CUBOT P40) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.6099.144 Mobile Safari/537.36"
)
PREVIEWERS = (
    "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
    "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
    "Twitterbot/1.0",
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
    "WhatsApp/2.23.20.0",
    "TelegramBot (like TwitterBot)",
    "Mozilla/5.0 (Windows NT 6.1; WOW64) SkypeUriPreview Preview/0.5",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "curl/8.5.0",
    "python-requests/2.32.3",
    "",
)


@dataclass
class World:
    workspace: Workspace
    sharer: Member
    other: Member
    post: Post  # lives at a canonical URL
    text_post: Post  # lives only as text


async def seed(
    app: Flywheel,
    clock: FrozenClock,
    external_id: str = "T1",
    canonical: str = "https://blog.acme.test/zdm?ref=home&utm_source=old&UTM_Medium=x#part-2",
) -> World:
    now = clock.now()
    async with transaction(app.sessions) as session:
        workspace = await add_workspace(session, now, external_id=external_id)
        sharer, other, author = await add_members(
            session, workspace, ("USHARER", "UOTHER", "UAUTHOR"), now
        )
        posts = []
        for n, (slug, url) in enumerate((("zdm", canonical), ("notes", None))):
            post = await add_post(
                session,
                workspace,
                author,
                now,
                topic=f"topic {n}",
                slug=slug,
                title="Zero downtime" if url else "<script>alert('t')</script> & notes",
                summary="How we moved without a minute of downtime.",
                body="First paragraph.\n\nSecond <img src=x onerror=alert(1)> paragraph.",
                canonical_url=url,
            )
            posts.append(post)
    return World(workspace, sharer, other, posts[0], posts[1])


async def link(
    app: Flywheel, clock: FrozenClock, world: World, post: Post, member: Member, network: str
) -> str:
    async with transaction(app.sessions) as session:
        scope = Scope(session, clock, Config(public_base_url=BASE), world.workspace)
        return (await tracked_links.links_for(scope, post, [member], [network]))[
            (member.id or 0, network)
        ].code


async def clicks(app: Flywheel) -> list[Click]:
    await app.links.clicks.flush()
    async with app.sessions() as session:
        return list((await session.exec(select(Click).order_by(col(Click.id)))).all())


@dataclass(frozen=True, slots=True)
class Count:
    clicks: int  # neither a preview nor a repeat
    previews: int


async def counted(app: Flywheel, world: World) -> Count:
    """The workspace's clicks that count, and its previews, from the click rows."""
    rows = [row for row in await clicks(app) if row.workspace_id == world.workspace.id]
    return Count(
        clicks=sum(not row.is_preview and not row.is_repeat for row in rows),
        previews=sum(row.is_preview for row in rows),
    )


def settings(database_url: str, **overrides: Any) -> Any:
    values: dict[str, Any] = {
        "database_url": database_url,
        "public_base_url": BASE,
        "flywheel_secret_key": SECRET_KEY,
        "_env_file": None,
    }
    return load_settings(**{**values, **overrides})


@pytest.fixture
async def app(migrated_url: str, clock: FrozenClock) -> AsyncIterator[Flywheel]:
    flywheel = build(settings(migrated_url), clock=clock)
    yield flywheel
    await flywheel.close()


@pytest.fixture
async def client(app: Flywheel) -> AsyncIterator[TestClient]:  # type: ignore[type-arg]
    test_client = TestClient(TestServer(app.web_app()))
    await test_client.start_server()
    yield test_client
    await test_client.close()


async def visit(client: TestClient, code: str, agent: str = CHROME, **kw: Any) -> Any:  # type: ignore[type-arg]
    method = kw.pop("method", "GET")
    headers = {"User-Agent": agent, **kw.pop("headers", {})}
    async with client.request(
        method, f"/r/{code}", headers=headers, allow_redirects=False, **kw
    ) as response:
        await response.read()
        return response


# -- the redirect -----------------------------------------------------------------------------


@pytest.mark.parametrize("network", tracked_links.NETWORKS)
async def test_redirect_adds_utm_keeps_the_query_and_records_the_click(
    app: Flywheel,
    client: TestClient,
    clock: FrozenClock,
    network: str,  # type: ignore[type-arg]
) -> None:
    world = await seed(app, clock)
    code = await link(app, clock, world, world.post, world.sharer, network)
    response = await visit(client, code)
    assert response.status == 302
    assert response.headers["Location"] == (
        "https://blog.acme.test/zdm?ref=home"
        f"&utm_source={network}&utm_medium=employee_advocacy&utm_campaign=zdm#part-2"
    )
    assert response.headers["Cache-Control"] == "no-store"
    [click] = await clicks(app)
    assert (click.network, click.member_id, click.post_id) == (
        network,
        world.sharer.id,
        world.post.id,
    )
    assert click.workspace_id == world.workspace.id
    assert click.at == clock.now()
    assert not click.is_preview and not click.is_repeat


async def test_a_text_only_post_links_to_its_public_page(
    app: Flywheel,
    client: TestClient,
    clock: FrozenClock,  # type: ignore[type-arg]
) -> None:
    world = await seed(app, clock)
    code = await link(app, clock, world, world.text_post, world.sharer, "linkedin")
    response = await visit(client, code)
    assert response.status == 302
    assert response.headers["Location"] == f"{BASE}/p/{world.text_post.public_code}"
    page = await client.get(f"/p/{world.text_post.public_code}")
    assert page.status == 200
    body = await page.text()
    assert "<script" not in body and "<img" not in body
    assert "&lt;script&gt;alert(&#x27;t&#x27;)&lt;/script&gt; &amp; notes" in body
    assert "Second &lt;img src=x onerror=alert(1)&gt; paragraph." in body
    assert '<meta property="og:title" content="&lt;script&gt;' in body
    policy = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "script-src" not in policy
    assert page.headers["X-Content-Type-Options"] == "nosniff"


async def test_public_pages_exist_only_for_text_only_posts(
    app: Flywheel,
    client: TestClient,
    clock: FrozenClock,  # type: ignore[type-arg]
) -> None:
    world = await seed(app, clock)
    for code in (world.post.public_code, "A" * 16, "not-a-code!", "x" * 300):
        assert (await client.get(f"/p/{code}")).status == 404, code


async def test_preview_fetchers_are_redirected_and_recorded_as_previews_only(
    app: Flywheel,
    client: TestClient,
    clock: FrozenClock,  # type: ignore[type-arg]
) -> None:
    world = await seed(app, clock)
    code = await link(app, clock, world, world.post, world.sharer, "linkedin")
    for agent in PREVIEWERS:
        response = await visit(client, code, agent)
        assert response.status == 302, agent
        assert response.headers["Location"].startswith("https://blog.acme.test/zdm?")
    # A HEAD request is a preview whoever sends it.
    head = await visit(client, code, CHROME, method="HEAD")
    assert head.status == 302
    rows = await clicks(app)
    assert len(rows) == len(PREVIEWERS) + 1
    assert all(row.is_preview for row in rows)
    total = await counted(app, world)
    assert (total.clicks, total.previews) == (0, len(PREVIEWERS) + 1)


def test_people_are_not_previews() -> None:
    for agent in (CHROME, SAFARI_IPHONE, CUBOT):
        assert not visits.is_preview(agent), agent
    for agent in PREVIEWERS:
        assert visits.is_preview(agent), agent


async def test_repeat_clicks_within_30_minutes_count_once(
    app: Flywheel,
    client: TestClient,
    clock: FrozenClock,  # type: ignore[type-arg]
) -> None:
    world = await seed(app, clock)
    code = await link(app, clock, world, world.post, world.sharer, "x")
    await visit(client, code)
    await clicks(app)  # written: the rule holds across flushes, not just within a batch
    clock.advance(minutes=10)
    await visit(client, code)
    clock.advance(minutes=10)
    await visit(client, code)
    total = await counted(app, world)
    assert total.clicks == 1
    clock.advance(minutes=31)
    await visit(client, code)
    total = await counted(app, world)
    assert total.clicks == 2
    # Another person (another browser) is another visitor.
    await visit(client, code, SAFARI_IPHONE)
    total = await counted(app, world)
    assert total.clicks == 3
    rows = await clicks(app)
    assert [r.is_repeat for r in rows] == [False, True, True, False, False]
    # The same person on another link (another network) is another click.
    other = await link(app, clock, world, world.post, world.sharer, "email")
    await visit(client, other)
    total = await counted(app, world)
    assert total.clicks == 4


async def test_the_repeat_rule_holds_across_two_web_processes(
    app: Flywheel,
    client: TestClient,
    clock: FrozenClock,
    migrated_url: str,  # type: ignore[type-arg]
) -> None:
    other = build(settings(migrated_url), clock=clock)  # a second web process, same database
    other_client = TestClient(TestServer(other.web_app()))
    await other_client.start_server()
    try:
        world = await seed(app, clock)
        code = await link(app, clock, world, world.post, world.sharer, "linkedin")
        await visit(client, code)  # 10:00 through the first process, not yet written
        clock.advance(minutes=5)
        await visit(other_client, code)  # 10:05 through the second, written first
        await other.links.clicks.flush()
        await app.links.clicks.flush()
        clock.advance(minutes=20)
        await visit(other_client, code)  # 10:25
        total = await counted(other, world)
        assert total.clicks == 1
        rows = await clicks(app)
        assert sorted(r.is_repeat for r in rows) == [False, True, True]
    finally:
        await other_client.close()
        await other.close()


async def test_the_repeat_rule_holds_across_midnight(
    app: Flywheel,
    client: TestClient,
    clock: FrozenClock,  # type: ignore[type-arg]
) -> None:
    clock.set(datetime(2026, 11, 23, 23, 50, tzinfo=UTC))
    world = await seed(app, clock)
    code = await link(app, clock, world, world.post, world.sharer, "linkedin")
    await visit(client, code)
    await clicks(app)
    clock.advance(minutes=20)  # 00:10 the next day: the visitor's daily key has changed
    await visit(client, code)
    rows = await clicks(app)
    assert rows[0].visitor != rows[1].visitor
    assert [r.is_repeat for r in rows] == [False, True]


async def test_unknown_malformed_and_over_long_codes_are_404_and_record_nothing(
    app: Flywheel,
    client: TestClient,
    clock: FrozenClock,  # type: ignore[type-arg]
) -> None:
    world = await seed(app, clock)
    real = await link(app, clock, world, world.post, world.sharer, "linkedin")
    unknown = "B" * 16 if real != "B" * 16 else "C" * 16
    bad = [
        unknown,  # well formed, but nobody's
        real[:-1] + "!",  # wrong alphabet
        real[:-1] + "%2F",  # an encoded slash
        real[:8] + "ü" * 8,
        real + "A",  # over-long by one
        real * 20,  # very long
        real[:-1],  # too short
        "..%2F..%2Fetc",
    ]
    for code in bad:
        response = await visit(client, code)
        assert response.status == 404, code
        assert "Location" not in response.headers
    assert (await visit(client, real, method="HEAD")).status == 302
    assert (await visit(client, real + "/extra")).status == 404
    rows = await clicks(app)
    assert len(rows) == 1 and rows[0].is_preview  # only the HEAD on the real code


async def test_codes_are_checked_before_the_database_is_asked() -> None:
    # A database that cannot be reached: a lookup would answer 503, a refusal answers 404.
    app = build(
        settings("postgresql+psycopg://nobody@127.0.0.1:9/none?connect_timeout=1"),
        clock=FrozenClock(),
    )
    client = TestClient(TestServer(app.web_app()))
    await client.start_server()
    try:
        for code in ("short", "x" * 17, "bad!code!bad!cod", "y" * 400):
            assert (await visit(client, code)).status == 404, code
            assert (await client.get(f"/p/{code}")).status == 404, code
        assert (await visit(client, "A" * 16)).status == 503
        assert app.links.clicks.pending == 0
    finally:
        await client.close()
        await app.close()


async def test_no_raw_address_or_user_agent_is_stored(
    app: Flywheel,
    client: TestClient,
    clock: FrozenClock,  # type: ignore[type-arg]
) -> None:
    world = await seed(app, clock)
    code = await link(app, clock, world, world.post, world.sharer, "linkedin")
    agent = CHROME + " Marker/7.7.7"
    await visit(client, code, agent, headers={"X-Forwarded-For": "203.0.113.77"})
    await visit(client, code, "Twitterbot/1.0 Marker/7.7.7")
    await clicks(app)
    async with app.sessions() as session:
        rows = (await session.exec(text("SELECT * FROM click"))).all()  # type: ignore[call-overload]
    assert len(rows) == 2
    stored = " ".join(str(value) for row in rows for value in row)
    for raw in ("127.0.0.1", "203.0.113.77", "Marker", "Mozilla", "Twitterbot"):
        assert raw not in stored
    for row in await clicks(app):
        assert len(row.visitor) == 32 and int(row.visitor, 16) >= 0


async def test_forwarded_addresses_count_only_behind_a_trusted_proxy(
    migrated_url: str, clock: FrozenClock
) -> None:
    cases = (
        ("", "192.0.2.1, {visitor}", 1),  # no proxy trusted: the peer is the visitor
        ("127.0.0.1", "192.0.2.1, {visitor}", 2),
        ("127.0.0.1", "{visitor}, 10.1.1.1", 1),  # 10.1.1.1 is not ours: it is the visitor
        ("10.0.0.0/8, 127.0.0.0/8", "192.0.2.1, {visitor}, 10.1.1.1", 2),
        ("*", "{visitor}, 10.1.1.1", 2),
    )
    for n, (proxies, forwarded, expected) in enumerate(cases):
        app = build(settings(migrated_url, flywheel_trusted_proxies=proxies), clock=clock)
        client = TestClient(TestServer(app.web_app()))
        await client.start_server()
        try:
            world = await seed(app, clock, external_id=f"T{n}")
            code = await link(app, clock, world, world.post, world.sharer, "x")
            for visitor in ("198.51.100.1", "198.51.100.2"):
                header = forwarded.format(visitor=visitor)
                await visit(client, code, headers={"X-Forwarded-For": header})
            total = await counted(app, world)
            assert total.clicks == expected, (proxies, forwarded)
        finally:
            await client.close()
            await app.close()


def test_trusted_proxies_must_be_addresses(tmp_path: Any) -> None:
    with pytest.raises(ConfigurationError, match="FLYWHEEL_TRUSTED_PROXIES"):
        load_settings(flywheel_trusted_proxies="10.0.0.0/8, proxy.local", _env_file=None)
    assert load_settings(flywheel_trusted_proxies="*", _env_file=None).trusted_proxies == ("*",)


# -- links ------------------------------------------------------------------------------------


async def test_links_are_unique_unguessable_and_the_same_every_time(
    app: Flywheel, clock: FrozenClock
) -> None:
    world = await seed(app, clock)
    now = clock.now()
    async with transaction(app.sessions) as session:
        people = [
            Member(
                workspace_id=world.workspace.id or 0,
                user_id=f"U{n}",
                created_at=now,
                updated_at=now,
            )
            for n in range(250)
        ]
        session.add_all(people)
        await session.flush()
        scope = Scope(session, clock, Config(public_base_url=BASE), world.workspace)
        first = await tracked_links.links_for(scope, world.post, people, tracked_links.NETWORKS)
        again = await tracked_links.links_for(scope, world.post, people, tracked_links.NETWORKS)
        assert await tracked_links.links_for(scope, world.post, [], tracked_links.NETWORKS) == {}
    assert len(first) == 250 * len(tracked_links.NETWORKS)
    assert {k: v.code for k, v in first.items()} == {k: v.code for k, v in again.items()}
    seventh = first[(people[7].id or 0, "x")].code
    assert tracked_links.tracked_url(BASE, seventh) == f"{BASE}/r/{seventh}"
    codes = [link.code for link in first.values()]
    assert len(set(codes)) == len(codes)
    for code in codes:
        assert tracked_links.valid_code(code)
        assert len(base64.urlsafe_b64decode(code)) * 8 == 96  # random bits in every code
    # 96 random bits: over thousands of codes, every position takes many values.
    for position in range(16):
        assert len({code[position] for code in codes}) > 40
    async with app.sessions() as session:
        stored = (await session.exec(select(TrackedLink))).all()
    assert len(stored) == len(codes)


async def test_links_never_cross_workspaces(
    app: Flywheel,
    client: TestClient,
    clock: FrozenClock,  # type: ignore[type-arg]
) -> None:
    acme = await seed(app, clock, "TACME")
    globex = await seed(app, clock, "TGLOBEX")
    async with transaction(app.sessions) as session:
        scope = Scope(session, clock, Config(public_base_url=BASE), acme.workspace)
        with pytest.raises(ValueError, match="workspace"):
            await tracked_links.links_for(scope, globex.post, [acme.sharer], ["linkedin"])
        with pytest.raises(ValueError, match="workspace"):
            await tracked_links.links_for(scope, acme.post, [globex.sharer], ["linkedin"])
        with pytest.raises(ValueError, match="networks"):
            await tracked_links.links_for(scope, acme.post, [acme.sharer], ["myspace"])
        # A row that claims one workspace but names another's post leads nowhere.
        crossed = TrackedLink(
            workspace_id=acme.workspace.id or 0,
            post_id=globex.post.id or 0,
            member_id=acme.sharer.id or 0,
            network="linkedin",
            created_at=clock.now(),
        )
        session.add(crossed)
    assert (await visit(client, crossed.code)).status == 404
    own = await link(app, clock, globex, globex.post, globex.sharer, "linkedin")
    assert (await visit(client, own)).status == 302
    rows = await clicks(app)
    assert [(r.workspace_id, r.post_id) for r in rows] == [(globex.workspace.id, globex.post.id)]
    assert await counted(app, acme) == Count(clicks=0, previews=0)


def test_destination_keeps_the_url_and_replaces_utm() -> None:
    post = Post(
        workspace_id=1,
        draft_id=1,
        version=1,
        slug="zdm",
        title="t",
        author_id=1,
        approved_by_id=1,
        published_at=datetime(2026, 11, 23, tzinfo=UTC),
        canonical_url="https://blog.acme.test/a%20b?q=x+y&empty=&flag&utm_term=old",
    )
    assert tracked_links.destination(post, "email", BASE) == (
        "https://blog.acme.test/a%20b?q=x+y&empty=&flag"
        "&utm_source=email&utm_medium=employee_advocacy&utm_campaign=zdm"
    )
    post.canonical_url = "https://bücher.example/straße"
    assert tracked_links.destination(post, "x", BASE) == (
        "https://xn--bcher-kva.example/stra%C3%9Fe"
        "?utm_source=x&utm_medium=employee_advocacy&utm_campaign=zdm"
    )
    for unsafe in ("javascript:alert(1)", "https://evil.test/\r\nSet-Cookie: a=b", "/relative"):
        post.canonical_url = unsafe
        assert tracked_links.destination(post, "x", BASE) == f"{BASE}/p/{post.public_code}"


# -- writing clicks ---------------------------------------------------------------------------


async def test_closing_the_app_writes_buffered_clicks(
    migrated_url: str, clock: FrozenClock
) -> None:
    app = build(settings(migrated_url, flywheel_click_flush_seconds=3600), clock=clock)
    client = TestClient(TestServer(app.web_app()))
    await client.start_server()
    world = await seed(app, clock)
    code = await link(app, clock, world, world.post, world.sharer, "linkedin")
    for agent in (CHROME, SAFARI_IPHONE, CUBOT):
        assert (await visit(client, code, agent)).status == 302
    assert app.links.clicks.pending == 3
    await client.close()
    await app.close()
    engine = create_engine(migrated_url)
    async with session_factory(engine)() as session:
        assert len((await session.exec(select(Click))).all()) == 3
    await engine.dispose()


async def test_a_full_batch_is_written_without_waiting(
    migrated_url: str, clock: FrozenClock
) -> None:
    app = build(settings(migrated_url, flywheel_click_flush_seconds=3600), clock=clock)
    app.links.clicks = type(app.links.clicks)(app.sessions, interval=3600, batch=5)
    client = TestClient(TestServer(app.web_app()))
    await client.start_server()
    try:
        world = await seed(app, clock)
        code = await link(app, clock, world, world.post, world.sharer, "linkedin")
        for n in range(5):
            await visit(client, code, f"{CHROME} n{n}")
        for _ in range(200):  # the writer runs as soon as the batch is full
            if app.links.clicks.pending == 0:
                break
            await asyncio.sleep(0.01)
        async with app.sessions() as session:
            assert len((await session.exec(select(Click))).all()) == 5
    finally:
        await client.close()
        await app.close()


async def test_migration_gives_existing_posts_a_public_code(database_url: str) -> None:
    engine = create_engine(database_url)
    await upgrade(engine, "0004")
    now = datetime(2026, 11, 23, 10, 0)
    async with engine.begin() as conn:
        for statement in (
            "INSERT INTO workspace (id, platform, external_id, name, settings, created_at)"
            " VALUES (1, 'slack', 'T1', '', '{}', :now)",
            "INSERT INTO member (id, workspace_id, user_id, name, is_platform_admin, is_bot,"
            " created_at, updated_at) VALUES (1, 1, 'U1', '', false, false, :now, :now)",
            "INSERT INTO content_request (id, workspace_id, requester_id, topic, context,"
            " audience, tags, status, created_at, updated_at)"
            " VALUES (1, 1, 1, 't', '', '', '[]', 'published', :now, :now)",
            "INSERT INTO draft (id, workspace_id, request_id, author_id, title, body, captions,"
            " tags, ai_assisted, status, version, created_at, updated_at)"
            " VALUES (1, 1, 1, 1, 't', 'b', '[]', '[]', false, 'approved', 1, :now, :now)",
            "INSERT INTO post (id, workspace_id, request_id, draft_id, version, slug, title,"
            " summary, body, captions, tags, author_id, approved_by_id, ai_assisted,"
            " published_at) VALUES (1, 1, 1, 1, 1, 's', 't', '', 'b', '[]', '[]', 1, 1, false,"
            " :now)",
        ):
            await conn.execute(text(statement), {"now": now})
    await upgrade(engine)
    async with engine.connect() as conn:
        [code] = (await conn.execute(text("SELECT public_code FROM post"))).scalars().all()
    assert tracked_links.valid_code(code)
    await engine.dispose()


async def test_flywheel_run_writes_buffered_clicks_when_terminated(tmp_path: Path) -> None:
    database = f"sqlite+aiosqlite:///{tmp_path / 'flywheel.db'}"
    clock = FrozenClock()
    app = build(settings(database), clock=clock)
    await upgrade(app.engine)
    world = await seed(app, clock)
    code = await link(app, clock, world, world.post, world.sharer, "linkedin")
    await app.close()
    # Only the shutdown can write them.
    async with flywheel_run(tmp_path, database, FLYWHEEL_CLICK_FLUSH_SECONDS="3600") as running:
        async with aiohttp.ClientSession() as http:
            await running.ready(http, "/healthz")
            for n in range(25):
                async with http.get(
                    f"{running.base}/r/{code}",
                    headers={"User-Agent": f"{CHROME} n{n}"},
                    allow_redirects=False,
                ) as response:
                    assert response.status == 302
        exit_code = await running.terminate()
    assert exit_code == 0, running.stderr[-2000:]
    engine = create_engine(database)
    async with session_factory(engine)() as session:
        rows = (await session.exec(select(Click))).all()
    await engine.dispose()
    assert len(rows) == 25
    assert all(not r.is_preview and not r.is_repeat for r in rows)
