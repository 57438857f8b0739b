"""Routing across simulated days: pings, claims, suggestions, declines, timeouts, reminders.

Time only moves when a test moves the FrozenClock; every sweep is run twice somewhere to
show it sends nothing twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlmodel import col, select

from bot.app import Flywheel, build
from bot.settings import load_settings
from handlers.core.errors import InvalidTransition
from handlers.core.interactions import Action, Actor, Command, Origin, Submission
from handlers.core.ports import Delivered, Delivery
from handlers.core.workspace_settings import WorkspaceSettings
from handlers.routing.ping_status import PingStatus, move_ping, sources
from storage.db import transaction
from storage.models import ContentRequest, OutboxMessage, Ping, Workspace
from testing.fakes.clock import FrozenClock

ACME = Origin(platform="console", workspace_id="acme")
ALICE = Actor("alice", "Alice", tz="Europe/London")  # a seller, the requester
KAI = Actor("kai", "Kai", tz="Europe/Paris")  # kubernetes
PIA = Actor("pia", "Pia", tz="Europe/Paris")  # postgresql and oracle migrations
OLE = Actor("ole", "Ole", tz="Asia/Tokyo")  # postgresql too, far away
SAM = Actor("sam", "Sam", tz="Europe/London")  # sales enablement: unrelated
ADA = Actor("ada", "Ada", tz="Europe/London", is_platform_admin=True)
QUESTION = "How do we migrate Oracle to PostgreSQL without downtime?"
MONDAY_10 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


@pytest.fixture
async def app(migrated_url: str, clock: FrozenClock) -> AsyncIterator[Flywheel]:
    clock.set(MONDAY_10)
    flywheel = build(load_settings(database_url=migrated_url, _env_file=None), clock=clock)
    for actor, topics, bio in [
        (KAI, "kubernetes, helm, autoscaling", "Platform engineer, runs our clusters."),
        (PIA, "postgresql, oracle, database migration", "DBA. Moved three customers off Oracle."),
        (OLE, "postgresql, replication", "Consultant in Tokyo."),
        (SAM, "sales enablement, pricing", "Enablement lead."),
    ]:
        reply = await flywheel.router.dispatch(
            Submission(
                ACME, actor, "expert_form", {"other_topics": topics, "bio": bio, "capacity": "2"}
            )
        )
        assert reply.errors == {}
    yield flywheel
    await flywheel.close()


async def ask(
    app: Flywheel, topic: str = QUESTION, actor: Actor = ALICE, **values: str
) -> ContentRequest:
    reply = await app.router.dispatch(
        Submission(ACME, actor, "request_form", {"topic": topic, "similar": "new", **values})
    )
    assert reply.errors == {}, reply.errors
    async with app.sessions() as session:
        return (
            await session.exec(select(ContentRequest).order_by(col(ContentRequest.id).desc()))
        ).first()  # type: ignore[return-value]


async def pings(app: Flywheel) -> dict[str, str]:
    """Each pinged expert's user id → ping status."""
    async with app.sessions() as session:
        rows = (await session.exec(select(Ping, col(Ping.member_id)).order_by(Ping.id))).all()
        from storage.models import Member

        result = {}
        for ping, member_id in rows:
            member = await session.get(Member, member_id)
            assert member is not None
            result[member.user_id] = ping.status
        return result


async def outbox(app: Flywheel, **where: Any) -> list[OutboxMessage]:
    async with app.sessions() as session:
        rows = (await session.exec(select(OutboxMessage).order_by(OutboxMessage.id))).all()
    return [r for r in rows if all(r.target.get(k) == v for k, v in where.items())]


def texts(rows: list[OutboxMessage]) -> list[str]:
    return [str(r.payload.get("text", "")) for r in rows]


async def settle(app: Flywheel, *, twice: bool = True) -> None:
    await app.sweeper.run_once()
    if twice:
        await app.sweeper.run_once()


async def configure(app: Flywheel, **changes: Any) -> None:
    async with transaction(app.sessions) as session:
        workspace = (await session.exec(select(Workspace))).one()
        settings = WorkspaceSettings.model_validate({**workspace.settings, **changes})
        workspace.settings = settings.model_dump()
        session.add(workspace)


