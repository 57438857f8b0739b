"""Feeds and shared links: polling N feeds of M items, and reading shared pages.

A site in a process of its own (aiohttp on 127.0.0.1) serves N RSS feeds of M items each
and 200 article pages. Flywheel's real poll job (`handlers.content.feeds.poll`, with the
real SSRF-checked fetcher, allowed to reach 127.0.0.1 only) runs against a temporary
SQLite database:

- round 1: the N feeds were just added: every feed is fetched and parsed, and its M items
  are recorded as already seen (nobody is flooded);
- round 2, the feeds' interval later: half the feeds answer 304 to the conditional GET,
  the other half changed (a new ETag and one new item, which goes to the reviewers);
- round 3, one more interval later: nothing changed, every feed answers 304.

Figures: each round's wall time and peak Python memory (tracemalloc, in a second identical
run so it does not slow the timed one), and rounds 2 and 3 as fractions of round 1. Then 200
shared links are read one after another as `share <url>` reads them (fetch, checks,
metadata, preview message), against a bare aiohttp GET of the same pages (the baseline):
latency p50/p99 of each.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from multiprocessing.synchronize import Event as EventType
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks import Figures, median, percentile, report

PAGES = 200
ROUND_2_AFTER = timedelta(minutes=16)


# -- the site, in a process of its own ---------------------------------------------------------


def _rss(feed: int, items: int, version: int) -> bytes:
    entries = []
    newest = items + (1 if version == 2 else 0)
    for n in range(newest, newest - items, -1):
        # The new item of round 2 was published after the feed was added; the rest before.
        when = "12:10" if n > items else f"0{n % 10}:00"
        entries.append(
            f"<item><title>Feed {feed} post {n}: what we learnt</title>"
            f"<link>https://blog{feed}.acme.test/posts/{n}?utm_source=rss</link>"
            f"<guid isPermaLink='false'>f{feed}-{n}</guid>"
            f"<pubDate>Tue, 01 Dec 2026 {when}:00 GMT</pubDate>"
            f"<description>&lt;p&gt;{'A paragraph of the summary. ' * 12}&lt;/p&gt;</description>"
            "</item>"
        )
    return (
        "<?xml version='1.0' encoding='UTF-8'?><rss version='2.0'><channel>"
        f"<title>Blog {feed}</title>{''.join(entries)}</channel></rss>"
    ).encode()


def _article(n: int) -> bytes:
    head = (
        f"<title>Article {n}</title>"
        f'<meta property="og:title" content="Article {n}: zero-downtime upgrades">'
        f'<meta property="og:description" content="{"Surge upgrades and budgets. " * 6}">'
        f'<meta property="og:image" content="https://cdn.acme.test/{n}.png">'
        f'<link rel="canonical" href="/articles/{n}">'
    )
    body = "<p>" + "Body text of the article. " * 1200 + "</p>"
    return f"<html><head>{head}</head><body>{body}</body></html>".encode()


def _serve(port_out: Any, second: EventType, feeds: int, items: int) -> None:
    from aiohttp import web

    bodies = {v: {f: _rss(f, items, v) for f in range(feeds)} for v in (1, 2)}
    articles = {n: _article(n) for n in range(PAGES)}

    async def feed(request: web.Request) -> web.Response:
        number = int(request.match_info["n"])
        # In round 2, odd feeds changed; even ones are as they were.
        version = 2 if second.is_set() and number % 2 else 1
        etag = f'"{number}-{version}"'
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers={"ETag": etag})
        return web.Response(
            body=bodies[version][number],
            headers={"ETag": etag, "Content-Type": "application/rss+xml"},
        )

    async def article(request: web.Request) -> web.Response:
        return web.Response(
            body=articles[int(request.match_info["n"])], content_type="text/html", charset="utf-8"
        )

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/feed/{n}.xml", feed)
        app.router.add_get("/articles/{n}", article)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port_out.put(runner.addresses[0][1])
        await asyncio.Event().wait()

    asyncio.run(main())


# -- Flywheel's side ---------------------------------------------------------------------------


async def _setup(url: str, base: str, feeds: int, now: datetime) -> Any:
    from handlers.content import feeds as feed_flow  # noqa: F401  (the registered job)
    from storage.db import create_engine, session_factory, transaction
    from storage.migrate import upgrade
    from storage.models import Feed, Member, Workspace

    engine = create_engine(url)
    await upgrade(engine)
    sessions = session_factory(engine)
    async with transaction(sessions) as session:
        workspace = Workspace(
            platform="console",
            external_id="bench",
            settings={"reviewers": ["ada"]},
            created_at=now,
        )
        session.add(workspace)
        await session.flush()
        admin = Member(
            workspace_id=workspace.id or 0, user_id="ada", created_at=now, updated_at=now
        )
        session.add(admin)
        await session.flush()
        for n in range(feeds):
            session.add(
                Feed(
                    workspace_id=workspace.id or 0,
                    url=f"{base}/feed/{n}.xml",
                    status="checking",
                    added_by_id=admin.id or 0,
                    next_poll_at=now,
                    created_at=now,
                    updated_at=now,
                )
            )
    return engine, sessions


async def _poll_rounds(
    url: str, base: str, feeds: int, second: EventType, measure_memory: bool
) -> dict[str, float]:
    from adapters.fetch import SafeFetcher, parse_networks
    from handlers.content.feeds import poll
    from handlers.core.context import Config
    from handlers.core.ports import NO_AI
    from storage.models import ContentLink, FeedItem
    from testing.fakes.clock import FrozenClock

    clock = FrozenClock()
    now = datetime(2026, 12, 1, 12, tzinfo=UTC)
    clock.set(now)
    engine, sessions = await _setup(url, base, feeds, now)
    fetcher = SafeFetcher("https://bench.acme.test", parse_networks("127.0.0.1/32"))
    config = Config(fetcher=fetcher)
    figures: dict[str, float] = {}
    try:
        for label in ("round 1", "round 2", "round 3"):
            if label == "round 2":
                second.set()
                clock.set(now + ROUND_2_AFTER)
            elif label == "round 3":
                clock.set(now + 2 * ROUND_2_AFTER)
            if measure_memory:
                tracemalloc.start()
            started = time.perf_counter()
            polled = await poll(sessions, clock, config, NO_AI)
            elapsed = time.perf_counter() - started
            if measure_memory:
                figures[f"{label}: peak Python memory (MB)"] = (
                    tracemalloc.get_traced_memory()[1] / 1e6
                )
                tracemalloc.stop()
            else:
                figures[f"{label}: feeds polled"] = polled
                figures[f"{label}: seconds"] = elapsed
        if not measure_memory:
            from sqlmodel import func, select

            async with sessions() as session:
                figures["items recorded"] = (
                    await session.exec(select(func.count()).select_from(FeedItem))
                ).one()
                figures["new items sent to review"] = (
                    await session.exec(select(func.count()).select_from(ContentLink))
                ).one()
    finally:
        await fetcher.close()
        await engine.dispose()
    second.clear()
    return figures


async def _shares(base: str) -> dict[str, float]:
    from adapters.fetch import SafeFetcher, parse_networks
    from handlers.content import links, page
    from storage.models import ContentLink

    fetcher = SafeFetcher("https://bench.acme.test", parse_networks("127.0.0.1/32"))
    flywheel: list[float] = []
    bare: list[float] = []
    async with aiohttp.ClientSession() as session:
        for n in range(PAGES):
            target = f"{base}/articles/{n}?utm_source=bench"
            started = time.perf_counter()
            async with session.get(target) as response:
                await response.read()
            bare.append(time.perf_counter() - started)
            started = time.perf_counter()
            fetched = await fetcher.fetch(target)
            info = page.parse(fetched.body, fetched.charset, fetched.url)
            link = ContentLink(
                workspace_id=1,
                member_id=1,
                url=target,
                canonical_url=info.canonical_url,
                title=info.title,
                description=info.description,
                image_url=info.image_url,
                captions=links.suggested_captions(info.title, info.description),
                created_at=datetime.now(UTC),
                updated_at=datetime.now(UTC),
            )
            links.preview(link).model_dump(mode="json")
            flywheel.append(time.perf_counter() - started)
    await fetcher.close()
    return {
        "share: fetch + preview p50 (ms)": median(flywheel) * 1000,
        "share: fetch + preview p99 (ms)": percentile(flywheel, 0.99) * 1000,
        "share: bare GET p50 (ms)": median(bare) * 1000,
        "share: bare GET p99 (ms)": percentile(bare, 0.99) * 1000,
    }


def main(argv: list[str]) -> Figures:
    parser = argparse.ArgumentParser(prog="python -m benchmarks feeds")
    parser.add_argument("--feeds", type=int, default=500)
    parser.add_argument("--items", type=int, default=50)
    options = parser.parse_args(argv)
    context = multiprocessing.get_context("spawn")
    ports: Any = context.Queue()
    second = context.Event()
    server = context.Process(
        target=_serve, args=(ports, second, options.feeds, options.items), daemon=True
    )
    server.start()
    try:
        base = f"http://127.0.0.1:{ports.get(timeout=60)}"
        figures: Figures = {"feeds": options.feeds, "items per feed": options.items}
        for measure_memory in (False, True):
            with tempfile.TemporaryDirectory() as scratch:
                url = f"sqlite+aiosqlite:///{Path(scratch) / 'bench.db'}"
                figures.update(
                    asyncio.run(_poll_rounds(url, base, options.feeds, second, measure_memory))
                )
        for later in ("round 2", "round 3"):
            figures[f"{later} / round 1 (time)"] = (
                figures[f"{later}: seconds"] / figures["round 1: seconds"]
            )
        figures.update(asyncio.run(_shares(base)))
    finally:
        server.terminate()
        server.join()
    report("feeds", figures)
    return figures
