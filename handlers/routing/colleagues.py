"""A colleague named in a form: the suggest form of a ping, and a requester's nomination when
nobody has an expert profile. Both ask the same question and check the answer the same way."""

from __future__ import annotations

from collections.abc import Mapping

from handlers.core.context import Context
from handlers.core.errors import FormInvalid
from handlers.core.interactions import Actor, Submission
from handlers.core.markup import Markup
from handlers.core.members import ensure_member
from handlers.core.messages import Form, Section, TextField, UserField
from handlers.core.wording import first
from storage.models import Member

NOTE_MAX = 500


def colleague_form(
    *, form_id: str, submit_label: str, question: Markup, placeholder: str, state: str
) -> Form:
    """A form asking for a colleague and an optional word for them."""
    return Form(
        form_id=form_id,
        title="Suggest a colleague",
        submit_label=submit_label,
        intro=(Section(text=question),),
        fields=(
            UserField(name="colleague", label="Colleague"),
            TextField(
                name="note",
                label="A word for them",
                optional=True,
                multiline=True,
                max_length=NOTE_MAX,
                placeholder=placeholder,
            ),
        ),
        state=state,
    )


def form_note(submission: Submission, name: str) -> str:
    """An optional note of a form, on one line, or an inline error if too long."""
    value = submission.values.get(name)
    if isinstance(value, tuple):
        value = " ".join(value)
    note = " ".join(str(value or "").split())
    if len(note) > NOTE_MAX:
        raise FormInvalid({name: f"Keep it under {NOTE_MAX} characters."})
    return note


async def picked_colleague(
    ctx: Context, submission: Submission, refused: Mapping[str, str]
) -> Member:
    """The person picked in the `colleague` field, as a member of this workspace.

    `refused` maps user ids that may not be picked (the person filling in the form, say) to
    what they are told. Nobody picked, someone the directory doesn't know, or a bot, is an
    inline error.
    """
    user_id = first(submission.values.get("colleague")).strip()
    if not user_id:
        raise FormInvalid({"colleague": "Pick a colleague."})
    if user_id in refused:
        raise FormInvalid({"colleague": refused[user_id]})
    profile = (
        await ctx.directory.profile(ctx.workspace.external_id, user_id) if ctx.directory else None
    )
    if ctx.directory is not None and profile is None:
        raise FormInvalid({"colleague": "I can't find that person in this workspace."})
    if profile is not None and profile.is_bot:
        raise FormInvalid({"colleague": "That's a bot — pick a person."})
    return await ensure_member(ctx.session, ctx.workspace, profile or Actor(user_id), ctx.now)
