"""Text from pages and feeds: untrusted HTML made into capped plain text."""

from __future__ import annotations

import html

import nh3

TITLE_MAX = 150
DESCRIPTION_MAX = 400
SITE_MAX = 100


def plain(value: object, limit: int) -> str:
    """HTML (or text) as plain text: tags and their scripts and styles gone, entities
    decoded, whitespace collapsed, at most `limit` characters (ending in … when cut)."""
    if not isinstance(value, str) or not value:
        return ""
    # The sanitizer drops every tag, and the content of script and style elements; what
    # is left is text with entities, decoded once here.
    stripped = html.unescape(nh3.clean(value[: limit * 20], tags=set()))
    text = " ".join(stripped.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    return (cut.rsplit(" ", 1)[0] if " " in cut[limit // 2 :] else cut) + "…"
