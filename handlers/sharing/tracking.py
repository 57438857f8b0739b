"""Tracked links and clicks: one link per post, sharer and network; clicks counted honestly.

A tracked link is `{PUBLIC_BASE_URL}/r/{code}`. It leads to the post's canonical URL with
UTM parameters, or, for a post that lives only as text, to its public page
`{PUBLIC_BASE_URL}/p/{public_code}`. Both codes are random (96 bits), so nobody can list a
workspace's posts or links by counting.

A visit is a *click* unless it is a *preview* (a link unfurler, a crawler or an HTTP
library, or any HEAD request: see `PREVIEW_AGENTS`) or a *repeat* (the same visitor on the
same link within `REPEAT_WINDOW` of their last counted click). Previews and repeats are
recorded too, flagged, so raw volume stays visible, but they are never counted as clicks.

The visitor is an HMAC-SHA256 of the UTC day, the link, the address and the user agent,
keyed with a key derived from FLYWHEEL_SECRET_KEY: it cannot be reversed without the key,
and the same person gets a different value on every link and every day, so stored clicks
cannot follow anyone from link to link or from day to day. Because the link is part of it,
finding a visitor's earlier clicks on a link is one index probe per visit, however busy the
table. Just after midnight the previous day's value is checked too, so the repeat rule holds
across the change of day.

Repeats are decided when clicks are written, against the clicks already in the database
(whichever process wrote them) and those earlier in the same batch: the rule holds across
batches, restarts and several web processes.

Counted clicks are also added up per day (in the workspace's time zone), post, sharer and
network in `click_tally`, in the same transaction as the click rows: the digests, notes and
`stats` read the tally, and the click rows stay the record it can be rebuilt from. The
tally's days are added up once more, per workspace, in `daily_clicks`, for the digest's
eight-week series.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import quote, unquote_plus, urlsplit, urlunsplit
from zoneinfo import ZoneInfo

from sqlalchemy import Date, and_, case, cast, false, func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.core.context import Scope
from handlers.core.quiet_hours import zone
from storage.models import (
    CODE_LENGTH,
    Click,
    ClickTally,
    DailyClicks,
    Member,
    Post,
    TrackedLink,
    Workspace,
    random_code,
)
from storage.upsert import add_to_many, insert_ignore_many, on_postgres

# Where a link is shared. `page` is the plain link, pasted anywhere else (a chat, a web page).
NETWORKS = ("linkedin", "x", "email", "page")
UTM_MEDIUM = "employee_advocacy"
REPEAT_WINDOW = timedelta(minutes=30)

_CODE = re.compile(rf"[A-Za-z0-9_-]{{{CODE_LENGTH}}}")

# Link-preview fetchers, crawlers and HTTP libraries: fetches by software, not by a person.
# Matched case-insensitively anywhere in the User-Agent. Names are specific on purpose: a
# bare "bot" substring would also match real phones (the "CUBOT" Android brand).
PREVIEW_AGENTS = (
    # chat and social unfurlers
    "Slackbot",  # Slackbot-LinkExpanding and Slackbot 1.0
    "Slack-ImgProxy",
    "LinkedInBot",
    "Twitterbot",
    "facebookexternalhit",
    "Facebot",  # also in iMessage's preview fetcher
    "Discordbot",
    "WhatsApp",  # WhatsApp, and Signal's previews, which borrow its name
    "TelegramBot",
    "SkypeUriPreview",  # Skype and Microsoft Teams
    "MicrosoftPreview",
    "redditbot",
    "Pinterestbot",
    "Embedly",
    "Iframely",
    "vkShare",
    "Viber",
    # search engines and crawlers
    "Googlebot",
    "Google-PageRenderer",
    "AdsBot-Google",
    "bingbot",
    "BingPreview",
    "Applebot",
    "DuckDuckBot",
    "YandexBot",
    "Baiduspider",
    "PetalBot",
    "SemrushBot",
    "AhrefsBot",
    "HeadlessChrome",
    # HTTP libraries and command-line fetchers
    "curl/",
    "Wget/",
    "python-requests",
    "python-urllib",
    "python-httpx",
    "aiohttp",
    "Go-http-client",
    "okhttp",
    "Java/",
    "libwww-perl",
    "node-fetch",
    "axios/",
)
# Matched against the lower-cased agent: an IGNORECASE pattern this size is ten times slower.
_PREVIEW = re.compile(
    "|".join(
        [
            *(re.escape(name.lower()) for name in PREVIEW_AGENTS),
            # Bots name themselves ("… bot", "crawler", "spider") and link to their docs
            # ("+https://example.com/bot.html"); browsers do neither.
            r"\b(?:bot|crawler|spider)\b",
            r"https?://",
        ]
    )
)


@dataclass(frozen=True, slots=True)
class Target:
    """Where a tracked link leads, and whose link it is."""

    link_id: int
    workspace_id: int
    post_id: int
    member_id: int  # the sharer
    network: str
    location: str


@dataclass(frozen=True, slots=True)
class Visit:
    """One request to a tracked link, waiting to be written as a click row."""

    target: Target
    at: datetime
    preview: bool
    # Today's visitor key first; just after midnight, also yesterday's.
    visitors: tuple[str, ...]


# -- links --------------------------------------------------------------------------------


def valid_code(code: str) -> bool:
    """Whether `code` could be a code at all: checked before the database is asked."""
    return len(code) == CODE_LENGTH and _CODE.fullmatch(code) is not None


def tracked_url(public_base_url: str, code: str) -> str:
    """The link people share: `{PUBLIC_BASE_URL}/r/{code}`."""
    return f"{public_base_url.rstrip('/')}/r/{code}"


def page_url(public_base_url: str, post: Post) -> str:
    """The public read-only page of a post that lives only as text."""
    return f"{public_base_url.rstrip('/')}/p/{post.public_code}"


def destination(post: Post, network: str, public_base_url: str) -> str:
    """Where a tracked link of `post` on `network` leads: its URL with UTM, or its page."""
    url = post.canonical_url
    if url is None or not web_address(url):
        return page_url(public_base_url, post)
    return with_utm(
        url, {"utm_source": network, "utm_medium": UTM_MEDIUM, "utm_campaign": post.slug}
    )


def with_utm(url: str, utm: dict[str, str]) -> str:
    """`url` with `utm` as its only utm_* parameters; other parameters kept byte for byte."""
    parts = urlsplit(url)
    kept = [
        pair
        for pair in parts.query.split("&")
        if pair and not unquote_plus(pair.split("=", 1)[0]).lower().startswith("utm_")
    ]
    kept += [f"{name}={quote(value, safe='')}" for name, value in utm.items()]
    netloc = parts.netloc
    if not netloc.isascii():
        netloc = _ascii_netloc(netloc)
    rebuilt = urlunsplit(parts._replace(netloc=netloc, query="&".join(kept)))
    # A Location header carries ASCII only: anything else is percent-encoded, once.
    return quote(rebuilt, safe="!#$%&'()*+,-./:;=?@[]_~")


def web_address(url: str) -> bool:
    """Whether `url` is an http(s) address a browser can be sent to."""
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        return False
    parts = urlsplit(url)
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)


def _ascii_netloc(netloc: str) -> str:
    userinfo, at, hostport = netloc.rpartition("@")
    host, colon, port = hostport.partition(":")
    return f"{userinfo}{at}{host.encode('idna').decode()}{colon}{port}"


async def link_for(scope: Scope, post: Post, member: Member, network: str) -> TrackedLink:
    """`member`'s link to `post` on `network`, created on first use; the same one ever after."""
    links = await links_for(scope, post, [member], [network])
    return links[(member.id or 0, network)]


