"""Distribution: an approved post reaches the people it fits, in their working hours.

Approval announces the post in the share channels and records a `Distribution`, in the
approval's own transaction. The worker then plans it (`sweep`): who gets it, when, and
with which caption — all in one transaction that writes a `ShareSuggestion`, the tracked
links and an outbox row per person, a batch of people at a time (keyset pages over the
members, bulk inserts per batch), so memory stays flat whatever the fan-out's size. A
crash before that commit plans it again from scratch; after it, the outbox delivers each
row once. Unique keys (one suggestion per post and person, one outbox row per dedupe key)
make a repeated plan a no-op.

Who: the requester, everyone who +1'd the request and the author, unless they opted out;
and everyone who opted in whose interests or team match the post's tags. When: as soon
as working hours allow for the first three; spread over the workspace's share window
(in working time, in each person's zone) for the rest; and never more than the daily cap
of suggestions on one person's calendar day — the rest wait for the next working day.
"""

from __future__ import annotations

import itertools
import random
from array import array
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

import structlog
from sqlalchemy import func, update
from sqlmodel import col, select

from handlers.core import actions
from handlers.core.context import Config, Scope, channel, dm
from handlers.core.markup import md
from handlers.core.members import mention
from handlers.core.messages import Button, Buttons, ContextLine, Message, Section
from handlers.core.ports import AI, NO_AI, Clock
from handlers.core.quiet_hours import (
    HOURS_KEY,
    UTC_ZONE,
    WorkingHours,
    add_working_time,
    hours_field,
    next_allowed,
    zone,
)
from handlers.core.workspace_settings import WorkspaceSettings, load
from handlers.sharing import captions, share, tracked_links
from handlers.sharing.distribution_status import DistributionStatus, move_distribution
from storage import outbox
from storage.db import SessionFactory, transaction
from storage.models import (
    ContentRequest,
    Distribution,
    Member,
    Post,
    ShareSuggestion,
    Vote,
    Workspace,
)

log = structlog.get_logger(__name__)

# Reasons that reach people who did not opt in: they asked, +1'd or wrote it.
PERSONAL = ("requester", "voter", "author")
CAP_LOOKAHEAD_DAYS = 30


async def start(scope: Scope, post: Post, *, author: Member, requester: Member | None) -> None:
    """On approval: announce the post in the share channels and queue its distribution."""
    assert post.id is not None
    scope.session.add(
        Distribution(
            workspace_id=scope.workspace_id,
            post_id=post.id,
            # With AI configured, caption variants for the recipients' roles come first.
            status=(
                DistributionStatus.CAPTIONING
                if scope.config.ai_enabled
                else DistributionStatus.PENDING
            ),
            created_at=scope.now,
        )
    )
    settings = load(scope.workspace)
    for target in settings.share_channels:
        await scope.send(
            channel(target),
            announcement(post, author, requester, scope.config.public_base_url),
            key=f"announce:{post.id}:{target}",
        )


def announcement(
    post: Post, author: Member, requester: Member | None, public_base_url: str
) -> Message:
    """A share channel's note about a new post; each reader gets their own links on request."""
    if post.source == "feed":
        credit = md("From the company's feed, added by {}.", mention(author))
    elif post.source == "link":
        credit = md("Shared by {}.", mention(author))
    elif requester and requester.id != author.id:
        credit = md("Written by {} for {}'s request.", mention(author), mention(requester))
    else:
        credit = md("Written by {}.", mention(author))
    return Message(
        text=f"New post ready to share: {post.title}",
        blocks=(
            Section(
                text=md("📣 *New post ready to share*\n{}", share.headline(post, public_base_url))
            ),
            Buttons(
                buttons=(
                    Button(
                        label="Get my share links",
                        action=actions.SHARE_POST,
                        value=str(post.id),
                        style="primary",
                    ),
                    Button(label="Log a win", action=actions.WIN_LOG, value=str(post.id)),
                )
            ),
            ContextLine(text=credit),
        ),
    )


# -- planning -----------------------------------------------------------------------------

# Recipients are planned this many at a time: their members, links, suggestions and outbox
# rows are built, written and dropped before the next batch is read, so a fan-out to any
# number of people holds one batch in memory (and 8 bytes per recipient for the order).
BATCH = 1000


@dataclass(frozen=True, slots=True)
class Recipient:
    member: Member
    reason: str
    deliver_at: datetime
    local_day: date


