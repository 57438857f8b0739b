"""`GET /linkedin/connect` and `GET /linkedin/callback`: the browser legs of connecting LinkedIn.

`/linkedin/connect?t=…` (the signed link from chat) makes a `state`, keeps its nonce in a
cookie of this browser, and sends the browser to LinkedIn's consent page. LinkedIn sends
it back to `/linkedin/callback` with a code (or an error) and the state. Every outcome is
a plain page that says what happened; on any failure nothing about the member is stored.
"""

from __future__ import annotations

import base64
import hashlib
import html
from collections.abc import Callable

import structlog
from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError

from handlers.core.context import Config
from handlers.core.ports import Clock
from handlers.linkedin import connection
from handlers.linkedin.api import LinkedInApi, LinkedInError
from storage.db import SessionFactory

log = structlog.get_logger(__name__)

COOKIE = "flywheel_linkedin"

_STYLE = (
    "body{font:17px/1.6 system-ui,-apple-system,Segoe UI,sans-serif;max-width:34rem;"
    "margin:4rem auto;padding:0 1rem;color:#1d1d1f;background:#fff}"
    "h1{font-size:1.6rem;line-height:1.3}"
)
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()
POLICY = (
    f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)

# What each refusal says: a title, and what to do about it.
PAGES: dict[str, tuple[int, str, str]] = {
    "invalid": (
        400,
        "This link isn't valid",
        "It may have been copied incompletely or changed. Press “Connect LinkedIn” in chat "
        "for a fresh one. Nothing was connected.",
    ),
    "missing": (
        400,
        "Something is missing",
        "LinkedIn sent you back without the details Flywheel needs. Press “Connect "
        "LinkedIn” in chat to start again. Nothing was connected.",
    ),
    "expired": (
        400,
        "This link has expired",
        "Links to connect LinkedIn work for a short while only. Press “Connect LinkedIn” in "
        "chat for a fresh one. Nothing was connected.",
    ),
    "replayed": (
        400,
        "This sign-in was already used",
        "Each sign-in works once. If your LinkedIn isn't connected yet, press “Connect "
        "LinkedIn” in chat again. Nothing more was changed.",
    ),
    "foreign": (
        400,
        "This sign-in was started somewhere else",
        "It was started by someone else, or in another browser, so it can't connect your "
        "account. Press “Connect LinkedIn” in chat, in this browser. Nothing was connected.",
    ),
    "cancelled": (
        200,
        "LinkedIn not connected",
        "You chose not to connect LinkedIn, so nothing was stored. You can connect any time "
        "from “Connect LinkedIn” in chat.",
    ),
    "denied": (
        400,
        "LinkedIn said no",
        "LinkedIn did not grant access: {detail}. Nothing was connected.",
    ),
    "unavailable": (
        502,
        "LinkedIn didn't answer",
        "LinkedIn could not finish the sign-in just now ({detail}). Please press “Connect "
        "LinkedIn” in chat and try again. Nothing was connected.",
    ),
    "not_configured": (
        404,
        "LinkedIn isn't set up",
        "LinkedIn posting isn't turned on for this Flywheel.",
    ),
}