async def links_for(
    scope: Scope, post: Post, members: Sequence[Member], networks: Sequence[str]
) -> dict[tuple[int, str], TrackedLink]:
    """Links for many sharers at once (a fan-out), by (member id, network); two statements."""
    unknown = set(networks) - set(NETWORKS)
    if unknown:
        raise ValueError(f"unknown networks {sorted(unknown)}")
    if post.workspace_id != scope.workspace_id or any(
        m.workspace_id != scope.workspace_id for m in members
    ):
        raise ValueError("a tracked link joins a post and a member of the scope's workspace")
    member_ids = [m.id for m in members if m.id is not None]
    if not member_ids or not networks:
        return {}
    rows = [
        {
            "workspace_id": scope.workspace_id,
            "post_id": post.id,
            "member_id": member_id,
            "network": network,
            "code": random_code(),
            "intent_code": random_code(),
            "created_at": scope.now,
        }
        for member_id in member_ids
        for network in networks
    ]
    table: Any = TrackedLink.__table__  # type: ignore[attr-defined]
    await insert_ignore_many(scope.session, table, rows, ("post_id", "member_id", "network"))
    found: dict[tuple[int, str], TrackedLink] = {}
    for start in range(0, len(member_ids), 2000):
        query = select(TrackedLink).where(
            TrackedLink.post_id == post.id,
            col(TrackedLink.member_id).in_(member_ids[start : start + 2000]),
            col(TrackedLink.network).in_(list(networks)),
        )
        for link in (await scope.session.exec(query)).all():
            found[(link.member_id, link.network)] = link
    return found


