"""The home tab: my requests, and colleagues' open requests to +1."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING
from uuid import uuid4

from sqlalchemy import func
from sqlmodel import col, select

from handlers.context import Context, Scope
from handlers.context import home as home_target
from handlers.interactions import NO_REPLY, Event, Reply
from handlers.lifecycle import ACTIVE, LABELS, Status
from handlers.markup import labelled, md, mention
from handlers.messages import (
    Block,
    Button,
    Buttons,
    Divider,
    Header,
    Message,
    Section,
)
from handlers.messages import (
    Context as ContextLine,
)
from handlers.workspace_settings import load
from storage.models import ContentRequest, Draft, Member, Vote

if TYPE_CHECKING:
    from handlers.router import Router

MY_REQUESTS = 10
OPEN_REQUESTS = 15


async def vote_counts(ctx: Scope, request_ids: Sequence[int]) -> dict[int, int]:
    """+1s per request, in one query."""
    if not request_ids:
        return {}
    query = (
        select(Vote.request_id, func.count())
        .where(Vote.workspace_id == ctx.workspace_id, col(Vote.request_id).in_(request_ids))
        .group_by(col(Vote.request_id))
    )
    return {request_id: int(n) for request_id, n in (await ctx.session.exec(query)).all()}


async def home_view(ctx: Context) -> Message:
    """The actor's home: what they asked for, and what colleagues need."""
    me = ctx.member
    mine = (
        await ctx.session.exec(
            select(ContentRequest)
            .where(
                ContentRequest.workspace_id == ctx.workspace_id,
                ContentRequest.requester_id == me.id,
            )
            .order_by(col(ContentRequest.id).desc())
            .limit(MY_REQUESTS)
        )
    ).all()
    others = (
        await ctx.session.exec(
            select(ContentRequest, Member.user_id)
            .join(Member, col(Member.id) == ContentRequest.requester_id)
            .where(
                ContentRequest.workspace_id == ctx.workspace_id,
                ContentRequest.requester_id != me.id,
                col(ContentRequest.status).in_([s.value for s in ACTIVE]),
            )
            .order_by(col(ContentRequest.id).desc())
            .limit(OPEN_REQUESTS)
        )
    ).all()
    ids = [r.id for r in mine if r.id] + [r.id for r, _ in others if r.id]
    counts = await vote_counts(ctx, ids)
    voted = (
        set(
            (
                await ctx.session.exec(
                    select(Vote.request_id).where(
                        Vote.workspace_id == ctx.workspace_id,
                        Vote.member_id == me.id,
                        col(Vote.request_id).in_(ids),
                    )
                )
            ).all()
        )
        if ids
        else set()
    )

    blocks: list[Block] = [
        Header(text="Flywheel"),
        Section(text="Ask for the content buyers need; experts draft it, everyone shares it."),
        Buttons(buttons=(Button(label="Request content", action="request_open", style="primary"),)),
        Divider(),
        Header(text="Your requests"),
    ]
    if mine:
        blocks += [
            Section(
                text=labelled(
                    r.topic, f"{LABELS[Status(r.status)]} · {demand(counts.get(r.id or 0, 0))}"
                )
            )
            for r in mine
        ]
    else:
        blocks.append(ContextLine(text="Nothing yet. What do your customers keep asking?"))
    assignments = (
        await ctx.session.exec(
            select(ContentRequest)
            .where(
                ContentRequest.workspace_id == ctx.workspace_id,
                ContentRequest.assignee_id == me.id,
                col(ContentRequest.status).in_([s.value for s in ACTIVE]),
            )
            .order_by(col(ContentRequest.needed_by), col(ContentRequest.id))
            .limit(MY_REQUESTS)
        )
    ).all()
    if assignments:
        blocks += [Divider(), Header(text="My assignments")]
        blocks += [
            Section(
                text=labelled(
                    r.topic,
                    LABELS[Status(r.status)]
                    + (f" · due {r.needed_by:%a %d %b}" if r.needed_by else ""),
                ),
                button=Button(label="Open draft", action="draft_open", value=str(r.id))
                if r.status in (Status.CLAIMED, Status.CHANGES_REQUESTED)
                else None,
            )
            for r in assignments
        ]
    blocks += await _to_review(ctx)
    blocks += [Divider(), Header(text="Open requests from colleagues")]
    if not others:
        blocks.append(ContextLine(text="No open requests right now."))
    for request, requester in others:
        line = md(
            "*{}*\nasked by {} · {} · {}",
            request.topic,
            mention(requester),
            LABELS[Status(request.status)],
            demand(counts.get(request.id or 0, 0)),
        )
        if request.id in voted:
            blocks += [Section(text=line), ContextLine(text="✓ You +1'd this")]
        else:
            blocks.append(
                Section(
                    text=line,
                    button=Button(label="+1", action="request_vote", value=str(request.id)),
                )
            )
    unmet = await unmet_demand(ctx, limit=5)
    if unmet:
        blocks += [
            Divider(),
            Header(text="Unmet demand"),
            ContextLine(text="No expert could take these yet."),
        ]
        blocks += [Section(text=labelled(r.topic, demand(votes))) for r, votes in unmet]
    blocks += [
        Divider(),
        Header(text="Sharing"),
        Section(
            text=sharing_status(me),
            button=Button(label="Sharing preferences", action="share_prefs"),
        ),
    ]
    return Message(text="Flywheel home", blocks=tuple(blocks))


