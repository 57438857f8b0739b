"""`stats`: this week's loop in numbers, mine and the program's, and the demand nobody met."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func
from sqlmodel import col, select

from handlers.core import actions
from handlers.core.context import Context, Scope
from handlers.core.interactions import Command, Reply
from handlers.core.lifecycle import Status
from handlers.core.markup import labelled
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
from handlers.core.quiet_hours import zone
from handlers.core.wording import plural
from handlers.core.workspace_settings import load
from handlers.impact import notes
from handlers.impact.linkedin_posts import confirmed
from handlers.impact.people import PersonFigures, people
from handlers.impact.query import Period
from handlers.impact.totals import weekly_totals
from handlers.linkedin import connection as linkedin
from handlers.requests import demand
from handlers.routing.ping_status import ANSWERED
from storage.models import ContentRequest, Ping

if TYPE_CHECKING:
    from handlers.core.router import Router


def week_start(scope: Scope) -> datetime:
    """Monday 00:00 of this week in the workspace's time zone."""
    local = scope.now.astimezone(zone(load(scope.workspace).timezone))
    monday = (local - timedelta(days=local.weekday())).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    return monday


def this_week(scope: Scope) -> Period:
    """From Monday 00:00, local time, to now (inclusive)."""
    return Period(week_start(scope), scope.now + timedelta(microseconds=1))


async def _count(scope: Scope, query: Any) -> int:
    return int((await scope.session.exec(query)).one())


async def show(ctx: Context, command: Command) -> Reply:
    period = this_week(ctx)
    since = period.start
    [program] = await weekly_totals(ctx.session, ctx.workspace_id, [period])
    in_workspace = ContentRequest.workspace_id == ctx.workspace_id
    claimed = await _count(
        ctx, select(func.count()).where(in_workspace, col(ContentRequest.claimed_at) >= since)
    )
    # Requests nobody took yet count as waiting, as the unmet demand listed below does.
    waiting = await _count(
        ctx,
        select(func.count()).where(
            in_workspace, col(ContentRequest.status).in_([Status.OPEN, Status.DECLINED])
        ),
    )
    answered = await _count(
        ctx,
        select(func.count()).where(
            Ping.member_id == ctx.member_id,
            col(Ping.answered_at) >= since,
            col(Ping.status).in_(sorted(ANSWERED)),
        ),
    )
    mine = (await people(ctx.session, ctx.workspace_id, period, ctx.member_id)).get(
        ctx.member_id
    ) or PersonFigures(member_id=ctx.member_id, user_id=ctx.member.user_id)
    # Share buttons pressed are intents; a LinkedIn post counts once LinkedIn confirmed it.
    posted = await confirmed(ctx.session, ctx.workspace_id, period)
    on_linkedin = (
        (labelled("Posted on LinkedIn (confirmed)", f"{posted.total:,}"),)
        if ctx.config.linkedin
        else ()
    )
    my_linkedin = (
        (labelled("Your LinkedIn posts (confirmed)", f"{posted.by_member[ctx.member_id]:,}"),)
        if ctx.config.linkedin
        else ()
    )
    blocks: list[Block] = [
        Header(text="This week so far"),
        Section(
            fields=(
                labelled("Requests", f"{program.requests:,}"),
                labelled("Claimed by experts", f"{claimed:,}"),
                labelled("Waiting for an expert", f"{waiting:,}"),
                labelled("Posts from requests", f"{program.posts - program.outside_posts:,}"),
                labelled("Posts from links and feeds", f"{program.outside_posts:,}"),
                labelled("Shares", f"{program.shares:,}"),
                *on_linkedin,
                labelled("Clicks", f"{program.clicks:,}"),
                labelled("Wins", f"{program.wins:,}"),
                labelled("People taking part", f"{program.participants:,}"),
            )
        ),
        Header(text="You"),
        Section(
            fields=(
                labelled("Requests made", f"{mine.requests:,}"),
                labelled("Expert pings answered", f"{answered:,}"),
                labelled("Posts published", f"{mine.posts:,}"),
                labelled(
                    "Your posts",
                    f"{plural(mine.post_shares, 'share')}, {plural(mine.post_clicks, 'click')}",
                ),
                labelled("Your shares", f"{mine.shares:,}"),
                *my_linkedin,
                labelled("Clicks on your links", f"{mine.clicks:,}"),
                labelled("Wins you logged", f"{mine.wins_logged:,}"),
            )
        ),
    ]
    on = notes.notes_on(ctx)
    blocks += [
        ContextLine(
            text="Weekly notes are on: on digest day you hear what your part did."
            if on
            else "Weekly notes are off."
        ),
        Buttons(
            buttons=(
                Button(label="Sharing preferences", action=actions.SHARE_PREFS, value=""),
                notes.toggle_button(on),
                *await _linkedin_button(ctx),
            )
        ),
    ]
    unmet = await demand.unmet(ctx)
    if unmet:
        blocks += [Divider(), Header(text="Unmet demand")]
        blocks += [Section(text=labelled(r.topic, demand.wanted(votes))) for r, votes in unmet]
        blocks.append(
            ContextLine(
                text="Know someone who could answer? Ask them to add the topic with `expert`."
            )
        )
    return Reply(
        message=Message(
            text=f"This week: {plural(program.requests, 'request')}, {claimed:,} claimed, "
            f"{waiting:,} waiting, {plural(program.shares, 'share')}, "
            f"{plural(program.clicks, 'click')}, {plural(program.wins, 'win')}.",
            blocks=tuple(blocks),
        ),
        private=True,
    )


async def _linkedin_button(ctx: Context) -> tuple[Button, ...]:
    """Connect LinkedIn, or disconnect it, where LinkedIn posting is set up."""
    if not ctx.config.linkedin:
        return ()
    if await linkedin.account_of(ctx, ctx.member_id) is None:
        return (linkedin.connect_button(),)
    return (Button(label="Disconnect LinkedIn", action=actions.LINKEDIN_DISCONNECT),)


def register(router: Router) -> None:
    router.command(
        "stats", usage="stats", summary="my impact and the program's, this week, and unmet demand"
    )(show)
