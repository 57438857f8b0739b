"""The home tab: my requests, and colleagues' open requests to +1."""

from __future__ import annotations

from typing import TYPE_CHECKING
from uuid import uuid4

from sqlmodel import col, select

from handlers.core import actions
from handlers.core.context import Context
from handlers.core.context import home as home_target
from handlers.core.interactions import NO_REPLY, Event, Reply
from handlers.core.lifecycle import ACTIVE, LABELS, Status
from handlers.core.markup import labelled, md, mention
from handlers.core.messages import (
    Block,
    Button,
    Buttons,
    ContextLine,
    Divider,
    Header,
    Message,
    Section,
)
from handlers.core.workspace_settings import load
from handlers.drafting.draft_status import DraftStatus
from handlers.linkedin import connection as linkedin
from handlers.requests import demand
from handlers.welcome import greeting
from storage.models import ContentRequest, Draft, ExpertProfile, Member, Vote

if TYPE_CHECKING:
    from handlers.core.router import Router

MY_REQUESTS = 10
OPEN_REQUESTS = 15


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
    unmet = await demand.unmet(ctx, limit=5)
    ids = (
        [r.id for r in mine if r.id]
        + [r.id for r, _ in others if r.id]
        + [r.id for r, _ in unmet if r.id]
    )
    counts = await demand.vote_counts(ctx, ids)
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
        Buttons(
            buttons=(Button(label="Request content", action=actions.REQUEST_OPEN, style="primary"),)
        ),
        Divider(),
        Header(text="Your requests"),
    ]
    if mine:
        blocks += [
            Section(
                text=labelled(
                    r.topic,
                    f"{LABELS[Status(r.status)]} · {demand.wanted(counts.get(r.id or 0, 0))}",
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
                button=Button(label="Open draft", action=actions.DRAFT_OPEN, value=str(r.id))
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
            demand.wanted(counts.get(request.id or 0, 0)),
        )
        if request.id in voted:
            blocks += [Section(text=line), ContextLine(text="✓ You +1'd this")]
        else:
            blocks.append(
                Section(
                    text=line,
                    button=Button(label="+1", action=actions.REQUEST_VOTE, value=str(request.id)),
                )
            )
    if unmet:
        blocks += [
            Divider(),
            Header(text="Unmet demand"),
            ContextLine(text="No expert could take these yet."),
        ]
        expert = await _is_expert(ctx)
        for request, votes in unmet:
            blocks.append(Section(text=labelled(request.topic, demand.wanted(votes))))
            buttons: list[Button] = []
            if request.requester_id != me.id:
                if request.id in voted:
                    blocks.append(ContextLine(text="✓ You +1'd this"))
                else:
                    buttons.append(
                        Button(label="+1", action=actions.REQUEST_VOTE, value=str(request.id))
                    )
                if expert:
                    buttons.append(
                        Button(
                            label="I'll take it",
                            action=actions.REQUEST_TAKE,
                            value=str(request.id),
                            style="primary",
                        )
                    )
            if buttons:
                blocks.append(Buttons(buttons=tuple(buttons)))
    blocks += [
        Divider(),
        Header(text="Sharing"),
        Section(
            text=sharing_status(me),
            button=Button(label="Sharing preferences", action=actions.SHARE_PREFS),
        ),
        *await linkedin.home_blocks(ctx),
    ]
    return Message(text="Flywheel home", blocks=tuple(blocks))


async def _is_expert(ctx: Context) -> bool:
    query = select(ExpertProfile.id).where(ExpertProfile.member_id == ctx.member_id)
    return (await ctx.session.exec(query.limit(1))).first() is not None


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


async def refresh(ctx: Context) -> None:
    """Queue a fresh home view for the actor, as of this transaction."""
    await ctx.send(
        home_target(ctx.member.user_id),
        await home_view(ctx),
        key=f"home:{ctx.member.id}:{uuid4().hex}",
    )


async def opened(ctx: Context, event: Event) -> Reply:
    """The home tab was opened: publish the current view, and welcome a first visitor."""
    await refresh(ctx)
    await greeting.greet(ctx)
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
                Draft.status == DraftStatus.IN_REVIEW,
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
                    Button(
                        label="Approve", action=actions.REVIEW_APPROVE, value=value, style="primary"
                    ),
                    Button(label="Ask for changes", action=actions.REVIEW_CHANGES, value=value),
                    Button(
                        label="Reject", action=actions.REVIEW_REJECT, value=value, style="danger"
                    ),
                )
            ),
        ]
    return blocks


def register(router: Router) -> None:
    router.event("home_opened")(opened)
    router.command("home", usage="home", summary="my requests and colleagues' open requests")(show)
