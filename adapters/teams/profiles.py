"""Who acted: Teams members from the Bot Connector's roster, cached per tenant and person.

The activity names the person; their email comes from `TeamsInfo.get_member` and their time
zone from the `localTimezone` their own client reports with each message.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import replace

import structlog
from botbuilder.core import TurnContext
from botbuilder.core.teams import TeamsInfo
from botbuilder.schema.teams import TeamsChannelAccount
from msrest.exceptions import ClientRequestError, HttpOperationError

from adapters.cache import TTLCache
from adapters.teams import translate
from handlers.core.interactions import Actor

log = structlog.get_logger(__name__)

PROFILE_TTL = 600.0
PROFILE_CACHE_SIZE = 10_000
# Teams waits 5 s for an invoke's answer; a slow roster must not eat that budget.
PROFILE_TIMEOUT = 1.5


def to_actor(member: TeamsChannelAccount, *, user_id: str, fallback_name: str = "") -> Actor:
    """A roster entry as an Actor. Teams says nothing about tenant admins: FLYWHEEL_ADMINS does."""
    email = member.email or member.user_principal_name
    return Actor(
        user_id=user_id,
        name=str(member.name or member.given_name or fallback_name),
        email=str(email).lower() if email else None,
        is_bot=False,
    )


class Profiles:
    """A TTL + LRU cache of actors by tenant and user id; the time zone is never cached."""

    def __init__(
        self,
        *,
        ttl: float = PROFILE_TTL,
        size: int = PROFILE_CACHE_SIZE,
        timeout: float = PROFILE_TIMEOUT,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self.timeout = timeout
        self._cache: TTLCache[tuple[str, str], Actor] = TTLCache(ttl=ttl, size=size, timer=timer)

    async def actor(self, turn_context: TurnContext) -> Actor:
        """The person behind this turn's activity, with the time zone their client reports."""
        activity = turn_context.activity
        tenant, user_id = translate.tenant_id(activity), translate.user_id(activity)
        name = translate.user_name(activity)
        tz = activity.local_timezone or None
        cached = self._cache.get((tenant, user_id))
        if cached is not None:
            return _with_tz(cached, tz)
        try:
            async with asyncio.timeout(self.timeout):
                member = await TeamsInfo.get_member(turn_context, user_id)
        except (HttpOperationError, ClientRequestError, TimeoutError, OSError) as error:
            # The turn can go on: the person is known by id, only the profile is missing.
            log.warning(
                "teams.profile_unavailable", tenant=tenant, user=user_id, error=type(error).__name__
            )
            return Actor(user_id=user_id, name=name, tz=tz, profile_known=False)
        actor = to_actor(member, user_id=user_id, fallback_name=name)
        self._cache.put((tenant, user_id), actor)
        return _with_tz(actor, tz)


def _with_tz(actor: Actor, tz: str | None) -> Actor:
    return actor if not tz or actor.tz == tz else replace(actor, tz=tz)
