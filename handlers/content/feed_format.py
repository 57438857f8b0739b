"""Feeds as entries: RSS 0.9x-2.0, RDF and Atom with feedparser, JSON Feed with json.

Feeds are untrusted like pages: every text is sanitized to capped plain text, links are
made absolute (xml:base and relative links resolved against the feed) and kept only when
they are http(s); entries without a usable GUID fall back to their link, then to a hash of
their title.
"""

from __future__ import annotations

import calendar
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin

import feedparser

from handlers.content import text, urls

ENTRIES_MAX = 200
GUID_MAX = 500
FEED_TITLE_MAX = 200
JSON_FEED_VERSIONS = ("https://jsonfeed.org/version/1", "https://jsonfeed.org/version/1.1")


class NotAFeed(ValueError):
    """The document is not a feed any parser recognises; the message says why."""


@dataclass(frozen=True, slots=True)
class Entry:
    guid: str
    link: str | None
    title: str
    summary: str
    published: datetime | None


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    title: str
    entries: tuple[Entry, ...]


def parse(body: bytes, content_type: str, url: str) -> ParsedFeed:
    """The feed's title and entries (newest first as the feed lists them); NotAFeed."""
    stripped = body.lstrip()
    if content_type in ("application/feed+json", "application/json") or stripped.startswith(b"{"):
        return _json_feed(body, url)
    parsed: Any = feedparser.parse(
        body,
        response_headers={"content-location": url, "content-type": content_type or "text/xml"},
        # Every text is made plain by `text.plain` (nh3): feedparser's own sanitizing and
        # rewriting of URIs inside HTML would be done for nothing, at most of the cost.
        sanitize_html=False,
        resolve_relative_uris=False,
    )
    version = str(parsed.get("version") or "")
    entries = parsed.get("entries") or []
    if not version and not entries:
        raise NotAFeed("That address does not serve an RSS, Atom or JSON feed.")
    feed = parsed.get("feed") or {}
    return ParsedFeed(
        title=text.plain(feed.get("title", ""), FEED_TITLE_MAX),
        entries=tuple(_entry(e, url) for e in entries[:ENTRIES_MAX]),
    )


def _entry(raw: Any, base: str) -> Entry:
    link = _link(raw.get("link"), base)
    title = text.plain(raw.get("title", ""), text.TITLE_MAX)
    summary = text.plain(raw.get("summary", ""), text.DESCRIPTION_MAX)
    guid = _guid(raw.get("id") or raw.get("guid"), link, title)
    # Read as a plain dict: feedparser's own lookup of a missing `updated_parsed` warns.
    when = dict.get(raw, "published_parsed") or dict.get(raw, "updated_parsed")
    published = None
    if when is not None:
        try:
            published = datetime.fromtimestamp(calendar.timegm(when), UTC)
        except (OverflowError, ValueError, TypeError):
            published = None
    return Entry(guid=guid, link=link, title=title, summary=summary, published=published)


def _link(value: object, base: str) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    absolute = urljoin(base, value.strip())
    return absolute if urls.web_link(absolute) else None


def _guid(value: object, link: str | None, title: str) -> str:
    if isinstance(value, str | int) and str(value).strip():
        guid = str(value).strip()
    elif link:
        guid = link
    else:
        guid = "title:" + hashlib.sha256(title.encode()).hexdigest()
    if len(guid) > GUID_MAX:
        guid = "sha256:" + hashlib.sha256(guid.encode()).hexdigest()
    return guid


def _json_feed(body: bytes, url: str) -> ParsedFeed:
    try:
        document = json.loads(body.decode("utf-8-sig", errors="replace"))
    except ValueError:
        raise NotAFeed("That address serves JSON that cannot be read.") from None
    if not isinstance(document, dict) or document.get("version") not in JSON_FEED_VERSIONS:
        raise NotAFeed("That address serves JSON, but not a JSON Feed (jsonfeed.org).")
    items = document.get("items")
    if not isinstance(items, list):
        raise NotAFeed("That JSON Feed has no list of items.")
    base = document.get("home_page_url") if isinstance(document.get("home_page_url"), str) else url
    entries: list[Entry] = []
    for item in items[:ENTRIES_MAX]:
        if not isinstance(item, dict):
            continue
        link = _link(item.get("url") or item.get("external_url"), str(base))
        title = text.plain(item.get("title", ""), text.TITLE_MAX)
        summary = text.plain(
            item.get("summary") or item.get("content_text") or item.get("content_html") or "",
            text.DESCRIPTION_MAX,
        )
        entries.append(
            Entry(
                guid=_guid(item.get("id"), link, title),
                link=link,
                title=title,
                summary=summary,
                published=_iso(item.get("date_published") or item.get("date_modified")),
            )
        )
    return ParsedFeed(
        title=text.plain(document.get("title", ""), FEED_TITLE_MAX), entries=tuple(entries)
    )


def _iso(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
