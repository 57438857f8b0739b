"""The `LinkedInApi` port over aiohttp, from LinkedIn's documentation:

- Authorization code flow: `GET {oauth}/authorization` (consent page), `POST
  {oauth}/accessToken` (code → access token), `POST {oauth}/revoke`.
- OpenID Connect userinfo: `GET {api}/v2/userinfo` (`sub` is the member id).
- Posts API: `POST {api}/rest/posts` with `LinkedIn-Version` and `X-Restli-Protocol-Version:
  2.0.0`; the new post's URN comes back in the `x-restli-id` header of a 201.

Whether a failed post may have been published decides what happens next, so failures are
told apart precisely: a connection that never opened, a 429 or a 5xx published nothing
(`NotSent`); a connection that broke or went silent after the request was written may have
(`AnswerLost`). Each post goes over a fresh connection, so a stale pooled connection cannot
turn into an unclear outcome. Tokens are sent in headers and bodies only, never logged.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import aiohttp
import structlog

from handlers.linkedin.api import (
    SCOPES,
    AccessToken,
    AnswerLost,
    Article,
    Grant,
    LinkedInError,
    NotSent,
    Person,
    Refused,
    Unauthorized,
)

log = structlog.get_logger(__name__)

# The Posts API version asked for (YYYYMM). LinkedIn supports each version for at least a
# year; raise it with LinkedIn's release notes in view.
LINKEDIN_VERSION = "202611"
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 30.0


class LinkedInClient:
    """One LinkedIn app (client id and secret) against LinkedIn's OAuth and API bases."""

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        oauth_url: str = "https://www.linkedin.com/oauth/v2",
        api_url: str = "https://api.linkedin.com",
        connect_timeout: float = CONNECT_TIMEOUT,
        read_timeout: float = READ_TIMEOUT,
    ) -> None:
        self.client_id = client_id
        self._secret = client_secret
        self.oauth_url = oauth_url.rstrip("/")
        self.api_url = api_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=connect_timeout, sock_read=read_timeout
        )
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:
        return f"LinkedInClient(client_id={self.client_id!r})"

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout, connector=aiohttp.TCPConnector(force_close=True)
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def authorization_url(self, *, state: str, redirect_uri: str) -> str:
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.client_id,
                "redirect_uri": redirect_uri,
                "state": state,
                "scope": " ".join(SCOPES),
            }
        )
        return f"{self.oauth_url}/authorization?{query}"

    async def exchange_code(self, code: str, *, redirect_uri: str) -> Grant:
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "client_id": self.client_id,
            "client_secret": self._secret,
            "redirect_uri": redirect_uri,
        }
        status, body, _ = await self._call("POST", f"{self.oauth_url}/accessToken", data=form)
        if status != 200:
            raise _refusal(status, body, "LinkedIn did not accept the sign-in")
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise Refused("LinkedIn's answer carried no access token", status=status)
        expires = body.get("expires_in")
        return Grant(
            token=AccessToken(token),
            expires_in=int(expires) if isinstance(expires, int | float) else 0,
            scope=str(body.get("scope", "")),
        )

    async def userinfo(self, token: AccessToken) -> Person:
        status, body, _ = await self._call(
            "GET", f"{self.api_url}/v2/userinfo", headers=_bearer(token)
        )
        if status != 200:
            raise _refusal(status, body, "LinkedIn would not say who you are")
        sub = body.get("sub")
        if not isinstance(sub, str) or not sub:
            raise Refused("LinkedIn's answer did not name the member", status=status)
        name = body.get("name")
        if not isinstance(name, str) or not name:
            name = " ".join(
                str(body[k]) for k in ("given_name", "family_name") if isinstance(body.get(k), str)
            )
        return Person(sub=sub, name=name)

    async def create_post(self, token: AccessToken, article: Article) -> str:
        payload = {
            "author": article.author,
            "commentary": article.commentary,
            "visibility": "PUBLIC",
            "distribution": {
                "feedDistribution": "MAIN_FEED",
                "targetEntities": [],
                "thirdPartyDistributionChannels": [],
            },
            "content": {
                "article": {
                    "source": article.source,
                    "title": article.title,
                    "description": article.description,
                }
            },
            "lifecycleState": "PUBLISHED",
            "isReshareDisabledByAuthor": False,
        }
        headers = {
            **_bearer(token),
            "LinkedIn-Version": LINKEDIN_VERSION,
            "X-Restli-Protocol-Version": "2.0.0",
            "Content-Type": "application/json",
        }
        status, body, answer = await self._call(
            "POST",
            f"{self.api_url}/rest/posts",
            data=json.dumps(payload),
            headers=headers,
            post=True,
        )
        if status in (200, 201):
            urn = answer.get("x-restli-id") or body.get("id")
            if not isinstance(urn, str) or not urn.startswith("urn:li:"):
                # Published, by LinkedIn's status, but it did not say where.
                raise AnswerLost("LinkedIn accepted the post without saying its URN", status=status)
            return urn
        raise _refusal(status, body, "LinkedIn refused the post", answer)

    async def revoke(self, token: AccessToken) -> None:
        form = {"client_id": self.client_id, "client_secret": self._secret, "token": token.reveal()}
        status, body, _ = await self._call("POST", f"{self.oauth_url}/revoke", data=form)
        if status != 200:
            raise _refusal(status, body, "LinkedIn did not revoke the token")

    async def _call(
        self,
        method: str,
        url: str,
        *,
        data: Any = None,
        headers: dict[str, str] | None = None,
        post: bool = False,
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        """Status, JSON body ({} if none) and headers; NotSent or AnswerLost when it failed."""
        try:
            async with self._http().request(method, url, data=data, headers=headers) as response:
                raw = await response.read()
                answer = {k.lower(): v for k, v in response.headers.items()}
                status = response.status
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as error:
            raise NotSent(f"LinkedIn could not be reached ({type(error).__name__})") from None
        except (TimeoutError, aiohttp.ClientError) as error:
            # The request was written: LinkedIn may have acted on it.
            detail = f"no answer from LinkedIn ({type(error).__name__})"
            raise (AnswerLost(detail) if post else NotSent(detail)) from None
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = {}
        return status, body if isinstance(body, dict) else {}, answer


def _bearer(token: AccessToken) -> dict[str, str]:
    return {"Authorization": f"Bearer {token.reveal()}"}


def _refusal(
    status: int, body: dict[str, Any], fallback: str, headers: dict[str, str] | None = None
) -> LinkedInError:
    message = body.get("message") or body.get("error_description") or body.get("error")
    detail = str(message)[:500] if message else f"{fallback} (HTTP {status})"
    if status == 401:
        return Unauthorized(detail, status=status)
    if status == 429 or status >= 500:
        return NotSent(
            detail, status=status, retry_after=_seconds((headers or {}).get("retry-after"))
        )
    return Refused(detail, status=status)


def _seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None
