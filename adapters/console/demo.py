"""The console's demo workspace: a few colleagues, experts and open requests, so a newcomer
sees the loop at once. Seeding is idempotent: every row is found by its natural key first."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlmodel import select

from handlers.core import workspace_settings
from handlers.core.interactions import Actor, Origin
from handlers.core.lifecycle import Status
from handlers.core.members import ensure_member, ensure_workspace
from handlers.core.ports import Clock
from storage.db import SessionFactory, transaction
from storage.models import ContentRequest, ExpertProfile, Member, Vote
from storage.upsert import insert_ignore

WORKSPACE_ID = "demo"
WORKSPACE_NAME = "Demo"
TIMEZONE = "Europe/London"
EMAIL_DOMAIN = "demo.test"
DEFAULT_USER = "alice"
# The console's own admins: a terminal has no workspace owner to ask.
ADMINS = frozenset({"dana"})

ORIGIN = Origin(
    platform="console",
    workspace_id=WORKSPACE_ID,
    workspace_name=WORKSPACE_NAME,
    reply_to=None,
    can_open_forms=True,
)


@dataclass(frozen=True, slots=True)
class Colleague:
    user_id: str
    role: str
    topics: tuple[str, ...] = ()
    bio: str = ""
    capacity: int = 2


@dataclass(frozen=True, slots=True)
class DemoRequest:
    requester: str
    topic: str
    context: str
    audience: str
    tags: tuple[str, ...]
    asked_days_ago: int
    needed_in_days: int
    plus_ones: tuple[str, ...]


COLLEAGUES = (
    Colleague("alice", "account executive, asks for content"),
    Colleague(
        "bob",
        "solutions engineer, expert",
        topics=("postgresql", "oracle", "database migration", "kubernetes"),
        bio="Ten years of moving production databases without waking anyone up.",
        capacity=3,
    ),
    Colleague(
        "carol",
        "security architect, expert",
        topics=("single sign-on", "okta", "azure ad", "gdpr", "soc 2"),
        bio="Security architect: identity, SOC 2 audits and data protection.",
        capacity=2,
    ),
    Colleague("dana", "marketing lead, admin and reviewer"),
    Colleague("erin", "customer success manager"),
)

REQUESTS = (
    DemoRequest(
        requester="dana",
        topic="Customer story: cutting cloud spend with Kubernetes autoscaling",
        context="Two retail customers halved their cluster bill; prospects keep asking how.",
        audience="Platform engineering leads",
        tags=("kubernetes", "cost"),
        asked_days_ago=6,
        needed_in_days=21,
        plus_ones=("carol",),
    ),
    DemoRequest(
        requester="alice",
        topic="How does single sign-on work with Okta and Azure AD?",
        context="Every enterprise deal asks during security review; we answer it by hand.",
        audience="IT and security buyers",
        tags=("sso", "security"),
        asked_days_ago=4,
        needed_in_days=14,
        plus_ones=("bob", "erin"),
    ),
    DemoRequest(
        requester="erin",
        topic="What should a data-retention checklist cover for GDPR audits?",
        context="Customers renewing in the EU want a checklist they can hand their auditors.",
        audience="Data protection officers",
        tags=("gdpr", "compliance"),
        asked_days_ago=2,
        needed_in_days=30,
        plus_ones=(),
    ),
)

DEMO_SETTINGS = workspace_settings.WorkspaceSettings(
    reviewers=["dana"],
    review_channel="reviews",
    share_channels=["general"],
    digest_channels=["general"],
    escalation_channel="flywheel-admins",
    timezone=TIMEZONE,
)


def display_name(user_id: str) -> str:
    return user_id.title()


def actor(user_id: str) -> Actor:
    """How a console user describes themselves to the router."""
    return Actor(
        user_id=user_id,
        name=display_name(user_id),
        email=f"{user_id}@{EMAIL_DOMAIN}",
        tz=TIMEZONE,
        is_platform_admin=user_id in ADMINS,
    )


def colleague(user_id: str) -> Colleague | None:
    return next((c for c in COLLEAGUES if c.user_id == user_id), None)


async def seed(sessions: SessionFactory, clock: Clock) -> int:
    """Create whatever of the demo data is missing; returns how many rows were added."""
    now = clock.now()
    added = 0
    async with transaction(sessions) as session:
        workspace = await ensure_workspace(session, ORIGIN, now)
        assert workspace.id is not None
        if not workspace.settings:
            # Only a fresh workspace: an admin's later choices are never overwritten.
            # Digests start from now: the first one lands on the next digest day.
            workspace_settings.save(
                workspace, DEMO_SETTINGS.model_copy(update={"digests_from": now.isoformat()})
            )
            session.add(workspace)
        existing = set(
            (
                await session.exec(
                    select(Member.user_id).where(Member.workspace_id == workspace.id)
                )
            ).all()
        )
        members: dict[str, Member] = {}
        for person in COLLEAGUES:
            members[person.user_id] = await ensure_member(
                session, workspace, actor(person.user_id), now
            )
            added += person.user_id not in existing
        for person in COLLEAGUES:
            if not person.topics:
                continue
            added += await insert_ignore(
                session,
                ExpertProfile.__table__,  # type: ignore[attr-defined]
                {
                    "workspace_id": workspace.id,
                    "member_id": members[person.user_id].id,
                    "topics": list(person.topics),
                    "bio": person.bio,
                    "capacity": person.capacity,
                    "created_at": now,
                    "updated_at": now,
                },
                ("member_id",),
            )
        for wanted in REQUESTS:
            requester = members[wanted.requester]
            assert requester.id is not None
            request = (
                await session.exec(
                    select(ContentRequest).where(
                        ContentRequest.workspace_id == workspace.id,
                        ContentRequest.requester_id == requester.id,
                        ContentRequest.topic == wanted.topic,
                    )
                )
            ).first()
            if request is None:
                asked = now - timedelta(days=wanted.asked_days_ago)
                request = ContentRequest(
                    workspace_id=workspace.id,
                    requester_id=requester.id,
                    topic=wanted.topic,
                    context=wanted.context,
                    audience=wanted.audience,
                    needed_by=(now + timedelta(days=wanted.needed_in_days)).date(),
                    tags=list(wanted.tags),
                    status=Status.OPEN,
                    created_at=asked,
                    updated_at=asked,
                )
                session.add(request)
                await session.flush()
                added += 1
            for voter in wanted.plus_ones:
                added += await insert_ignore(
                    session,
                    Vote.__table__,  # type: ignore[attr-defined]
                    {
                        "workspace_id": workspace.id,
                        "request_id": request.id,
                        "member_id": members[voter].id,
                        "created_at": request.created_at + timedelta(hours=3),
                    },
                    ("request_id", "member_id"),
                )
    return added