async def sweep(scope: Scope, ai: AI = NO_AI) -> int:
    """Plan this workspace's pending distributions; how many people they will reach."""
    # Without AI (any more), distributions waiting for caption variants go ahead without.
    ready = [DistributionStatus.PENDING]
    if not scope.config.ai_enabled:
        ready.append(DistributionStatus.CAPTIONING)
    pending = (
        await scope.session.exec(
            select(Distribution)
            .where(
                Distribution.workspace_id == scope.workspace_id,
                col(Distribution.status).in_(ready),
            )
            .order_by(col(Distribution.id))
        )
    ).all()
    reached = 0
    for distribution in pending:
        reached += await plan(scope, distribution, ready)
    return reached


async def plan(
    scope: Scope,
    distribution: Distribution,
    ready: Sequence[DistributionStatus] = (DistributionStatus.PENDING,),
) -> int:
    """Who gets the post, when and with which caption, written in this transaction."""
    if not await move_distribution(
        scope.session,
        distribution.id,
        ready,
        DistributionStatus.PLANNED,
        planned_at=scope.now,
    ):
        return 0  # another worker planned it a moment ago
    post = await scope.session.get(Post, distribution.post_id)
    assert post is not None and post.id is not None
    if post.retired_at is not None or (post.ends_at is not None and post.ends_at <= scope.now):
        log.info("distribution.retired", post=post.id)
        return 0  # retired before anyone got it: nobody does
    settings = load(scope.workspace)
    order = await Order.of(scope, post)
    rotation = captions.Rotation()
    reached = 0
    for start in range(0, len(order.ids), BATCH):
        people = await _members(scope, order, start)
        recipients = await schedule(scope, settings, people, order, start)
        await _write(scope, post, recipients, distribution.variants, rotation)
        reached += len(recipients)
    await scope.session.exec(
        update(Distribution)
        .where(col(Distribution.id) == distribution.id)
        .values(recipients=reached)
    )
    log.info("distribution.planned", post=post.id, recipients=reached)
    return reached


def _tag(text: str) -> str:
    return " ".join(text.lower().lstrip("#").split())


@dataclass(frozen=True, slots=True)
class Order:
    """The order a post reaches people in, as member ids: the personal reasons first, then
    everyone else who opted in and matches, in a fixed shuffle per post (the same plan if it
    runs again, a different order per post). Nobody already suggested the post is in it."""

    ids: array[int]
    personal: dict[int, str]  # member id -> requester, voter or author
    others: int  # how many come after the personal ones, spread over the share window
    tags: frozenset[str]
    everyone: bool  # for everyone who opted in (a feed's choice), whatever their interests

    @classmethod
    async def of(cls, scope: Scope, post: Post) -> Order:
        personal = await _personal(scope, post)
        already = await _already_suggested(scope, post, list(personal))
        personal = {m: r for m, r in personal.items() if m not in already}
        tags = frozenset(_tag(tag) for tag in post.tags if _tag(tag))
        others = array("q")
        everyone = post.audience == "everyone"
        async for page in _opted_in_matches(scope, post, tags, personal, everyone):
            others.extend(page)
        random.Random(post.id).shuffle(others)
        return cls(array("q", personal) + others, personal, len(others), tags, everyone)


async def _personal(scope: Scope, post: Post) -> dict[int, str]:
    """The requester, everyone who +1'd the request and the author, with why."""
    reasons: dict[int, str] = {}
    if post.request_id is not None:
        request = await scope.session.get(ContentRequest, post.request_id)
        if request is not None:
            reasons[request.requester_id] = "requester"
        voters = await scope.session.exec(
            select(Vote.member_id)
            .where(Vote.workspace_id == scope.workspace_id, Vote.request_id == post.request_id)
            .order_by(col(Vote.id))
        )
        for member_id in voters.all():
            reasons.setdefault(member_id, "voter")
    reasons.setdefault(post.author_id, "author")
    return reasons


def _match(
    tags: frozenset[str], interests: Sequence[str] | None, team: str | None, everyone: bool
) -> str | None:
    """Why an opted-in person gets a post tagged `tags`: "interest", "team", "everyone"
    (a post for everyone who opted in), or None."""
    if everyone:
        return "everyone"
    if tags & {_tag(i) for i in interests or ()}:
        return "interest"
    if team and _tag(team) in tags:
        return "team"
    return None


