"""A fake OpenID Connect provider: Sign in with Slack and Microsoft Entra ID, over HTTP.

It serves both providers' paths (Slack's `/openid/connect/...` and `/api/openid.connect.token`,
Entra's `/{tenant}/oauth2/v2.0/...` and `/{tenant}/discovery/v2.0/keys`), signs ID tokens
with its own RSA key and publishes it as a JWKS. Its authorize endpoint consents at once
for whoever `sign_in_as` named, so a browser (or a test following redirects) comes straight
back with a code. A test can spoil the next token: another audience, nonce, issuer or
expiry (`spoil`), or a signature by a key it does not publish (`foreign_key`).
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import jwt
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives.asymmetric import rsa

KID = "fake-key-1"


@dataclass
class Grant:
    client_id: str
    redirect_uri: str
    nonce: str
    claims: dict[str, Any]
    provider: str  # slack | microsoft
    tenant: str = ""


@dataclass
class FakeOIDC:
    """The provider's state: who signs in next, codes handed out, what to spoil."""

    client_id: str = "1234.5678"
    client_secret: str = "fake-client-secret"
    identity: dict[str, Any] = field(default_factory=dict)
    spoil: dict[str, Any] = field(default_factory=dict)
    foreign_key: bool = False
    codes: dict[str, Grant] = field(default_factory=dict)
    tokens_issued: int = 0

    def __post_init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._server: TestServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "start() first"
        return str(self._server.make_url("")).rstrip("/")

    def sign_in_as_slack(self, team: str, user: str, name: str = "", email: str = "") -> None:
        """Who the next Slack sign-in is."""
        self.identity = {
            "https://slack.com/team_id": team,
            "https://slack.com/user_id": user,
            "name": name or user,
            **({"email": email} if email else {}),
        }

    def sign_in_as_microsoft(self, tenant: str, oid: str, name: str = "", email: str = "") -> None:
        """Who the next Microsoft sign-in is."""
        self.identity = {
            "tid": tenant,
            "oid": oid,
            "name": name or oid,
            **({"preferred_username": email} if email else {}),
        }

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/openid/connect/authorize", self._authorize)
        app.router.add_post("/api/openid.connect.token", self._token)
        app.router.add_get("/openid/connect/keys", self._keys)
        app.router.add_get("/{tenant}/oauth2/v2.0/authorize", self._authorize)
        app.router.add_post("/{tenant}/oauth2/v2.0/token", self._token)
        app.router.add_get("/{tenant}/discovery/v2.0/keys", self._keys)
        self._server = TestServer(app, host="127.0.0.1")
        await self._server.start_server()

    async def close(self) -> None:
        if self._server is not None:
            await self._server.close()

    def jwks(self) -> dict[str, Any]:
        public = jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        return {"keys": [{**public, "kid": KID, "use": "sig", "alg": "RS256"}]}

    async def _keys(self, _: web.Request) -> web.Response:
        return web.json_response(self.jwks())

    async def _authorize(self, request: web.Request) -> web.Response:
        q = request.query
        if q.get("response_type") != "code" or "openid" not in q.get("scope", "").split():
            return web.Response(status=400, text="bad authorize request")
        code = secrets.token_urlsafe(16)
        tenant = request.match_info.get("tenant", "")
        self.codes[code] = Grant(
            client_id=q.get("client_id", ""),
            redirect_uri=q.get("redirect_uri", ""),
            nonce=q.get("nonce", ""),
            claims=dict(self.identity),
            provider="microsoft" if tenant else "slack",
            tenant=tenant,
        )
        back = (
            q.get("redirect_uri", "") + "?" + urlencode({"code": code, "state": q.get("state", "")})
        )
        raise web.HTTPFound(back)

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        grant = self.codes.pop(str(form.get("code", "")), None)
        if (
            grant is None
            or form.get("client_id") != self.client_id
            or form.get("client_secret") != self.client_secret
            or form.get("redirect_uri") != grant.redirect_uri
        ):
            return web.json_response({"ok": False, "error": "invalid_code"})
        self.tokens_issued += 1
        return web.json_response({"ok": True, "id_token": self.id_token(grant)})

    def issuer(self, grant: Grant) -> str:
        if grant.provider == "slack":
            return self.url
        return f"{self.url}/{grant.claims.get('tid', '')}/v2.0"

    def id_token(self, grant: Grant) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer(grant),
            "sub": str(grant.claims.get("https://slack.com/user_id") or grant.claims.get("oid")),
            "aud": grant.client_id,
            "iat": now,
            "exp": now + 300,
            "nonce": grant.nonce,
            **grant.claims,
            **self.spoil,
        }
        key = self.other_key if self.foreign_key else self.key
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": KID})
