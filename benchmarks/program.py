"""Program page: the overview over 52 weeks on the digest benchmark's workspace, against one
raw SQL statement reading the same figures.

The workspace is `benchmarks.digest`'s: 5,000 members, 2,000 posts, 100,000 shares and
1,000,000 tracked-link visits (made by PostgreSQL itself on PostgreSQL), loaded as before the
click tally and upgraded, so the tally and the day totals are filled as on a real upgrade.
Loading is not timed.

Timed: `GET /program?weeks=52` through the real aiohttp routes, as a signed-in admin, to the
last byte of the HTML (session check, the funnel of the 52 weeks and of the 52 before, the
template), `--rounds` times after one warm-up. The floor is one raw SQL statement that
reads the same figures from the same rows and rollups (requests, +1s, claims, first drafts,
approvals, posts by source, shares, shares of clicked links, clicks from the day totals,
wins, for both periods). p50 and p99 of each are reported.

Targets: the page under 300 ms at p99 on PostgreSQL, and its p99 at most 3× the floor's.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import text

from benchmarks import POSTGRES_URL, Figures, median, percentile, report, verdict
from benchmarks.digest import CLICKS, SCHEDULED, TIMEZONE, database, generate

TARGET_P99, TARGET_RATIO = 0.300, 3.0

FLOOR = text(
    """
    SELECT
      (SELECT count(*) FILTER (WHERE created_at >= :s AND created_at < :e)
            || ',' || count(*) FILTER (WHERE created_at >= :ps AND created_at < :s)
       FROM content_request WHERE workspace_id = :w AND created_at >= :ps AND created_at < :e),
      (SELECT count(*) FILTER (WHERE created_at >= :s)
            || ',' || count(*) FILTER (WHERE created_at < :s)
       FROM vote WHERE workspace_id = :w AND created_at >= :ps AND created_at < :e),
      (SELECT count(*) FILTER (WHERE claimed_at >= :s)
            || ',' || count(*) FILTER (WHERE claimed_at < :s)
       FROM content_request WHERE workspace_id = :w AND claimed_at >= :ps AND claimed_at < :e),
      (SELECT count(*) FILTER (WHERE submitted_at >= :s)
            || ',' || count(*) FILTER (WHERE submitted_at < :s)
       FROM draft_version WHERE workspace_id = :w AND version = 1
        AND submitted_at >= :ps AND submitted_at < :e),
      (SELECT count(*) FILTER (WHERE created_at >= :s)
            || ',' || count(*) FILTER (WHERE created_at < :s)
       FROM audit_event WHERE workspace_id = :w AND action = 'approved'
        AND created_at >= :ps AND created_at < :e),
      (SELECT count(*) FILTER (WHERE published_at >= :s AND request_id IS NOT NULL)
            || ',' || count(*) FILTER (WHERE published_at >= :s AND request_id IS NULL)
            || ',' || count(*) FILTER (WHERE published_at < :s AND request_id IS NOT NULL)
            || ',' || count(*) FILTER (WHERE published_at < :s AND request_id IS NULL)
       FROM post WHERE workspace_id = :w AND published_at >= :ps AND published_at < :e),
      (SELECT count(*) FILTER (WHERE at >= :s) || ',' || count(*) FILTER (WHERE at < :s)
       FROM share WHERE workspace_id = :w AND at >= :ps AND at < :e),
      (SELECT count(*) FILTER (WHERE at >= :s) || ',' || count(*) FILTER (WHERE at < :s)
       FROM win WHERE workspace_id = :w AND at >= :ps AND at < :e),
      (SELECT coalesce(sum(clicks) FILTER (WHERE day >= :sd), 0)
            || ',' || coalesce(sum(clicks) FILTER (WHERE day < :sd), 0)
       FROM daily_clicks WHERE workspace_id = :w AND day >= :psd AND day < :ed),
      (SELECT count(*) FILTER (WHERE s.at >= :s AND l.first_click_day < :ed)
            || ',' || count(*) FILTER (WHERE s.at < :s AND l.first_click_day < :sd)
       FROM share s JOIN tracked_link l ON l.id = s.link_id
       WHERE s.workspace_id = :w AND s.at >= :ps AND s.at < :e)
    """
)


async def measure(rounds: int, scale: float) -> Figures:
    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer

    from adapters.web.program import ProgramSite
    from adapters.web.sessions import SESSION_COOKIE, Sessions
    from handlers.core.context import Config
    from handlers.program.period import parse
    from storage.db import create_engine, session_factory
    from testing.fakes.clock import FrozenClock

    secret = "bench-secret-key-0123456789abcdef"
    started = time.perf_counter()
    clicks = max(1, int(CLICKS * scale))
    data = generate(scale, clicks)
    async with database(True, data, clicks) as url:
        loaded = time.perf_counter() - started
        engine = create_engine(url)
        sessions = session_factory(engine)
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE member SET is_platform_admin = true WHERE id = 1"))
        clock = FrozenClock(SCHEDULED)
        site = ProgramSite(
            sessions,
            clock,
            Config(),
            public_base_url="http://127.0.0.1:3978",
            secret_key=secret,
            providers=[],
        )
        app = web.Application()
        app.add_routes(site.routes())
        client: TestClient = TestClient(TestServer(app))  # type: ignore[type-arg]
        await client.start_server()
        signed = web.Response()
        Sessions(secret, secure=False, lifetime=timedelta(hours=8)).start(signed, 1, 1)
        cookie = signed.cookies[SESSION_COOKIE].value
        window = parse({"weeks": "52"}, SCHEDULED, ZoneInfo(TIMEZONE))
        params: dict[str, Any] = {
            "w": 1,
            "s": window.period.start,
            "e": window.period.end,
            "ps": window.previous.start,
            "sd": window.first_day,
            "ed": window.last_day + timedelta(days=1),
            "psd": window.first_day - (window.last_day - window.first_day) - timedelta(days=1),
        }
        pages: list[float] = []
        floors: list[float] = []
        html = ""
        floor_row: Any = None
        for _ in range(rounds + 1):  # the first round warms caches and is not counted
            t0 = time.perf_counter()
            response = await client.get(
                "/program?weeks=52", headers={"Cookie": f"{SESSION_COOKIE}={cookie}"}
            )
            html = await response.text()
            pages.append(time.perf_counter() - t0)
            assert response.status == 200, html[:500]
            async with engine.connect() as conn:
                t0 = time.perf_counter()
                floor_row = (await conn.execute(FLOOR, params)).one()
                floors.append(time.perf_counter() - t0)
        # The other pages over the same 52 weeks, for information (p50 of a few rounds).
        others: dict[str, float] = {}
        for page in ("trends", "demand", "content", "people", "people/U000001"):
            times = []
            for _ in range(6):
                t0 = time.perf_counter()
                response = await client.get(
                    f"/program/{page}?weeks=52", headers={"Cookie": f"{SESSION_COOKIE}={cookie}"}
                )
                await response.read()
                times.append(time.perf_counter() - t0)
                assert response.status == 200, page
            others[f"{page} page p50, s"] = median(times[1:])
        await client.close()
        await site.close()
        await engine.dispose()
    pages, floors = pages[1:], floors[1:]
    page_p99, floor_p99 = percentile(pages, 0.99), percentile(floors, 0.99)
    clicks_now = int(str(floor_row[8]).split(",")[0])
    return {
        "database": "postgresql",
        "rows: members / posts / shares / clicks": (
            f"{len(data['member']):,} / {len(data['post']):,} / {len(data['share']):,} / {clicks:,}"
        ),
        "generate + bulk load + upgrade, s": round(loaded, 1),
        "period": window.label,
        "page (full HTML) p50, s": median(pages),
        "page (full HTML) p99, s": page_p99,
        "floor (one raw SQL statement) p50, s": median(floors),
        "floor (one raw SQL statement) p99, s": floor_p99,
        "page p99 ÷ floor p99": page_p99 / floor_p99,
        "target p99 < 300 ms": verdict(page_p99, TARGET_P99, at_most=True),
        "target ≤ 3× the floor": verdict(page_p99 / floor_p99, TARGET_RATIO, at_most=True),
        "same clicks as the floor": _clicks_shown(html) == clicks_now,
        "rounds": rounds,
        **others,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _clicks_shown(html: str) -> int:
    """The clicks of the period as the page shows them."""
    found = re.search(r'Clicks \(people only\)</th><td class="n">([\d,]+)</td>', html)
    return int(found.group(1).replace(",", "")) if found else -1


def main(argv: Sequence[str] | None = None) -> Figures:
    parser = argparse.ArgumentParser(prog="python -m benchmarks program", description=__doc__)
    parser.add_argument("--rounds", type=int, default=50, help="timed rounds of each (50)")
    parser.add_argument(
        "--scale", type=float, default=1.0, help="fraction of the full sizes (1.0: the full run)"
    )
    args = parser.parse_args(list(argv or []))
    print(f"PostgreSQL: {POSTGRES_URL.split('@')[-1]}")
    figures = asyncio.run(measure(args.rounds, args.scale))
    report("program-postgres", figures)
    return figures


if __name__ == "__main__":
    main()
