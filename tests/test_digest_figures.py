"""Digest figures against hand-computed expectations on one fixed week, on both databases.

The workspace is in Europe/Paris with the default schedule (Monday 09:00), so the digest
sent on Monday 30 November 2026 reports on 23 – 29 November, Paris time: from 22 November
23:00 UTC to 29 November 23:00 UTC. Some rows sit just either side of those edges.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from handlers.core import workspace_settings
from handlers.core.workspace_settings import WorkspaceSettings
from handlers.impact import digest_figures, digest_message, digest_schedule
from handlers.impact import people as by_person
from handlers.impact.totals import Totals
from handlers.sharing import visits
from storage.db import SessionFactory, create_engine, session_factory, transaction
from storage.models import (
    ContentRequest,
    Draft,
    Member,
    Post,
    Share,
    TrackedLink,
    Vote,
    Win,
    Workspace,
)

SEND = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)  # Monday 09:00 in Paris
PEOPLE = ("UADMIN", "UALICE", "UBOB", "UCAROL", "UDAN", "UERIN", "UFRANK")
SETTINGS = WorkspaceSettings(timezone="Europe/Paris", digest_channels=["C0GENERAL"])


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


async def seed_week(sessions: SessionFactory, workspace_id: int) -> dict[str, int]:
    """The fixed data set: members (created if missing), requests, posts, shares, clicks, wins.

    Returns ids by name: people by user id, requests R1–R5, posts P1–P3.
    """
    ids: dict[str, int] = {}
    async with transaction(sessions) as session:
        for user in PEOPLE:
            found = await session.exec(
                Member.__table__.select().where(  # type: ignore[attr-defined]
                    Member.workspace_id == workspace_id, Member.user_id == user
                )
            )
            row = found.first()
            if row is None:
                member = Member(
                    workspace_id=workspace_id,
                    user_id=user,
                    name=user[1:].title(),
                    is_platform_admin=user == "UADMIN",
                    created_at=at(1, 0),
                    updated_at=at(1, 0),
                )
                session.add(member)
                await session.flush()
                ids[user] = member.id or 0
            else:
                ids[user] = row.id

        def request(name: str, who: str, when: datetime, status: str, **more: Any) -> None:
            record = ContentRequest(
                workspace_id=workspace_id,
                requester_id=ids[who],
                topic=f"Topic {name}",
                status=status,
                created_at=when,
                updated_at=when,
                **more,
            )
            session.add(record)
            pending.append((name, record))

        pending: list[tuple[str, Any]] = []
        request("R5", "UDAN", at(10, 10), "declined")
        request(
            "R1", "UALICE", at(16, 10), "published", assignee_id=ids["UBOB"], claimed_at=at(17, 10)
        )
        request(
            "R4", "UALICE", at(22, 22, 30), "published", assignee_id=ids["UBOB"],
            claimed_at=at(23, 12),
        )  # fmt: skip
        request("R2", "UALICE", at(23, 9), "open")
        request(
            "R3", "UERIN", at(24, 9), "published", assignee_id=ids["UCAROL"], claimed_at=at(24, 10)
        )
        await session.flush()
        for name, record in pending:
            ids[name] = record.id
        posts: list[tuple[str, Any]] = []
        for name, req, author, when in (
            ("P1", "R1", "UBOB", at(19, 10)),
            ("P2", "R3", "UCAROL", at(26, 9)),
            ("P3", "R4", "UBOB", at(27, 22, 30)),
        ):
            draft = Draft(
                workspace_id=workspace_id,
                request_id=ids[req],
                author_id=ids[author],
                title=f"Post {name}",
                status="approved",
                version=1,
                created_at=when,
                updated_at=when,
            )
            session.add(draft)
            await session.flush()
            post = Post(
                workspace_id=workspace_id,
                request_id=ids[req],
                draft_id=draft.id or 0,
                version=1,
                slug=name.lower(),
                title=f"Post {name}",
                author_id=ids[author],
                approved_by_id=ids["UADMIN"],
                published_at=when,
            )
            session.add(post)
            posts.append((name, post))
        await session.flush()
        for name, post in posts:
            ids[name] = post.id
        session.add(
            Vote(
                workspace_id=workspace_id,
                request_id=ids["R2"],
                member_id=ids["UADMIN"],
                created_at=at(25, 10),
            )
        )
        links: dict[tuple[str, str, str], int] = {}

        async def share(post: str, who: str, network: str, when: datetime) -> None:
            link = TrackedLink(
                workspace_id=workspace_id,
                post_id=ids[post],
                member_id=ids[who],
                network=network,
                created_at=when,
            )
            session.add(link)
            await session.flush()
            links[(post, who, network)] = link.id or 0
            session.add(
                Share(
                    workspace_id=workspace_id,
                    post_id=ids[post],
                    member_id=ids[who],
                    network=network,
                    link_id=link.id or 0,
                    at=when,
                )
            )

        await share("P1", "UDAN", "linkedin", at(19, 12))
        await share("P1", "UDAN", "email", at(24, 10))
        await share("P2", "UDAN", "x", at(26, 10))
        await share("P2", "UERIN", "linkedin", at(26, 11))
        await share("P3", "UFRANK", "linkedin", at(28, 10))

        async def clicks(
            post: str, who: str, network: str, times: list[datetime], **flags: bool
        ) -> None:
            # Through the click writer, which also keeps the tally the figures read.
            await visits.write(
                session,
                [
                    {
                        "workspace_id": workspace_id,
                        "link_id": links[(post, who, network)],
                        "post_id": ids[post],
                        "member_id": ids[who],
                        "network": network,
                        "at": when,
                        "is_preview": flags.get("is_preview", False),
                        "is_repeat": flags.get("is_repeat", False),
                        "visitor": f"v{post}{who}{n}{sorted(flags)}",
                    }
                    for n, when in enumerate(times)
                ],
            )

        await clicks("P1", "UDAN", "linkedin", [at(19, 13), at(19, 14), at(22, 22, 59)])
        await clicks("P1", "UDAN", "linkedin", [at(19, 12, 30)], is_preview=True)
        await clicks("P2", "UDAN", "x", [at(26, 10, m) for m in (10, 20, 30, 40, 50)])
        await clicks("P2", "UDAN", "x", [at(26, 10, 11)], is_repeat=True)
        await clicks("P2", "UDAN", "x", [at(26, 10, 1), at(26, 10, 2)], is_preview=True)
        await clicks("P2", "UERIN", "linkedin", [at(26, 12), at(26, 13), at(26, 14)])
        await clicks("P2", "UERIN", "linkedin", [at(29, 23, 30)])  # Monday 00:30 in Paris
        await clicks("P3", "UFRANK", "linkedin", [at(28, 11), at(28, 12)])
        session.add(
            Win(
                workspace_id=workspace_id,
                member_id=ids["UALICE"],
                post_id=ids["P2"],
                kind="deal",
                account="Globex",
                description="Globex signed after reading the migration guide",
                value=50000,
                at=at(27, 9),
            )
        )
        session.add(
            Win(
                workspace_id=workspace_id,
                member_id=ids["UDAN"],
                kind="meeting",
                account="Initech",
                description="Intro call booked with Initech",
                at=at(28, 15),
            )
        )
    return ids


@pytest.fixture
async def world(migrated_url: str) -> AsyncIterator[tuple[SessionFactory, int, dict[str, int]]]:
    engine = create_engine(migrated_url)
    sessions = session_factory(engine)
    async with transaction(sessions) as session:
        workspace = Workspace(platform="slack", external_id="T0001", created_at=at(1, 0))
        workspace_settings.save(workspace, SETTINGS)
        session.add(workspace)
        await session.flush()
        workspace_id = workspace.id or 0
    ids = await seed_week(sessions, workspace_id)
    yield sessions, workspace_id, ids
    await engine.dispose()


async def test_the_schedule_reports_on_the_local_week_before_digest_day() -> None:
    assert digest_schedule.last_scheduled(SETTINGS, SEND) == SEND
    assert digest_schedule.last_scheduled(SETTINGS, at(30, 7, 59)) == at(23, 8)
    assert digest_schedule.next_scheduled(SETTINGS, at(30, 7, 59)) == SEND
    weeks = digest_schedule.weeks_for(SETTINGS, SEND)
    assert len(weeks) == 8
    assert (weeks[-1].start, weeks[-1].end) == (at(22, 23), at(29, 23))
    assert weeks[0].start == datetime(2026, 10, 4, 22, 0, tzinfo=UTC)  # summer time then
    assert digest_schedule.iso_week(weeks[-1].start.date()) == "2026-W47"  # UTC date: Sunday
    assert digest_schedule.iso_week(datetime(2026, 11, 23).date()) == "2026-W48"


async def test_figures_match_the_hand_computed_week(
    world: tuple[SessionFactory, int, dict[str, int]],
) -> None:
    sessions, workspace_id, ids = world
    async with sessions() as session:
        f = await digest_figures.build(session, workspace_id, SETTINGS, SEND)
    assert f.week == "2026-W48"
    assert (f.first_day.isoformat(), f.last_day.isoformat()) == ("2026-11-23", "2026-11-29")
    assert f.this == Totals(requests=2, posts=2, shares=4, clicks=10, wins=2, participants=7)
    assert f.previous == Totals(requests=2, posts=1, shares=1, clicks=3, wins=0, participants=3)
    assert [t.participants for t in f.series] == [0, 0, 0, 0, 0, 1, 3, 7]
    assert [t.requests for t in f.series] == [0, 0, 0, 0, 0, 1, 2, 2]
    assert f.weeks[-1] == "23 Nov" and f.weeks[0] == "5 Oct"
    assert f.average_participants() == 1.0
    assert f.first_timers == ["UERIN", "UCAROL", "UADMIN", "UFRANK"]
    assert f.median_seconds == 3.5 * 86400
    assert [(r.label, r.clicks, r.shares, r.author) for r in f.top_posts] == [
        ("Post P2", 8, 2, "UCAROL"),
        ("Post P3", 2, 1, "UBOB"),
        ("Post P1", 0, 1, "UBOB"),
    ]
    assert f.posts_total == 3
    assert [(r.label, r.clicks, r.shares) for r in f.top_sharers] == [
        ("UDAN", 5, 2),
        ("UERIN", 3, 1),
        ("UFRANK", 2, 1),
    ]
    assert [(r.label, r.clicks, r.shares, r.extra) for r in f.top_experts] == [
        ("UCAROL", 8, 2, 1),
        ("UBOB", 2, 2, 1),
    ]
    assert [(w.member, w.kind, w.account, w.value, w.post) for w in f.wins] == [
        ("UDAN", "meeting", "Initech", None, None),
        ("UALICE", "deal", "Globex", 50000, "Post P2"),
    ]
    assert [(r.id, r.votes, r.status) for r in f.open_requests] == [
        (ids["R2"], 1, "open"),
        (ids["R5"], 0, "declined"),
    ]
    assert f.open_total == 2

    message = digest_message.message(
        f, chart_url="https://f.test/c/x.png", page_url="https://f.test/d/y"
    )
    text = "\n".join(
        getattr(b, "text", "") + "\n".join(getattr(b, "fields", ())) for b in message.blocks
    )
    assert "*Requests*\n2  (same as the week before)" in text
    assert "*Shares*\n4  (▲ 3 on the week before)" in text
    assert "*Wins*\n2  (up from none the week before)" in text
    assert "7 people took part, against 1 a week" in text
    assert "2.5 clicks per share" in text
    assert "Median time from request to published: 3 days 12 hours" in text
    assert "1. *Post P2* by <@UCAROL> — 8 clicks, 2 shares" in text
    assert "“Globex signed after reading the migration guide” — <@UALICE>, a deal with" in text
    assert message.text.startswith("Flywheel weekly, 23 – 29 Nov 2026: 2 requests")
    claims = [b.button for b in message.blocks if getattr(b, "button", None)]
    assert [(c.action, c.value) for c in claims if c] == [
        ("digest_claim", str(ids["R2"])),
        ("digest_claim", str(ids["R5"])),
    ]


async def test_personal_figures_and_what_requests_became(
    world: tuple[SessionFactory, int, dict[str, int]],
) -> None:
    sessions, workspace_id, ids = world
    period = digest_schedule.weeks_for(SETTINGS, SEND)[-1]
    async with sessions() as session:
        people = await by_person.people(session, workspace_id, period)
        outcomes = await by_person.request_outcomes(session, workspace_id, period)
        alone = await by_person.people(session, workspace_id, period, ids["UCAROL"])
    carol = people[ids["UCAROL"]]
    assert (carol.post_shares, carol.post_clicks, carol.post_wins, carol.sharers, carol.posts) == (
        2,
        8,
        1,
        ("UDAN", "UERIN"),
        1,
    )
    assert alone == {ids["UCAROL"]: carol}
    bob = people[ids["UBOB"]]
    assert (bob.post_shares, bob.post_clicks, bob.sharers) == (2, 2, ("UDAN", "UFRANK"))
    dan = people[ids["UDAN"]]
    assert (dan.shares, dan.clicks, dan.wins_logged) == (2, 5, 1)
    assert (people[ids["UERIN"]].shares, people[ids["UERIN"]].requests) == (1, 1)
    assert ids["UADMIN"] not in people
    assert [(o.topic, o.status, o.shares, o.clicks, o.wins) for o in outcomes] == [
        ("Topic R1", "published", 1, 0, 0),
        ("Topic R4", "published", 1, 2, 0),
        ("Topic R2", "open", 0, 0, 0),
        ("Topic R3", "published", 2, 8, 1),
    ]