async def test_the_best_experts_are_pinged_with_why(app: Flywheel) -> None:
    await ask(app, tags="postgresql")
    await settle(app)
    assert await pings(app) == {"pia": "pending", "ole": "pending"}
    [to_pia] = [r for r in await outbox(app, user="pia") if r.ref_key]
    blocks = to_pia.payload["blocks"]
    why = next(b["text"] for b in blocks if b["kind"] == "context")
    assert "oracle" in why and "postgresql" in why
    buttons = next(b["buttons"] for b in blocks if b["kind"] == "buttons")
    assert [b["action"] for b in buttons] == ["request_claim", "request_suggest", "request_decline"]
    assert "@alice" not in why and "alice" in blocks[0]["text"]


async def test_quiet_hours_queue_the_ping_for_the_morning(app: Flywheel) -> None:
    await ask(app)
    await settle(app)
    [to_ole] = [r for r in await outbox(app, user="ole") if r.ref_key]
    # 10:00 UTC is 19:00 in Tokyo: the ping waits for 09:00 Tuesday in Tokyo (00:00 UTC).
    assert to_ole.next_attempt_at == datetime(2026, 11, 24, 0, 0, tzinfo=UTC)
    [to_pia] = [r for r in await outbox(app, user="pia") if r.ref_key]
    assert to_pia.next_attempt_at == MONDAY_10


async def test_first_claim_wins_and_the_others_learn_who(app: Flywheel) -> None:
    request = await ask(app, needed_by="2026-12-04")
    await settle(app)
    reply = await app.router.dispatch(Action(ACME, PIA, "request_claim", str(request.id)))
    assert reply.message is not None and "It's yours" in reply.message.text
    assert await pings(app) == {"pia": "claimed", "ole": "withdrawn"}
    # Ole's ping was still waiting for Tokyo's morning: it is withdrawn, never sent.
    [to_ole] = [r for r in await outbox(app, user="ole") if r.ref_key]
    assert to_ole.status == "cancelled"
    to_alice = texts(await outbox(app, user="alice"))
    assert any("Pia is on" in t for t in to_alice)
    again = await app.router.dispatch(Action(ACME, OLE, "request_claim", str(request.id)))
    assert (
        again.message is not None
        and again.message.text == "This request is already claimed by <@pia>."
    )
    stranger = await app.router.dispatch(Action(ACME, SAM, "request_claim", str(request.id)))
    assert stranger.message is not None and "wasn't sent to you" in stranger.message.text


class RecordingSender:
    """Stands in for a platform: records deliveries and says where each one landed."""

    platform = "console"

    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []

    async def send(self, delivery: Delivery) -> Delivered:
        self.deliveries.append(delivery)
        return Delivered(
            channel=f"D-{delivery.target.get('user', '?')}", message_id=str(len(self.deliveries))
        )


async def test_a_claim_updates_sent_pings_in_place(app: Flywheel) -> None:
    sender = RecordingSender()
    app.add_sender(sender)
    app.clock.set(datetime(2026, 11, 24, 8, 30, tzinfo=UTC))  # 09:30 in Paris, 17:30 in Tokyo
    request = await ask(app, tags="postgresql")
    await settle(app)
    await app.dispatcher.drain()
    sent_pings = [
        d for d in sender.deliveries if d.kind == "message" and "Can you help" in d.payload["text"]
    ]
    assert sorted(d.target["user"] for d in sent_pings) == ["ole", "pia"]
    await app.router.dispatch(Action(ACME, OLE, "request_claim", str(request.id)))
    await app.dispatcher.drain()
    updates = {d.channel: d for d in sender.deliveries if d.kind == "update"}
    assert set(updates) == {"D-ole", "D-pia"}
    assert "Claimed by <@ole>" in updates["D-pia"].payload["text"]
    assert "You claimed" in updates["D-ole"].payload["text"]
    original = next(d for d in sent_pings if d.target["user"] == "pia")
    assert updates["D-pia"].message_id == str(sender.deliveries.index(original) + 1)


async def test_decline_moves_on_to_the_next_candidate(app: Flywheel) -> None:
    await configure(app, experts_per_round=1)
    request = await ask(app, tags="postgresql, oracle")
    await settle(app)
    assert await pings(app) == {"pia": "pending"}
    form = await app.router.dispatch(Action(ACME, PIA, "request_decline", str(request.id)))
    assert form.form is not None and form.form.form_id == "decline_form"
    await app.router.dispatch(
        Submission(ACME, PIA, "decline_form", {"reason": "On leave"}, state=str(request.id))
    )
    await settle(app)
    assert await pings(app) == {"pia": "declined", "ole": "pending"}
    stranger = await app.router.dispatch(Action(ACME, SAM, "request_decline", str(request.id)))
    assert stranger.message is not None and "wasn't sent to you" in stranger.message.text
    assert stranger.form is None


