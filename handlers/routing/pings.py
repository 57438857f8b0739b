"""Routing: ask the right experts, politely, and move on when they can't.

Scheduled sweeps (`sweep`) ping the best candidates for open requests, expire pings nobody
answered and remind assignees before a due date. Buttons in the ping (`request_claim`,
`request_suggest`, `request_decline`) answer it. Every step is idempotent: unique keys on
pings and outbox rows, and status changes written as compare-and-set.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import Integer, and_, exists, func, update
from sqlmodel import col, select

from handlers.core import actions, lookup, workspace_settings
from handlers.core.context import Context, Scope, channel, dm
from handlers.core.errors import FormInvalid, InvalidTransition, NotAllowed
from handlers.core.interactions import NO_REPLY, Action, Actor, Reply, Submission
from handlers.core.lifecycle import Status, move
from handlers.core.lookup import REQUEST_GONE
from handlers.core.markup import Markup, md
from handlers.core.members import ensure_member, mention
from handlers.core.messages import (
    Button,
    Buttons,
    ContextLine,
    Form,
    Message,
    Section,
    TextField,
    UserField,
)
from handlers.core.ports import AI, NO_AI, Embedder
from handlers.core.quiet_hours import add_working_time, next_allowed, zone
from handlers.core.wording import clip
from handlers.requests import demand
from handlers.routing.matching import Candidate, ExpertLoad, rank_experts
from storage.models import ContentRequest, Member, Ping
from storage.upsert import insert_ignore, on_postgres

if TYPE_CHECKING:
    from handlers.core.router import Router

log = structlog.get_logger(__name__)

PENDING, CLAIMED, DECLINED, PASSED, EXPIRED, WITHDRAWN = (
    "pending",
    "claimed",
    "declined",
    "passed",
    "expired",
    "withdrawn",
)
ANSWERED = (CLAIMED, DECLINED, PASSED)
SUGGEST_FORM = "suggest_form"
DECLINE_FORM = "decline_form"
NOTE_MAX = 500
SWEEP_BATCH = 100
# Requests without a due date are expected within this many days of being claimed.
DEFAULT_TURNAROUND = timedelta(days=7)


# -- messages ---------------------------------------------------------------------------


def ping_message(
    request: ContentRequest, requester: Member, votes: int, reasons: Sequence[str]
) -> Message:
    """The nudge an expert receives: the question, who asks and why, and why them."""
    fields = [md("*Demand*\n{}", demand.wanted(votes))]
    if request.needed_by:
        fields.append(md("*Needed by*\n{:%a %d %b %Y}", request.needed_by))
    if request.audience:
        fields.append(md("*Audience*\n{}", request.audience))
    blocks: list[Any] = [Section(text=md("{} asks: *{}*", mention(requester), request.topic))]
    if request.context:
        blocks.append(Section(text=clip(request.context, 600)))
    blocks.append(Section(fields=tuple(fields)))
    if reasons:
        blocks.append(ContextLine(text=Markup("Why you: ") + Markup("; ").join(reasons)))
    value = str(request.id)
    blocks.append(
        Buttons(
            buttons=(
                Button(label="Claim", action=actions.REQUEST_CLAIM, value=value, style="primary"),
                Button(label="Suggest someone", action=actions.REQUEST_SUGGEST, value=value),
                Button(label="Not now", action=actions.REQUEST_DECLINE, value=value),
            )
        )
    )
    return Message(
        text=f"Can you help? {requester.name or 'A colleague'} asks: {request.topic}",
        blocks=tuple(blocks),
    )


def _closed_ping(request: ContentRequest, line: str) -> Message:
    return Message(
        text=line, blocks=(Section(text=md("*{}*", request.topic)), ContextLine(text=line))
    )


def _due(request: ContentRequest, now: datetime) -> str:
    due = request.needed_by or (now + DEFAULT_TURNAROUND).date()
    return f"{due:%a %d %b}"


# -- reading state ------------------------------------------------------------------------


async def loads(scope: Scope) -> dict[int, ExpertLoad]:
    """Per expert: open assignments, pings in the last 7 days, answered and ignored pings."""
    session, workspace_id = scope.session, scope.workspace_id
    assigned = dict(
        (
            await session.exec(
                select(ContentRequest.assignee_id, func.count())
                .where(
                    ContentRequest.workspace_id == workspace_id,
                    col(ContentRequest.assignee_id).is_not(None),
                    col(ContentRequest.status).in_(
                        [Status.CLAIMED, Status.IN_REVIEW, Status.CHANGES_REQUESTED]
                    ),
                )
                .group_by(col(ContentRequest.assignee_id))
            )
        ).all()
    )
    week_ago = scope.now - timedelta(days=7)
    answered = func.sum(func.cast(col(Ping.status).in_(ANSWERED), Integer))
    ignored = func.sum(func.cast(col(Ping.status) == EXPIRED, Integer))
    recent = func.sum(func.cast(col(Ping.created_at) >= week_ago, Integer))
    history = (
        await session.exec(
            select(Ping.member_id, recent, answered, ignored)
            .where(Ping.workspace_id == workspace_id)
            .group_by(col(Ping.member_id))
        )
    ).all()
    result: dict[int, ExpertLoad] = {}
    for member_id, n_recent, n_answered, n_ignored in history:
        result[member_id] = ExpertLoad(
            open_assignments=int(assigned.get(member_id, 0)),
            pings_this_week=int(n_recent or 0),
            answered=int(n_answered or 0),
            ignored=int(n_ignored or 0),
        )
    for assignee, count in assigned.items():
        if assignee is not None and assignee not in result:
            result[assignee] = ExpertLoad(open_assignments=int(count))
    return result


async def _pinged_members(scope: Scope, request_id: int) -> set[int]:
    query = select(Ping.member_id).where(
        Ping.workspace_id == scope.workspace_id, Ping.request_id == request_id
    )
    return set((await scope.session.exec(query)).all())


async def _ping_of(ctx: Context, request: ContentRequest) -> Ping | None:
    query = select(Ping).where(Ping.request_id == request.id, Ping.member_id == ctx.member_id)
    return (await ctx.session.exec(query)).first()


async def _member(scope: Scope, member_id: int | None) -> Member:
    return await lookup.get(scope, Member, member_id, "I can't find that person in this workspace.")


async def _request(ctx: Context, raw_id: str) -> ContentRequest:
    return await lookup.get(ctx, ContentRequest, raw_id, REQUEST_GONE)


# -- pinging ------------------------------------------------------------------------------


async def ping(
    scope: Scope,
    request: ContentRequest,
    member: Member,
    *,
    round_: int,
    reasons: Sequence[str],
    suggested_by: Member | None = None,
) -> Ping | None:
    """Ask `member` to take `request`, landing in their working hours; None if asked before."""
    settings = workspace_settings.load(scope.workspace)
    hours, tz = settings.working_hours(), zone(member.tz or settings.timezone)
    deliver_at = next_allowed(scope.now, tz, hours)
    expires_at = add_working_time(
        deliver_at, timedelta(hours=settings.ping_timeout_hours), tz, hours
    )
    record = await add_ping(
        scope,
        request,
        member,
        round_=round_,
        reasons=reasons,
        deliver_at=deliver_at,
        expires_at=expires_at,
        suggested_by=suggested_by,
    )
    if record is None:
        return None
    requester = await _member(scope, request.requester_id)
    votes = await demand.vote_counts(scope, [request.id or 0])
    await scope.send(
        dm(member.user_id),
        ping_message(request, requester, votes.get(request.id or 0, 0), reasons),
        key=f"ping:{record.id}",
        ref_key=f"ping:{record.id}",
        not_before=deliver_at,
    )
    return record


async def add_ping(
    scope: Scope,
    request: ContentRequest,
    member: Member,
    *,
    round_: int,
    reasons: Sequence[str],
    deliver_at: datetime,
    expires_at: datetime,
    suggested_by: Member | None = None,
) -> Ping | None:
    """The pending ping asking `member` about `request`; None if they were asked before.

    Only the row: `ping` also sends the question, and the weekly digest's "I'll take it"
    records a ping its reader answers at once, so that both are claimed by `claim`.
    """
    inserted = await insert_ignore(
        scope.session,
        Ping.__table__,  # type: ignore[attr-defined]
        {
            "workspace_id": scope.workspace_id,
            "request_id": request.id,
            "member_id": member.id,
            "round": round_,
            "status": PENDING,
            "reasons": list(reasons),
            "suggested_by_id": suggested_by.id if suggested_by else None,
            "deliver_at": deliver_at,
            "expires_at": expires_at,
            "created_at": scope.now,
        },
        ("request_id", "member_id"),
    )
    if not inserted:
        return None
    query = select(Ping).where(Ping.request_id == request.id, Ping.member_id == member.id)
    return (await scope.session.exec(query)).one()


async def route(scope: Scope, request: ContentRequest, *, embedder: Embedder | None) -> int:
    """Ping the next round of experts for an open request; decline it when nobody is left."""
    settings = workspace_settings.load(scope.workspace)
    asked = await _pinged_members(scope, request.id or 0)
    today = scope.now.astimezone(zone(settings.timezone)).date()
    query = " ".join(
        filter(None, [request.topic, request.context, request.audience, " ".join(request.tags)])
    )
    candidates: list[Candidate] = await rank_experts(
        scope.session,
        scope.workspace_id,
        query,
        loads=await loads(scope),
        today=today,
        weekly_cap=settings.weekly_ping_cap,
        exclude={request.requester_id, *asked},
        embedder=embedder,
        limit=settings.experts_per_round,
        now=scope.now,
    )
    round_ = 1 + int(
        (
            await scope.session.exec(
                select(func.coalesce(func.max(Ping.round), 0)).where(Ping.request_id == request.id)
            )
        ).one()
    )
    pinged = 0
    for candidate in candidates:
        member = await _member(scope, candidate.member_id)
        if await ping(scope, request, member, round_=round_, reasons=candidate.reasons):
            pinged += 1
    if pinged == 0:
        await _decline_unmet(scope, request)
    return pinged


async def _decline_unmet(scope: Scope, request: ContentRequest) -> None:
    """No expert left: say so honestly, and keep the request visible as unmet demand."""
    if not await move(scope.session, request, Status.DECLINED, scope.now):
        return
    requester = await _member(scope, request.requester_id)
    await scope.send(
        dm(requester.user_id),
        Message(
            text=f"I couldn't find an expert for “{request.topic}” this time.",
            blocks=(
                Section(text=md("I couldn't find an expert for *{}* this time.", request.topic)),
                ContextLine(
                    text="Everyone I could ask was busy or passed. It stays on the board as "
                    "unmet demand, where admins and colleagues can see it — and a +1 from "
                    "others makes it more visible."
                ),
            ),
        ),
        key=f"request:{request.id}:declined",
    )
    settings = workspace_settings.load(scope.workspace)
    if settings.escalation_channel:
        votes = (await demand.vote_counts(scope, [request.id or 0])).get(request.id or 0, 0)
        await scope.send(
            channel(settings.escalation_channel),
            Message(
                text=f"Unmet demand: {request.topic}",
                blocks=(
                    Section(
                        text=md(
                            "*Unmet demand:* {}\nasked by {} · {}",
                            request.topic,
                            mention(requester),
                            demand.wanted(votes),
                        )
                    ),
                    ContextLine(
                        text="No expert could take it. Know someone? "
                        "Ask them to add the topic with `expert`."
                    ),
                ),
            ),
            key=f"request:{request.id}:escalated",
        )


# -- sweeps (the scheduler calls these) ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class SweepResult:
    expired: int = 0
    routed: int = 0
    reminded: int = 0


async def expire_pings(scope: Scope) -> int:
    """Pings nobody answered in time expire, which frees the request for the next round."""
    table = Ping.__table__  # type: ignore[attr-defined]
    result = await scope.session.exec(
        update(table)
        .where(
            table.c.workspace_id == scope.workspace_id,
            table.c.status == PENDING,
            table.c.expires_at <= scope.now,
        )
        .values(status=EXPIRED)
    )
    return int(result.rowcount or 0)


async def route_open_requests(scope: Scope, *, embedder: Embedder | None) -> int:
    """Route every open request that has nobody currently asked."""
    waiting = ~exists().where(
        and_(col(Ping.request_id) == col(ContentRequest.id), col(Ping.status) == PENDING)
    )
    query = (
        select(ContentRequest)
        .where(
            ContentRequest.workspace_id == scope.workspace_id,
            ContentRequest.status == Status.OPEN,
            waiting,
        )
        .order_by(col(ContentRequest.id))
        .limit(SWEEP_BATCH)
    )
    if on_postgres(scope.session):
        # Another sweeper routing the same request at once skips it rather than pinging twice.
        query = query.with_for_update(skip_locked=True, of=ContentRequest)
    requests = (await scope.session.exec(query)).all()
    for request in requests:
        await route(scope, request, embedder=embedder)
    return len(requests)


async def remind_assignees(scope: Scope) -> int:
    """One reminder to the assignee, the configured number of days before the due date."""
    settings = workspace_settings.load(scope.workspace)
    query = select(ContentRequest).where(
        ContentRequest.workspace_id == scope.workspace_id,
        ContentRequest.status == Status.CLAIMED,
        col(ContentRequest.needed_by).is_not(None),
        col(ContentRequest.reminded_at).is_(None),
        col(ContentRequest.assignee_id).is_not(None),
    )
    reminded = 0
    for request in (await scope.session.exec(query)).all():
        assignee = await _member(scope, request.assignee_id)
        tz = zone(assignee.tz or settings.timezone)
        assert request.needed_by is not None
        if scope.now.astimezone(tz).date() < request.needed_by - timedelta(
            days=settings.reminder_lead_days
        ):
            continue
        table = ContentRequest.__table__  # type: ignore[attr-defined]
        marked = await scope.session.exec(
            update(table)
            .where(table.c.id == request.id, table.c.reminded_at.is_(None))
            .values(reminded_at=scope.now)
        )
        if not marked.rowcount:
            continue
        requester = await _member(scope, request.requester_id)
        await scope.send(
            dm(assignee.user_id),
            Message(
                text=f"A gentle reminder: “{request.topic}” is due {request.needed_by:%a %d %b}.",
                blocks=(
                    Section(
                        text=md(
                            "A gentle reminder: *{}* is due {:%a %d %b}.",
                            request.topic,
                            request.needed_by,
                        )
                    ),
                    ContextLine(
                        text=md(
                            "{} is counting on it. If you can't make it, tell them — "
                            "that's fine too.",
                            mention(requester),
                        )
                    ),
                ),
            ),
            key=f"request:{request.id}:reminder",
            not_before=next_allowed(scope.now, tz, settings.working_hours()),
        )
        reminded += 1
    return reminded


async def sweep(scope: Scope, ai: AI = NO_AI) -> SweepResult:
    """One pass over a workspace: expire, route, remind. Running it twice sends nothing twice."""
    expired = await expire_pings(scope)
    routed = await route_open_requests(scope, embedder=ai.embedder)
    reminded = await remind_assignees(scope)
    return SweepResult(expired, routed, reminded)


# -- answering a ping --------------------------------------------------------------------


async def _require_ping(ctx: Context, request: ContentRequest) -> Ping:
    record = await _ping_of(ctx, request)
    if record is None:
        raise NotAllowed(
            "This request wasn't sent to you, so I can't hand it to you from here — "
            "but thank you for wanting to help! You can +1 it from the home tab."
        )
    return record


async def _already_taken(ctx: Context, request: ContentRequest) -> InvalidTransition:
    if request.assignee_id is not None:
        assignee = await _member(ctx, request.assignee_id)
        who = "you" if assignee.id == ctx.member_id else mention(assignee)
        return InvalidTransition(md("This request is already claimed by {}.", who))
    return InvalidTransition(
        f"This request is no longer open ({Status(request.status).value.replace('_', ' ')})."
    )


async def claim(ctx: Context, action: Action) -> Reply:
    """`request_claim`: the first claim wins; everyone else's ping says who took it."""
    request = await _request(ctx, action.value)
    mine = await _require_ping(ctx, request)
    if request.status != Status.OPEN:
        raise await _already_taken(ctx, request)
    if not await move(
        ctx.session, request, Status.CLAIMED, ctx.now, assignee_id=ctx.member_id, claimed_at=ctx.now
    ):
        raise await _already_taken(ctx, request)
    mine.status, mine.answered_at = CLAIMED, ctx.now
    ctx.session.add(mine)
    await _withdraw_others(ctx, request, keep=mine)
    requester = await _member(ctx, request.requester_id)
    due = _due(request, ctx.now)
    await ctx.update(
        f"ping:{mine.id}",
        Message(
            text=f"You claimed “{request.topic}” — thank you!",
            blocks=(
                Section(text=md("*{}*", request.topic)),
                ContextLine(text=f"✅ You claimed this — thank you! Due {due}."),
                Buttons(
                    buttons=(
                        Button(
                            label="Write the draft",
                            action=actions.DRAFT_OPEN,
                            value=str(request.id),
                            style="primary",
                        ),
                        Button(
                            label="AI first draft", action=actions.DRAFT_AI, value=str(request.id)
                        ),
                    )
                ),
            ),
        ),
        key=f"ping:{mine.id}:claimed",
    )
    await ctx.send(
        dm(requester.user_id),
        Message(
            text=f"{ctx.member.name or 'An expert'} is on “{request.topic}”.",
            blocks=(
                Section(
                    text=md("Good news: {} is drafting *{}*.", mention(ctx.member), request.topic)
                ),
                ContextLine(text=f"Expect it by {due}. I'll tell you when it's live."),
            ),
        ),
        key=f"request:{request.id}:claimed",
    )
    return Reply.say(
        md(
            "It's yours: “{}”. {} knows, and expects it by {}.",
            request.topic,
            mention(requester),
            due,
        )
    )