async def share_url(scope: Scope, post: Post, member: Member, network: str) -> str:
    """The tracked URL `member` shares `post` with on `network`."""
    link = await link_for(scope, post, member, network)
    return tracked_url(scope.config.public_base_url, link.code)


async def resolve(session: AsyncSession, code: str, public_base_url: str) -> Target | None:
    """The link with this code and where it leads, or None; only ever to its own post."""
    if not valid_code(code):
        return None
    query = (
        select(TrackedLink, Post)
        .join(
            Post,
            and_(
                col(Post.id) == TrackedLink.post_id,
                # A link leads to a post of its own workspace, whatever else is in the row.
                col(Post.workspace_id) == TrackedLink.workspace_id,
            ),
        )
        .where(TrackedLink.code == code)
    )
    row = (await session.exec(query)).first()
    if row is None:
        return None
    link, post = row
    assert link.id is not None
    return Target(
        link_id=link.id,
        workspace_id=link.workspace_id,
        post_id=link.post_id,
        member_id=link.member_id,
        network=link.network,
        location=destination(post, link.network, public_base_url),
    )


async def public_post(session: AsyncSession, code: str) -> Post | None:
    """The text-only post whose public page this is, or None (unknown, or it lives elsewhere)."""
    if not valid_code(code):
        return None
    post = (await session.exec(select(Post).where(Post.public_code == code))).first()
    if post is None or (post.canonical_url is not None and web_address(post.canonical_url)):
        return None
    return post


# -- visits -------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def is_preview(user_agent: str | None) -> bool:
    """Whether this User-Agent is software fetching a preview, not a person clicking."""
    if not user_agent or not user_agent.strip():
        return True
    return _PREVIEW.search(user_agent.lower()) is not None


def visitor_secret(secret_key: str) -> bytes:
    """The key visitor hashes use, derived from FLYWHEEL_SECRET_KEY for this one purpose."""
    return hmac.new(secret_key.encode(), b"flywheel/click-visitor/v1", hashlib.sha256).digest()


def visitor_key(secret: bytes, link_id: int, address: str, user_agent: str, day: date) -> str:
    """A visitor of one link on one UTC day: a keyed hash, never the address or agent."""
    message = f"{day.isoformat()}\n{link_id}\n{address}\n{user_agent}".encode()
    return hmac.digest(secret, message, "sha256")[:16].hex()


