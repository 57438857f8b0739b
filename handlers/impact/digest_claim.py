""" "I'll take it": an expert takes an open or unmet request they were not asked about,
from the weekly digest, the home tab, or the requests offered when their profile is saved."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import func
from sqlmodel import select

from handlers.core import actions, lookup, workspace_settings
from handlers.core.context import Context, dm
from handlers.core.errors import NotAllowed
from handlers.core.interactions import Action, Reply
from handlers.core.lifecycle import Status, move
from handlers.core.lookup import REQUEST_GONE
from handlers.core.messages import notice
from handlers.routing import pings
from storage.models import ContentRequest, ExpertProfile, Ping

if TYPE_CHECKING:
    from handlers.core.router import Router

REASON = "you took it from the weekly digest"
REASON_OFFERED = "you took it yourself"


async def claim(ctx: Context, action: Action) -> Reply:
    """`digest_claim`: taken from the weekly digest."""
    return await take(ctx, action, reason=REASON, where=" from the weekly digest")


async def take_offered(ctx: Context, action: Action) -> Reply:
    """`request_take`: taken from the home tab or an offer of matching requests."""
    return await take(ctx, action, reason=REASON_OFFERED, where="")


async def take(ctx: Context, action: Action, *, reason: str, where: str) -> Reply:
    """The reader takes the request as a pinged expert would.

    The claim is recorded as a ping the reader answered at once (`pings.add_ping`), then made
    by `pings.claim` itself: the first claim wins, the other experts' pings are withdrawn,
    the requester hears, and the claimant gets the drafting buttons in a DM.
    """
    request = await lookup.get(ctx, ContentRequest, action.value, REQUEST_GONE)
    if request.requester_id == ctx.member_id:
        raise NotAllowed(
            "You asked for this one, so it's for a colleague to answer. "
            "Share it with someone who knows the topic!"
        )
    profile = (
        await ctx.session.exec(
            select(ExpertProfile).where(ExpertProfile.member_id == ctx.member_id)
        )
    ).first()
    if profile is None:
        raise NotAllowed(
            "Requests are taken by experts. Tell me what you know with `expert` "
            "(it takes a minute), then press the button again."
        )
    if request.status == Status.DECLINED:
        # No expert was found: a volunteer reopens it, then claims it like anyone else.
        await move(ctx.session, request, Status.OPEN, ctx.now)
    settings = workspace_settings.load(ctx.workspace)
    rounds = (
        await ctx.session.exec(
            select(func.coalesce(func.max(Ping.round), 0)).where(Ping.request_id == request.id)
        )
    ).one()
    mine = await pings.add_ping(
        ctx,
        request,
        ctx.member,
        round_=int(rounds) + 1,
        reasons=[reason],
        deliver_at=ctx.now,
        expires_at=ctx.now + timedelta(hours=settings.ping_timeout_hours),
    )
    if mine is not None:
        # The DM the claim edits into the drafting buttons, as it edits a ping.
        await ctx.send(
            dm(ctx.member.user_id),
            notice(f"You're taking “{request.topic}”{where}."),
            key=f"ping:{mine.id}",
            ref_key=f"ping:{mine.id}",
        )
    return await pings.claim(ctx, action)


def register(router: Router) -> None:
    router.action(actions.DIGEST_CLAIM)(claim)
    router.action(actions.REQUEST_TAKE)(take_offered)
