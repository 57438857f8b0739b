"""When digests go out: local times in several zones over a month, once each, caught up once.

The clock is moved by hand; the digest sweep runs as the worker runs it (each workspace in
its own transaction). Expected send times are worked out by hand below, daylight saving
time included (Europe ends it on 25 October 2026, the United States on 1 November).
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.exc import OperationalError
from sqlmodel import col, select

from adapters.console.render import Screen
from adapters.console.sender import ConsoleSender
from bot.app import Flywheel, build
from bot.settings import load_settings
from handlers.core import workspace_settings
from handlers.core.context import Scope
from handlers.core.errors import InvalidTransition
from handlers.core.messages import Image, Message, Section
from handlers.core.workspace_settings import WorkspaceSettings
from handlers.impact import digest_sweep
from handlers.impact.digest_status import DigestStatus, move_digest
from storage import outbox
from storage.db import transaction
from storage.models import ContentRequest, Digest, Member, OutboxMessage, Workspace
from testing.fakes.clock import FrozenClock

START = datetime(2026, 10, 19, 0, 0, tzinfo=UTC)  # a Monday; four weeks to 16 November


def utc(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


# Monday 09:00 in Paris: 07:00 UTC in summer time, 08:00 after 25 October.
PARIS = [utc(10, 19, 7), utc(10, 26, 8), utc(11, 2, 8), utc(11, 9, 8)]
# Monday 09:00 in New York: 13:00 UTC until 1 November, then 14:00.
NEW_YORK = [utc(10, 19, 13), utc(10, 26, 13), utc(11, 2, 14), utc(11, 9, 14)]
# Friday 16:30 in Tokyo (no daylight saving time): 07:30 UTC.
TOKYO = [utc(10, 23, 7, 30), utc(10, 30, 7, 30), utc(11, 6, 7, 30), utc(11, 13, 7, 30)]


@pytest.fixture
async def app(migrated_url: str, clock: FrozenClock) -> AsyncIterator[Flywheel]:
    flywheel = build(load_settings(database_url=migrated_url, _env_file=None), clock=clock)
    yield flywheel
    await flywheel.close()


async def add_workspace(
    app: Flywheel, external_id: str, *, platform: str = "slack", **settings: object
) -> int:
    async with transaction(app.sessions) as session:
        workspace = Workspace(platform=platform, external_id=external_id, created_at=START)
        workspace_settings.save(workspace, WorkspaceSettings.model_validate(settings))
        session.add(workspace)
        await session.flush()
        return workspace.id or 0


async def run_sweeps(app: Flywheel) -> None:
    """The digest sweep for every workspace, each in its own transaction, as the worker does."""
    async with app.sessions() as session:
        ids = (await session.exec(select(Workspace.id))).all()
    for workspace_id in ids:
        async with transaction(app.sessions) as session:
            workspace = await session.get(Workspace, workspace_id)
            assert workspace is not None
            await digest_sweep.sweep(Scope(session, app.clock, app.router.config, workspace))


async def sent_digests(app: Flywheel) -> list[tuple[str, str, str, datetime]]:
    async with app.sessions() as session:
        query = (
            select(Workspace.external_id, Digest.channel, Digest.week, Digest.created_at)
            .join(Workspace, col(Workspace.id) == Digest.workspace_id)
            .order_by(col(Digest.created_at), col(Workspace.external_id), col(Digest.channel))
        )
        return [tuple(row) for row in (await session.exec(query)).all()]  # type: ignore[misc]


async def test_digests_land_at_the_local_time_in_each_zone_once_each_over_a_month(
    app: Flywheel, clock: FrozenClock
) -> None:
    since = START.isoformat()
    await add_workspace(
        app,
        "TPARIS",
        timezone="Europe/Paris",
        digest_channels=["CGENERAL", "CSALES"],
        digests_from=since,
    )
    await add_workspace(
        app, "TNEWYORK", timezone="America/New_York", digest_channels=["CNY"], digests_from=since
    )
    await add_workspace(
        app,
        "TTOKYO",
        timezone="Asia/Tokyo",
        digest_channels=["CJP"],
        digest_day="friday",
        digest_time="16:30",
        digests_from=since,
    )
    probes = {START + timedelta(hours=3 * n) for n in range(8 * 28)}
    for expected in (*PARIS, *NEW_YORK, *TOKYO):
        probes |= {expected - timedelta(minutes=1), expected, expected + timedelta(minutes=1)}
    for moment in sorted(probes):
        clock.set(moment)
        await run_sweeps(app)

    found = await sent_digests(app)
    by_place: dict[tuple[str, str], list[tuple[str, datetime]]] = {}
    for workspace, where, week, created in found:
        by_place.setdefault((workspace, where), []).append((week, created))
    weeks = ["2026-W42", "2026-W43", "2026-W44", "2026-W45"]
    assert by_place[("TPARIS", "CGENERAL")] == list(zip(weeks, PARIS, strict=True))
    assert by_place[("TPARIS", "CSALES")] == list(zip(weeks, PARIS, strict=True))
    assert by_place[("TPARIS", digest_sweep.NOTES)] == list(zip(weeks, PARIS, strict=True))
    assert by_place[("TNEWYORK", "CNY")] == list(zip(weeks, NEW_YORK, strict=True))
    # Friday's digest reports on Friday to Thursday: the week of its first day.
    assert by_place[("TTOKYO", "CJP")] == list(zip(weeks, TOKYO, strict=True))
    assert len(found) == 4 * 7  # and the notes of each workspace, once a week
    async with app.sessions() as session:
        keys = (await session.exec(select(OutboxMessage.dedupe_key))).all()
    assert len(keys) == 4 * 4  # one message per channel and week; no notes in empty weeks


async def test_a_run_missed_while_down_is_sent_once_late_and_never_a_backlog(
    app: Flywheel, clock: FrozenClock
) -> None:
    await add_workspace(
        app,
        "TPARIS",
        timezone="Europe/Paris",
        digest_channels=["CGENERAL"],
        digests_from=utc(11, 1, 0).isoformat(),
    )
    clock.set(utc(11, 22, 12))  # Sunday: the digest of 16 – 22 November is due tomorrow
    await run_sweeps(app)
    assert [w for _, c, w, _ in await sent_digests(app) if c == "CGENERAL"] == ["2026-W46"]

    clock.set(utc(11, 25, 10))  # down from Sunday to Wednesday: Monday's run was missed
    await run_sweeps(app)
    await run_sweeps(app)
    clock.advance(days=1)
    await run_sweeps(app)
    late = [(w, at) for _, c, w, at in await sent_digests(app) if c == "CGENERAL"]
    assert late == [("2026-W46", utc(11, 22, 12)), ("2026-W47", utc(11, 25, 10))]

    clock.set(utc(12, 23, 10))  # down for three weeks: only the latest digest is sent
    await run_sweeps(app)
    await run_sweeps(app)
    weeks = [w for _, c, w, _ in await sent_digests(app) if c == "CGENERAL"]
    assert weeks == ["2026-W46", "2026-W47", "2026-W51"]


async def test_no_digest_before_the_channels_were_set_up(app: Flywheel, clock: FrozenClock) -> None:
    # Set up on a Thursday: Monday's digest is not caught up; the next Monday's goes out.
    await add_workspace(
        app,
        "TPARIS",
        timezone="Europe/Paris",
        digest_channels=["CGENERAL"],
        digests_from=utc(11, 26, 15).isoformat(),
    )
    clock.set(utc(11, 26, 15, 1))
    await run_sweeps(app)
    assert await sent_digests(app) == []
    clock.set(utc(11, 30, 8))
    await run_sweeps(app)
    assert [w for _, c, w, _ in await sent_digests(app) if c == "CGENERAL"] == ["2026-W48"]


async def test_two_workers_at_once_queue_one_digest_per_channel(
    app: Flywheel, clock: FrozenClock, migrated_url: str
) -> None:
    await add_workspace(
        app, "TPARIS", timezone="Europe/Paris", digest_channels=["CGENERAL", "CSALES"]
    )
    other = build(load_settings(database_url=migrated_url, _env_file=None), clock=clock)
    clock.set(utc(11, 30, 8))
    try:
        outcomes = await asyncio.gather(run_sweeps(app), run_sweeps(other), return_exceptions=True)
        # SQLite lets one writer through and may refuse the other outright; PostgreSQL makes
        # the second wait for the first, then finds its rows. Either way: nothing twice.
        assert all(o is None or isinstance(o, OperationalError) for o in outcomes), outcomes
        await asyncio.gather(run_sweeps(other), run_sweeps(app), return_exceptions=True)
        await run_sweeps(other)
    finally:
        await other.close()
    found = await sent_digests(app)
    assert sorted(c for _, c, _, _ in found) == [digest_sweep.NOTES, "CGENERAL", "CSALES"]
    async with app.sessions() as session:
        keys = sorted((await session.exec(select(OutboxMessage.dedupe_key))).all())
    assert [k.split(":", 1)[1] for k in keys] == [
        "digest:2026-W48:CGENERAL",
        "digest:2026-W48:CSALES",
    ]


async def test_a_restart_mid_send_sends_the_digest_once(
    app: Flywheel, clock: FrozenClock, migrated_url: str
) -> None:
    await add_workspace(
        app, "demo", platform="console", timezone="Europe/London", digest_channels=["general"]
    )
    clock.set(utc(11, 30, 9, 5))
    await run_sweeps(app)
    # A dispatcher takes the row and dies before it is sent.
    [taken] = await outbox.claim(
        app.engine, worker="dead", now=clock.now(), limit=10, lease=timedelta(seconds=60)
    )
    restarted = build(load_settings(database_url=migrated_url, _env_file=None), clock=clock)
    screen = io.StringIO()
    restarted.add_sender(ConsoleSender(Screen(screen)))
    try:
        await run_sweeps(restarted)
        assert await restarted.dispatcher.drain() == 0  # still leased by the dead worker
        clock.advance(seconds=61)
        await run_sweeps(restarted)
        assert await restarted.dispatcher.drain() == 1
        await run_sweeps(restarted)
        assert await restarted.dispatcher.drain() == 0
    finally:
        await restarted.close()
    assert screen.getvalue().count("[#general] == Flywheel weekly") == 1
    async with app.sessions() as session:
        digest = (await session.exec(select(Digest).where(Digest.channel == "general"))).one()
    assert (taken.target, digest.status) == ({"channel": "general"}, "sent")


async def test_a_digest_that_was_sent_cannot_become_failed(
    app: Flywheel, clock: FrozenClock
) -> None:
    await add_workspace(app, "TPARIS", timezone="Europe/Paris", digest_channels=["CGENERAL"])
    clock.set(utc(11, 30, 8))
    await run_sweeps(app)
    async with transaction(app.sessions) as session:
        digest = (await session.exec(select(Digest).where(Digest.channel == "CGENERAL"))).one()
        assert digest.status == DigestStatus.QUEUED
        assert await move_digest(session, digest, DigestStatus.SENT)
        # Read again: the digest as another worker would find it now.
        await session.refresh(digest)
        with pytest.raises(InvalidTransition, match="is sent, so it can't be failed"):
            await move_digest(session, digest, DigestStatus.FAILED)
        # A worker holding the digest as it was read, queued, loses the race: nothing moves.
        stale = Digest.model_validate(digest.model_dump() | {"status": DigestStatus.QUEUED})
        assert not await move_digest(session, stale, DigestStatus.FAILED)
    async with app.sessions() as session:
        statuses = (await session.exec(select(Digest.channel, Digest.status))).all()
    assert sorted(statuses) == [(digest_sweep.NOTES, "sent"), ("CGENERAL", "sent")]


async def test_a_quiet_week_is_short_and_lists_the_open_requests(
    app: Flywheel, clock: FrozenClock
) -> None:
    workspace_id = await add_workspace(
        app, "TPARIS", timezone="Europe/Paris", digest_channels=["CGENERAL"]
    )
    async with transaction(app.sessions) as session:
        alice = Member(
            workspace_id=workspace_id, user_id="UALICE", created_at=START, updated_at=START
        )
        session.add(alice)
        await session.flush()
        for topic in ("Zero-downtime Oracle migration", "SSO with Okta"):
            session.add(
                ContentRequest(
                    workspace_id=workspace_id,
                    requester_id=alice.id or 0,
                    topic=topic,
                    created_at=utc(10, 1, 9),
                    updated_at=utc(10, 1, 9),
                )
            )
    clock.set(utc(11, 30, 8))
    await run_sweeps(app)
    async with app.sessions() as session:
        row = (await session.exec(select(OutboxMessage))).one()
    message = Message.model_validate(row.payload)
    assert message.text == (
        "Flywheel weekly, 23 – 29 Nov 2026: a quiet week. 2 requests still need an expert."
    )
    assert not [b for b in message.blocks if isinstance(b, Image)]
    sections = [b for b in message.blocks if isinstance(b, Section)]
    assert "A quiet week" in sections[0].text
    assert [s.button.action for s in sections if s.button] == ["digest_claim", "digest_claim"]
    assert len(message.blocks) <= 8


async def test_a_quiet_week_with_nothing_open_still_invites_a_request(
    app: Flywheel, clock: FrozenClock
) -> None:
    await add_workspace(app, "TPARIS", timezone="Europe/Paris", digest_channels=["CGENERAL"])
    clock.set(utc(11, 30, 8))
    await run_sweeps(app)
    async with app.sessions() as session:
        row = (await session.exec(select(OutboxMessage))).one()
    message = Message.model_validate(row.payload)
    assert message.text == "Flywheel weekly, 23 – 29 Nov 2026: a quiet week."
    buttons = [b for b in message.blocks if b.kind == "buttons"]
    assert [x.action for x in buttons[0].buttons] == ["request_open"]  # type: ignore[union-attr]
