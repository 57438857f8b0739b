"""Digest: building a weekly digest on a big workspace, against one raw SQL aggregate.

One workspace with 5,000 members, 2,000 published posts (each from a request, by 400
experts), 100,000 shares and 1,000,000 tracked-link visits (of which about 10% previews and
5% repeats), spread evenly over the eight weeks the digest's chart covers, plus 200 open
requests with +1s and 500 wins. Rows are bulk-loaded (COPY on PostgreSQL, executemany in one
transaction on SQLite) into the schema as it was before the click tally (revision 0007);
upgrading to the head then fills the tally from the clicks and the day totals from the
tally, as the migrations do on a real upgrade; then the tables are analysed. Loading is not
timed.

The floor is one raw SQL statement over the same rows the digest must read at the least:
counted clicks and shares of the eight weeks, two counts in one SELECT. The digest is
`handlers.impact.digest_figures.build` for the same scheduled time (every figure of the
message: headline numbers and their change, the eight-week series, participants,
first-time contributors, clicks per share, the median turnaround, top posts, sharers and
experts, wins and open requests). Each is timed `--rounds` times, alternating; medians are reported.

Targets: the digest in at most 3× the floor, and under 2 seconds on PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import sqlite3
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import text
from sqlalchemy.engine import make_url

from benchmarks import POSTGRES_URL, Figures, median, report, verdict

MEMBERS, POSTS, SHARES, CLICKS = 5_000, 2_000, 100_000, 1_000_000
EXPERTS, OPEN_REQUESTS, WINS, VOTES = 400, 200, 500, 1_000
TARGET_RATIO, TARGET_SECONDS = 3.0, 2.0
SCHEDULED = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)  # Monday 09:00 in Paris
SPAN_START = datetime(2026, 10, 4, 22, 0, tzinfo=UTC)  # eight weeks before, Paris midnight
SPAN_END = datetime(2026, 11, 29, 23, 0, tzinfo=UTC)
TIMEZONE = "Europe/Paris"
# The rows are loaded at this revision; the next ones tally the clicks and total the days,
# as on an upgrade.
BEFORE_TALLY = "0007"

Row = tuple[Any, ...]


def _when(rng: random.Random, start: datetime, end: datetime) -> datetime:
    return start + timedelta(seconds=rng.uniform(0, (end - start).total_seconds()))


def generate(scale: float, clicks: int | None = None) -> dict[str, list[Row]]:
    """Every row to load, by table, with explicit ids (the workspace is id 1).

    With `clicks`, no click is generated here: PostgreSQL makes that many (`sql_clicks`).
    """
    rng = random.Random(2026)
    n = {k: max(1, int(v * scale)) for k, v in {
        "members": MEMBERS, "posts": POSTS, "shares": SHARES, "clicks": CLICKS,
        "experts": EXPERTS, "open": OPEN_REQUESTS, "wins": WINS, "votes": VOTES,
    }.items()}  # fmt: skip
    created = SPAN_START - timedelta(days=120)
    members = [
        (i, 1, f"U{i:06d}", f"Person {i}", created, created) for i in range(1, n["members"] + 1)
    ]
    requests: list[Row] = []
    drafts: list[Row] = []
    posts: list[Row] = []
    for i in range(1, n["posts"] + 1):
        published = _when(rng, SPAN_START - timedelta(days=14), SPAN_END)
        asked = published - timedelta(hours=rng.uniform(12, 24 * 14))
        expert = rng.randint(1, n["experts"])
        requester = rng.randint(n["experts"] + 1, n["members"])
        claimed = asked + (published - asked) / 4
        requests.append((i, 1, requester, f"Topic {i}", "published", expert, claimed, asked))
        drafts.append((i, 1, i, expert, f"Post {i}", "approved", 1, asked, published))
        posts.append((i, 1, i, i, 1, f"post-{i}", f"Post {i}", expert, 1, published, f"p{i:015d}"))
    for j in range(n["open"]):
        i = n["posts"] + 1 + j
        asked = _when(rng, SPAN_START, SPAN_END)
        requests.append(
            (i, 1, rng.randint(1, n["members"]), f"Open {i}", "open", None, None, asked)
        )
    published_at = {p[0]: p[9] for p in posts}
    links: list[Row] = []
    shares: list[Row] = []
    taken: set[tuple[int, int]] = set()
    for i in range(1, n["shares"] + 1):
        post, member = rng.randint(1, n["posts"]), rng.randint(1, n["members"])
        while (post, member) in taken:  # one link per post, sharer and network
            post, member = rng.randint(1, n["posts"]), rng.randint(1, n["members"])
        taken.add((post, member))
        at = _when(rng, max(published_at[post], SPAN_START), SPAN_END)
        links.append((i, 1, post, member, "linkedin", f"l{i:015d}", at, f"s{i:015d}"))
        shares.append((i, 1, post, member, "linkedin", i, at))
    clicks_rows: list[Row] = []
    for i in range(1, (n["clicks"] if clicks is None else 0) + 1):
        link, _, post, member, network, _, shared, _ = links[rng.randrange(len(links))]
        at = _when(rng, shared, min(shared + timedelta(days=5), SPAN_END))
        kind = rng.random()
        clicks_rows.append(
            (i, 1, link, post, member, network, at, kind < 0.10, 0.10 <= kind < 0.15)
        )
    wins = [
        (i, 1, rng.randint(1, n["members"]), rng.randint(1, n["posts"]), "deal", f"Account {i}",
         f"Won deal {i} after sharing the guide", rng.randint(1000, 90000),
         _when(rng, SPAN_START, SPAN_END))
        for i in range(1, n["wins"] + 1)
    ]  # fmt: skip
    votes = list(
        {
            (rng.randint(n["posts"] + 1, n["posts"] + n["open"]), rng.randint(1, n["members"]))
            for _ in range(n["votes"])
        }
    )
    return {
        "member": members,
        "content_request": requests,
        "draft": drafts,
        "post": posts,
        "tracked_link": links,
        "share": shares,
        "click": clicks_rows,
        "win": wins,
        "vote": [(i, 1, r, m, SPAN_START) for i, (r, m) in enumerate(votes, 1)],
    }


COLUMNS = {
    "member": "id, workspace_id, user_id, name, created_at, updated_at",
    "content_request": (
        "id, workspace_id, requester_id, topic, status, assignee_id, claimed_at, created_at"
    ),
    "draft": "id, workspace_id, request_id, author_id, title, status, version, created_at, "
    "updated_at",
    "post": "id, workspace_id, request_id, draft_id, version, slug, title, author_id, "
    "approved_by_id, published_at, public_code",
    "tracked_link": "id, workspace_id, post_id, member_id, network, code, created_at, intent_code",
    "share": "id, workspace_id, post_id, member_id, network, link_id, at",
    "click": "id, workspace_id, link_id, post_id, member_id, network, at, is_preview, is_repeat",
    "win": "id, workspace_id, member_id, post_id, kind, account, description, value, at",
    "vote": "id, workspace_id, request_id, member_id, created_at",
}
# Columns with defaults the ORM fills but a raw load must give.
EXTRA = {
    "member": ("is_platform_admin, is_bot, interests", (False, False, "[]")),
    "content_request": ("context, audience, tags, updated_at", ("", "", "[]", SPAN_END)),
    "draft": ("body, captions, tags, ai_assisted", ("", "[]", "[]", False)),
    "post": ("summary, body, captions, tags, ai_assisted", ("", "", "[]", "[]", False)),
    "click": ("visitor", ("v",)),
}


def _rows(table: str, rows: Iterable[Row]) -> tuple[str, Iterable[Row]]:
    columns = COLUMNS[table]
    if table in EXTRA:
        names, values = EXTRA[table]
        columns = f"{columns}, {names}"
        rows = (row + values for row in rows)
    return columns, rows


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, datetime):
        # As SQLAlchemy stores UTC datetimes in SQLite: naive text, microseconds always.
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return value


def load_sqlite(path: str, data: dict[str, list[Row]]) -> None:
    conn = sqlite3.connect(path)
    with conn:
        conn.execute(
            "INSERT INTO workspace (id, platform, external_id, name, settings, created_at) "
            "VALUES (1, 'slack', 'TBENCH', 'Bench', ?, '2026-01-01 00:00:00.000000')",
            (f'{{"timezone": "{TIMEZONE}", "digest_channels": ["CBENCH"]}}',),
        )
        for table, rows in data.items():
            columns, full = _rows(table, rows)
            marks = ", ".join("?" for _ in columns.split(","))
            conn.executemany(
                f"INSERT INTO {table} ({columns}) VALUES ({marks})",
                ([_sqlite_value(v) for v in row] for row in full),
            )
    conn.close()


def analyse_sqlite(path: str) -> None:
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("ANALYZE")
    conn.close()


def load_postgres(conninfo: dict[str, Any], schema: str, data: dict[str, list[Row]]) -> None:
    with psycopg.connect(**conninfo) as conn:
        conn.execute(f'SET search_path TO "{schema}"')
        conn.execute(
            "INSERT INTO workspace (id, platform, external_id, name, settings, created_at) "
            "VALUES (1, 'slack', 'TBENCH', 'Bench', %s, now())",
            (f'{{"timezone": "{TIMEZONE}", "digest_channels": ["CBENCH"]}}',),
        )
        for table, rows in data.items():
            columns, full = _rows(table, rows)
            with conn.cursor().copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in full:
                    copy.write_row(row)
            conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))"
            )


SQL_CLICKS = """
INSERT INTO click (id, workspace_id, link_id, post_id, member_id, network, at, is_preview,
                   is_repeat, visitor)
