"""Links as people type them, and as one article is known: its canonical URL."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

URL_MAX = 2000
# Query parameters that say where a click came from, not what the page is.
TRACKING = frozenset(
    {
        "fbclid",
        "gclid",
        "gclsrc",
        "dclid",
        "gbraid",
        "wbraid",
        "msclkid",
        "mc_cid",
        "mc_eid",
        "igshid",
        "yclid",
        "twclid",
        "li_fat_id",
        "_hsenc",
        "_hsmi",
        "mkt_tok",
        "oly_anon_id",
        "oly_enc_id",
        "vero_id",
        "ref_src",
        "s_cid",
    }
)
TRACKING_PREFIXES = ("utm_", "pk_", "mtm_", "hsa_")
_URL = re.compile(r"<?(https?://[^\s<>|]+)(?:\|[^>]*)?>?", re.I)
_SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*):", re.I)


class BadLink(ValueError):
    """Not a link Flywheel can take; the message is one line for the person."""


def first_link(text: str) -> str | None:
    """The first http(s) link in a text (Slack's `<url|label>` form included)."""
    match = _URL.search(text)
    return match.group(1).rstrip(".,;:!?)") if match else None


def checked(raw: str) -> str:
    """A typed link as one to fetch: http(s), with a host, of sensible length."""
    text = raw.strip().strip("<>").split("|", 1)[0].strip()
    if not text:
        raise BadLink("Give me the link to share, like `share https://example.com/article`.")
    scheme = _SCHEME.match(text)
    if scheme is None:
        text = f"https://{text}"
    elif scheme.group(1).lower() not in ("http", "https"):
        raise BadLink(
            f"Only http and https links can be shared, not {scheme.group(1).lower()}: links."
        )
    if len(text) > URL_MAX:
        raise BadLink(f"That link is longer than {URL_MAX} characters.")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise BadLink("That doesn't look like a valid link.") from None
    host = parts.hostname or ""
    if not host or (" " in host) or ("." not in host and ":" not in host and host != "localhost"):
        raise BadLink("That doesn't look like a valid link: it has no host name like example.com.")
    del port
    return text


def canonical(url: str) -> str:
    """One spelling per article: lower-case scheme and host, no default port, no fragment,
    no tracking parameters, the remaining parameters in their order."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower().rstrip(".")
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    netloc = (
        host
        if port is None or (scheme, port) in (("http", 80), ("https", 443))
        else (f"{host}:{port}")
    )
    query = [
        (key, value)
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
        if key.lower() not in TRACKING and not key.lower().startswith(TRACKING_PREFIXES)
    ]
    path = parts.path or "/"
    return urlunsplit((scheme, netloc, path, urlencode(query, doseq=True), ""))[:URL_MAX]


def web_link(url: str) -> bool:
    """Whether a URL from a page or feed is an absolute http(s) link."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname) and len(url) <= URL_MAX
