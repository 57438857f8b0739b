"""The program page: `PUBLIC_BASE_URL/`, sign-in with Slack or Microsoft, and the program's
figures as server-rendered pages and CSV downloads.

| route | does |
|---|---|
| `GET /` | sign-in choices, or the signed-in person's first page |
| `GET /signin/{provider}` | starts an OpenID Connect sign-in (`slack`, `microsoft`) |
| `GET /signin/{provider}/callback` | where the provider sends the person back |
| `POST /signout` | ends the session (with the CSRF token) |
| `GET /program`, `/program/{trends,demand,content,people}` | the workspace (admins, reviewers) |
| `GET /program/people/{user_id}` | one person's page (themselves, or admins and reviewers) |
| `GET /program/{page}.csv?table=…`, `/program/people/{user_id}.csv?table=…` | a table as CSV |

Pages load nothing but their own stylesheet: no script, no frame, forms post only here.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Awaitable, Callable
from datetime import timedelta
from importlib import resources
from typing import Any

import structlog
from aiohttp import web
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup, escape
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel.ext.asyncio.session import AsyncSession

from adapters.web import oidc
from adapters.web.sessions import SessionData, Sessions
from handlers.core.context import Config
from handlers.core.ports import Clock
from handlers.program import access, pages
from handlers.program.access import Forbidden, NotFound, Viewer
from handlers.program.period import WEEKS, PeriodError, Window, parse
from handlers.program.tables import Cell, Person, Table, text, to_csv
from storage.db import SessionFactory, transaction

log = structlog.get_logger(__name__)

POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {
    "Content-Security-Policy": POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
NAV = (
    ("overview", "Overview"),
    ("trends", "Trends"),
    ("demand", "Demand"),
    ("content", "Content"),
    ("people", "People"),
)

Builder = Callable[[AsyncSession, Viewer, Window], Awaitable[pages.Page]]


def _cell(value: Cell) -> Markup:
    """A table cell on the page: people link to their page, numbers are grouped."""
    if value is None:
        return Markup("—")
    if isinstance(value, Person):
        href = "/program/people/" + urllib.parse.quote(value.user_id, safe="")
        return Markup('<a href="{}">{}</a>').format(href, value.name)
    if isinstance(value, bool):
        return escape("yes" if value else "no")
    if isinstance(value, int):
        return escape(f"{value:,}")
    if isinstance(value, float):
        return escape(f"{value:,.1f}")
    return escape(text(value))


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("adapters.web", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=False,
    )
    env.filters["cell"] = _cell
    return env


def _safe_next(value: str) -> str:
    """A path of this site to return to after signing in; anything else goes home."""
    if value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value[:500]
    return "/"


class ProgramSite:
    """The program page's routes, over the database, the clock and the sign-in providers."""

    def __init__(
        self,
        sessions: SessionFactory,
        clock: Clock,
        config: Config,
        *,
        public_base_url: str,
        secret_key: str | None,
        providers: list[oidc.Provider],
        session_lifetime: timedelta = timedelta(hours=8),
    ) -> None:
        self._db = sessions
        self._clock = clock
        self._config = config
        self._base = public_base_url.rstrip("/")
        # Without a secret key nobody can be signed in: the page says sign-in is not set up.
        self._providers = {p.name: p for p in providers} if secret_key else {}
        self._cookies = (
            Sessions(
                secret_key,
                secure=self._base.startswith("https://"),
                lifetime=session_lifetime,
            )
            if secret_key
            else None
        )
        self._verifier = oidc.Verifier()
        self._env = _environment()
        self._css = resources.files("adapters.web").joinpath("static/program.css").read_bytes()

    async def close(self) -> None:
        await self._verifier.close()

    def routes(self) -> list[web.RouteDef]:
        csv_pages = "overview|trends|demand|content|people"
        return [
            web.get("/", self.home),
            web.get("/signin/{provider}", self.signin),
            web.get("/signin/{provider}/callback", self.callback),
            web.post("/signout", self.signout),
            web.get("/program/static/program.css", self.stylesheet),
            web.get("/program/people/{user_id:[^/]+}.csv", self.person_csv),
            web.get("/program/{page:" + csv_pages + "}.csv", self.page_csv),
            web.get("/program", self.overview),
            web.get("/program/trends", self.trends),
            web.get("/program/demand", self.demand),
            web.get("/program/content", self.content),
            web.get("/program/people", self.people),
            web.get("/program/people/{user_id}", self.person),
        ]

    # Rendering

    def _html(self, template: str, status: int = 200, **values: Any) -> web.Response:
        values.setdefault("viewer", None)
        values.setdefault("nav", NAV)
        body = self._env.get_template(template).render(**values)
        return web.Response(
            text=body, status=status, content_type="text/html", charset="utf-8", headers=HEADERS
        )

    def _message(
        self,
        status: int,
        heading: str,
        message: str,
        *,
        link: tuple[str, str] | None = ("/", "Back to the start"),
        **values: Any,
    ) -> web.Response:
        return self._html(
            "message.html", status, heading=heading, message=message, link=link, **values
        )

    async def stylesheet(self, _: web.Request) -> web.Response:
        return web.Response(
            body=self._css,
            content_type="text/css",
            charset="utf-8",
            headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
        )

    # Signing in and out

    async def _current(self, request: web.Request) -> tuple[SessionData, Viewer] | None:
        if self._cookies is None:
            return None
        data = self._cookies.read(request)
        if data is None:
            return None
        async with self._db() as session:
            viewer = await access.viewer(session, self._config, data.workspace_id, data.member_id)
        return None if viewer is None else (data, viewer)

    async def home(self, request: web.Request) -> web.StreamResponse:
        """Sign-in choices; the signed-in go to their first page."""
        try:
            current = await self._current(request)
        except SQLAlchemyError:
            return _unavailable()
        if current is not None:
            _, viewer = current
            if viewer.sees_workspace:
                return _redirect(303, "/program")
            return _redirect(303, "/program/people/" + urllib.parse.quote(viewer.user_id, safe=""))
        next_path = _safe_next(request.query.get("next", "/"))
        next_query = "" if next_path == "/" else "?" + urllib.parse.urlencode({"next": next_path})
        return self._html(
            "signin.html",
            providers=list(self._providers.values()),
            next_query=next_query,
            message=None,
        )

    def _redirect_uri(self, provider: oidc.Provider) -> str:
        return f"{self._base}/signin/{provider.name}/callback"

    async def signin(self, request: web.Request) -> web.StreamResponse:
        """Start signing in: a new state and nonce, then off to the provider."""
        provider = self._providers.get(request.match_info["provider"])
        if provider is None or self._cookies is None:
            return self._message(404, "No such sign-in", "This way of signing in is not set up.")
        next_path = _safe_next(request.query.get("next", "/"))
        try:
            async with transaction(self._db) as session:
                state, nonce = await oidc.begin(session, provider, self._clock.now(), next_path)
        except SQLAlchemyError:
            log.exception("signin.begin_failed")
            return _unavailable()
        response = _redirect(
            302,
            provider.authorize(redirect_uri=self._redirect_uri(provider), state=state, nonce=nonce),
        )
        self._cookies.remember_state(response, state)
        return response

    def _refused(self, message: str) -> web.Response:
        response = self._message(400, "Sign-in refused", message, link=("/", "Sign in again"))
        if self._cookies is not None:
            self._cookies.forget_state(response)
        return response

    async def callback(self, request: web.Request) -> web.StreamResponse:
        """The provider sent the person back: check everything, then start a session."""
        provider = self._providers.get(request.match_info["provider"])
        if provider is None or self._cookies is None:
            return self._message(404, "No such sign-in", "This way of signing in is not set up.")
        if request.query.get("error"):
            return self._refused(f"Signing in with {provider.label} was cancelled or refused.")
        state, code = request.query.get("state", ""), request.query.get("code", "")
        if not state or not code:
            return self._refused("The sign-in answer is incomplete. Please sign in again.")
        if not self._cookies.state_matches(request, state):
            return self._refused(
                "This sign-in was not started in this browser, or took too long. "
                "Please sign in again."
            )
        try:
            async with transaction(self._db) as session:
                started = await oidc.consume(session, provider, state, self._clock.now())
                nonce, next_path = started.nonce, started.next_path
            token = await self._verifier.exchange(provider, code, self._redirect_uri(provider))
            identity = await self._verifier.verify(provider, token, nonce)
            async with transaction(self._db) as session:
                viewer = await access.sign_in(
                    session,
                    self._config,
                    platform=identity.platform,
                    external_id=identity.workspace,
                    user_id=identity.user_id,
                    name=identity.name,
                    email=identity.email,
                    now=self._clock.now(),
                )
        except oidc.SignInRefused as refused:
            log.info("signin.refused", provider=provider.name, reason=str(refused))
            return self._refused(str(refused))
        except SQLAlchemyError:
            log.exception("signin.failed")
            return _unavailable()
        if viewer is None:
            return self._refused(
                f"Flywheel is not set up in that {provider.label} workspace, so there is "
                "nothing to show you here."
            )
        log.info("signin.ok", provider=provider.name, workspace=viewer.workspace_id)
        if next_path == "/":
            next_path = (
                "/program"
                if viewer.sees_workspace
                else "/program/people/" + urllib.parse.quote(viewer.user_id, safe="")
            )
        response = _redirect(303, next_path)
        self._cookies.forget_state(response)
        self._cookies.start(response, viewer.workspace_id, viewer.member_id)
        return response

    async def signout(self, request: web.Request) -> web.StreamResponse:
        """End the session: a POST with the session's CSRF token."""
        if self._cookies is None:
            return _redirect(303, "/")
        data = self._cookies.read(request)
        form = await request.post()
        token = form.get("csrf")
        if data is None:
            return _redirect(303, "/")
        if not isinstance(token, str) or not Sessions.csrf_ok(data, token):
            return self._message(
                403,
                "Not signed out",
                "That sign-out did not come from this site's page. Use the Sign out button.",
            )
        response = _redirect(303, "/")
        self._cookies.end(response)
        return response

    # Pages

    async def _page(
        self, request: web.Request, key: str, build: Builder, *, person: str | None = None
    ) -> web.StreamResponse:
        try:
            current = await self._current(request)
        except SQLAlchemyError:
            return _unavailable()
        if current is None:
            return _redirect(303, "/?" + urllib.parse.urlencode({"next": request.path_qs}))
        data, viewer = current
        path = request.path
        values: dict[str, Any] = {
            "viewer": viewer,
            "csrf": data.csrf,
            "page_key": "me" if person == viewer.user_id else key,
            "path": path,
            "csv_path": path + ".csv" if key != "overview" else "/program/overview.csv",
            "weeks_choices": WEEKS,
            "sorts": list(pages.SORTS),
            "sort": request.query.get("sort", "clicks") if key == "content" else None,
            "shown": pages.SHOWN,
            "from_value": request.query.get("from", ""),
            "to_value": request.query.get("to", ""),
            "query": "",
        }
        try:
            window = parse(request.query, self._clock.now(), viewer.timezone)
        except PeriodError as error:
            return self._html(
                "page.html", 400, title=_title(key), error=str(error), window=None, **values
            )
        values["query"] = "?" + urllib.parse.urlencode(window.query())
        if window.weeks is None:
            values["from_value"], values["to_value"] = (
                window.first_day.isoformat(),
                window.last_day.isoformat(),
            )
        try:
            async with self._db() as session:
                page = await build(session, viewer, window)
        except Forbidden as refused:
            return self._message(403, "Not for you", str(refused), link=_own(viewer), **values)
        except NotFound as missing:
            return self._message(404, "Not found", str(missing), link=_own(viewer), **values)
        except pages.BadQuery as bad:
            return self._html(
                "page.html", 400, title=_title(key), error=str(bad), window=window, **values
            )
        except SQLAlchemyError:
            log.exception("program.page_failed", page=key)
            return _unavailable()
        return self._html(
            "page.html", title=page.title, page=page, window=window, error=None, **values
        )

    async def overview(self, request: web.Request) -> web.StreamResponse:
        return await self._page(request, "overview", pages.overview)

    async def trends(self, request: web.Request) -> web.StreamResponse:
        return await self._page(request, "trends", pages.trends)

    async def demand(self, request: web.Request) -> web.StreamResponse:
        now = self._clock.now()
        return await self._page(request, "demand", lambda s, v, w: pages.demand(s, v, w, now))

    async def content(self, request: web.Request) -> web.StreamResponse:
        sort = request.query.get("sort", "clicks")
        return await self._page(
            request, "content", lambda s, v, w: pages.content_page(s, v, w, sort)
        )

    async def people(self, request: web.Request) -> web.StreamResponse:
        return await self._page(request, "people", pages.people_page)

    async def person(self, request: web.Request) -> web.StreamResponse:
        user_id = request.match_info["user_id"]
        return await self._page(
            request,
            "person",
            lambda s, v, w: pages.person_page(s, v, user_id, w),
            person=user_id,
        )

    # CSV

    def _builder(self, key: str, request: web.Request) -> Builder:
        if key == "demand":
            now = self._clock.now()
            return lambda s, v, w: pages.demand(s, v, w, now)
        if key == "content":
            sort = request.query.get("sort", "clicks")
            return lambda s, v, w: pages.content_page(s, v, w, sort)
        return {
            "overview": pages.overview,
            "trends": pages.trends,
            "people": pages.people_page,
        }[key]

    async def page_csv(self, request: web.Request) -> web.StreamResponse:
        key = request.match_info["page"]
        return await self._csv(request, key, self._builder(key, request))

    async def person_csv(self, request: web.Request) -> web.StreamResponse:
        user_id = request.match_info["user_id"]
        return await self._csv(
            request, "person", lambda s, v, w: pages.person_page(s, v, user_id, w)
        )

    async def _csv(self, request: web.Request, key: str, build: Builder) -> web.StreamResponse:
        try:
            current = await self._current(request)
        except SQLAlchemyError:
            return _unavailable()
        if current is None:
            return _plain(401, "Sign in first: " + self._base + "/")
        _, viewer = current
        try:
            window = parse(request.query, self._clock.now(), viewer.timezone)
            async with self._db() as session:
                page = await build(session, viewer, window)
        except (PeriodError, pages.BadQuery) as bad:
            return _plain(400, str(bad))
        except Forbidden as refused:
            return _plain(403, str(refused))
        except NotFound as missing:
            return _plain(404, str(missing))
        except SQLAlchemyError:
            log.exception("program.csv_failed", page=key)
            return _unavailable()
        table = page.table(request.query.get("table", ""))
        if table is None:
            names = ", ".join(t.name for t in page.tables)
            return _plain(404, f"No such table on this page: choose one of {names}.")
        return web.Response(
            body=to_csv(table),
            content_type="text/csv",
            charset="utf-8",
            headers={
                **HEADERS,
                "Content-Disposition": f'attachment; filename="{_filename(key, table, window)}"',
            },
        )


def _filename(key: str, table: Table, window: Window) -> str:
    first, last = window.first_day.isoformat(), window.last_day.isoformat()
    return f"flywheel-{key}-{table.name}-{first}-to-{last}.csv"


def _title(key: str) -> str:
    return dict(NAV).get(key, "My page")


def _own(viewer: Viewer) -> tuple[str, str]:
    return ("/program/people/" + urllib.parse.quote(viewer.user_id, safe=""), "Go to my page")


def _redirect(status: int, location: str) -> web.Response:
    return web.Response(
        status=status,
        headers={
            "Location": location,
            "Cache-Control": "no-store",
            "Referrer-Policy": "no-referrer",
        },
    )


def _plain(status: int, message: str) -> web.Response:
    return web.Response(status=status, text=message, headers=HEADERS)


def _unavailable() -> web.Response:
    return web.Response(
        status=503, text="Please try again in a moment.", headers={"Retry-After": "5"}
    )
