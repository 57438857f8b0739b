"""`GET /c/{code}.png` (a digest's chart) and `GET /d/{code}` (the whole digest, read-only).

Codes are random (96 bits) and nothing lists them, so only the people the digest reached
can open either. The chart is drawn on its first request (Slack fetches it when the
message is posted), off the event loop, and kept on the digest row; matplotlib is imported
then, never at start-up.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import html
from collections.abc import Callable

import structlog
from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError

from handlers.core.ports import ChartRenderer
from handlers.impact import digest_message, digest_page
from handlers.impact.digest_figures import Figures
from handlers.requests import demand
from handlers.sharing import tracked_links
from storage.db import SessionFactory, transaction
from storage.models import Digest

log = structlog.get_logger(__name__)

_STYLE = (
    "body{font:16px/1.55 system-ui,-apple-system,Segoe UI,sans-serif;max-width:46rem;"
    "margin:2.5rem auto;padding:0 1rem;color:#1d1d1f;background:#fff}"
    "h1{font-size:1.7rem;line-height:1.25}h2{font-size:1.15rem;margin-top:2rem}"
    "table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:.25rem .5rem;"
    "border-bottom:1px solid #eee}td.n,th.n{text-align:right}img{max-width:100%}"
    "blockquote{margin:.5rem 0;padding-left:1rem;border-left:3px solid #ddd}"
    "footer{color:#6e6e73;font-size:.85rem;margin-top:3rem}"
)
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()
PAGE_POLICY = (
    f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; img-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
_PRIVATE = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}


def _matplotlib() -> ChartRenderer:
    from adapters.charts.matplotlib_chart import MatplotlibChart

    return MatplotlibChart()


class DigestPages:
    """The public routes of digests: their charts and their read-only pages."""

    def __init__(
        self, sessions: SessionFactory, renderer: Callable[[], ChartRenderer] = _matplotlib
    ) -> None:
        self._sessions = sessions
        self._make_renderer = renderer
        self._renderer: ChartRenderer | None = None

    def routes(self) -> list[web.RouteDef]:
        """`GET /c/{code}.png` and `GET /d/{code}` (HEAD too)."""
        return [web.get("/c/{code}.png", self.chart), web.get("/d/{code}", self.page)]

    async def chart(self, request: web.Request) -> web.StreamResponse:
        """The digest's chart as a PNG: drawn once, then served from the row."""
        code = request.match_info["code"]
        if not tracked_links.valid_code(code):
            return _not_found()
        try:
            async with self._sessions() as session:
                digest = await digest_page.by_code(session, chart=code)
            if digest is None or digest.figures is None:
                return _not_found()
            png = digest.chart_png
            if png is None:
                png = await self._draw(digest)
        except SQLAlchemyError:
            log.exception("digest_chart.failed")
            return _unavailable()
        return web.Response(
            body=png,
            content_type="image/png",
            headers={**_PRIVATE, "Cache-Control": "private, max-age=86400"},
        )

    async def _draw(self, digest: Digest) -> bytes:
        figures = digest_page.figures_of(digest)
        assert figures is not None
        if self._renderer is None:
            # The import happens in the thread too: it takes a moment, the loop goes on.
            self._renderer = await asyncio.to_thread(self._make_renderer)
        png = await asyncio.to_thread(
            self._renderer.render_png, digest_message.chart_series(figures)
        )
        async with transaction(self._sessions) as session:
            stored = await session.get(Digest, digest.id)
            if stored is not None and stored.chart_png is None:
                stored.chart_png = png
                session.add(stored)
        return png

    async def page(self, request: web.Request) -> web.StreamResponse:
        """The whole digest, every list in full: the message's "see all"."""
        code = request.match_info["code"]
        if not tracked_links.valid_code(code):
            return _not_found()
        try:
            async with self._sessions() as session:
                digest = await digest_page.by_code(session, page=code)
                figures = digest_page.figures_of(digest) if digest is not None else None
                if digest is None or figures is None:
                    return _not_found()
                names = await digest_page.names(session, digest.workspace_id, figures)
        except SQLAlchemyError:
            log.exception("digest_page.failed")
            return _unavailable()
        return web.Response(
            text=render_page(figures, names, chart=f"/c/{digest.chart_code}.png"),
            content_type="text/html",
            charset="utf-8",
            headers={
                **_PRIVATE,
                "Content-Security-Policy": PAGE_POLICY,
                "Cache-Control": "private, max-age=300",
                "X-Robots-Tag": "noindex",
            },
        )