async def _withdraw_others(ctx: Context, request: ContentRequest, *, keep: Ping) -> None:
    others = (
        await ctx.session.exec(
            select(Ping).where(
                Ping.request_id == request.id, Ping.id != keep.id, Ping.status == PENDING
            )
        )
    ).all()
    for other in others:
        other.status = WITHDRAWN
        ctx.session.add(other)
        if not await ctx.cancel(f"ping:{other.id}"):
            await ctx.update(
                f"ping:{other.id}",
                _closed_ping(
                    request, md("Claimed by {} — thanks for being there.", mention(ctx.member))
                ),
                key=f"ping:{other.id}:withdrawn",
            )


async def open_suggest(ctx: Context, action: Action) -> Reply:
    """`request_suggest`: pick the colleague who knows better."""
    request = await _request(ctx, action.value)
    await _require_ping(ctx, request)
    if request.status != Status.OPEN:
        raise await _already_taken(ctx, request)
    return Reply(
        form=Form(
            form_id=SUGGEST_FORM,
            title="Suggest a colleague",
            submit_label="Suggest",
            intro=(Section(text=md("Who could answer *{}*?", clip(request.topic, 200))),),
            fields=(
                UserField(name="colleague", label="Colleague"),
                TextField(
                    name="note",
                    label="A word for them",
                    optional=True,
                    multiline=True,
                    max_length=NOTE_MAX,
                    placeholder="You did this for Globex last spring.",
                ),
            ),
            state=str(request.id),
        )
    )


