"""A fake LinkedIn: authorization page, token, userinfo, Posts API and revocation, as
LinkedIn documents them, with faults on request.

- `GET /oauth/v2/authorization` plays the member on the consent page: it redirects back to
  `redirect_uri` with `code` and `state`, or with `error=user_cancelled_authorize` when the
  member is set to cancel.
- `POST /oauth/v2/accessToken` exchanges a code once, for the client it was issued to.
- `GET /v2/userinfo` (OpenID Connect) names the token's member (`sub`, `name`).
- `POST /rest/posts` checks the versioned API's headers and the post's shape, publishes it
  and answers 201 with the URN in `x-restli-id`. Faults: any status (401, 422, 429, 5xx)
  before publishing, or `timeout` / `reset` after publishing (the answer is lost).
- `POST /oauth/v2/revoke` revokes a token.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import secrets
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from aiohttp.test_utils import TestServer

CLIENT_ID = "77flywheeltest"
CLIENT_SECRET = "fake-linkedin-client-secret"
REQUIRED_SCOPES = {"openid", "profile", "w_member_social"}


@dataclass
class Member:
    sub: str
    name: str


@dataclass
class Published:
    urn: str
    token: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class FakeLinkedIn:
    """State of the fake: who signs in, tokens, posts published, faults queued."""

    client_id: str = CLIENT_ID
    client_secret: str = CLIENT_SECRET
    member: Member = field(default_factory=lambda: Member("abc123XYZ", "Alice Martin"))
    # The next consent: "allow", or "cancel" (the member presses Cancel).
    consent: str = "allow"
    expires_in: int = 5_184_000  # 60 days, as LinkedIn grants
    codes: dict[str, tuple[Member, str]] = field(default_factory=dict)
    tokens: dict[str, Member] = field(default_factory=dict)
    revoked: list[str] = field(default_factory=list)
    issued: list[str] = field(default_factory=list)
    posts: list[Published] = field(default_factory=list)
    post_faults: deque[str] = field(default_factory=deque)
    # How long a `timeout` fault keeps the client waiting.
    hold: float = 5.0
    requests: list[str] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(7000000000))
    server: TestServer | None = None

    # -- set-up -------------------------------------------------------------------------
    def signs_in_as(self, sub: str, name: str) -> None:
        self.member = Member(sub, name)

    def fail_posts(self, *faults: str) -> None:
        """The next posts meet these faults, in order: a status ("429", "500", "401", "422")
        before anything is published, or "timeout" / "reset" after it is."""
        self.post_faults.extend(faults)

    @property
    def oauth_url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("/oauth/v2"))

    @property
    def api_url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("")).rstrip("/")

    async def start(self) -> FakeLinkedIn:
        app = web.Application()
        app.router.add_get("/oauth/v2/authorization", self._authorize)
        app.router.add_post("/oauth/v2/accessToken", self._token)
        app.router.add_post("/oauth/v2/revoke", self._revoke)
        app.router.add_get("/v2/userinfo", self._userinfo)
        app.router.add_post("/rest/posts", self._post)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server()
        return self

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()

    # -- OAuth --------------------------------------------------------------------------
    async def _authorize(self, request: web.Request) -> web.Response:
        self.requests.append("authorization")
        query = request.query
        redirect = query.get("redirect_uri", "")
        if (
            query.get("response_type") != "code"
            or query.get("client_id") != self.client_id
            or not redirect
        ):
            return web.Response(status=400, text="invalid authorization request")
        scopes = set(query.get("scope", "").split())
        if not scopes >= REQUIRED_SCOPES:
            return web.Response(status=400, text=f"missing scopes {REQUIRED_SCOPES - scopes}")
        state = query.get("state", "")
        if self.consent == "cancel":
            answer = {
                "error": "user_cancelled_authorize",
                "error_description": "The user cancelled the authorization",
                "state": state,
            }
        else:
            code = secrets.token_urlsafe(16)
            self.codes[code] = (self.member, redirect)
            answer = {"code": code, "state": state}
        raise web.HTTPFound(f"{redirect}?{urlencode(answer)}")

    async def _token(self, request: web.Request) -> web.Response:
        self.requests.append("accessToken")
        form = await request.post()
        if form.get("client_id") != self.client_id or form.get("client_secret") != (
            self.client_secret
        ):
            return _oauth_error(401, "invalid_client", "Client authentication failed")
        if form.get("grant_type") != "authorization_code":
            return _oauth_error(400, "unsupported_grant_type", "grant_type not supported")
        issued = self.codes.pop(str(form.get("code", "")), None)
        if issued is None:
            return _oauth_error(
                400,
                "invalid_request",
                "Unable to retrieve access token: authorization code not found",
            )
        member, redirect = issued
        if form.get("redirect_uri") != redirect:
            return _oauth_error(400, "invalid_redirect_uri", "redirect_uri does not match")
        token = "AQV" + secrets.token_urlsafe(48)
        self.tokens[token] = member
        self.issued.append(token)
        return web.json_response(
            {
                "access_token": token,
                "expires_in": self.expires_in,
                "scope": "email,openid,profile,w_member_social",
                "token_type": "Bearer",
                "id_token": "eyJ.fake.idtoken",
            }
        )

    async def _revoke(self, request: web.Request) -> web.Response:
        self.requests.append("revoke")
        form = await request.post()
        if form.get("client_id") != self.client_id or form.get("client_secret") != (
            self.client_secret
        ):
            return _oauth_error(401, "invalid_client", "Client authentication failed")
        token = str(form.get("token", ""))
        if self.tokens.pop(token, None) is not None:
            self.revoked.append(token)
        return web.Response(status=200)

    def _member(self, request: web.Request) -> tuple[str, Member] | None:
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ")
        member = self.tokens.get(token) if auth.startswith("Bearer ") else None
        return None if member is None else (token, member)

    async def _userinfo(self, request: web.Request) -> web.Response:
        self.requests.append("userinfo")
        found = self._member(request)
        if found is None:
            return _api_error(401, "Invalid access token", 65600)
        member = found[1]
        given, _, family = member.name.partition(" ")
        return web.json_response(
            {
                "sub": member.sub,
                "name": member.name,
                "given_name": given,
                "family_name": family,
                "locale": {"country": "US", "language": "en"},
            }
        )

    # -- Posts API ------------------------------------------------------------------------
    async def _post(self, request: web.Request) -> web.StreamResponse:
        self.requests.append("posts")
        found = self._member(request)
        if found is None:
            return _api_error(401, "Invalid access token", 65600)
        token, member = found
        if not re.fullmatch(r"\d{6}", request.headers.get("LinkedIn-Version", "")):
            return _api_error(426, "A valid LinkedIn-Version header (YYYYMM) is required", 0)
        if request.headers.get("X-Restli-Protocol-Version") != "2.0.0":
            return _api_error(400, "X-Restli-Protocol-Version 2.0.0 is required", 0)
        body = await request.json()
        problem = _shape_problem(body, member)
        if problem:
            return _api_error(422, problem, 100)
        fault = self.post_faults.popleft() if self.post_faults else None
        if fault is not None and fault.isdigit():
            status = int(fault)
            if status == 401:
                return _api_error(401, "The token used in the request has expired", 65601)
            if status == 429:
                return _api_error(429, "Resource level throttle limit reached", 0, retry=60)
            if status >= 500:
                return _api_error(status, "Internal Server Error", 0)
            return _api_error(
                status, "Content is a duplicate of urn:li:share:6999999999999999999", 0
            )
        urn = f"urn:li:share:{next(self._ids)}"
        headers = {k: v for k, v in request.headers.items()}
        self.posts.append(Published(urn, token, headers, body))
        if fault == "timeout":
            await asyncio.sleep(self.hold)
        elif fault == "reset":
            assert request.transport is not None
            request.transport.abort()
            await asyncio.sleep(0.1)
        return web.Response(status=201, headers={"x-restli-id": urn, "x-linkedin-id": urn})

    def published_by(self, sub: str) -> list[Published]:
        return [p for p in self.posts if p.body.get("author") == f"urn:li:person:{sub}"]


def _shape_problem(body: Any, member: Member) -> str | None:
    """What LinkedIn would refuse in a post's body (422), as it would say it."""
    if not isinstance(body, dict):
        return "Request body must be a JSON object"
    if body.get("author") != f"urn:li:person:{member.sub}":
        return f"Member does not have permission to post as {body.get('author')}"
    commentary = body.get("commentary")
    if not isinstance(commentary, str) or len(commentary) > 3000:
        return "/commentary :: length must be at most 3000"
    if body.get("visibility") != "PUBLIC" or body.get("lifecycleState") != "PUBLISHED":
        return "/visibility or /lifecycleState :: invalid value"
    distribution = body.get("distribution")
    if not isinstance(distribution, dict) or distribution.get("feedDistribution") != "MAIN_FEED":
        return "/distribution/feedDistribution :: required"
    article = (body.get("content") or {}).get("article")
    if not isinstance(article, dict) or not str(article.get("source", "")).startswith("http"):
        return "/content/article/source :: required"
    if not isinstance(article.get("title"), str):
        return "/content/article/title :: required"
    return None


def _oauth_error(status: int, error: str, description: str) -> web.Response:
    return web.json_response({"error": error, "error_description": description}, status=status)


def _api_error(status: int, message: str, code: int, retry: int | None = None) -> web.Response:
    return web.json_response(
        {"message": message, "serviceErrorCode": code, "status": status},
        status=status,
        headers={"Retry-After": str(retry)} if retry is not None else None,
    )
