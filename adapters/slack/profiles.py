"""Who acted: Slack profiles from `users.info`, cached, so a busy channel costs few calls."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import structlog
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.cache import TTLCache
from handlers.core.errors import DomainError
from handlers.core.interactions import Actor

log = structlog.get_logger(__name__)

# Long enough that a conversation costs one lookup, short enough that a new admin or a
# changed email is noticed within minutes.
PROFILE_TTL = 600.0
PROFILE_CACHE_SIZE = 10_000
# Slack wants its answer within 3 seconds; a slow profile must not eat that budget.
PROFILE_TIMEOUT = 1.5


class Profiles:
    """A TTL + LRU cache of actors by workspace and user id."""

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

    async def actor(
        self, client: AsyncWebClient, team_id: str, user_id: str, *, name: str = ""
    ) -> Actor:
        """The profile of `user_id`; the payload's own ids when Slack cannot be asked."""
        cached = self.cached(team_id, user_id)
        if cached is not None:
            return cached
        try:
            async with asyncio.timeout(self.timeout):
                response = await client.users_info(user=user_id)
        except (SlackApiError, aiohttp.ClientError, TimeoutError) as error:
            # The request can go on: the actor is known by id, only the profile is missing.
            log.warning(
                "slack.profile_unavailable",
                team=team_id,
                user=user_id,
                error=_reason(error),
            )
            return Actor(user_id=user_id, name=name, profile_known=False)
        actor = to_actor(response.get("user") or {}, user_id=user_id, fallback_name=name)
        self.keep(team_id, actor)
        return actor

    def cached(self, team_id: str, user_id: str) -> Actor | None:
        """The profile of `user_id` if it was fetched within the TTL."""
        return self._cache.get((team_id, user_id))

    def keep(self, team_id: str, actor: Actor) -> None:
        """Remember a profile fetched from Slack, dropping the least recently used."""
        self._cache.put((team_id, actor.user_id), actor)


def to_actor(user: dict[str, Any], *, user_id: str, fallback_name: str = "") -> Actor:
    """A `users.info` user object as an Actor; workspace admins and owners are admins here."""
    profile = user.get("profile") or {}
    name = (
        profile.get("display_name")
        or profile.get("real_name")
        or user.get("real_name")
        or user.get("name")
        or fallback_name
    )
    return Actor(
        user_id=str(user.get("id") or user_id),
        name=str(name),
        email=profile.get("email") or None,
        tz=user.get("tz") or None,
        title=(profile.get("title") or "").strip()[:200] or None,
        is_platform_admin=bool(user.get("is_admin") or user.get("is_owner")),
        is_bot=bool(user.get("is_bot")),
    )


def _reason(error: BaseException) -> str:
    if isinstance(error, SlackApiError):
        return str(error.response.get("error") or error.response.status_code)
    return type(error).__name__


class SlackDirectory:
    """The Directory port for Slack: people by id or email, for those who never wrote to us."""

    def __init__(self, client: AsyncWebClient, profiles: Profiles) -> None:
        self.client = client
        self.profiles = profiles

    async def profile(self, workspace: str, user_id: str) -> Actor | None:
        cached = self.profiles.cached(workspace, user_id)
        if cached is not None:
            return cached
        try:
            response = await self.client.users_info(user=user_id)
        except SlackApiError as error:
            if error.response.get("error") == "user_not_found":
                return None
            raise DomainError(
                "Slack isn't answering right now — please try again in a minute."
            ) from None
        except (aiohttp.ClientError, TimeoutError):
            raise DomainError(
                "Slack isn't answering right now — please try again in a minute."
            ) from None
        actor = to_actor(response.get("user") or {}, user_id=user_id)
        self.profiles.keep(workspace, actor)
        return actor

    async def by_email(self, workspace: str, email: str) -> Actor | None:
        try:
            response = await self.client.users_lookupByEmail(email=email)
        except SlackApiError as error:
            if error.response.get("error") == "users_not_found":
                return None
            raise DomainError(f"Slack refused the lookup of {email}: {_reason(error)}") from None
        user = response.get("user") or {}
        return to_actor(user, user_id=str(user.get("id", "")))
