"""A reply in the thread of a ping (Slack's Messages tab): the expert's words are notes for
the draft, or, before they have claimed it, a nudge to claim it first."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlmodel import select

from handlers.core import actions, lookup
from handlers.core.context import Context
from handlers.core.interactions import Event, Reply
from handlers.core.lifecycle import Status
from handlers.core.markup import md
from handlers.core.messages import Button, Buttons, ContextLine, Message, Section
from handlers.core.wording import clip
from handlers.drafting.ai import BODY_MAX
from handlers.drafting.draft_status import EDITABLE
from handlers.drafting.form import working_draft
from handlers.routing.ping_status import PingStatus
from storage.models import ContentRequest, Draft, MessageRef, Ping

if TYPE_CHECKING:
    from handlers.core.router import Router

ELSEWHERE = (
    "I read replies in the threads of requests I sent you. For anything else, write to me "
    "here, outside a thread — `help` lists what I do."
)


async def _ping_of_thread(ctx: Context, channel: str, thread: str) -> Ping | None:
    """The actor's ping whose message started this thread, if it is one."""
    ref = (
        await ctx.session.exec(
            select(MessageRef).where(
                MessageRef.workspace_id == ctx.workspace_id,
                MessageRef.channel == channel,
                MessageRef.message_id == thread,
            )
        )
    ).first()
    if ref is None or not ref.ref_key.startswith("ping:"):
        return None
    ping = await lookup.find(ctx, Ping, ref.ref_key.removeprefix("ping:"))
    return ping if ping is not None and ping.member_id == ctx.member_id else None


async def thread_reply(ctx: Context, event: Event) -> Reply:
    """`thread_reply`: notes for the draft of the request the thread is about."""
    text = str(event.data.get("text") or "").strip()
    ping = await _ping_of_thread(
        ctx, str(event.data.get("channel") or ""), str(event.data.get("thread") or "")
    )
    if ping is None or not text:
        return Reply.say(ELSEWHERE)
    request = await lookup.find(ctx, ContentRequest, ping.request_id)
    if request is None:
        return Reply.say(ELSEWHERE)
    value = str(request.id)
    if request.assignee_id == ctx.member_id:
        existing = (
            await ctx.session.exec(select(Draft).where(Draft.request_id == request.id))
        ).first()
        if existing is not None and existing.status not in EDITABLE:
            return Reply.say(md("Your draft of “{}” is with the reviewers now.", request.topic))
        draft = await working_draft(ctx, request)
        notes = f"{draft.body}\n\n{text}" if draft.body else text
        draft.body, draft.updated_at = clip(notes, BODY_MAX), ctx.now
        ctx.session.add(draft)
        return Reply(
            message=Message(
                text=f"Added to your draft of “{request.topic}”.",
                blocks=(
                    Section(text=md("Added to your draft of *{}* as notes.", request.topic)),
                    Buttons(
                        buttons=(
                            Button(
                                label="Open the draft",
                                action=actions.DRAFT_OPEN,
                                value=value,
                                style="primary",
                            ),
                        )
                    ),
                ),
            )
        )
    if request.status == Status.OPEN and ping.status == PingStatus.PENDING:
        return Reply(
            message=Message(
                text=f"Claim “{request.topic}” to start the draft.",
                blocks=(
                    Section(text=md("Sounds like you know *{}*!", request.topic)),
                    ContextLine(
                        text="Claim it, then reply here again: what you write goes into "
                        "the draft as notes."
                    ),
                    Buttons(
                        buttons=(
                            Button(
                                label="Claim",
                                action=actions.REQUEST_CLAIM,
                                value=value,
                                style="primary",
                            ),
                            Button(label="Not now", action=actions.REQUEST_DECLINE, value=value),
                        )
                    ),
                ),
            )
        )
    return Reply.say(md("“{}” isn't waiting for you any more.", request.topic))


def register(router: Router) -> None:
    router.event("thread_reply")(thread_reply)
