"""A request nobody could take, in a workspace with no experts yet: its requester names a
colleague who knows the subject, and that colleague is invited to say what they know."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlmodel import select

from handlers.core import actions, lookup
from handlers.core.context import Context, Scope, dm
from handlers.core.errors import NotAllowed
from handlers.core.interactions import Action, Reply, Submission
from handlers.core.lookup import REQUEST_GONE
from handlers.core.markup import md
from handlers.core.members import mention
from handlers.core.messages import Block, Button, Buttons, ContextLine, Message, Section
from handlers.core.wording import clip
from handlers.routing.colleagues import colleague_form, form_note, picked_colleague
from storage.models import ContentRequest, ExpertProfile

if TYPE_CHECKING:
    from handlers.core.router import Router

NOMINATE_FORM = "nominate_form"


async def anyone_else_is_expert(scope: Scope, member_id: int | None) -> bool:
    """Whether anybody but `member_id` has an expert profile in this workspace."""
    query = select(ExpertProfile.id).where(
        ExpertProfile.workspace_id == scope.workspace_id, ExpertProfile.member_id != member_id
    )
    return (await scope.session.exec(query.limit(1))).first() is not None


async def _my_request(ctx: Context, raw_id: str) -> ContentRequest:
    request = await lookup.get(ctx, ContentRequest, raw_id, REQUEST_GONE)
    if request.requester_id != ctx.member_id:
        raise NotAllowed("Only the person who asked can suggest who should answer this one.")
    return request


async def open_nominate(ctx: Context, action: Action) -> Reply:
    """`request_nominate`: who knows this subject?"""
    request = await _my_request(ctx, action.value)
    return Reply(
        form=colleague_form(
            form_id=NOMINATE_FORM,
            submit_label="Invite",
            question=md("Who knows about *{}*?", clip(request.topic, 200)),
            placeholder="You answered this for Globex last spring.",
            state=str(request.id),
        )
    )


async def nominate(ctx: Context, submission: Submission) -> Reply:
    """The colleague is invited to create an expert profile, which offers them the request."""
    request = await _my_request(ctx, submission.state)
    note = form_note(submission, "note")
    colleague = await picked_colleague(
        ctx,
        submission,
        {ctx.member.user_id: "That's you! Create your own profile with `expert`."},
    )
    blocks: list[Block] = [
        Section(
            text=md(
                "{} is looking for content on *{}* and thinks you know the subject.",
                mention(ctx.member),
                request.topic,
            )
        ),
    ]
    if note:
        blocks.append(ContextLine(text=md("“{}”", note)))
    blocks += [
        ContextLine(
            text="Say what you know in an expert profile (a minute), and I'll offer you "
            "this request and the next ones on your topics. You decide each time."
        ),
        Buttons(
            buttons=(
                Button(
                    label="Create my expert profile", action=actions.EXPERT_OPEN, style="primary"
                ),
            )
        ),
    ]
    await ctx.send(
        dm(colleague.user_id),
        Message(
            text=f"{ctx.member.name or 'A colleague'} thinks you know about {request.topic}",
            blocks=tuple(blocks),
        ),
        key=f"request:{request.id}:nominated:{colleague.id}",
        unprompted=True,
    )
    return Reply.say(
        md(
            "Thanks — I've invited {} to say what they know about “{}”.",
            mention(colleague),
            request.topic,
        )
    )


def register(router: Router) -> None:
    router.action(actions.REQUEST_NOMINATE)(open_nominate)
    router.form(NOMINATE_FORM)(nominate)
