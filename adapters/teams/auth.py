"""Inbound authentication: every activity carries a Bot Framework JWT, checked before use.

The SDK validates the token (signature against the channel's published keys, issuer,
expiry, audience = our app id, endorsement for `msteams`, and the `serviceurl` claim
against the activity). Two of its habits are corrected here: it answers some bad tokens
with an exception that would become a 500 (a missing header, an unknown key id), and it
fetches the signing keys with blocking HTTP calls inside a coroutine. Tokens are therefore
screened first, keys are fetched in a worker thread before the SDK asks for them, and any
failure of validation is a 401.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import jwt
import structlog
from botbuilder.schema import Activity
from botframework.connector.auth import (
    AuthenticateRequestResult,
    BotFrameworkAuthentication,
    JwtTokenExtractor,
)

log = structlog.get_logger(__name__)

# The SDK refreshes keys older than a day, and on an unknown key id at most once an hour;
# refreshing on the same schedule here means it never needs to itself.
KEYS_MAX_AGE = timedelta(days=1)
UNKNOWN_KEY_REFRESH = timedelta(hours=1)


class Unauthorized(Exception):
    """The activity's token is missing or not valid for this bot; answered 401."""


class KeysUnavailable(Exception):
    """The channel's signing keys could not be fetched; answered 503 so the channel retries."""


class InboundAuth:
    """Authenticates activities for CloudAdapter, turning every rejection into Unauthorized."""

    def __init__(
        self,
        authentication: BotFrameworkAuthentication,
        *,
        metadata_url: str,
        issuer: str,
        anonymous: bool = False,
    ) -> None:
        self.authentication = authentication
        self.metadata_url = metadata_url
        self.issuer = issuer
        self.anonymous = anonymous
        self._refreshing = asyncio.Lock()

    async def authenticate(
        self, activity: Activity, header: str | None
    ) -> AuthenticateRequestResult:
        """The SDK's result for a valid token; Unauthorized (or KeysUnavailable) otherwise."""
        if self.anonymous:
            # Local development only: start-up refused this mode on any non-loopback host.
            return await self.authentication.authenticate_request(activity, None)
        token = _bearer(header)
        try:
            claims = jwt.decode(token, options={"verify_signature": False})
            key_id = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError:
            raise Unauthorized("the bearer token is not a JWT") from None
        if not isinstance(claims, dict) or claims.get("iss") != self.issuer:
            # Emulator and skill tokens take other paths in the SDK; a Teams bot accepts
            # only the channel's own.
            raise Unauthorized("the token was not issued by the Bot Framework channel")
        await self._fresh_keys(key_id if isinstance(key_id, str) else None)
        try:
            return await self.authentication.authenticate_request(activity, header or "")
        except Exception as error:  # the SDK signals rejection in many types
            log.info("teams.token_rejected", reason=f"{type(error).__name__}: {error}"[:200])
            raise Unauthorized("the token is not valid for this bot") from None

    async def _fresh_keys(self, key_id: str | None) -> None:
        """Fetch the channel's signing keys in a thread when the SDK would fetch them itself."""
        metadata = JwtTokenExtractor.get_open_id_metadata(self.metadata_url)
        if not _needs_refresh(metadata, key_id):
            return
        async with self._refreshing:
            if not _needs_refresh(metadata, key_id):
                return  # another request refreshed them while this one waited
            try:
                await asyncio.to_thread(_refresh_blocking, metadata)
            except Exception as error:  # requests, JSON and key errors alike
                log.error("teams.signing_keys_unavailable", error=type(error).__name__)
                raise KeysUnavailable(
                    "the Bot Framework signing keys could not be fetched"
                ) from None
            log.info("teams.signing_keys_refreshed", keys=len(metadata.keys))


def _bearer(header: str | None) -> str:
    if not header:
        raise Unauthorized("no Authorization header")
    scheme, _, token = header.partition(" ")
    if scheme != "Bearer" or not token.strip() or " " in token.strip():
        raise Unauthorized("the Authorization header is not a bearer token")
    return token.strip()


def _needs_refresh(metadata: Any, key_id: str | None) -> bool:
    now = datetime.now()  # the SDK keeps naive local times
    if metadata.last_updated < now - KEYS_MAX_AGE:
        return True
    known = any(key.get("kid") == key_id for key in metadata.keys)
    return not known and metadata.last_updated < now - UNKNOWN_KEY_REFRESH


def _refresh_blocking(metadata: Any) -> None:
    """The SDK's own refresh (blocking `requests` calls), run to completion in this thread."""
    asyncio.run(metadata._refresh())