async def test_silence_times_out_and_escalates_then_declines_honestly(app: Flywheel) -> None:
    await configure(app, experts_per_round=1, ping_timeout_hours=4, escalation_channel="C-ESC")
    request = await ask(app, tags="postgresql, oracle")
    await app.router.dispatch(Action(ACME, KAI, "request_vote", str(request.id)))
    await settle(app)
    assert await pings(app) == {"pia": "pending"}
    app.clock.advance(hours=3)
    await settle(app)
    assert await pings(app) == {"pia": "pending"}
    app.clock.advance(hours=2)  # 15:00 UTC: Pia's 4 working hours are over
    await settle(app)
    assert await pings(app) == {"pia": "expired", "ole": "pending"}
    app.clock.advance(days=3)
    await settle(app)
    # Kai voted for it; Sam knows nothing of databases: nobody is left to ask.
    assert await pings(app) == {"pia": "expired", "ole": "expired"}
    async with app.sessions() as session:
        current = await session.get(ContentRequest, request.id)
        assert current is not None and current.status == "declined"
    assert any("couldn't find an expert" in t for t in texts(await outbox(app, user="alice")))
    [escalation] = await outbox(app, channel="C-ESC")
    assert "Unmet demand" in str(escalation.payload["text"])
    stats = await app.router.dispatch(Command(ACME, ADA, "stats"))
    assert stats.message is not None
    assert any(QUESTION in str(getattr(b, "text", "")) for b in stats.message.blocks)
    home = await app.router.dispatch(Command(ACME, SAM, "home"))
    assert home.message is not None
    assert "Unmet demand" in [getattr(b, "text", "") for b in home.message.blocks]


async def test_one_reminder_the_day_before_it_is_due(app: Flywheel) -> None:
    request = await ask(app, tags="postgresql", needed_by="2026-11-27")  # a Friday
    await settle(app)
    await app.router.dispatch(Action(ACME, PIA, "request_claim", str(request.id)))
    await settle(app)
    assert not [t for t in texts(await outbox(app, user="pia")) if "reminder" in t]
    app.clock.set(datetime(2026, 11, 26, 7, 0, tzinfo=UTC))  # Thursday 08:00 in Paris
    await settle(app)
    app.clock.advance(hours=5)
    await settle(app)
    [reminder] = [r for r in await outbox(app, user="pia") if "reminder" in str(r.payload["text"])]
    # Queued for 09:00 Paris, inside working hours.
    assert reminder.next_attempt_at == datetime(2026, 11, 26, 8, 0, tzinfo=UTC)


async def test_suggesting_someone_pings_them_and_refuses_the_wrong_people(app: Flywheel) -> None:
    await configure(app, experts_per_round=1)
    request = await ask(app, tags="postgresql, oracle")
    await settle(app)
    form = await app.router.dispatch(Action(ACME, PIA, "request_suggest", str(request.id)))
    assert form.form is not None and form.form.form_id == "suggest_form"

    async def suggest(user: str) -> dict[str, str]:
        reply = await app.router.dispatch(
            Submission(
                ACME,
                PIA,
                "suggest_form",
                {"colleague": user, "note": "Did it at Globex"},
                state=str(request.id),
            )
        )
        return reply.errors

    assert "That's you" in (await suggest("pia"))["colleague"]
    assert "They asked for it" in (await suggest("alice"))["colleague"]
    assert await suggest("kai") == {}
    assert await pings(app) == {"pia": "passed", "kai": "pending"}
    [to_kai] = [r for r in await outbox(app, user="kai") if r.ref_key]
    why = next(b["text"] for b in to_kai.payload["blocks"] if b["kind"] == "context")
    assert "suggested by <@pia>" in why and "Globex" in why
    outsider = await app.router.dispatch(
        Submission(ACME, SAM, "suggest_form", {"colleague": "kai"}, state=str(request.id))
    )
    assert outsider.message is not None and "wasn't sent to you" in outsider.message.text