def render_page(f: Figures, names: dict[str, str], *, chart: str) -> str:
    """The digest page's HTML; every value is escaped."""

    def e(value: object) -> str:
        return html.escape(str(value))

    def who(user: str | None) -> str:
        return e(names.get(user or "", user or ""))

    this, before = f.this, f.previous
    headline = "".join(
        f"<tr><td>{label}</td><td class=n>{now:,}</td><td class=n>{was:,}</td></tr>"
        for label, now, was in (
            ("Requests", this.requests, before.requests),
            ("Published posts", this.posts, before.posts),
            ("Shares", this.shares, before.shares),
            ("Clicks", this.clicks, before.clicks),
            ("Wins", this.wins, before.wins),
            ("Active participants", this.participants, before.participants),
        )
    )
    effect = [
        f"{this.participants:,} people took part, against "
        f"{f.average_participants():.1f} a week over the four weeks before.",
        "First-time contributors: " + (", ".join(who(u) for u in f.first_timers) or "none") + ".",
    ]
    if this.shares:
        effect.append(f"{this.clicks / this.shares:.1f} clicks per share.")
    if f.median_seconds is not None:
        effect.append(
            "Median time from request to published: "
            f"{e(digest_message.duration(f.median_seconds))}."
        )

    def ranked(title: str, rows: list[str], total: int, head: str) -> str:
        if not rows:
            return ""
        more = (
            f"<p>and {total - len(rows):,} more with less reach.</p>" if total > len(rows) else ""
        )
        return f"<h2>{title}</h2><table><tr>{head}</tr>{''.join(rows)}</table>{more}"

    numbers = "<th class=n>Clicks</th><th class=n>Shares</th>"
    posts = ranked(
        "Top posts",
        [
            f"<tr><td>{e(r.label)} <small>by {who(r.author)}</small></td>"
            f"<td class=n>{r.clicks:,}</td><td class=n>{r.shares:,}</td></tr>"
            for r in f.top_posts
        ],
        f.posts_total,
        "<th>Post</th>" + numbers,
    )
    sharers = ranked(
        "Top sharers",
        [
            f"<tr><td>{who(r.label)}</td><td class=n>{r.clicks:,}</td>"
            f"<td class=n>{r.shares:,}</td></tr>"
            for r in f.top_sharers
        ],
        f.sharers_total,
        "<th>Sharer</th>" + numbers,
    )
    experts = ranked(
        "Top experts",
        [
            f"<tr><td>{who(r.label)}</td><td class=n>{r.clicks:,}</td>"
            f"<td class=n>{r.shares:,}</td><td class=n>{r.extra:,}</td></tr>"
            for r in f.top_experts
        ],
        f.experts_total,
        "<th>Expert</th>" + numbers + "<th class=n>Published</th>",
    )
    wins = "".join(
        f"<blockquote>“{e(w.description)}”<br><small>{who(w.member)} · {e(w.kind)}"
        + (f" · {e(w.account)}" if w.account else "")
        + (f" · {w.value:,}" if w.value else "")
        + (f" · helped by {e(w.post)}" if w.post else "")
        + "</small></blockquote>"
        for w in f.wins
    )
    waiting = "".join(
        f"<li>{e(r.topic)} <small>asked by {who(r.requester)} · "
        f"{e(demand.wanted(r.votes))}</small></li>"
        for r in f.open_requests
    )
    open_part = (
        f"<ul>{waiting}</ul><p>Take one with the button in the digest message.</p>"
        if waiting
        else "<p>None — every request has an expert.</p>"
    )
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>Flywheel weekly · {e(f.week)}</title>
<style>{_STYLE}</style>
</head>
<body>
<h1>Flywheel weekly · {f.first_day:%d %b} – {f.last_day:%d %b %Y}</h1>
<table><tr><th></th><th class=n>This week</th><th class=n>The week before</th></tr>
{headline}</table>
<h2>The network effect</h2>
<p>{"<br>".join(effect)}</p>
<img src="{e(chart)}" alt="{e(digest_message.chart_alt(f))}">
{posts}{sharers}{experts}
<h2>Wins · {f.wins_total:,}</h2>
{wins or "<p>No wins logged this week.</p>"}
<h2>Open requests that need an expert · {f.open_total:,}</h2>
{open_part}
<footer>Week {e(f.week)}</footer>
</body>
</html>
"""


def _not_found() -> web.Response:
    return web.Response(
        status=404, text="No such digest.", headers={**_PRIVATE, "Cache-Control": "no-store"}
    )


def _unavailable() -> web.Response:
    return web.Response(
        status=503, text="Please try again in a moment.", headers={"Retry-After": "5"}
    )