async def _opted_in_matches(
    scope: Scope, post: Post, tags: frozenset[str], personal: dict[int, str], everyone: bool
) -> AsyncIterator[list[int]]:
    """Ids of people who opted in and whose interests or team match the post's tags (or
    all of them, for a post for everyone), not already suggested it and not reached for a
    personal reason, a page at a time (keyset)."""
    if not tags and not everyone:
        return
    after = 0
    while True:
        page = (
            await scope.session.exec(
                select(Member.id, Member.interests, Member.team)
                .where(
                    Member.workspace_id == scope.workspace_id,
                    col(Member.share_opt_in).is_(True),
                    col(Member.is_bot).is_(False),
                    col(Member.id) > after,
                )
                .order_by(col(Member.id))
                .limit(BATCH)
            )
        ).all()
        if not page:
            return
        after = page[-1][0] or after
        matches = [
            member_id
            for member_id, interests, team in page
            if member_id is not None
            and member_id not in personal
            and _match(tags, interests, team, everyone) is not None
        ]
        already = await _already_suggested(scope, post, matches)
        yield [m for m in matches if m not in already]


async def _members(scope: Scope, order: Order, start: int) -> list[tuple[Member, str, int]]:
    """The members of one batch of the order with why and where they are in it; people who
    opted out, bots and strangers to the workspace are left out."""
    ids = list(order.ids[start : start + BATCH])
    personal = order.personal
    found = {
        member.id: member
        for member in (
            await scope.session.exec(
                select(Member).where(
                    Member.workspace_id == scope.workspace_id, col(Member.id).in_(ids)
                )
            )
        ).all()
    }
    people: list[tuple[Member, str, int]] = []
    for place, member_id in enumerate(ids):
        member = found.get(member_id)
        if member is None or member.share_opt_in is False or member.is_bot:
            continue
        reason = personal.get(member_id) or _match(
            order.tags, member.interests, member.team, order.everyone
        )
        if reason is not None:
            people.append((member, reason, place))
    return people


async def people_of(scope: Scope, post: Post) -> AsyncIterator[list[tuple[Member, str]]]:
    """Everyone the post fits, with why, a batch at a time; opted-out people and bots never
    appear."""
    order = await Order.of(scope, post)
    for start in range(0, len(order.ids), BATCH):
        people = await _members(scope, order, start)
        yield [(member, reason) for member, reason, _ in people]


async def schedule(
    scope: Scope,
    settings: WorkspaceSettings,
    people: Sequence[tuple[Member, str, int]],
    order: Order,
    start: int,
) -> list[Recipient]:
    """When each person of a batch gets the post: working hours, the spread window, the
    daily cap; `start` is where the batch begins in the order."""
    hours = settings.working_hours()
    window = timedelta(hours=settings.share_window_hours)
    first_other = len(order.ids) - order.others
    taken = await _suggestions_per_day(scope, [m.id or 0 for m, _, _ in people])
    cap = settings.share_daily_cap
    planned: list[Recipient] = []
    for member, reason, place in people:
        position = start + place - first_other
        # The personal reasons as soon as working hours allow; the rest spread evenly.
        offset = window * (position / order.others) if position >= 0 else timedelta(0)
        tz = zone(member.tz or settings.timezone)
        deliver = add_working_time(scope.now, offset, tz, hours)
        day = deliver.astimezone(tz).date()
        for _ in range(CAP_LOOKAHEAD_DAYS):
            if taken.get((member.id or 0, day), 0) < cap:
                break
            deliver = _next_day(day, offset, tz, hours)
            day = deliver.astimezone(tz).date()
        taken[(member.id or 0, day)] = taken.get((member.id or 0, day), 0) + 1
        planned.append(Recipient(member, reason, deliver, day))
    planned.sort(key=lambda r: (r.deliver_at, r.member.id or 0))
    return planned


def _next_day(day: date, offset: timedelta, tz: Any, hours: WorkingHours) -> datetime:
    midnight = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC_ZONE)
    return add_working_time(next_allowed(midnight, tz, hours), offset, tz, hours)


async def _already_suggested(scope: Scope, post: Post, member_ids: Sequence[int]) -> set[int]:
    """Which of these people were already suggested the post (a share button pressed early)."""
    if not member_ids:
        return set()
    rows = await scope.session.exec(
        select(ShareSuggestion.member_id).where(
            ShareSuggestion.post_id == post.id, col(ShareSuggestion.member_id).in_(member_ids)
        )
    )
    return set(rows.all())


