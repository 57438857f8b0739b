"""Pages and feeds as Flywheel reads them: metadata, canonical links, and real feeds' quirks."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from handlers.content import feed_format, page, urls


def test_tracking_parameters_are_stripped_from_canonical_links() -> None:
    a = urls.canonical(
        "HTTPS://Blog.Acme.test:443/post?utm_source=x&id=7&fbclid=1&gclid=2&mc_cid=3"
        "&mc_eid=4&msclkid=5&igshid=6&utm_campaign=y#comments"
    )
    assert a == "https://blog.acme.test/post?id=7"
    assert urls.canonical("http://blog.acme.test") == "http://blog.acme.test/"


@pytest.mark.parametrize(
    ("typed", "problem"),
    [
        ("", "Give me the link"),
        ("ftp://files.acme.test/a", "Only http and https"),
        ("javascript:alert(1)", "Only http and https"),
        ("https://", "no host name"),
        ("https://" + "a" * 2100 + ".test", "longer than 2000"),
    ],
)
def test_links_that_cannot_be_shared_are_refused_in_one_line(typed: str, problem: str) -> None:
    with pytest.raises(urls.BadLink) as bad:
        urls.checked(typed)
    assert problem in str(bad.value)


def test_slack_wrapped_links_are_read() -> None:
    assert urls.first_link("look <https://acme.test/a?b=1|acme.test/a> now") == (
        "https://acme.test/a?b=1"
    )
    assert urls.checked("<https://acme.test/a|label>") == "https://acme.test/a"


def test_open_graph_wins_over_twitter_cards_and_the_title() -> None:
    html = """<html><head><title>Plain title</title>
    <meta property="og:title" content="OG &amp; title">
    <meta name="twitter:title" content="Twitter title">
    <meta name="description" content="Meta description">
    <meta property="og:image" content="/img/cover.png">
    <meta property="og:site_name" content="Acme blog">
    <link rel="canonical" href="/post?utm_medium=social">
    </head><body><p>text</p></body></html>"""
    info = page.parse(html.encode(), "utf-8", "https://blog.acme.test/post?ref=x")
    assert info.title == "OG & title"
    assert info.description == "Meta description"
    assert info.image_url == "https://blog.acme.test/img/cover.png"
    assert info.canonical_url == "https://blog.acme.test/post"
    assert info.site_name == "Acme blog"


def test_page_text_is_sanitized_and_capped() -> None:
    html = (
        "<title><script>alert(1)</script><b>Bold</b> *not markup* <@U123></title>"
        f'<meta name="description" content="{"word " * 5000}">'
    )
    info = page.parse(html.encode(), None, "https://acme.test/x")
    # Text, not markup: no tag survives, and what looks like Slack syntax stays as typed
    # for the renderers to escape.
    assert "<script" not in info.title and "<b>" not in info.title
    assert info.title.endswith("Bold *not markup* <@U123>")
    assert len(info.description) <= 400 and info.description.endswith("…")


def test_a_page_may_not_claim_another_sites_article() -> None:
    html = '<link rel="canonical" href="https://other.test/theirs"><title>t</title>'
    info = page.parse(html.encode(), None, "https://www.acme.test/ours")
    assert info.canonical_url == "https://www.acme.test/ours"


def test_a_page_in_another_encoding_is_decoded() -> None:
    html = '<meta charset="iso-8859-1"><title>Caf\xe9 cr\xe8me</title>'.encode("latin-1")
    assert page.parse(html, None, "https://acme.test/").title == "Café crème"


RSS = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xml:base="https://blog.acme.test/">
<channel><title>Acme &lt;b&gt;blog&lt;/b&gt;</title>
<item><title>&lt;script&gt;alert(1)&lt;/script&gt;Upgrades &lt;i&gt;done&lt;/i&gt;</title>
  <link>/posts/upgrades?utm_source=rss</link><guid>g-1</guid>
  <pubDate>Tue, 01 Dec 2026 10:00:00 GMT</pubDate><description>{long}</description></item>
<item><title>Same guid again</title><link>/posts/dup</link><guid>g-1</guid></item>
<item><title>No link, no guid</title></item>
<item><title>Odd date</title><link>https://blog.acme.test/odd</link>
  <pubDate>sometime next week</pubDate></item>
</channel></rss>"""


def test_rss_quirks_relative_links_html_titles_odd_dates_and_long_summaries() -> None:
    parsed = feed_format.parse(
        RSS.replace("{long}", "x" * 50_000).encode(), "application/rss+xml", "https://x.test/f"
    )
    assert parsed.title == "Acme blog"
    first, dup, bare, odd = parsed.entries
    assert first.title == "Upgrades done"
    assert first.link == "https://blog.acme.test/posts/upgrades?utm_source=rss"
    assert first.published == datetime(2026, 12, 1, 10, tzinfo=UTC)
    assert len(first.summary) <= 400
    assert dup.guid == first.guid
    assert bare.link is None and bare.guid.startswith("title:")
    assert odd.published is None and odd.guid == "https://blog.acme.test/odd"


def test_atom_with_xml_base_and_a_non_utf8_encoding() -> None:
    atom = """<?xml version="1.0" encoding="iso-8859-1"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:base="https://news.acme.test/en/">
<title>Acme news</title>
<entry><id>tag:acme,2026:1</id><title type="html">Caf\xe9 &lt;b&gt;launch&lt;/b&gt;</title>
<link href="launch.html"/><updated>2026-12-02T08:00:00Z</updated>
<summary type="html">&lt;p&gt;We launched.&lt;/p&gt;</summary></entry></feed>""".encode("latin-1")
    parsed = feed_format.parse(atom, "application/atom+xml", "https://news.acme.test/feed")
    [entry] = parsed.entries
    assert entry.title == "Café launch"
    assert entry.link == "https://news.acme.test/en/launch.html"
    assert entry.summary == "We launched."
    assert entry.published == datetime(2026, 12, 2, 8, tzinfo=UTC)


def test_malformed_xml_that_the_parser_recovers_is_read() -> None:
    broken = b"""<rss version="2.0"><channel><title>Broken & co</title>
    <item><title>Still here</title><link>https://acme.test/a</link></item>
    </channel>"""
    [entry] = feed_format.parse(broken, "text/xml", "https://acme.test/feed").entries
    assert entry.title == "Still here"


def test_json_feed() -> None:
    body = b"""{"version": "https://jsonfeed.org/version/1.1", "title": "Acme JSON",
      "home_page_url": "https://acme.test/",
      "items": [{"id": "1", "url": "/a", "title": "<em>A</em>", "content_html": "<p>Hi</p>",
                 "date_published": "2026-12-01T09:00:00Z"}, "junk"]}"""
    parsed = feed_format.parse(body, "application/feed+json", "https://acme.test/feed.json")
    [entry] = parsed.entries
    assert (entry.guid, entry.link, entry.title, entry.summary) == (
        "1",
        "https://acme.test/a",
        "A",
        "Hi",
    )


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (b"<html><title>A page</title><body>Hello</body></html>", "text/html"),
        (b'{"version": "1", "items": []}', "application/json"),
        (b"not json {", "application/json"),
    ],
)
def test_what_is_not_a_feed_says_so(body: bytes, kind: str) -> None:
    with pytest.raises(feed_format.NotAFeed):
        feed_format.parse(body, kind, "https://acme.test/")
