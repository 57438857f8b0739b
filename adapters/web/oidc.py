"""Sign-in with OpenID Connect: Sign in with Slack, and Microsoft Entra ID.

The authorization-code flow: `state` and `nonce` are made here, kept (hashed) in the
database for ten minutes and used once; the code is exchanged at the provider's token
endpoint; the ID token is checked with PyJWT against the provider's published keys
(signature, issuer, audience, expiry, nonce). The identity it names maps to a workspace and
member as in chat: Slack's `https://slack.com/team_id` and `https://slack.com/user_id`, or
Entra's `tid` (the Teams tenant) and `oid` (the object id Flywheel keeps as a Teams user id).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import aiohttp
import jwt
import structlog
from sqlalchemy import delete
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import SigninState

log = structlog.get_logger(__name__)

STATE_LIFETIME = timedelta(minutes=10)
KEYS_LIFETIME = 3600.0  # how long a provider's published keys are trusted before re-reading
KEYS_RETRY = 60.0  # an unknown key id re-reads the keys at most this often
LEEWAY = 60  # seconds of clock difference allowed on exp, iat and nbf
ALGORITHMS = ["RS256"]
SLACK_TEAM, SLACK_USER = "https://slack.com/team_id", "https://slack.com/user_id"
ANY_TENANT = ("organizations", "common")


class SignInRefused(Exception):
    """Sign-in refused; the message says why, for the person trying."""


@dataclass(frozen=True, slots=True)
class Identity:
    """Who the ID token says signed in, in Flywheel's terms."""

    platform: str  # the workspace's platform: slack | teams
    workspace: str  # Slack team id, Entra tenant id
    user_id: str  # Slack user id, Entra object id
    name: str
    email: str | None


@dataclass(frozen=True, slots=True)
class Provider:
    name: str  # in the URL: slack | microsoft
    label: str
    platform: str
    client_id: str
    client_secret: str
    authorize_url: str
    token_url: str
    keys_url: str
    # Slack's issuer is fixed; Entra's names the tenant (`{base}/{tid}/v2.0`).
    issuer: str | None = None
    base: str = ""
    tenant: str | None = None

    def authorize(self, *, redirect_uri: str, state: str, nonce: str) -> str:
        query = {
            "response_type": "code",
            "client_id": self.client_id,
            "scope": "openid email profile",
            "redirect_uri": redirect_uri,
            "state": state,
            "nonce": nonce,
        }
        return f"{self.authorize_url}?{urlencode(query)}"

    def check_issuer(self, claims: dict[str, Any]) -> None:
        issuer = str(claims.get("iss", ""))
        if self.issuer is not None:
            expected = self.issuer
        else:
            tid = str(claims.get("tid", ""))
            if self.tenant not in ANY_TENANT and tid != self.tenant:
                raise SignInRefused("That Microsoft account belongs to another organisation.")
            expected = f"{self.base}/{tid}/v2.0"
        if not hmac.compare_digest(issuer, expected):
            raise SignInRefused("The sign-in came from an unexpected issuer.")

    def identity(self, claims: dict[str, Any]) -> Identity:
        if self.platform == "slack":
            workspace, user = claims.get(SLACK_TEAM), claims.get(SLACK_USER)
        else:
            workspace, user = claims.get("tid"), claims.get("oid")
        if not isinstance(workspace, str) or not isinstance(user, str) or not workspace or not user:
            raise SignInRefused(f"{self.label} did not say which workspace and person you are.")
        email = claims.get("email") or claims.get("preferred_username")
        return Identity(
            platform=self.platform,
            workspace=workspace,
            user_id=user,
            name=str(claims.get("name") or "")[:200],
            email=str(email).lower()[:320] if isinstance(email, str) and "@" in email else None,
        )


def slack_provider(base: str, client_id: str, client_secret: str) -> Provider:
    """Sign in with Slack; `base` is https://slack.com (also the ID tokens' issuer)."""
    base = base.rstrip("/")
    return Provider(
        name="slack",
        label="Slack",
        platform="slack",
        client_id=client_id,
        client_secret=client_secret,
        authorize_url=f"{base}/openid/connect/authorize",
        token_url=f"{base}/api/openid.connect.token",
        keys_url=f"{base}/openid/connect/keys",
        issuer=base,
    )


def microsoft_provider(base: str, tenant: str, client_id: str, client_secret: str) -> Provider:
    """Sign in with Microsoft Entra ID, from one tenant or (multi-tenant) any organisation."""
    base = base.rstrip("/")
    return Provider(
        name="microsoft",
        label="Microsoft",
        platform="teams",
        client_id=client_id,
        client_secret=client_secret,
        authorize_url=f"{base}/{tenant}/oauth2/v2.0/authorize",
        token_url=f"{base}/{tenant}/oauth2/v2.0/token",
        keys_url=f"{base}/{tenant}/discovery/v2.0/keys",
        base=base,
        tenant=tenant,
    )


