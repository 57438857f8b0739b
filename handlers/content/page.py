"""What a web page says about itself: Open Graph, Twitter cards, canonical link, title."""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

from handlers.content import text, urls

# Meta tags only live in the head; a page's first 512 kB holds it in practice.
HEAD_BYTES = 512 * 1024
_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([a-zA-Z0-9_.:-]+)""", re.I)


@dataclass(frozen=True, slots=True)
class PageInfo:
    title: str
    description: str
    image_url: str | None
    canonical_url: str
    site_name: str


class _Head(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.meta: dict[str, str] = {}
        self.canonical: str | None = None
        self.title_parts: list[str] = []
        self._in_title = False
        self.done = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k.lower(): (v or "") for k, v in attrs}
        if tag == "meta":
            key = (values.get("property") or values.get("name") or "").strip().lower()
            if key and "content" in values:
                self.meta.setdefault(key, values["content"])
        elif tag == "link" and "canonical" in values.get("rel", "").lower().split():
            self.canonical = self.canonical or values.get("href")
        elif tag == "title":
            self._in_title = True
        elif tag == "body":
            self.done = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title_parts.append(data)


def decode(body: bytes, charset: str | None) -> str:
    """The page as text: the declared charset, the document's own, or UTF-8."""
    for candidate in (charset, _sniffed(body), "utf-8"):
        if not candidate:
            continue
        try:
            return body.decode(candidate, errors="replace")
        except LookupError:
            continue
    return body.decode("utf-8", errors="replace")


def _same_site(a: str, b: str) -> bool:
    def host(u: str) -> str:
        return (urlsplit(u).hostname or "").lower().removeprefix("www.")

    return host(a) == host(b)


def _sniffed(body: bytes) -> str | None:
    match = _CHARSET.search(body[:4096])
    return match.group(1).decode("ascii") if match else None


def parse(body: bytes, charset: str | None, url: str) -> PageInfo:
    """The page's metadata; missing pieces fall back (title to the address, canonical to
    the URL that answered)."""
    parser = _Head()
    document = decode(body[:HEAD_BYTES], charset)
    # Fed in pieces so that a page without a head stops being read at its body.
    for start in range(0, len(document), 16 * 1024):
        if parser.done:
            break
        parser.feed(document[start : start + 16 * 1024])
    meta = parser.meta

    def first(*keys: str) -> str:
        return next((meta[k] for k in keys if meta.get(k, "").strip()), "")

    title = text.plain(
        first("og:title", "twitter:title") or "".join(parser.title_parts), text.TITLE_MAX
    )
    description = text.plain(
        first("og:description", "twitter:description", "description"), text.DESCRIPTION_MAX
    )
    image = first("og:image:secure_url", "og:image", "twitter:image", "twitter:image:src")
    image_url = urljoin(url, image.strip()) if image else None
    if image_url and not urls.web_link(image_url):
        image_url = None
    declared = first("og:url") if not parser.canonical else parser.canonical
    canonical_source = urljoin(url, declared.strip()) if declared else url
    if not urls.web_link(canonical_source) or not _same_site(canonical_source, url):
        # A page may not claim another site's article as itself.
        canonical_source = url
    return PageInfo(
        title=title or text.plain(url, text.TITLE_MAX),
        description=description,
        image_url=image_url,
        canonical_url=urls.canonical(canonical_source),
        site_name=text.plain(first("og:site_name", "application-name"), text.SITE_MAX),
    )
