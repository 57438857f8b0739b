"""Pings: ask one expert about a request, and what their answer does.

`ping` asks (once per person and request, landing in their working hours); the buttons in
the ping answer it: `request_claim` (the first claim wins), `request_suggest` (pass it to
a colleague, who is asked in turn) and `request_decline`. Who is asked, and when, is
`routing.sweeps`. Every step is idempotent: unique keys on pings and outbox rows, and
status changes written as compare-and-set.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import structlog
from sqlmodel import col, select

from handlers.core import actions, lookup, workspace_settings
from handlers.core.context import Context, Scope, dm
from handlers.core.errors import FormInvalid, InvalidTransition, NotAllowed
from handlers.core.interactions import NO_REPLY, Action, Reply, Submission
from handlers.core.lifecycle import Status, move
from handlers.core.lookup import REQUEST_GONE
from handlers.core.markup import Markup, md
from handlers.core.members import mention
from handlers.core.messages import (
    Button,
    Buttons,
    ContextLine,
    Form,
    Message,
    Section,
    TextField,
)
from handlers.core.quiet_hours import add_working_time, next_allowed, zone
from handlers.core.wording import clip, their_zone
from handlers.requests import demand
from handlers.routing.colleagues import NOTE_MAX, colleague_form, form_note, picked_colleague
from handlers.routing.ping_status import PingStatus, can_move, move_ping, sources
from storage.models import ContentRequest, Member, Ping
from storage.upsert import insert_ignore

if TYPE_CHECKING:
    from handlers.core.router import Router

log = structlog.get_logger(__name__)

SUGGEST_FORM = "suggest_form"
DECLINE_FORM = "decline_form"
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


def _due(request: ContentRequest, now: datetime, tz: ZoneInfo) -> str:
    """The due date; without one, a week from now as a day in the claimant's time zone."""
    due = request.needed_by or (now + DEFAULT_TURNAROUND).astimezone(tz).date()
    return f"{due:%a %d %b}"


# -- finding things ------------------------------------------------------------------------


async def _ping_of(ctx: Context, request: ContentRequest) -> Ping | None:
    query = select(Ping).where(Ping.request_id == request.id, Ping.member_id == ctx.member_id)
    return (await ctx.session.exec(query)).first()


async def member_of(scope: Scope, member_id: int | None) -> Member:
    """The member `member_id` of this workspace, or a polite not-found."""
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
    requester = await member_of(scope, request.requester_id)
    votes = await demand.vote_counts(scope, [request.id or 0])
    await scope.send(
        dm(member.user_id),
        ping_message(request, requester, votes.get(request.id or 0, 0), reasons),
        key=f"ping:{record.id}",
        ref_key=f"ping:{record.id}",
        not_before=deliver_at,
        unprompted=True,
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
            "status": PingStatus.PENDING,
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


# -- answering a ping --------------------------------------------------------------------


async def _my_ping(ctx: Context, raw_id: str, *, open_only: bool) -> tuple[ContentRequest, Ping]:
    """The request a ping button or form names, and the actor's ping about it.

    Only someone who was asked answers; with `open_only`, only while the request is open.
    """
    request = await _request(ctx, raw_id)
    record = await _ping_of(ctx, request)
    if record is None:
        raise NotAllowed(
            "This request wasn't sent to you, so I can't hand it to you from here — "
            "but thank you for wanting to help! You can +1 it from the home tab."
        )
    if open_only and request.status != Status.OPEN:
        raise await _already_taken(ctx, request)
    return request, record


async def _already_taken(ctx: Context, request: ContentRequest) -> InvalidTransition:
    if request.assignee_id is not None:
        assignee = await member_of(ctx, request.assignee_id)
        who = "you" if assignee.id == ctx.member_id else mention(assignee)
        return InvalidTransition(md("This request is already claimed by {}.", who))
    return InvalidTransition(
        f"This request is no longer open ({Status(request.status).value.replace('_', ' ')})."
    )


async def claim(ctx: Context, action: Action) -> Reply:
    """`request_claim`: the first claim wins; everyone else's ping says who took it."""
    request, mine = await _my_ping(ctx, action.value, open_only=True)
    if not await move(
        ctx.session, request, Status.CLAIMED, ctx.now, assignee_id=ctx.member_id, claimed_at=ctx.now
    ):
        raise await _already_taken(ctx, request)
    move_ping(mine, PingStatus.CLAIMED)
    mine.answered_at = ctx.now
    ctx.session.add(mine)
    await _withdraw_others(ctx, request, keep=mine)
    requester = await member_of(ctx, request.requester_id)
    due = _due(request, ctx.now, their_zone(ctx.member, ctx.workspace))
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
        unprompted=True,
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
                Ping.request_id == request.id,
                Ping.id != keep.id,
                col(Ping.status).in_(sources(PingStatus.WITHDRAWN)),
            )
        )
    ).all()
    for other in others:
        move_ping(other, PingStatus.WITHDRAWN)
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
    request, _ = await _my_ping(ctx, action.value, open_only=True)
    return Reply(
        form=colleague_form(
            form_id=SUGGEST_FORM,
            submit_label="Suggest",
            question=md("Who could answer *{}*?", clip(request.topic, 200)),
            placeholder="You did this for Globex last spring.",
            state=str(request.id),
        )
    )


async def suggest(ctx: Context, submission: Submission) -> Reply:
    request, mine = await _my_ping(ctx, submission.state, open_only=True)
    note = form_note(submission, "note")
    requester = await member_of(ctx, request.requester_id)
    colleague = await picked_colleague(
        ctx,
        submission,
        {
            ctx.member.user_id: "That's you! Claim it instead, or pick someone else.",
            requester.user_id: "They asked for it — pick someone who could answer them.",
        },
    )
    reasons = [md("suggested by {}", mention(ctx.member)) + (f": “{note}”" if note else "")]
    if (
        await ping(
            ctx, request, colleague, round_=mine.round, reasons=reasons, suggested_by=ctx.member
        )
        is None
    ):
        raise FormInvalid({"colleague": "They've already been asked about this one."})
    move_ping(mine, PingStatus.PASSED)
    mine.answered_at, mine.note = ctx.now, note or None
    ctx.session.add(mine)
    await ctx.update(
        f"ping:{mine.id}",
        _closed_ping(request, md("You suggested {} — thank you.", mention(colleague))),
        key=f"ping:{mine.id}:passed",
    )
    return NO_REPLY


async def open_decline(ctx: Context, action: Action) -> Reply:
    """`request_decline`: not now, with an optional reason."""
    request, _ = await _my_ping(ctx, action.value, open_only=False)
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
    request, mine = await _my_ping(ctx, submission.state, open_only=False)
    reason = form_note(submission, "reason")
    if not can_move(mine.status, PingStatus.DECLINED):
        # The form was sent twice, or the ping was answered meanwhile: nothing to do.
        return NO_REPLY
    move_ping(mine, PingStatus.DECLINED)
    mine.answered_at, mine.note = ctx.now, reason or None
    ctx.session.add(mine)
    await ctx.update(
        f"ping:{mine.id}",
        _closed_ping(request, "You passed on this one — thanks for letting me know quickly."),
        key=f"ping:{mine.id}:declined",
    )
    return NO_REPLY


def register(router: Router) -> None:
    router.action(actions.REQUEST_CLAIM)(claim)
    router.action(actions.REQUEST_SUGGEST)(open_suggest)
    router.action(actions.REQUEST_DECLINE)(open_decline)
    router.form(SUGGEST_FORM)(suggest)
    router.form(DECLINE_FORM)(decline)