async def suggest(ctx: Context, submission: Submission) -> Reply:
    request = await _request(ctx, submission.state)
    mine = await _require_ping(ctx, request)
    if request.status != Status.OPEN:
        raise await _already_taken(ctx, request)
    raw = submission.values.get("colleague")
    user_id = (raw[0] if raw else "") if isinstance(raw, tuple) else (raw or "").strip()
    note = _one_line(submission.values.get("note"))
    if len(note) > NOTE_MAX:
        raise FormInvalid({"note": f"Keep it under {NOTE_MAX} characters."})
    if not user_id:
        raise FormInvalid({"colleague": "Pick a colleague."})
    if user_id == ctx.member.user_id:
        raise FormInvalid({"colleague": "That's you! Claim it instead, or pick someone else."})
    requester = await _member(ctx, request.requester_id)
    if user_id == requester.user_id:
        raise FormInvalid({"colleague": "They asked for it — pick someone who could answer them."})
    profile = (
        await ctx.directory.profile(ctx.workspace.external_id, user_id) if ctx.directory else None
    )
    if ctx.directory is not None and profile is None:
        raise FormInvalid({"colleague": "I can't find that person in this workspace."})
    if profile is not None and profile.is_bot:
        raise FormInvalid({"colleague": "That's a bot — pick a person."})
    if profile is None:
        profile = Actor(user_id=user_id)
    colleague = await ensure_member(ctx.session, ctx.workspace, profile, ctx.now)
    reasons = [md("suggested by {}", mention(ctx.member)) + (f": “{note}”" if note else "")]
    if (
        await ping(
            ctx, request, colleague, round_=mine.round, reasons=reasons, suggested_by=ctx.member
        )
        is None
    ):
        raise FormInvalid({"colleague": "They've already been asked about this one."})
    mine.status, mine.answered_at, mine.note = PASSED, ctx.now, note or None
    ctx.session.add(mine)
    await ctx.update(
        f"ping:{mine.id}",
        _closed_ping(request, md("You suggested {} — thank you.", mention(colleague))),
        key=f"ping:{mine.id}:passed",
    )
    return NO_REPLY