def visit(
    target: Target,
    *,
    at: datetime,
    preview: bool,
    secret: bytes,
    address: str,
    user_agent: str,
) -> Visit:
    """A visit to record: who (as keys only) came through which link, and when."""
    today = at.date()
    link = target.link_id
    keys = [visitor_key(secret, link, address, user_agent, today)]
    if (at - REPEAT_WINDOW).date() != today:
        keys.append(visitor_key(secret, link, address, user_agent, today - timedelta(days=1)))
    return Visit(target=target, at=at, preview=preview, visitors=tuple(keys))


async def record(session: AsyncSession, visits: Sequence[Visit]) -> int:
    """Write visits as click rows, flagging repeats; the number of clicks that count."""
    if not visits:
        return 0
    ordered = sorted(visits, key=lambda v: v.at)
    earlier = await _counted_near(session, [v for v in ordered if not v.preview])
    rows: list[dict[str, Any]] = []
    counted = 0
    for v in ordered:
        repeat = False
        if not v.preview:
            # Another process may have written a click a little later than this one: any
            # counted click within the window, before or after, makes this one a repeat.
            repeat = any(
                abs(v.at - at) <= REPEAT_WINDOW for key in v.visitors for at in earlier.get(key, ())
            )
            if not repeat:
                earlier.setdefault(v.visitors[0], []).append(v.at)
                counted += 1
        rows.append(
            {
                "workspace_id": v.target.workspace_id,
                "link_id": v.target.link_id,
                "post_id": v.target.post_id,
                "member_id": v.target.member_id,
                "network": v.target.network,
                "at": v.at,
                "is_preview": v.preview,
                "is_repeat": repeat,
                "visitor": v.visitors[0],
            }
        )
    await write(session, rows)
    return counted