def sharing_status(member: Member) -> str:
    """What approved posts reach this person, in a sentence."""
    if member.share_opt_in is False:
        return "You've turned off share suggestions."
    if member.share_opt_in:
        about = [*member.interests, *([f"team {member.team}"] if member.team else [])]
        return "You get approved posts about " + ", ".join(about) + " to share."
    return (
        "You get the posts you asked for or +1'd. Opt in to get posts that match "
        "your interests, too."
    )


async def unmet_demand(scope: Scope, limit: int = 10) -> list[tuple[ContentRequest, int]]:
    """Requests no expert took, most wanted first."""
    votes = func.count(col(Vote.id))
    query = (
        select(ContentRequest, votes)
        .outerjoin(Vote, col(Vote.request_id) == ContentRequest.id)
        .where(
            ContentRequest.workspace_id == scope.workspace_id,
            ContentRequest.status == Status.DECLINED,
        )
        .group_by(col(ContentRequest.id))
        .order_by(votes.desc(), col(ContentRequest.id).desc())
        .limit(limit)
    )
    return [(request, int(n)) for request, n in (await scope.session.exec(query)).all()]


async def refresh(ctx: Context) -> None:
    """Queue a fresh home view for the actor, as of this transaction."""
    await ctx.send(
        home_target(ctx.member.user_id),
        await home_view(ctx),
        key=f"home:{ctx.member.id}:{uuid4().hex}",
    )


async def opened(ctx: Context, event: Event) -> Reply:
    """The home tab was opened: publish the current view."""
    await refresh(ctx)
    return NO_REPLY


async def show(ctx: Context, event: object) -> Reply:
    """`home` on surfaces without a home tab: the same view as a message."""
    return Reply(message=await home_view(ctx), private=True)


async def _to_review(ctx: Context) -> list[Block]:
    """For reviewers: the drafts waiting for a decision, with the decision buttons."""
    if ctx.member.user_id not in load(ctx.workspace).reviewers:
        return []
    waiting = (
        await ctx.session.exec(
            select(Draft)
            .where(
                Draft.workspace_id == ctx.workspace_id,
                Draft.status == "in_review",
                Draft.author_id != ctx.member.id,
            )
            .order_by(col(Draft.updated_at))
            .limit(MY_REQUESTS)
        )
    ).all()
    blocks: list[Block] = [Divider(), Header(text="Drafts to review")]
    if not waiting:
        return [*blocks, ContextLine(text="Nothing waiting for you.")]
    for draft in waiting:
        value = f"{draft.id}:{draft.version}"
        blocks += [
            Section(text=md("*{}* — version {}", draft.title, draft.version)),
            Buttons(
                buttons=(
                    Button(label="Approve", action="review_approve", value=value, style="primary"),
                    Button(label="Ask for changes", action="review_changes", value=value),
                    Button(label="Reject", action="review_reject", value=value, style="danger"),
                )
            ),
        ]
    return blocks


def demand(votes: int) -> str:
    """How many people want a request: its requester plus the +1s."""
    return "1 person wants this" if votes == 0 else f"{votes + 1} people want this"


def register(router: Router) -> None:
    router.event("home_opened")(opened)
    router.command("home", usage="home", summary="my requests and colleagues' open requests")(show)
