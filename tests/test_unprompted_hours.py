"""Nothing unprompted at night: messages nobody just asked for land in working hours.

A message queued with `unprompted=True` carries its recipient's working hours; the
dispatcher holds one whose window passed while it could not be sent (an outage, a backlog)
until the recipient's next working hours. Three simulated weeks of a small company check
every direct message's local time. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from adapters.limits.memory import MemoryLimiter
from bot.app import Flywheel, build
from bot.settings import load_settings
from handlers.core.context import Scope, dm
from handlers.core.errors import DomainError
from handlers.core.interactions import Action, Actor, Origin, Submission
from handlers.core.messages import notice
from handlers.core.ports import Delivered, Delivery, TransientError
from handlers.core.quiet_hours import HOURS_KEY, WorkingHours, deferred_until, hours_field
from storage.db import transaction
from storage.models import OutboxMessage, Workspace
from testing.fakes.clock import FrozenClock

SMALLCO = Origin(platform="console", workspace_id="smallco")
ALICE = Actor("alice", "Alice", tz="Europe/London")  # sells in Europe
RAJ = Actor("raj", "Raj", tz="Asia/Kolkata")  # sells in India
NINA = Actor("nina", "Nina", tz="America/New_York")
KAI = Actor("kai", "Kai", tz="Europe/Paris")
OLE = Actor("ole", "Ole", tz="Asia/Tokyo")
PEOPLE = {a.user_id: a for a in (ALICE, RAJ, NINA, KAI, OLE)}
HOURS = WorkingHours()  # the default 09:00–18:00, weekends off
MONDAY = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)
TOPICS = (
    "Zero-downtime PostgreSQL upgrades",
    "Kubernetes autoscaling for batch jobs",
    "PostgreSQL replication across regions",
    "Kubernetes cost reports for finance",
)


def local(moment: datetime, user: str) -> datetime:
    return moment.astimezone(ZoneInfo(PEOPLE[user].tz or "UTC"))


class Company:
    """The platform: records every delivery with the time it landed; can be down."""

    platform = "console"

    def __init__(self, clock: FrozenClock) -> None:
        self.clock = clock
        self.down = False
        self.landed: list[tuple[datetime, Delivery]] = []

    async def send(self, delivery: Delivery) -> Delivered:
        if self.down:
            raise TransientError("503 service unavailable")
        self.landed.append((self.clock.now(), delivery))
        return Delivered(channel=f"D-{delivery.target.get('user', '?')}", message_id="m")


@pytest.fixture
async def app(migrated_url: str, clock: FrozenClock) -> AsyncIterator[Flywheel]:
    clock.set(MONDAY)
    flywheel = build(load_settings(database_url=migrated_url, _env_file=None), clock=clock)
    yield flywheel
    await flywheel.close()


def test_a_target_without_hours_is_always_due_and_one_with_hours_waits_for_them() -> None:
    night = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)  # 04:00 in New York
    assert deferred_until(dm("nina"), night) is None
    held = {**dm("nina"), HOURS_KEY: hours_field("America/New_York", HOURS)}
    assert deferred_until(held, night) == datetime(2026, 11, 24, 14, 0, tzinfo=UTC)
    assert deferred_until(held, datetime(2026, 11, 24, 15, 0, tzinfo=UTC)) is None
    # Friday evening waits for Monday morning.
    friday_night = datetime(2026, 11, 27, 23, 30, tzinfo=UTC)
    assert deferred_until(held, friday_night) == datetime(2026, 11, 30, 14, 0, tzinfo=UTC)
    # Hours a row cannot be read from are no reason to hold a message forever.
    assert deferred_until({"user": "x", HOURS_KEY: {"start": "nine"}}, night) is None


async def test_an_unprompted_message_whose_window_passed_waits_for_the_next_one(
    app: Flywheel, clock: FrozenClock
) -> None:
    company = Company(clock)
    app.add_sender(company)
    clock.set(datetime(2026, 11, 24, 15, 0, tzinfo=UTC))  # 10:00 in New York
    await app.router.dispatch(Submission(SMALLCO, NINA, "expert_form", {"other_topics": "x"}))
    async with transaction(app.sessions) as session:
        workspace = (await session.exec(select(Workspace))).one()
        scope = Scope(session, clock, app.router.config, workspace)
        await scope.send(dm("nina"), notice("A ping"), key="unprompted", unprompted=True)
        await scope.send(dm("nina"), notice("An answer"), key="asked-for")
    company.down = True
    await app.dispatcher.drain()
    clock.set(datetime(2026, 11, 25, 4, 0, tzinfo=UTC))  # 23:00 in New York: back up
    company.down = False
    await app.dispatcher.drain()
    # The answer goes at once; the ping waits for 09:00 in New York.
    assert _texts(company) == ["An answer"]
    async with app.sessions() as session:
        held = (
            await session.exec(
                select(OutboxMessage).where(OutboxMessage.dedupe_key.endswith(":unprompted"))
            )
        ).one()
    assert held.status == "pending"
    assert held.next_attempt_at == datetime(2026, 11, 25, 14, 0, tzinfo=UTC)
    clock.set(datetime(2026, 11, 25, 14, 0, tzinfo=UTC))
    await app.dispatcher.drain()
    assert _texts(company) == ["An answer", "A ping"]


def _texts(company: Company) -> list[str]:
    """What landed, without the answers to setting the scene up."""
    texts = [str(d.payload["text"]) for _, d in company.landed]
    return [t for t in texts if not t.startswith("Your expert profile")]


@dataclass
class Inbox:
    """Pings an expert received and has not decided on yet."""

    waiting: list[int]
    decided: set[int]


async def test_three_weeks_of_a_small_company_send_nothing_unprompted_at_night(
    app: Flywheel, clock: FrozenClock
) -> None:
    rng = random.Random(16)
    company = Company(clock)
    app.add_sender(company)
    # The platform's pauses (after an outage) on the simulated clock, as the rows' times are.
    app.dispatcher.limiter = MemoryLimiter(timer=lambda: clock.now().timestamp())
    clock.set(MONDAY + timedelta(hours=9))
    for expert, topics in (
        (NINA, "postgresql, kubernetes"),
        (KAI, "kubernetes"),
        (OLE, "postgresql"),
    ):
        await app.router.dispatch(
            Submission(SMALLCO, expert, "expert_form", {"other_topics": topics})
        )
    await app.router.dispatch(Submission(SMALLCO, ALICE, "expert_form", {"other_topics": "sales"}))
    await app.dispatcher.drain()
    # The answers to setting the profiles up are not part of the weeks.
    seen = setup = len(company.landed)
    inboxes = {u: Inbox([], set()) for u in ("nina", "kai", "ole")}
    # The platform is down from Tuesday of the second week, 12:00 UTC (07:00 in New York),
    # to 04:00 UTC the next day: New York's whole working day passes meanwhile.
    outage = (MONDAY + timedelta(days=8, hours=12), MONDAY + timedelta(days=9, hours=4))
    asked = 0
    for hour in range(9, 21 * 24):
        now = MONDAY + timedelta(hours=hour)
        clock.set(now)
        company.down = outage[0] <= now < outage[1]
        for requester, local_hour in ((ALICE, 10), (RAJ, 11)):
            here = local(now, requester.user_id)
            if here.weekday() < 5 and here.hour == local_hour:
                topic = f"{TOPICS[asked % len(TOPICS)]} ({here:%a %d %b})"
                needed = (here.date() + timedelta(days=4)).isoformat()
                reply = await app.router.dispatch(
                    Submission(
                        SMALLCO,
                        requester,
                        "request_form",
                        {"topic": topic, "similar": "new", "needed_by": needed},
                    )
                )
                assert reply.errors == {}
                asked += 1
        await app.sweeper.run_once()
        await app.dispatcher.drain()
        for _, delivery in company.landed[seen:]:
            user = str(delivery.target.get("user", ""))
            if user in inboxes and "Can you help" in str(delivery.payload.get("text")):
                request_id = _request_of(delivery)
                inboxes[user].waiting.append(request_id)
        seen = len(company.landed)
        for user, inbox in inboxes.items():
            if not HOURS.allows(local(now, user)):
                continue
            for request_id in list(inbox.waiting):
                inbox.waiting.remove(request_id)
                choice = rng.random()
                try:
                    if choice < 0.4:
                        await app.router.dispatch(
                            Action(SMALLCO, PEOPLE[user], "request_claim", str(request_id))
                        )
                    elif choice < 0.6:
                        await app.router.dispatch(
                            Submission(SMALLCO, PEOPLE[user], "decline_form", {}, str(request_id))
                        )
                    # Otherwise the ping is ignored, and expires.
                except DomainError:
                    pass
        await app.dispatcher.drain()

    direct = [
        (at, str(d.target["user"]), str(d.payload.get("text", "")))
        for at, d in company.landed[setup:]
        if d.kind == "message" and d.target.get("user")
    ]
    assert asked >= 28 and len(direct) > 60
    at_night = [
        f"{local(at, user):%a %H:%M} {user}: {text[:60]}"
        for at, user, text in direct
        if not HOURS.allows(local(at, user))
    ]
    assert at_night == [], "\n".join(at_night)
    # New York's pings queued during the outage went out the next working morning there.
    after_outage = [
        local(at, user)
        for at, user, text in direct
        if user == "nina" and outage[1] <= at < outage[1] + timedelta(days=1)
    ]
    assert after_outage and min(after_outage).time() == time(9, 0)
    assert {user for _, user, _ in direct} >= {"alice", "raj", "nina", "kai", "ole"}
    assert any("couldn't find an expert" in text for _, _, text in direct)


def _request_of(delivery: Delivery) -> int:
    for block in delivery.payload["blocks"]:
        if block["kind"] == "buttons":
            return int(block["buttons"][0]["value"])
    raise AssertionError("a ping without buttons")
