"""Composer links: a network's "new post" screen, already filled with a caption and a link.

LinkedIn's feed composer (`/feed/?shareActive=true&text=…`) takes text and is what people
expect, but it is not a documented interface; its documented `sharing/share-offsite/?url=`
takes only the link. Workspaces choose (`linkedin_share` in admin settings). X's web intent
and `mailto:` are documented and stable.

Every link is kept under `MAX_URL` characters: chat platforms cut longer button URLs, and a
cut percent-encoding breaks the whole link. The caption gives way, at a word boundary; the
tracked link never does.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote

# Browsers, chat clients and proxies all accept 2,000 characters; Slack's button limit is 3,000.
MAX_URL = 2000
# X counts every link as 23 characters, whatever its length, and allows 280 in all.
X_LIMIT = 280
X_LINK_LENGTH = 23


def shorten(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters at a word boundary, with an ellipsis."""
    text = text.strip()
    if len(text) <= limit:
        return text
    if limit <= 1:
        return ""
    cut = text[: limit - 1]
    if " " in cut.strip():
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:.-–—") + "…"


def linkedin_url(caption: str, link: str, *, mode: str = "composer") -> str:
    """LinkedIn's composer filled with caption and link, or its link-only share page."""
    if mode == "offsite":
        return "https://www.linkedin.com/sharing/share-offsite/?url=" + _q(link)
    return _fit(
        lambda text: (
            "https://www.linkedin.com/feed/?shareActive=true&text="
            + _q(f"{text}\n\n{link}" if text else link)
        ),
        caption,
    )


def x_url(caption: str, link: str) -> str:
    """X's post intent: the caption (within 280 characters with the link) and the link."""
    text = shorten(caption, X_LIMIT - X_LINK_LENGTH - 1)
    return _fit(lambda t: f"https://x.com/intent/tweet?text={_q(t)}&url={_q(link)}", text)


def mailto_url(subject: str, caption: str, link: str) -> str:
    """A new email with the post's title as subject and caption plus link as body."""
    subject = shorten(subject, 150)
    return _fit(
        lambda text: (
            f"mailto:?subject={_q(subject)}&body=" + _q(f"{text}\n\n{link}" if text else link)
        ),
        caption,
    )


def _q(text: str) -> str:
    # Spaces as %20, not "+": mail clients and LinkedIn show a literal "+" otherwise.
    return quote(text, safe="")


def _fit(build: Callable[[str], str], caption: str) -> str:
    url = build(caption)
    limit = len(caption)
    while len(url) > MAX_URL and limit > 0:
        # Encoded text can be nine times longer than the text: shrink in proportion.
        excess = len(url) - MAX_URL
        limit = max(0, limit - max(1, excess // 3))
        url = build(shorten(caption, limit))
    return url
