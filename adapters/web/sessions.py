"""Program-page sessions in signed cookies: who is signed in, until when, and their CSRF token.

The cookie holds the workspace and member ids and a random CSRF token, signed (HMAC, with
a key derived from FLYWHEEL_SECRET_KEY) and timestamped: it is `HttpOnly`, `SameSite=Lax`,
`Secure` when the public address is https, and refused once older than the session's
lifetime. What the person may see is read from the database on every request, so a role
taken away applies at once. A second, short-lived cookie ties a sign-in's `state` to the
browser that started it.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from aiohttp import web
from itsdangerous import BadSignature, URLSafeTimedSerializer

SESSION_COOKIE = "flywheel_session"
SIGNIN_COOKIE = "flywheel_signin"
SIGNIN_SECONDS = 600


@dataclass(frozen=True, slots=True)
class SessionData:
    workspace_id: int
    member_id: int
    csrf: str


class Sessions:
    """Writes and reads the session and sign-in cookies."""

    def __init__(self, secret_key: str, *, secure: bool, lifetime: timedelta) -> None:
        self._session = URLSafeTimedSerializer(secret_key, salt="flywheel.program.session")
        self._signin = URLSafeTimedSerializer(secret_key, salt="flywheel.program.signin")
        self._secure = secure
        self._lifetime = lifetime

    def _cookie(self, response: web.StreamResponse, name: str, value: str, max_age: int) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path="/",
            httponly=True,
            secure=self._secure,
            samesite="Lax",
        )

    def start(self, response: web.StreamResponse, workspace_id: int, member_id: int) -> None:
        """Sign the person in on `response`: a new session with a new CSRF token."""
        value = self._session.dumps([workspace_id, member_id, secrets.token_urlsafe(24)])
        self._cookie(response, SESSION_COOKIE, value, int(self._lifetime.total_seconds()))

    def read(self, request: web.Request) -> SessionData | None:
        """The session the request carries, if it is ours and not expired."""
        raw = request.cookies.get(SESSION_COOKIE)
        if not raw:
            return None
        try:
            workspace_id, member_id, csrf = self._session.loads(
                raw, max_age=int(self._lifetime.total_seconds())
            )
        except (BadSignature, ValueError, TypeError):
            return None
        if not (isinstance(workspace_id, int) and isinstance(member_id, int)):
            return None
        return SessionData(workspace_id, member_id, str(csrf))

    def end(self, response: web.StreamResponse) -> None:
        response.del_cookie(SESSION_COOKIE, path="/")

    def remember_state(self, response: web.StreamResponse, state: str) -> None:
        """Tie a sign-in's `state` to this browser for ten minutes."""
        self._cookie(response, SIGNIN_COOKIE, self._signin.dumps(state), SIGNIN_SECONDS)

    def state_matches(self, request: web.Request, state: str) -> bool:
        """Whether this browser started the sign-in that came back with `state`."""
        raw = request.cookies.get(SIGNIN_COOKIE)
        if not raw or not state:
            return False
        try:
            started = self._signin.loads(raw, max_age=SIGNIN_SECONDS)
        except BadSignature:
            return False
        return isinstance(started, str) and hmac.compare_digest(started, state)

    def forget_state(self, response: web.StreamResponse) -> None:
        response.del_cookie(SIGNIN_COOKIE, path="/")

    @staticmethod
    def csrf_ok(session: SessionData, token: str) -> bool:
        return bool(token) and hmac.compare_digest(session.csrf, token)