SELECT s.g, 1, l.id, l.post_id, l.member_id, l.network,
       least(l.created_at + s.r2 * interval '5 days', %(end)s), s.r < 0.10,
       s.r >= 0.10 AND s.r < 0.15, 'v'
FROM (SELECT g, 1 + floor(random() * %(links)s)::int AS link, random() AS r, random() AS r2
      FROM generate_series(1, %(n)s) AS g) AS s
JOIN tracked_link AS l ON l.id = s.link
"""


def sql_clicks(conninfo: dict[str, Any], schema: str, count: int, links: int) -> None:
    """`count` visits made by PostgreSQL itself (generate_series), shaped as `generate`'s:
    each on a random link within five days of its share, 10% previews, 5% repeats."""
    with psycopg.connect(**conninfo) as conn:
        conn.execute(f'SET search_path TO "{schema}"')
        conn.execute(SQL_CLICKS, {"n": count, "links": links, "end": SPAN_END})
        conn.execute("SELECT setval(pg_get_serial_sequence('click', 'id'), %s)", (count,))


def analyse_postgres(conninfo: dict[str, Any], schema: str) -> None:
    with psycopg.connect(**conninfo) as conn:
        conn.execute(f'SET search_path TO "{schema}"')
        conn.execute("ANALYZE")


@contextlib.asynccontextmanager
async def database(
    postgres: bool, data: dict[str, list[Row]], clicks: int | None = None
) -> AsyncIterator[str]:
    """A migrated database holding `data`: a temporary SQLite file, or a PostgreSQL schema."""
    from storage.db import create_engine
    from storage.migrate import upgrade

    async def migrate(url: str, revision: str = "head") -> None:
        engine = create_engine(url)
        await upgrade(engine, revision)
        await engine.dispose()

    if not postgres:
        with tempfile.TemporaryDirectory(prefix="flywheel-bench-") as folder:
            path = str(Path(folder) / "digest.db")
            url = f"sqlite+aiosqlite:///{path}"
            await migrate(url, BEFORE_TALLY)
            await asyncio.to_thread(load_sqlite, path, data)
            await migrate(url)
            await asyncio.to_thread(analyse_sqlite, path)
            yield url
        return
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    parsed = make_url(POSTGRES_URL)
    conninfo: dict[str, Any] = {
        "host": parsed.host,
        "port": parsed.port or 5432,
        "user": parsed.username,
        "password": parsed.password,
        "dbname": parsed.database,
        "autocommit": True,
    }
    with psycopg.connect(**conninfo) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        rendered = parsed.update_query_dict(
            {"options": f"-csearch_path={schema}"}
        ).render_as_string(hide_password=False)
        await migrate(rendered, BEFORE_TALLY)
        await asyncio.to_thread(load_postgres, conninfo, schema, data)
        if clicks is not None:
            links = len(data["tracked_link"])
            await asyncio.to_thread(sql_clicks, conninfo, schema, clicks, links)
        await migrate(rendered)
        await asyncio.to_thread(analyse_postgres, conninfo, schema)
        yield rendered
    finally:
        with psycopg.connect(**conninfo) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


FLOOR = text(
    "SELECT "
    "(SELECT count(*) FROM click WHERE workspace_id = :w AND at >= :s AND at < :e "
    "AND NOT is_preview AND NOT is_repeat), "
    "(SELECT count(*) FROM share WHERE workspace_id = :w AND at >= :s AND at < :e)"
)


def _bound(value: datetime, postgres: bool) -> Any:
    return value if postgres else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


async def measure(postgres: bool, rounds: int, scale: float, clicks: int | None = None) -> Figures:
    from handlers.core.workspace_settings import WorkspaceSettings
    from handlers.impact import digest_figures, digest_message
    from storage.db import create_engine, session_factory

    started = time.perf_counter()
    data = generate(scale, clicks)
    generated = time.perf_counter() - started
    async with database(postgres, data, clicks) as url:
        loaded = time.perf_counter() - started - generated
        engine = create_engine(url)
        sessions = session_factory(engine)
        settings = WorkspaceSettings(timezone=TIMEZONE, digest_channels=["CBENCH"])
        params = {"w": 1, "s": _bound(SPAN_START, postgres), "e": _bound(SPAN_END, postgres)}
        floors: list[float] = []
        builds: list[float] = []
        figures = None
        counted: tuple[int, int] = (0, 0)
        for _ in range(rounds + 1):  # the first round warms caches and is not counted
            async with sessions() as session:
                t0 = time.perf_counter()
                row = (await session.exec(FLOOR, params=params)).one()  # type: ignore[call-overload]
                floors.append(time.perf_counter() - t0)
                counted = (int(row[0]), int(row[1]))
            async with sessions() as session:
                t0 = time.perf_counter()
                figures = await digest_figures.build(session, 1, settings, SCHEDULED)
                digest_message.message(figures, chart_url="https://x.test/c.png", page_url=None)
                builds.append(time.perf_counter() - t0)
        await engine.dispose()
    assert figures is not None
    clicks_in_series = sum(t.clicks for t in figures.series)
    shares_in_series = sum(t.shares for t in figures.series)
    floor, build = median(floors[1:]), median(builds[1:])
    ratio = build / floor
    result: Figures = {
        "database": "postgresql" if postgres else "sqlite",
        "rows: members / posts / shares / clicks": (
            f"{len(data['member']):,} / {len(data['post']):,} / {len(data['share']):,} / "
            f"{clicks if clicks is not None else len(data['click']):,}"
        ),
        "generate + bulk load, s": round(generated + loaded, 1),
        "floor (raw SQL aggregate), median s": floor,
        "digest build, median s": build,
        "digest build ÷ floor": ratio,
        "target ≤ 3×": verdict(ratio, TARGET_RATIO, at_most=True),
        "same counts as the floor": (clicks_in_series, shares_in_series) == counted,
        "rounds": rounds,
        "this week: shares / clicks / participants": (
            f"{figures.this.shares:,} / {figures.this.clicks:,} / {figures.this.participants:,}"
        ),
    }
    if postgres:
        result["target < 2 s on PostgreSQL"] = verdict(build, TARGET_SECONDS, at_most=True)
    return result


def main(argv: Sequence[str] | None = None) -> Figures:
    parser = argparse.ArgumentParser(prog="python -m benchmarks digest", description=__doc__)
    parser.add_argument("--postgres", action="store_true", help=f"use {POSTGRES_URL}")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds of each (5)")
    parser.add_argument(
        "--scale", type=float, default=1.0, help="fraction of the full sizes (1.0: the full run)"
    )
    parser.add_argument(
        "--clicks",
        default=None,
        metavar="N,N,…",
        help="with --postgres: the digest at each of these click counts, the clicks made by "
        "PostgreSQL itself (generate_series), e.g. 1000000,3000000,10000000; growth is "
        "reported against the first",
    )
    args = parser.parse_args(list(argv or []))
    if args.clicks:
        if not args.postgres:
            parser.error("--clicks needs --postgres")
        return growth([int(n) for n in args.clicks.split(",")], args.rounds)
    figures = asyncio.run(measure(args.postgres, args.rounds, args.scale))
    report("digest-postgres" if args.postgres else "digest-sqlite", figures)
    return figures


def growth(sizes: list[int], rounds: int) -> Figures:
    """The digest on PostgreSQL at each click count; time ratios against the smallest, and
    the process's peak memory (the digest reads rollups, never the clicks themselves)."""
    import resource

    figures: Figures = {"database": "postgresql"}
    first: tuple[int, float, float] | None = None
    for size in sizes:
        run = asyncio.run(measure(True, rounds, 1.0, size))
        build, floor = run["digest build, median s"], run["floor (raw SQL aggregate), median s"]
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"  {size:>10,} clicks: build {build:.3f} s, floor {floor:.3f} s", flush=True)
        first = first or (size, build, floor)
        figures[f"{size:,} clicks: digest build, median s"] = round(build, 3)
        figures[f"{size:,} clicks: raw aggregate floor, median s"] = round(floor, 3)
        figures[f"{size:,} clicks: build ÷ floor"] = round(build / floor, 3)
        figures[f"{size:,} clicks: build ÷ build at {first[0]:,}"] = round(build / first[1], 2)
        figures[f"{size:,} clicks: floor ÷ floor at {first[0]:,}"] = round(floor / first[2], 2)
        figures[f"{size:,} clicks: same counts as the floor"] = run["same counts as the floor"]
        figures[f"{size:,} clicks: generate + load + backfill, s"] = run["generate + bulk load, s"]
        figures[f"peak RSS of this process after {size:,} (MB)"] = round(peak, 1)
    report("digest-growth", figures)
    return figures


if __name__ == "__main__":
    main()
