"""Distribution: an approved post reaches the people it fits, in their working hours.

Approval announces the post in the share channels and records a `Distribution`, in the
approval's own transaction. The worker then plans it (`sweep`): who gets it, when, and
with which caption — all in one transaction that writes a `ShareSuggestion`, the tracked
links and an outbox row per person. A crash before that commit plans it again from
scratch; after it, the outbox delivers each row once. Unique keys (one suggestion per
post and person, one outbox row per dedupe key) make a repeated plan a no-op.

Who: the requester, everyone who +1'd the request and the author, unless they opted out;
and everyone who opted in whose interests or team match the post's tags. When: as soon
as working hours allow for the first three; spread over the workspace's share window
(in working time, in each person's zone) for the rest; and never more than the daily cap
of suggestions on one person's calendar day — the rest wait for the next working day.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
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
    recipients = await schedule(scope, settings, post, await recipients_of(scope, post))
    await _write(scope, post, recipients, distribution.variants)
    await scope.session.exec(
        update(Distribution)
        .where(col(Distribution.id) == distribution.id)
        .values(recipients=len(recipients))
    )
    log.info("distribution.planned", post=post.id, recipients=len(recipients))
    return len(recipients)


def _tag(text: str) -> str:
    return " ".join(text.lower().lstrip("#").split())


async def recipients_of(scope: Scope, post: Post) -> list[tuple[Member, str]]:
    """Everyone the post fits, with why; opted-out people and bots never appear."""
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
    tags = {_tag(tag) for tag in post.tags if _tag(tag)}
    if post.audience == "everyone":
        everyone = await scope.session.exec(
            select(Member.id).where(
                Member.workspace_id == scope.workspace_id,
                col(Member.share_opt_in).is_(True),
                col(Member.is_bot).is_(False),
            )
        )
        for opted_id in everyone.all():
            if opted_id is not None:
                reasons.setdefault(opted_id, "everyone")
    elif tags:
        opted_in = await scope.session.exec(
            select(Member.id, Member.interests, Member.team).where(
                Member.workspace_id == scope.workspace_id,
                col(Member.share_opt_in).is_(True),
                col(Member.is_bot).is_(False),
            )
        )
        for opted_id, interests, team in opted_in.all():
            if opted_id is None or opted_id in reasons:
                continue
            if tags & {_tag(i) for i in interests or ()}:
                reasons[opted_id] = "interest"
            elif team and _tag(team) in tags:
                reasons[opted_id] = "team"
    members: dict[int, Member] = {}
    ids = list(reasons)
    for start in range(0, len(ids), 2000):
        query = select(Member).where(
            Member.workspace_id == scope.workspace_id,
            col(Member.id).in_(ids[start : start + 2000]),
        )
        for member in (await scope.session.exec(query)).all():
            members[member.id or 0] = member
    return [
        (members[member_id], reason)
        for member_id, reason in reasons.items()
        if member_id in members
        and members[member_id].share_opt_in is not False
        and not members[member_id].is_bot
    ]


async def schedule(
    scope: Scope,
    settings: WorkspaceSettings,
    post: Post,
    people: Sequence[tuple[Member, str]],
) -> list[Recipient]:
    """When each person gets the post: working hours, the spread window, the daily cap."""
    already = await _already_suggested(scope, post)
    people = [(m, r) for m, r in people if m.id not in already]
    hours = settings.working_hours()
    window = timedelta(hours=settings.share_window_hours)
    personal = [(m, r) for m, r in people if r in PERSONAL]
    others = [(m, r) for m, r in people if r not in PERSONAL]
    # A fixed shuffle per post: the same plan if it runs again, a different order per post.
    random.Random(post.id).shuffle(others)
    offsets = [timedelta(0)] * len(personal) + [
        window * (i / len(others)) for i in range(len(others))
    ]
    taken = await _suggestions_per_day(scope, [m.id or 0 for m, _ in people])
    cap = settings.share_daily_cap
    planned: list[Recipient] = []
    for (member, reason), offset in zip([*personal, *others], offsets, strict=True):
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


async def _already_suggested(scope: Scope, post: Post) -> set[int]:
    rows = await scope.session.exec(
        select(ShareSuggestion.member_id).where(ShareSuggestion.post_id == post.id)
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
) -> None:
    """Suggestions, tracked links and outbox rows for every recipient, in bulk."""
    if not recipients:
        return
    links = await tracked_links.links_for(
        scope, post, [r.member for r in recipients], share.SHARE_NETWORKS
    )
    rotation = captions.Rotation()
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
    for start in range(0, len(suggestions), 2000):
        await scope.session.exec(table.insert(), params=suggestions[start : start + 2000])
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
            people = await recipients_of(scope, post)
            roles = captions.common_roles(m.title for m, _ in people)
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