async def _suggestions_per_day(
    scope: Scope, member_ids: Sequence[int]
) -> dict[tuple[int, date], int]:
    """Suggestions already planned per person and calendar day, from yesterday on."""
    since = scope.now.date() - timedelta(days=1)
    counts: dict[tuple[int, date], int] = {}
    for start in range(0, len(member_ids), 2000):
        query = (
            select(  # type: ignore[call-overload]
                ShareSuggestion.member_id, ShareSuggestion.local_day, func.count()
            )
            .where(
                ShareSuggestion.workspace_id == scope.workspace_id,
                col(ShareSuggestion.member_id).in_(member_ids[start : start + 2000]),
                col(ShareSuggestion.local_day) >= since,
            )
            .group_by(col(ShareSuggestion.member_id), col(ShareSuggestion.local_day))
        )
        for member_id, day, n in (await scope.session.exec(query)).all():
            counts[(member_id, day)] = int(n)
    return counts


async def _write(
    scope: Scope,
    post: Post,
    recipients: Sequence[Recipient],
    variants: dict[str, list[str]],
    rotation: captions.Rotation,
) -> None:
    """Suggestions, tracked links and outbox rows for one batch of recipients, in bulk."""
    if not recipients:
        return
    links = await tracked_links.links_for(
        scope, post, [r.member for r in recipients], share.SHARE_NETWORKS
    )
    everyone = variants.get(captions.EVERYONE, [])
    linkedin = await share.linkedin_buttons(scope, post, [r.member.id or 0 for r in recipients])
    suggestions: list[dict[str, Any]] = []
    messages: list[dict[str, Any]] = []
    settings = load(scope.workspace)
    for r in recipients:
        member_id = r.member.id or 0
        role = variants.get(captions.role_key(r.member.title), [])
        caption = rotation.next(captions.pool(post.captions, post.title, [*role, *everyone]))
        suggestions.append(
            {
                "workspace_id": scope.workspace_id,
                "post_id": post.id,
                "member_id": member_id,
                "reason": r.reason,
                "caption": caption,
                "deliver_at": r.deliver_at,
                "local_day": r.local_day,
                "created_at": scope.now,
            }
        )
        message = share.share_message(
            post,
            caption=caption,
            links={n: links[(member_id, n)] for n in share.SHARE_NETWORKS},
            reason=r.reason,
            public_base_url=scope.config.public_base_url,
            linkedin_button=linkedin.get(member_id),
        )
        messages.append(
            {
                "workspace_id": scope.workspace_id,
                "dedupe_key": f"{scope.workspace_id}:share:{post.id}:{member_id}",
                "kind": "message",
                # Nobody asked for it: held for the next working hours if it is late.
                "target": {
                    **dm(r.member.user_id),
                    HOURS_KEY: hours_field(
                        r.member.tz or settings.timezone, settings.working_hours()
                    ),
                },
                "payload": message.model_dump(mode="json"),
                "not_before": r.deliver_at,
            }
        )
    table: Any = ShareSuggestion.__table__  # type: ignore[attr-defined]
    await scope.session.exec(table.insert(), params=suggestions)
    await outbox.enqueue_many(scope.session, messages, scope.now)


# -- caption variants, by the worker ------------------------------------------------------


async def write_variants(
    sessions: SessionFactory, clock: Clock, config: Config, ai: AI, limit: int = 5
) -> int:
    """Write AI caption variants for distributions waiting for them, no transaction held open
    while the model thinks; {} when it gives nothing usable, so planning goes ahead."""
    llm = ai.llm
    if llm is None:
        return 0
    done = 0
    for _ in range(limit):
        async with transaction(sessions) as session:
            distribution = (
                await session.exec(
                    select(Distribution)
                    .where(Distribution.status == DistributionStatus.CAPTIONING)
                    .order_by(col(Distribution.id))
                    .limit(1)
                )
            ).first()
            if distribution is None:
                return done
            post = await session.get(Post, distribution.post_id)
            workspace = await session.get(Workspace, distribution.workspace_id)
            assert post is not None and workspace is not None
            scope = Scope(session, clock, config, workspace)
            # Titles counted, not kept per person: a fan-out's roles in bounded memory.
            titles: dict[str | None, int] = {}
            async for batch in people_of(scope, post):
                for member, _ in batch:
                    titles[member.title] = titles.get(member.title, 0) + 1
            roles = captions.common_roles(
                itertools.chain.from_iterable(itertools.repeat(t, n) for t, n in titles.items())
            )
            rules = load(workspace).compliance()
            distribution_id = distribution.id
        variants = await captions.write_variants(
            llm,
            title=post.title,
            summary=post.summary,
            captions=post.captions,
            tags=post.tags,
            roles=roles,
            rules=rules,
        )
        async with transaction(sessions) as session:
            await move_distribution(
                session,
                distribution_id,
                [DistributionStatus.CAPTIONING],
                DistributionStatus.PENDING,
                variants=variants,
            )
        done += 1
    return done
