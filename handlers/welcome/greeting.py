"""The welcome: what Flywheel does for this person, three ways to start, and for admins
what the workspace still needs. Said once per person, however often the platform repeats
the install or the first open."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import update

from handlers.admin import setup
from handlers.core import actions
from handlers.core.context import Context, dm
from handlers.core.interactions import NO_REPLY, Event, Reply
from handlers.core.members import is_admin
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
from storage.models import Member

if TYPE_CHECKING:
    from handlers.core.router import Router

INSTALLED = "installed"
FIRST_CONTACT = "first_contact"


def welcome_message(ctx: Context) -> Message:
    """The welcome for the actor; admins get the setup checklist too."""
    name = ctx.member.name.split(" ")[0] if ctx.member.name else "there"
    blocks: list[Block] = [
        Header(text="Welcome to Flywheel"),
        Section(
            text=f"Hi {name}! Ask for the content your customers need, colleagues who know "
            "the subject write it, a reviewer approves it, and everyone shares it with their "
            "own tracked links. Each week I tell you what it did."
        ),
        Buttons(
            buttons=(
                Button(label="Request content", action=actions.REQUEST_OPEN, style="primary"),
                Button(label="Create my expert profile", action=actions.EXPERT_OPEN),
                Button(label="Sharing preferences", action=actions.SHARE_PREFS),
            )
        ),
        ContextLine(text="Write `help` to me any time to see everything I do."),
    ]
    if is_admin(ctx.member, ctx.config, ctx.workspace):
        checklist = setup.checklist(ctx.workspace, with_button=True)
        if checklist:
            blocks += [Divider(), Header(text="Set Flywheel up for everyone"), *checklist]
    return Message(text="Welcome to Flywheel", blocks=tuple(blocks))


async def greet(ctx: Context) -> bool:
    """Welcome the actor unless they were welcomed before; True if this was the first time.

    The mark is a compare-and-set in the caller's transaction, so two deliveries of the same
    install (or an install and a first open at once) welcome once.
    """
    if ctx.member.welcomed_at is not None or ctx.member.is_bot:
        return False
    table = Member.__table__  # type: ignore[attr-defined]
    marked = await ctx.session.exec(
        update(table)
        .where(table.c.id == ctx.member_id, table.c.welcomed_at.is_(None))
        .values(welcomed_at=ctx.now)
    )
    if not marked.rowcount:
        return False
    await ctx.send(dm(ctx.member.user_id), welcome_message(ctx), key=f"welcome:{ctx.member_id}")
    return True


async def on_install(ctx: Context, event: Event) -> Reply:
    """Flywheel was added to a team or a chat: the person who added it hears first."""
    await greet(ctx)
    return NO_REPLY


def register(router: Router) -> None:
    router.event(INSTALLED)(on_install)
    router.event(FIRST_CONTACT)(on_install)
