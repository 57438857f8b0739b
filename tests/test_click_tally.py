"""The click tally and the day totals: kept by the click writer, equal to the click rows they
sum, on both databases."""

from __future__ import annotations

import asyncio
import importlib.util
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from types import ModuleType
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Connection, delete, inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel, col, select

from handlers.core import workspace_settings
from handlers.core.workspace_settings import WorkspaceSettings
from handlers.impact import people as by_person
from handlers.impact import rankings
from handlers.impact import totals as headline
from handlers.impact.query import Period
from handlers.sharing import tracked_links, visits
from storage.db import SessionFactory, create_engine, session_factory, transaction
from storage.migrate import MIGRATIONS, upgrade
from storage.models import (
    Click,
    ClickTally,
    DailyClicks,
    Share,
    TrackedLink,
    Workspace,
    random_code,
)
from testing.builders import add_members, add_post, add_workspace

SECRET = visits.visitor_secret("tally-test-key")
BROWSER = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Safari/605.1.15"
UNFURLER = "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"
START = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)


@dataclass
class World:
    sessions: SessionFactory
    workspace_id: int
    targets: list[tracked_links.Target]  # two posts × two sharers × two networks


def _migration(revision: str = "0008") -> ModuleType:
    [path] = (MIGRATIONS / "versions").glob(f"*_{revision}_*.py")
    spec = importlib.util.spec_from_file_location(f"migration_{revision}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def _seed(sessions: SessionFactory, timezone: str) -> tuple[int, list[tracked_links.Target]]:
    now = START - timedelta(days=30)
    async with transaction(sessions) as session:
        workspace = await add_workspace(
            session,
            now,
            external_id=f"T{timezone}",
            settings=WorkspaceSettings(timezone=timezone).model_dump(),
        )
        assert workspace.id is not None
        author, *sharers = await add_members(session, workspace, ("UAUTHOR", "UANN", "UBEN"), now)
        targets: list[tracked_links.Target] = []
        for n in range(2):
            post = await add_post(
                session,
                workspace,
                author,
                now,
                topic=f"topic {n}",
                slug=f"post-{n}",
                title=f"Post {n}",
            )
            for sharer in sharers:
                for network in ("linkedin", "x"):
                    # Only the columns every revision since the tally has: the upgrade
                    # tests seed an older schema.
                    table: Any = TrackedLink.__table__  # type: ignore[attr-defined]
                    link_id = (
                        await session.exec(
                            table.insert()
                            .values(
                                workspace_id=workspace.id,
                                post_id=post.id or 0,
                                member_id=sharer.id or 0,
                                network=network,
                                code=random_code(),
                                intent_code=random_code(),
                                created_at=now,
                            )
                            .returning(table.c.id)
                        )
                    ).one()[0]
                    targets.append(
                        tracked_links.Target(
                            link_id=link_id,
                            workspace_id=workspace.id,
                            post_id=post.id or 0,
                            member_id=sharer.id or 0,
                            network=network,
                            location="https://example.test/",
                        )
                    )
    return workspace.id, targets


def _columns_since(conn: Connection) -> list[tuple[str, str, str]]:
    """The model's columns the database's (older) tables lack: table, column, SQL type."""
    have = inspect(conn)
    missing = []
    for table in SQLModel.metadata.sorted_tables:
        if not have.has_table(table.name):
            continue
        present = {c["name"] for c in have.get_columns(table.name)}
        for column in table.columns:
            if column.name not in present:
                kind = column.type.compile(dialect=conn.dialect)
                missing.append((table.name, column.name, kind))
    return missing


async def _seed_on_old_schema(
    engine: AsyncEngine, sessions: SessionFactory, timezone: str
) -> tuple[int, list[tracked_links.Target]]:
    """Seed with today's builders on an older schema: the columns added since are there
    only while seeding, then dropped, so the upgrade adds them as it would in the field."""
    async with engine.begin() as conn:
        missing = await conn.run_sync(_columns_since)
        for table, column, kind in missing:
            await conn.execute(text(f'ALTER TABLE "{table}" ADD COLUMN "{column}" {kind}'))
    seeded = await _seed(sessions, timezone)
    async with engine.begin() as conn:
        for table, column, _ in missing:
            await conn.execute(text(f'ALTER TABLE "{table}" DROP COLUMN "{column}"'))
    return seeded


@pytest.fixture
async def world(migrated_url: str) -> AsyncIterator[World]:
    engine = create_engine(migrated_url)
    sessions = session_factory(engine)
    workspace_id, targets = await _seed(sessions, "America/Los_Angeles")
    yield World(sessions, workspace_id, targets)
    await engine.dispose()


def _visit(target: tracked_links.Target, at: datetime, address: str, agent: str = BROWSER) -> Any:
    return visits.visit(
        target,
        at=at,
        preview=visits.is_preview(agent),
        secret=SECRET,
        address=address,
        user_agent=agent,
    )


async def _tally(sessions: SessionFactory, workspace_id: int) -> dict[tuple[Any, ...], int]:
    async with sessions() as session:
        rows = (
            await session.exec(select(ClickTally).where(ClickTally.workspace_id == workspace_id))
        ).all()
    return {(r.day, r.post_id, r.member_id, r.network): r.clicks for r in rows if r.clicks}


async def _daily(sessions: SessionFactory, workspace_id: int) -> dict[date, int]:
    async with sessions() as session:
        rows = (
            await session.exec(select(DailyClicks).where(DailyClicks.workspace_id == workspace_id))
        ).all()
    return {r.day: r.clicks for r in rows if r.clicks}


def _by_day(tally: dict[tuple[Any, ...], int]) -> dict[date, int]:
    """The tally grouped by day: what the day totals must hold."""
    days: Counter[date] = Counter()
    for (day, *_), clicks in tally.items():
        days[day] += clicks
    return dict(days)


async def _grouped_clicks(
    sessions: SessionFactory, workspace_id: int, tz: ZoneInfo
) -> dict[tuple[Any, ...], int]:
    """The click rows that count, grouped as the tally is: the record the tally must match."""
    async with sessions() as session:
        rows = (
            await session.exec(
                select(Click).where(
                    Click.workspace_id == workspace_id,
                    col(Click.is_preview).is_(False),
                    col(Click.is_repeat).is_(False),
                )
            )
        ).all()
    return dict(
        Counter((r.at.astimezone(tz).date(), r.post_id, r.member_id, r.network) for r in rows)
    )


async def test_the_tally_equals_the_counted_click_rows_after_batches_with_repeats_and_previews(
    world: World,
) -> None:
    tz = ZoneInfo("America/Los_Angeles")
    batches: list[list[Any]] = []
    for b in range(6):
        batch = []
        for n in range(40):
            target = world.targets[(b * 7 + n) % len(world.targets)]
            # Every 3 hours or so over four days, crossing local midnights.
            at = START + timedelta(hours=b * 16 + n * 0.4, minutes=n % 7)
            # A handful of visitors, so the same one comes back within the window (repeats).
            address = f"203.0.113.{n % 5}"
            agent = UNFURLER if n % 9 == 0 else BROWSER
            batch.append(_visit(target, at, address, agent))
            if n % 4 == 0:
                batch.append(_visit(target, at + timedelta(minutes=5), address))  # a repeat
        batches.append(batch)
    counted = 0
    for batch in batches:
        async with transaction(world.sessions) as session:
            counted += await visits.record(session, batch)
    expected = await _grouped_clicks(world.sessions, world.workspace_id, tz)
    async with world.sessions() as session:
        flags = Counter(
            (r.is_preview, r.is_repeat) for r in (await session.exec(select(Click))).all()
        )
    # The data set has all three kinds, and crosses days.
    assert flags[(True, False)] and flags[(False, True)] and flags[(False, False)]
    assert len({key[0] for key in expected}) >= 4
    assert sum(expected.values()) == counted == flags[(False, False)]
    assert await _tally(world.sessions, world.workspace_id) == expected
    days = _by_day(expected)
    assert await _daily(world.sessions, world.workspace_id) == days

    # The digest's series reads the day totals: each local day's clicks, as the rows say.
    periods = [
        Period(
            datetime.combine(day, datetime.min.time(), tz).astimezone(UTC),
            datetime.combine(day + timedelta(days=1), datetime.min.time(), tz).astimezone(UTC),
        )
        for day in sorted(days)
    ]
    async with world.sessions() as session:
        totals = await headline.weekly_totals(session, world.workspace_id, periods)
    assert [t.clicks for t in totals] == [days[day] for day in sorted(days)]

    # The migrations' backfills rebuild the same tally from the click rows alone, and the
    # same day totals from the tally.
    async with transaction(world.sessions) as session:
        await session.exec(delete(ClickTally))
        await session.exec(delete(DailyClicks))
        await session.run_sync(lambda s: _migration().backfill(s.connection()))
        await session.run_sync(lambda s: _migration("0009").backfill(s.connection()))
    assert await _tally(world.sessions, world.workspace_id) == expected
    assert await _daily(world.sessions, world.workspace_id) == days


async def test_two_writers_adding_to_the_same_row_both_count(world: World) -> None:
    target = world.targets[0]
    at = START + timedelta(hours=20)
    first = [_visit(target, at, f"198.51.100.{n}") for n in range(3)]
    second = [_visit(target, at + timedelta(minutes=1), f"192.0.2.{n}") for n in range(4)]
    async with transaction(world.sessions) as session:
        assert await visits.record(session, first) == 3

        async def other_writer() -> int:
            async with transaction(world.sessions) as other:
                return await visits.record(other, second)

        # The second batch starts while the first holds its (uncommitted) tally row.
        pending = asyncio.create_task(other_writer())
        await _until_waiting(world.sessions, pending)
    assert await pending == 4
    tally = await _tally(world.sessions, world.workspace_id)
    day = at.astimezone(ZoneInfo("America/Los_Angeles")).date()
    assert tally == {(day, target.post_id, target.member_id, target.network): 7}
    assert await _daily(world.sessions, world.workspace_id) == {day: 7}


async def test_two_writers_on_different_links_both_add_to_the_days_total(world: World) -> None:
    # No tally row in common: the only row both writers add to is the day's total.
    ann, ben = world.targets[0], world.targets[-1]
    assert (ann.post_id, ann.member_id) != (ben.post_id, ben.member_id)
    at = START + timedelta(hours=20)
    first = [_visit(ann, at, f"198.51.100.{n}") for n in range(2)]
    second = [_visit(ben, at + timedelta(minutes=1), f"192.0.2.{n}") for n in range(5)]
    async with transaction(world.sessions) as session:
        assert await visits.record(session, first) == 2

        async def other_writer() -> int:
            async with transaction(world.sessions) as other:
                return await visits.record(other, second)

        pending = asyncio.create_task(other_writer())
        await _until_waiting(world.sessions, pending)
    assert await pending == 5
    day = at.astimezone(ZoneInfo("America/Los_Angeles")).date()
    assert _by_day(await _tally(world.sessions, world.workspace_id)) == {day: 7}
    assert await _daily(world.sessions, world.workspace_id) == {day: 7}


async def test_the_upgrade_totals_the_days_already_tallied(database_url: str) -> None:
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    try:
        await upgrade(engine, "0008")
        workspace_id, targets = await _seed_on_old_schema(engine, sessions, "Europe/Paris")
        first, second = targets[0], targets[-1]
        # Tally rows as the writer left them, one from before a change of time zone: the
        # totals keep each click on the day the tally gave it.
        rows = [
            (date(2026, 11, 2), first, 3),
            (date(2026, 11, 2), second, 4),
            (date(2026, 11, 3), first, 1),
            (date(2026, 11, 5), second, 6),
        ]
        async with transaction(sessions) as session:
            for day, target, clicks in rows:
                session.add(
                    ClickTally(
                        workspace_id=workspace_id,
                        day=day,
                        post_id=target.post_id,
                        member_id=target.member_id,
                        network=target.network,
                        clicks=clicks,
                    )
                )
        await upgrade(engine)
        assert await _daily(sessions, workspace_id) == {
            date(2026, 11, 2): 7,
            date(2026, 11, 3): 1,
            date(2026, 11, 5): 6,
        }
        # From then on the writer adds to the same rows.
        paris_noon = datetime(2026, 11, 3, 11, 0, tzinfo=UTC)
        async with transaction(sessions) as session:
            assert await visits.record(session, [_visit(second, paris_noon, "203.0.113.9")])
        assert (await _daily(sessions, workspace_id))[date(2026, 11, 3)] == 2
        # Each link's first clicked day comes from the tally; a later click changes nothing.
        async with sessions() as session:
            firsts = dict(
                (
                    await session.exec(
                        select(col(TrackedLink.id), col(TrackedLink.first_click_day))
                    )
                ).all()
            )
        assert firsts[first.link_id] == firsts[second.link_id] == date(2026, 11, 2)
        assert [d for i, d in firsts.items() if i not in (first.link_id, second.link_id)] == [
            None
        ] * (len(firsts) - 2)
    finally:
        await engine.dispose()


async def _until_waiting(sessions: SessionFactory, task: asyncio.Task[int]) -> None:
    """Until the other writer waits on a lock (PostgreSQL), or has had its chance (SQLite)."""
    async with sessions() as session:
        if session.bind is None or session.bind.dialect.name != "postgresql":
            for _ in range(20):
                await asyncio.sleep(0)
            return
        for _ in range(500):
            waiting = await session.exec(
                text(  # type: ignore[call-overload]
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            )
            if waiting.one()[0] or task.done():
                return
            # pg_stat_activity is read once per transaction: end it to see the next moment.
            await session.rollback()
            await asyncio.sleep(0.01)
        raise AssertionError("the second writer never reached the tally row")


async def test_days_run_from_local_midnight_and_a_zone_change_applies_to_later_clicks(
    world: World,
) -> None:
    target = world.targets[1]
    # Los Angeles is UTC-8 in November: 07:59 UTC is 23:59 the day before, 08:00 is 00:00.
    before, after = datetime(2026, 11, 10, 7, 59, tzinfo=UTC), datetime(2026, 11, 10, 8, 0)
    async with transaction(world.sessions) as session:
        await visits.record(
            session,
            [
                _visit(target, before, "203.0.113.1"),
                _visit(target, after.replace(tzinfo=UTC), "203.0.113.2"),
            ],
        )
    key = (target.post_id, target.member_id, target.network)
    assert await _tally(world.sessions, world.workspace_id) == {
        (date(2026, 11, 9), *key): 1,
        (date(2026, 11, 10), *key): 1,
    }
    tz = ZoneInfo("America/Los_Angeles")
    local_day = Period(
        datetime(2026, 11, 10, tzinfo=tz).astimezone(UTC),
        datetime(2026, 11, 11, tzinfo=tz).astimezone(UTC),
    )
    # A period that ends mid-day (as `stats` does) reads the click rows for that part.
    until_now = Period(datetime(2026, 11, 9, tzinfo=tz).astimezone(UTC), after.replace(tzinfo=UTC))
    async with world.sessions() as session:
        totals = await headline.weekly_totals(session, world.workspace_id, [local_day, until_now])
        ranked = await rankings.rankings(session, world.workspace_id, local_day, 5)
        people = await by_person.people(session, world.workspace_id, until_now)
    assert [t.clicks for t in totals] == [1, 1]
    assert [(r.id, r.clicks) for r in ranked.posts] == [(target.post_id, 1)]
    assert people[target.member_id].clicks == 1

    # The workspace moves to Tokyo (UTC+9): clicks from now on count by Tokyo's days.
    async with transaction(world.sessions) as session:
        workspace = await session.get(Workspace, world.workspace_id)
        assert workspace is not None
        workspace_settings.save(workspace, WorkspaceSettings(timezone="Asia/Tokyo"))
        session.add(workspace)
    late = datetime(2026, 11, 10, 15, 30, tzinfo=UTC)  # 07:30 on the 10th in LA, 00:30 11th
    async with transaction(world.sessions) as session:
        await visits.record(session, [_visit(target, late, "203.0.113.3")])
    tally = await _tally(world.sessions, world.workspace_id)
    assert tally[(date(2026, 11, 11), *key)] == 1
    assert tally[(date(2026, 11, 10), *key)] == 1
    assert await _daily(world.sessions, world.workspace_id) == _by_day(tally)


async def test_summer_time_changes_keep_days_whole(migrated_url: str) -> None:
    engine = create_engine(migrated_url)
    sessions = session_factory(engine)
    try:
        workspace_id, targets = await _seed(sessions, "Europe/Paris")
        target = targets[0]
        # Paris leaves summer time at 01:00 UTC on 25 October 2026: 21:59 UTC on the 24th is
        # 23:59 local (UTC+2); 23:30 UTC on the 25th is 00:30 on the 26th (UTC+1).
        moments = [
            datetime(2026, 10, 24, 21, 59, tzinfo=UTC),
            datetime(2026, 10, 24, 22, 0, tzinfo=UTC),
            datetime(2026, 10, 25, 22, 59, tzinfo=UTC),
            datetime(2026, 10, 25, 23, 30, tzinfo=UTC),
        ]
        async with transaction(sessions) as session:
            await visits.record(
                session, [_visit(target, m, f"203.0.113.{n}") for n, m in enumerate(moments)]
            )
        key = (target.post_id, target.member_id, target.network)
        expected = {
            (date(2026, 10, 24), *key): 1,
            (date(2026, 10, 25), *key): 2,
            (date(2026, 10, 26), *key): 1,
        }
        assert await _tally(sessions, workspace_id) == expected
        assert await _daily(sessions, workspace_id) == _by_day(expected)
        async with transaction(sessions) as session:
            await session.exec(delete(ClickTally))
            await session.run_sync(lambda s: _migration().backfill(s.connection()))
        assert await _tally(sessions, workspace_id) == expected
    finally:
        await engine.dispose()


async def test_a_share_before_the_week_means_not_a_first_timer(world: World) -> None:
    # First shares are read member by member from the share index: one before the week
    # rules a sharer out, whichever link it was on.
    ann, ben = world.targets[0], world.targets[-1]
    week = Period(START, START + timedelta(days=7))
    async with transaction(world.sessions) as session:
        for target, at in (
            (ann, START - timedelta(days=20)),
            (ann, START + timedelta(days=2)),
            (ben, START + timedelta(days=3)),
        ):
            session.add(
                Share(
                    workspace_id=world.workspace_id,
                    post_id=target.post_id,
                    member_id=target.member_id,
                    network=target.network,
                    link_id=target.link_id,
                    at=at,
                )
            )
    async with world.sessions() as session:
        assert await headline.first_timers(session, world.workspace_id, week) == ["UBEN"]
        earlier = Period(START - timedelta(days=21), START - timedelta(days=14))
        assert await headline.first_timers(session, world.workspace_id, earlier) == ["UANN"]