async def open_decline(ctx: Context, action: Action) -> Reply:
    """`request_decline`: not now, with an optional reason."""
    request = await _request(ctx, action.value)
    await _require_ping(ctx, request)
    return Reply(
        form=Form(
            form_id=DECLINE_FORM,
            title="Not now",
            submit_label="Pass",
            intro=(
                Section(
                    text=md(
                        "No problem — I'll ask someone else about *{}*.", clip(request.topic, 200)
                    )
                ),
            ),
            fields=(
                TextField(
                    name="reason",
                    label="Why (optional)",
                    optional=True,
                    max_length=NOTE_MAX,
                    placeholder="Busy until the release; not my area…",
                ),
            ),
            state=str(request.id),
        )
    )


async def decline(ctx: Context, submission: Submission) -> Reply:
    request = await _request(ctx, submission.state)
    mine = await _require_ping(ctx, request)
    reason = _one_line(submission.values.get("reason"))
    if len(reason) > NOTE_MAX:
        raise FormInvalid({"reason": f"Keep it under {NOTE_MAX} characters."})
    if mine.status != PENDING:
        return NO_REPLY
    mine.status, mine.answered_at, mine.note = DECLINED, ctx.now, reason or None
    ctx.session.add(mine)
    await ctx.update(
        f"ping:{mine.id}",
        _closed_ping(request, "You passed on this one — thanks for letting me know quickly."),
        key=f"ping:{mine.id}:declined",
    )
    return NO_REPLY


def _one_line(value: object) -> str:
    if isinstance(value, tuple):
        value = " ".join(value)
    return " ".join(str(value or "").split())


def register(router: Router) -> None:
    router.action(actions.REQUEST_CLAIM)(claim)
    router.action(actions.REQUEST_SUGGEST)(open_suggest)
    router.action(actions.REQUEST_DECLINE)(open_decline)
    router.form(SUGGEST_FORM)(suggest)
    router.form(DECLINE_FORM)(decline)