async def write(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Insert click rows whose flags are decided; add the counted ones to the tally and day totals.

    All in the caller's transaction: neither rollup ever holds a click the table lacks.
    """
    if not rows:
        return
    await session.exec(Click.__table__.insert(), params=rows)  # type: ignore[attr-defined]
    counted = [r for r in rows if not r["is_preview"] and not r["is_repeat"]]
    if not counted:
        return
    zones = await tally_zones(session, {r["workspace_id"] for r in counted})
    increments: Counter[tuple[int, date, int, int, str]] = Counter(
        (
            r["workspace_id"],
            _utc(r["at"]).astimezone(zones[r["workspace_id"]]).date(),
            r["post_id"],
            r["member_id"],
            r["network"],
        )
        for r in counted
    )
    table: Any = ClickTally.__table__  # type: ignore[attr-defined]
    # Keys in one order in every batch: two writers adding to the same rows wait for each
    # other instead of deadlocking.
    params = [
        {"workspace_id": w, "day": d, "post_id": p, "member_id": m, "network": n, "clicks": c}
        for (w, d, p, m, n), c in sorted(increments.items())
    ]
    await add_to_many(
        session, table, params, ("workspace_id", "day", "post_id", "member_id", "network"), "clicks"
    )
    days: Counter[tuple[int, date]] = Counter()
    for (w, d, *_), c in increments.items():
        days[(w, d)] += c
    totals: Any = DailyClicks.__table__  # type: ignore[attr-defined]
    # Every writer of a workspace adds to today's row. Taken last, and in key order: a writer
    # holding it waits for nothing else, so it is held for the least time and never deadlocks.
    params = [{"workspace_id": w, "day": d, "clicks": c} for (w, d), c in sorted(days.items())]
    await add_to_many(session, totals, params, ("workspace_id", "day"), "clicks")


async def tally_zones(session: AsyncSession, workspace_ids: Iterable[int]) -> dict[int, ZoneInfo]:
    """Each workspace's time zone, whose calendar days the tally counts clicks by.

    Read once per batch of clicks rather than cached for longer: a change of time zone
    applies to the clicks written after it, and days already tallied keep the old zone's
    calendar.
    """
    ids = sorted(set(workspace_ids))
    found = {
        w: zone((settings or {}).get("timezone"))
        for w, settings in (
            await session.exec(
                select(Workspace.id, Workspace.settings).where(col(Workspace.id).in_(ids))
            )
        ).all()
        if w is not None
    }
    return {w: found.get(w, zone(None)) for w in ids}


def _utc(at: datetime) -> datetime:
    # Naive datetimes are UTC, as everywhere in storage.
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


async def _counted_near(
    session: AsyncSession, visits: Sequence[Visit]
) -> dict[str, list[datetime]]:
    """When each visitor key of the batch was counted, within the window of the batch's times."""
    if not visits:
        return {}
    keys = sorted({key for v in visits for key in v.visitors})
    found: dict[str, list[datetime]] = {}
    # A visitor key is one person on one link on one day: each has a handful of rows at most.
    for start in range(0, len(keys), 1000):
        query = select(Click.visitor, Click.at).where(
            col(Click.visitor).in_(keys[start : start + 1000]),
            col(Click.is_preview) == false(),
            col(Click.is_repeat) == false(),
            col(Click.at) >= visits[0].at - REPEAT_WINDOW,
            col(Click.at) <= visits[-1].at + REPEAT_WINDOW,
        )
        for key, at in (await session.exec(query)).all():
            found.setdefault(key, []).append(at)
    return found


# -- figures for the digests ----------------------------------------------------------------

GROUPS = ("post", "sharer", "network", "day")


@dataclass(frozen=True, slots=True)
class ClickCount:
    """Clicks (de-duplicated, people only) and previews of one group; None where not grouped."""

    post_id: int | None
    member_id: int | None
    network: str | None
    day: date | None
    clicks: int
    previews: int


async def click_counts(
    session: AsyncSession,
    workspace_id: int,
    since: datetime,
    until: datetime,
    *,
    by: Iterable[str] = GROUPS,
    utc_offset: timedelta = timedelta(0),
) -> list[ClickCount]:
    """Clicks in [since, until) grouped by any of post, sharer, network and day, in SQL.

    Days are calendar days at `utc_offset` from UTC (the workspace zone's offset for the
    period). With `by=()` the answer is one row: the workspace's totals.
    """
    groups = list(dict.fromkeys(by))
    if set(groups) - set(GROUPS):
        raise ValueError(f"group by any of {GROUPS}, not {groups}")
    columns: dict[str, Any] = {
        "post": col(Click.post_id),
        "sharer": col(Click.member_id),
        "network": col(Click.network),
        "day": _day(session, utc_offset),
    }
    chosen = [columns[g].label(g) for g in groups]
    is_click = and_(col(Click.is_preview) == false(), col(Click.is_repeat) == false())
    query = (
        select(  # type: ignore[call-overload]
            *chosen,
            func.coalesce(func.sum(case((is_click, 1), else_=0)), 0),
            func.coalesce(func.sum(case((col(Click.is_preview), 1), else_=0)), 0),
        )
        .where(
            Click.workspace_id == workspace_id,
            col(Click.at) >= since,
            col(Click.at) < until,
        )
        .group_by(*(columns[g] for g in groups))
        .order_by(*(columns[g] for g in groups))
    )
    answer: list[ClickCount] = []
    for row in (await session.exec(query)).all():
        values = dict(zip(groups, row[: len(groups)], strict=True))
        day = values.get("day")
        answer.append(
            ClickCount(
                post_id=values.get("post"),
                member_id=values.get("sharer"),
                network=values.get("network"),
                day=date.fromisoformat(day) if isinstance(day, str) else day,
                clicks=int(row[-2]),
                previews=int(row[-1]),
            )
        )
    return answer


def _day(session: AsyncSession, utc_offset: timedelta) -> Any:
    if on_postgres(session):
        return cast(func.timezone("UTC", col(Click.at)) + utc_offset, Date)
    minutes = int(utc_offset.total_seconds() // 60)
    # SQLite keeps these columns as naive UTC text, which date() reads directly.
    return func.date(col(Click.at), f"{minutes:+d} minutes")
