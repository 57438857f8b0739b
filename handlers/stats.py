"""`stats`: this week's loop in numbers, mine and the program's, and the demand nobody met."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func
from sqlmodel import col, select

from handlers import home
from handlers.context import Context, Scope
from handlers.interactions import Command, Reply
from handlers.lifecycle import Status
from handlers.messages import Block, Divider, Header, Message, Section
from handlers.messages import Context as ContextLine
from handlers.quiet_hours import zone
from handlers.workspace_settings import load
from storage.models import ContentRequest, Ping

if TYPE_CHECKING:
    from handlers.router import Router


def week_start(scope: Scope) -> datetime:
    """Monday 00:00 of this week in the workspace's time zone."""
    local = scope.now.astimezone(zone(load(scope.workspace).timezone))
    monday = (local - timedelta(days=local.weekday())).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    return monday


async def _count(scope: Scope, query: Any) -> int:
    return int((await scope.session.exec(query)).one())


async def show(ctx: Context, command: Command) -> Reply:
    since = week_start(ctx)
    in_workspace = ContentRequest.workspace_id == ctx.workspace_id
    asked = await _count(
        ctx, select(func.count()).where(in_workspace, ContentRequest.created_at >= since)
    )
    claimed = await _count(
        ctx, select(func.count()).where(in_workspace, col(ContentRequest.claimed_at) >= since)
    )
    waiting = await _count(
        ctx, select(func.count()).where(in_workspace, ContentRequest.status == Status.OPEN)
    )
    mine = await _count(
        ctx,
        select(func.count()).where(
            in_workspace,
            ContentRequest.requester_id == ctx.member_id,
            ContentRequest.created_at >= since,
        ),
    )
    answered = await _count(
        ctx,
        select(func.count()).where(
            Ping.member_id == ctx.member_id,
            col(Ping.answered_at) >= since,
            col(Ping.status).in_(["claimed", "passed", "declined"]),
        ),
    )
    blocks: list[Block] = [
        Header(text="This week"),
        Section(
            fields=(
                f"*Requests*\n{asked}",
                f"*Claimed by experts*\n{claimed}",
                f"*Waiting for an expert*\n{waiting}",
            )
        ),
        Section(
            text=f"*You:* {_plural(mine, 'request')} made, "
            f"{_plural(answered, 'expert ping')} answered."
        ),
    ]
    unmet = await home.unmet_demand(ctx)
    if unmet:
        blocks += [Divider(), Header(text="Unmet demand")]
        blocks += [Section(text=f"*{r.topic}*\n{home.demand(votes)}") for r, votes in unmet]
        blocks.append(
            ContextLine(
                text="Know someone who could answer? Ask them to add the topic with `expert`."
            )
        )
    return Reply(
        message=Message(
            text=f"This week: {asked} requests, {claimed} claimed, {waiting} waiting.",
            blocks=tuple(blocks),
        )
    )


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def register(router: Router) -> None:
    router.command(
        "stats", usage="stats", summary="my impact and the program's, this week, and unmet demand"
    )(show)