async def test_capacity_snooze_and_the_weekly_cap_are_respected(app: Flywheel) -> None:
    await configure(app, weekly_ping_cap=1, experts_per_round=3)
    await app.router.dispatch(
        Submission(
            ACME,
            OLE,
            "expert_form",
            {
                "other_topics": "postgresql, replication",
                "capacity": "2",
                "snoozed_until": "2026-12-31",
            },
        )
    )
    await ask(app, tags="postgresql")
    await settle(app)
    assert await pings(app) == {"pia": "pending"}
    await ask(
        app,
        "Oracle licence costs after a PostgreSQL migration",
        actor=KAI,
        tags="postgresql, oracle",
    )
    await settle(app)
    # Pia had her one ping this week; Ole is snoozed: nobody else knows databases.
    assert list((await pings(app)).values()).count("pending") == 1


async def test_claims_race_and_exactly_one_wins(app: Flywheel) -> None:
    request = await ask(app, tags="postgresql")
    app.clock.set(datetime(2026, 11, 24, 1, 0, tzinfo=UTC))
    await settle(app)
    replies = await asyncio.gather(
        app.router.dispatch(Action(ACME, PIA, "request_claim", str(request.id))),
        app.router.dispatch(Action(ACME, OLE, "request_claim", str(request.id))),
        return_exceptions=True,
    )
    messages = sorted(
        r.message.text for r in replies if not isinstance(r, BaseException) and r.message
    )  # type: ignore[union-attr]
    assert len(messages) == 2, replies
    assert sum("It's yours" in m for m in messages) == 1
    assert sum("already claimed by" in m for m in messages) == 1
    assert sorted((await pings(app)).values()) == ["claimed", "withdrawn"]


def test_a_ping_moves_only_as_its_table_allows() -> None:
    assert sources(PingStatus.EXPIRED) == [PingStatus.PENDING]
    assert sources(PingStatus.WITHDRAWN) == [PingStatus.PENDING]
    late = Ping(workspace_id=1, request_id=1, member_id=1, round=1, status="expired")
    move_ping(late, PingStatus.CLAIMED)  # a late answer still counts while the request is open
    assert late.status == PingStatus.CLAIMED
    with pytest.raises(InvalidTransition, match="already answered"):
        move_ping(late, PingStatus.DECLINED)
    assert late.status == PingStatus.CLAIMED


LEO = Actor("leo", "Leo", tz="America/Los_Angeles")  # postgresql, on the west coast


async def test_a_due_date_is_a_day_in_the_claimants_own_time_zone(app: Flywheel) -> None:
    reply = await app.router.dispatch(
        Submission(ACME, LEO, "expert_form", {"other_topics": "postgresql", "capacity": "2"})
    )
    assert reply.errors == {}
    # Tuesday 20:00 UTC: already Wednesday 05:00 in Tokyo, still Tuesday 12:00 in Los Angeles.
    app.clock.set(datetime(2026, 11, 24, 20, 0, tzinfo=UTC))
    claimed: dict[str, str] = {}
    for expert in (OLE, LEO):
        request = await ask(app, topic=f"Replication for {expert.name}", tags="postgresql")
        await settle(app)
        await app.router.dispatch(Action(ACME, expert, "request_claim", str(request.id)))
        [update] = [r for r in await outbox(app) if "You claimed" in str(r.payload)]
        claimed[expert.user_id] = str(update.payload)
        async with transaction(app.sessions) as session:
            for row in (await session.exec(select(OutboxMessage))).all():
                await session.delete(row)
    # A week from now, as each of them counts days.
    assert "Wed 02 Dec" in claimed["ole"] and "Tue 01 Dec" not in claimed["ole"]
    assert "Tue 01 Dec" in claimed["leo"] and "Wed 02 Dec" not in claimed["leo"]


async def test_today_is_the_workspaces_for_someone_without_a_time_zone(app: Flywheel) -> None:
    await configure(app, timezone="Asia/Tokyo")
    app.clock.set(datetime(2026, 11, 24, 20, 0, tzinfo=UTC))  # Wednesday 05:00 in Tokyo
    nobody_knows = Actor("zed", "Zed", tz=None)
    reply = await app.router.dispatch(
        Submission(
            ACME,
            nobody_knows,
            "request_form",
            {"topic": QUESTION, "similar": "new", "needed_by": "2026-11-24"},
        )
    )
    assert "needed_by" in reply.errors
    reply = await app.router.dispatch(
        Submission(
            ACME,
            nobody_knows,
            "expert_form",
            {"other_topics": "postgresql", "capacity": "2", "snoozed_until": "2026-11-24"},
        )
    )
    assert "snoozed_until" in reply.errors