class LinkedInPages:
    """The two routes, with what they need: settings, the database, LinkedIn."""

    def __init__(
        self,
        sessions: SessionFactory,
        clock: Clock,
        config: Config,
        api: LinkedInApi | None,
        on_commit: Callable[[], None] = lambda: None,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._config = config
        self._api = api
        self._on_commit = on_commit
        self._secure = config.public_base_url.startswith("https://")

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/linkedin/connect", self.connect),
            web.get("/linkedin/callback", self.callback),
        ]

    async def connect(self, request: web.Request) -> web.StreamResponse:
        """The signed link from chat: set the state's cookie, go to LinkedIn's consent page."""
        if self._api is None or not self._config.linkedin:
            return page("not_configured")
        now = self._clock.now()
        try:
            who = connection.read_connect_link(self._config, request.query.get("t", ""), now)
        except connection.Refused as refused:
            log.info("linkedin.connect_refused", reason=refused.reason)
            return page(refused.reason)
        state, nonce = connection.new_state(self._config, who, now)
        location = self._api.authorization_url(
            state=state, redirect_uri=connection.redirect_uri(self._config)
        )
        response = web.Response(
            status=302,
            headers={
                "Location": location,
                "Cache-Control": "no-store",
                "Referrer-Policy": "no-referrer",
            },
        )
        response.set_cookie(
            COOKIE,
            nonce,
            max_age=int(connection.STATE_TTL.total_seconds()),
            path="/linkedin",
            httponly=True,
            secure=self._secure,
            # Sent on the top-level navigation back from LinkedIn, never on a cross-site POST.
            samesite="Lax",
        )
        return response

    async def callback(self, request: web.Request) -> web.StreamResponse:
        """LinkedIn's redirect: check the state, exchange the code, store the sealed token."""
        if self._api is None or not self._config.linkedin:
            return page("not_configured")
        query = request.query
        now = self._clock.now()
        error = query.get("error")
        if error:
            # Nothing is stored: whatever the state, LinkedIn granted nothing.
            log.info("linkedin.callback_error", error=error[:100])
            if error == "user_cancelled_authorize" or error == "user_cancelled_login":
                return page("cancelled", clear=True)
            return page("denied", detail=query.get("error_description", error), clear=True)
        code = query.get("code", "")
        try:
            state = connection.read_state(self._config, query.get("state", ""), now)
            if not code:
                raise connection.Refused("missing")
            await connection.refuse_used(self._sessions, state)
            connection.same_browser(state, request.cookies.get(COOKIE))
            # Recorded before the code is exchanged: two callbacks racing, one wins.
            await connection.use_state(self._sessions, state, now)
        except connection.Refused as refused:
            log.info("linkedin.callback_refused", reason=refused.reason)
            return page(refused.reason)
        except SQLAlchemyError:
            log.exception("linkedin.callback_failed")
            return page("unavailable", detail="the database did not answer")
        redirect = connection.redirect_uri(self._config)
        try:
            grant = await self._api.exchange_code(code, redirect_uri=redirect)
            person = await self._api.userinfo(grant.token)
        except LinkedInError as failure:
            log.warning("linkedin.exchange_failed", status=failure.status, error=failure.detail)
            return page("unavailable", detail=failure.detail)
        previous = await connection.revocation_pending(self._sessions, self._config, state.who)
        if previous is not None:
            try:
                await self._api.revoke(previous)
            except LinkedInError as failure:
                # Expired or revoked already, or LinkedIn busy: the new token replaces it.
                log.info("linkedin.revoke_refused", error=failure.detail)
        try:
            name = await connection.save_account(
                self._sessions, now, self._config, state.who, grant, person, self._on_commit
            )
        except connection.Refused as refused:
            return page(refused.reason)
        log.info("linkedin.connected", member=state.who.member_id)
        return page(
            "connected",
            title="LinkedIn connected",
            body=f"Your LinkedIn is connected as {name or 'you'}. Back in chat, approved "
            "posts now carry a “Post on LinkedIn” button. You can close this tab.",
            status=200,
            clear=True,
        )


def page(
    reason: str,
    *,
    detail: str = "",
    title: str | None = None,
    body: str | None = None,
    status: int | None = None,
    clear: bool = False,
) -> web.Response:
    """A small page saying what happened; everything in it is escaped."""
    known = PAGES.get(reason, PAGES["invalid"])
    code = status if status is not None else known[0]
    heading = title if title is not None else known[1]
    text = body if body is not None else known[2].format(detail=detail[:300])
    response = web.Response(
        status=code,
        text=f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(heading)} · Flywheel</title>
<style>{_STYLE}</style>
</head>
<body>
<h1>{html.escape(heading)}</h1>
<p>{html.escape(text)}</p>
</body>
</html>
""",
        content_type="text/html",
        charset="utf-8",
        headers={
            "Content-Security-Policy": POLICY,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store",
        },
    )
    if clear:
        response.del_cookie(COOKIE, path="/linkedin")
    return response
