"""A request nobody could take, in a workspace with no experts yet: its requester names a
colleague who knows the subject, and that colleague is invited to say what they know."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlmodel import select

from handlers.core import actions, lookup
from handlers.core.context import Context, Scope, dm
from handlers.core.errors import FormInvalid, NotAllowed
from handlers.core.interactions import Action, Actor, Reply, Submission
from handlers.core.lookup import REQUEST_GONE
from handlers.core.markup import md
from handlers.core.members import ensure_member, mention
from handlers.core.messages import (
    Block,
    Button,
    Buttons,
    ContextLine,
    Form,
    Message,
    Section,
    TextField,
    UserField,
)
from handlers.core.wording import clip, first
from storage.models import ContentRequest, ExpertProfile

if TYPE_CHECKING:
    from handlers.core.router import Router

NOMINATE_FORM = "nominate_form"
NOTE_MAX = 500


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
        form=Form(
            form_id=NOMINATE_FORM,
            title="Suggest a colleague",
            submit_label="Invite",
            intro=(Section(text=md("Who knows about *{}*?", clip(request.topic, 200))),),
            fields=(
                UserField(name="colleague", label="Colleague"),
                TextField(
                    name="note",
                    label="A word for them",
                    optional=True,
                    multiline=True,
                    max_length=NOTE_MAX,
                    placeholder="You answered this for Globex last spring.",
                ),
            ),
            state=str(request.id),
        )
    )


async def nominate(ctx: Context, submission: Submission) -> Reply:
    """The colleague is invited to create an expert profile, which offers them the request."""
    request = await _my_request(ctx, submission.state)
    user_id = first(submission.values.get("colleague")).strip()
    note = " ".join(first(submission.values.get("note")).split())
    if not user_id:
        raise FormInvalid({"colleague": "Pick a colleague."})
    if user_id == ctx.member.user_id:
        raise FormInvalid({"colleague": "That's you! Create your own profile with `expert`."})
    if len(note) > NOTE_MAX:
        raise FormInvalid({"note": f"Keep it under {NOTE_MAX} characters."})
    profile = (
        await ctx.directory.profile(ctx.workspace.external_id, user_id) if ctx.directory else None
    )
    if ctx.directory is not None and profile is None:
        raise FormInvalid({"colleague": "I can't find that person in this workspace."})
    if profile is not None and profile.is_bot:
        raise FormInvalid({"colleague": "That's a bot — pick a person."})
    colleague = await ensure_member(ctx.session, ctx.workspace, profile or Actor(user_id), ctx.now)
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
