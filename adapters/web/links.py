"""`GET /r/{code}` (redirect and record), `GET /s/{code}` (a share button: record the share,
open the composer) and `GET /p/{code}` (a text-only post's page).

The redirect never waits for the database to write: visits go to a `ClickBuffer`, written
in batches by a background task (every `batch` visits or `interval` seconds, and on close),
so a burst of clicks costs one INSERT per batch. A code once looked up is remembered for
five minutes, so a link going round is read from the database once.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import html
import ipaddress
import secrets
import time
from collections import deque
from collections.abc import Sequence

import structlog
from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError

from adapters.cache import TTLCache
from handlers.core.ports import Clock
from handlers.sharing import share, tracked_links, visits
from storage.db import SessionFactory, transaction
from storage.models import Post

log = structlog.get_logger(__name__)

CACHE_SECONDS = 300.0
# How long a shutdown keeps trying to write buffered clicks while the database is away.
CLOSE_GRACE = 20.0
CACHE_SIZE = 10_000

_STYLE = (
    "body{font:17px/1.6 system-ui,-apple-system,Segoe UI,sans-serif;max-width:40rem;"
    "margin:3rem auto;padding:0 1rem;color:#1d1d1f;background:#fff}"
    "h1{font-size:1.9rem;line-height:1.25}p{white-space:pre-wrap;overflow-wrap:anywhere}"
    "footer{color:#6e6e73;font-size:.85rem;margin-top:3rem}"
)
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()
# The page runs nothing and loads nothing: its one stylesheet is allowed by its hash.
PAGE_POLICY = (
    f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
_NOT_FOUND_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


class ClickBuffer:
    """Visits waiting to be written; flushed in batches by a task, and on `close`."""

    def __init__(
        self,
        sessions: SessionFactory,
        *,
        interval: float = 1.0,
        batch: int = 500,
        limit: int = 100_000,
    ) -> None:
        self._sessions = sessions
        self._interval = interval
        self._batch = batch
        # Past this many unwritten visits (a database down for long), the oldest are let go
        # rather than the process running out of memory.
        self._limit = limit
        self._pending: deque[visits.Visit] = deque()
        self._full = asyncio.Event()
        self._stop = asyncio.Event()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._writing = 0
        self.dropped = 0

    @property
    def pending(self) -> int:
        """Visits not yet committed: queued, or in the batch being written."""
        return len(self._pending) + self._writing

    def add(self, visit: visits.Visit) -> None:
        """Queue a visit; the writer task starts with the first one."""
        if len(self._pending) >= self._limit:
            self._pending.popleft()
            self.dropped += 1
        self._pending.append(visit)
        if len(self._pending) >= self._batch:
            self._full.set()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def flush(self) -> int:
        """Write everything queued so far; the number of visits written."""
        written = 0
        async with self._lock:
            while self._pending:
                size = min(self._batch, len(self._pending))
                batch = [self._pending.popleft() for _ in range(size)]
                self._writing = size
                try:
                    async with transaction(self._sessions) as session:
                        await visits.record(session, batch)
                except Exception as error:
                    # Kept for the next attempt; the database may be back in a second.
                    self._pending.extendleft(reversed(batch))
                    log.warning(
                        "clicks.write_failed", pending=len(self._pending), error=repr(error)[:300]
                    )
                    break
                finally:
                    self._writing = 0
                written += size
        if self.dropped:
            log.error("clicks.dropped", count=self.dropped, note="the database was unreachable")
            self.dropped = 0
        return written

    async def close(self, grace: float = CLOSE_GRACE) -> None:
        """Stop the writer and write what is left, trying again for up to `grace` seconds
        while the database is away (a restart): a graceful stop loses no click."""
        self._stop.set()
        self._full.set()
        if self._task is not None:
            await self._task
            self._task = None
        deadline = time.monotonic() + grace
        await self.flush()
        pause = 0.25
        while self._pending and time.monotonic() + pause < deadline:
            await asyncio.sleep(pause)
            pause = min(pause * 2, 2.0)
            await self.flush()
        self._stop.clear()
        if self._pending:
            log.error("clicks.lost", count=len(self._pending))

    async def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._full.wait(), self._interval)
            self._full.clear()
            await self.flush()


class Links:
    """The public routes of tracked links and post pages, and the clicks they record."""

    def __init__(
        self,
        sessions: SessionFactory,
        clock: Clock,
        *,
        public_base_url: str,
        secret_key: str | None,
        trusted_proxies: Sequence[str] = (),
        flush_interval: float = 1.0,
        batch: int = 500,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._base = public_base_url
        # Without FLYWHEEL_SECRET_KEY (no platform configured), a key of this process only:
        # visitors are still hashed, but repeats are only recognised until a restart.
        self._secret = visits.visitor_secret(secret_key) if secret_key else secrets.token_bytes(32)
        self._any_proxy = "*" in trusted_proxies
        self._proxies = [ipaddress.ip_network(p, strict=False) for p in trusted_proxies if p != "*"]
        self._targets: TTLCache[str, tracked_links.Target] = TTLCache(
            ttl=CACHE_SECONDS, size=CACHE_SIZE
        )
        self.clicks = ClickBuffer(sessions, interval=flush_interval, batch=batch)

    def routes(self) -> list[web.RouteDef]:
        """`GET /r/{code}`, `GET /s/{code}` and `GET /p/{code}` (HEAD too)."""
        return [
            web.get("/r/{code}", self.redirect),
            web.get("/s/{code}", self.share),
            web.get("/p/{code}", self.page),
        ]

    async def close(self) -> None:
        """Write the clicks still buffered."""
        await self.clicks.close()

    async def redirect(self, request: web.Request) -> web.StreamResponse:
        """302 to the link's destination; the visit is queued, never awaited."""
        code = request.match_info["code"]
        if not tracked_links.valid_code(code):
            return _not_found()
        try:
            target = await self._target(code)
        except SQLAlchemyError:
            log.exception("links.lookup_failed")
            return _unavailable()
        if target is None:
            return _not_found()
        user_agent = request.headers.get("User-Agent", "")
        self.clicks.add(
            visits.visit(
                target,
                at=self._clock.now(),
                preview=request.method == "HEAD" or visits.is_preview(user_agent),
                secret=self._secret,
                address=self.client_address(request),
                user_agent=user_agent,
            )
        )
        return web.Response(
            status=302,
            headers={
                "Location": target.location,
                # Every click must reach us: no browser or proxy may answer it from a cache.
                "Cache-Control": "no-store",
                "X-Robots-Tag": "noindex",
            },
        )

    async def share(self, request: web.Request) -> web.StreamResponse:
        """A share button: record the share, then 302 to the network's filled-in composer."""
        code = request.match_info["code"]
        if not tracked_links.valid_code(code):
            return _not_found()
        preview = request.method == "HEAD" or visits.is_preview(
            request.headers.get("User-Agent", "")
        )
        try:
            async with transaction(self._sessions) as session:
                location = await share.follow_intent(
                    session,
                    code,
                    now=self._clock.now(),
                    public_base_url=self._base,
                    preview=preview,
                )
        except SQLAlchemyError:
            log.exception("links.share_failed")
            return _unavailable()
        if location is None:
            return _not_found()
        return web.Response(
            status=302,
            headers={
                "Location": location,
                "Cache-Control": "no-store",
                "X-Robots-Tag": "noindex",
                "Referrer-Policy": "no-referrer",
            },
        )

    async def page(self, request: web.Request) -> web.StreamResponse:
        """The read-only page of a text-only post: escaped text, no scripts, nothing loaded."""
        code = request.match_info["code"]
        if not tracked_links.valid_code(code):
            return _not_found()
        try:
            async with self._sessions() as session:
                post = await tracked_links.public_post(session, code)
        except SQLAlchemyError:
            log.exception("links.page_failed")
            return _unavailable()
        if post is None:
            return _not_found()
        return web.Response(
            text=render_page(post),
            content_type="text/html",
            charset="utf-8",
            headers={
                "Content-Security-Policy": PAGE_POLICY,
                "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "no-referrer",
                "Cache-Control": "public, max-age=300",
            },
        )

    def client_address(self, request: web.Request) -> str:
        """The visitor's address: the peer's, or X-Forwarded-For's when the peer is trusted."""
        peer = request.remote or ""
        if not (self._any_proxy or self._proxies) or not self._trusted(peer):
            return peer
        hops = [
            hop.strip()
            for header in request.headers.getall("X-Forwarded-For", [])
            for hop in header.split(",")
            if hop.strip()
        ]
        # The nearest hop not added by one of our proxies is the visitor (the ones before it
        # are whatever the visitor chose to send).
        for hop in reversed(hops):
            if not self._trusted(hop):
                return hop
        return hops[0] if hops else peer

    def _trusted(self, address: str) -> bool:
        if self._any_proxy:
            return True
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self._proxies)

    async def _target(self, code: str) -> tracked_links.Target | None:
        cached = self._targets.get(code)
        if cached is not None:
            return cached
        async with self._sessions() as session:
            target = await tracked_links.resolve(session, code, self._base)
        if target is not None:
            self._targets.put(code, target)
        return target


def render_page(post: Post) -> str:
    """The page's HTML; every value from the post is escaped."""
    title = html.escape(post.title)
    description = html.escape(post.summary or post.body[:300])
    paragraphs = "\n".join(
        f"<p>{html.escape(part.strip())}</p>" for part in post.body.split("\n\n") if part.strip()
    )
    published = post.published_at.strftime("%d %B %Y").lstrip("0")
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<meta name="description" content="{description}">
<meta property="og:type" content="article">
<meta property="og:title" content="{title}">
<meta property="og:description" content="{description}">
<style>{_STYLE}</style>
</head>
<body>
<article>
<h1>{title}</h1>
{paragraphs}
</article>
<footer>Published {published}</footer>
</body>
</html>
"""


def _not_found() -> web.Response:
    return web.Response(status=404, text="No such link.", headers=_NOT_FOUND_HEADERS)


def _unavailable() -> web.Response:
    return web.Response(
        status=503, text="Please try again in a moment.", headers={"Retry-After": "5"}
    )
