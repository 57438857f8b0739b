"""`digest preview`: the coming digest as it stands now, shown to the person who asked only."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.core import workspace_settings
from handlers.core.context import Context
from handlers.core.interactions import Command, Reply
from handlers.core.markup import Markup, channel_mention, md
from handlers.core.messages import ContextLine, Message
from handlers.core.quiet_hours import zone
from handlers.core.workspace_settings import WorkspaceSettings
from handlers.impact.digest_figures import build
from handlers.impact.digest_message import message
from handlers.impact.digest_schedule import next_scheduled

if TYPE_CHECKING:
    from handlers.core.router import Router


async def preview(
    session: AsyncSession, workspace_id: int, settings: WorkspaceSettings, now: datetime
) -> Message:
    """The coming digest, as it stands now (without its chart, which is drawn when sent)."""
    scheduled = next_scheduled(settings, now)
    figures = await build(session, workspace_id, settings, scheduled)
    when = scheduled.astimezone(zone(settings.timezone))
    channels = Markup(", ").join(channel_mention(c) for c in settings.digest_channels)
    where = (
        md("in {}", channels)
        if channels
        else Markup("once an admin chooses its channels in `admin` (none are chosen yet)")
    )

    shown = message(figures, chart_url=None, page_url=None)
    lead = ContextLine(
        text=md(
            "Preview, only for you. It goes out {} ({}) {}; the figures will move until then.",
            f"{when:%A %d %B at %H:%M}",
            settings.timezone,
            where,
        )
    )
    return Message(text=Markup("Preview: ") + shown.text, blocks=(lead, *shown.blocks))


async def show_preview(ctx: Context, command: Command) -> Reply:
    """`digest preview`: the coming digest, to the person who asked only."""
    if command.text.strip().lower() not in ("preview", ""):
        return Reply.say("Try `digest preview`: it shows the coming weekly digest, to you only.")
    settings = workspace_settings.load(ctx.workspace)
    return Reply(
        message=await preview(ctx.session, ctx.workspace_id, settings, ctx.now), private=True
    )


def register(router: Router) -> None:
    router.command(
        "digest", usage="digest preview", summary="the coming weekly digest, shown to me only"
    )(show_preview)