@dataclass(frozen=True, slots=True)
class Started:
    """What a sign-in kept until the provider sent the person back."""

    nonce: str
    next_path: str


def state_hash(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


async def begin(
    session: AsyncSession, provider: Provider, now: datetime, next_path: str
) -> tuple[str, str]:
    """A fresh (state, nonce), kept for ten minutes; expired ones are cleared on the way."""
    await session.exec(delete(SigninState).where(SigninState.expires_at < now))  # type: ignore[arg-type]
    state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    session.add(
        SigninState(
            state_hash=state_hash(state),
            provider=provider.name,
            nonce=nonce,
            next_path=next_path,
            expires_at=now + STATE_LIFETIME,
        )
    )
    return state, nonce


async def consume(session: AsyncSession, provider: Provider, state: str, now: datetime) -> Started:
    """The sign-in `state` started, removed so it can never be used again."""
    table: Any = SigninState.__table__  # type: ignore[attr-defined]
    # One DELETE … RETURNING: of two callbacks racing with the same state, one gets the row.
    removed = (
        await session.exec(
            delete(table)
            .where(table.c.state_hash == state_hash(state), table.c.provider == provider.name)
            .returning(table.c.nonce, table.c.next_path, table.c.expires_at)
        )
    ).first()
    if removed is None:
        raise SignInRefused(
            "This sign-in link is not one we made, or it was already used. Please sign in again."
        )
    nonce, next_path, expires_at = removed
    if expires_at < now:
        raise SignInRefused("This sign-in took too long and expired. Please sign in again.")
    return Started(nonce=nonce, next_path=next_path)


class Verifier:
    """Code exchange and ID-token checks, with each provider's keys cached for an hour."""

    def __init__(self) -> None:
        self._http: aiohttp.ClientSession | None = None
        self._keys: dict[str, tuple[float, dict[str, jwt.PyJWK]]] = {}

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()

    def _client(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        return self._http

    async def exchange(self, provider: Provider, code: str, redirect_uri: str) -> str:
        """The ID token the provider gives for `code`."""
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "client_id": provider.client_id,
            "client_secret": provider.client_secret,
        }
        try:
            async with self._client().post(provider.token_url, data=form) as response:
                body = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            log.warning("signin.token_failed", provider=provider.name, error=repr(error)[:200])
            raise SignInRefused(
                f"{provider.label} could not be reached to finish signing in. Try again."
            ) from None
        token = body.get("id_token") if isinstance(body, dict) else None
        if not isinstance(token, str):
            reason = body.get("error") if isinstance(body, dict) else None
            log.info("signin.code_refused", provider=provider.name, error=str(reason)[:100])
            raise SignInRefused(f"{provider.label} refused the sign-in. Please sign in again.")
        return token

    async def _key(self, provider: Provider, kid: str) -> jwt.PyJWK:
        fetched, keys = self._keys.get(provider.keys_url, (0.0, {}))
        age = time.monotonic() - fetched
        if kid not in keys and (age > KEYS_LIFETIME or age > KEYS_RETRY):
            try:
                async with self._client().get(provider.keys_url) as response:
                    body = await response.json(content_type=None)
                found = jwt.PyJWKSet.from_dict(body)
            except (aiohttp.ClientError, TimeoutError, ValueError, jwt.PyJWTError) as error:
                log.warning("signin.keys_failed", provider=provider.name, error=repr(error)[:200])
                raise SignInRefused(
                    f"{provider.label}'s signing keys could not be read. Try again."
                ) from None
            keys = {k.key_id: k for k in found.keys if k.key_id}
            self._keys[provider.keys_url] = (time.monotonic(), keys)
        if kid not in keys:
            raise SignInRefused("The sign-in was signed with a key the provider does not publish.")
        return keys[kid]

    async def verify(self, provider: Provider, token: str, nonce: str) -> Identity:
        """The identity of a valid ID token for this sign-in; SignInRefused otherwise."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise SignInRefused("The sign-in answer was not a valid ID token.") from None
        key = await self._key(provider, str(header.get("kid", "")))
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=ALGORITHMS,
                audience=provider.client_id,
                leeway=LEEWAY,
                options={"require": ["iss", "aud", "exp", "iat", "sub"], "verify_iss": False},
            )
        except jwt.InvalidAudienceError:
            raise SignInRefused("The sign-in was meant for another application.") from None
        except jwt.ExpiredSignatureError:
            raise SignInRefused("The sign-in has expired. Please sign in again.") from None
        except jwt.InvalidSignatureError:
            raise SignInRefused("The sign-in's signature does not check out.") from None
        except jwt.PyJWTError as error:
            log.info("signin.token_invalid", provider=provider.name, error=str(error)[:200])
            raise SignInRefused("The sign-in answer was not a valid ID token.") from None
        provider.check_issuer(claims)
        if not hmac.compare_digest(str(claims.get("nonce", "")), nonce):
            raise SignInRefused(
                "The sign-in does not belong to this attempt. Please sign in again."
            )
        return provider.identity(claims)
