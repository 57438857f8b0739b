"""Visits to tracked links: clicks counted honestly, and added up per day as they are written.

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
from zoneinfo import ZoneInfo

from sqlalchemy import false, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.core.quiet_hours import zone
from handlers.sharing.tracked_links import Target
from storage.models import Click, ClickTally, DailyClicks, TrackedLink, Workspace
from storage.upsert import add_to_many

REPEAT_WINDOW = timedelta(minutes=30)

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
class Visit:
    """One request to a tracked link, waiting to be written as a click row."""

    target: Target
    at: datetime
    preview: bool
    # Today's visitor key first; just after midnight, also yesterday's.
    visitors: tuple[str, ...]


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
    # Links clicked for the first time: a statement per day of the batch (one, mostly), in id
    # order; a link already clicked matches nothing and is left alone.
    first: dict[date, set[int]] = {}
    for r in counted:
        day = _utc(r["at"]).astimezone(zones[r["workspace_id"]]).date()
        first.setdefault(day, set()).add(r["link_id"])
    links: Any = TrackedLink.__table__  # type: ignore[attr-defined]
    for day, ids in sorted(first.items()):
        await session.exec(
            update(links)
            .where(links.c.id.in_(sorted(ids)), links.c.first_click_day.is_(None))
            .values(first_click_day=day)
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
