"""Fetching what people share: only the public internet, within limits, every hop checked."""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator

import pytest

from adapters.fetch import SafeFetcher, parse_networks, refused
from bot.settings import ConfigurationError, load_settings
from handlers.core.ports import FetchError
from testing.fakes.web_site import FakeSite

LOCAL = parse_networks("127.0.0.1/32")


@pytest.fixture
async def site() -> AsyncIterator[FakeSite]:
    fake = FakeSite()
    await fake.start()
    yield fake
    await fake.close()


@pytest.fixture
async def fetcher() -> AsyncIterator[SafeFetcher]:
    fetching = SafeFetcher("https://flywheel.acme.test", LOCAL)
    yield fetching
    await fetching.close()


async def refusal(fetcher: SafeFetcher, url: str, **kwargs: object) -> FetchError:
    with pytest.raises(FetchError) as raised:
        await fetcher.fetch(url, **kwargs)  # type: ignore[arg-type]
    return raised.value


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "240.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "2002:a00:1::",  # 6to4 around 10.0.0.1
        "64:ff9b::a00:1",
    ],
)
def test_internal_addresses_are_refused(address: str) -> None:
    assert refused(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses_are_not(address: str) -> None:
    assert not refused(ipaddress.ip_address(address))


def test_an_allowed_network_opens_only_itself() -> None:
    assert not refused(ipaddress.ip_address("127.0.0.1"), LOCAL)
    assert refused(ipaddress.ip_address("127.0.0.2"), LOCAL)
    assert not refused(ipaddress.ip_address("::ffff:127.0.0.1"), LOCAL)


def test_a_bad_allow_list_stops_start_up_with_one_line() -> None:
    with pytest.raises(ConfigurationError) as raised:
        load_settings(flywheel_fetch_allow_networks="10.0.0.0/8, intranet", _env_file=None)
    assert str(raised.value) == (
        "FLYWHEEL_FETCH_ALLOW_NETWORKS: 'intranet' is not an IP network like 10.0.0.0/8"
    )
    settings = load_settings(
        flywheel_fetch_allow_networks="10.0.0.0/8,127.0.0.1/32", _env_file=None
    )
    assert [str(n) for n in settings.fetch_allow_networks] == ["10.0.0.0/8", "127.0.0.1/32"]


async def test_a_page_is_read_with_a_user_agent_naming_flywheel(
    site: FakeSite, fetcher: SafeFetcher
) -> None:
    url = site.page("/a", "<title>Hello</title>")
    fetched = await fetcher.fetch(url)
    assert (fetched.status, fetched.body, fetched.charset) == (
        200,
        b"<title>Hello</title>",
        "utf-8",
    )
    agent = site.served[-1].headers["User-Agent"]
    assert agent.startswith("Flywheel/") and agent.endswith("(+https://flywheel.acme.test)")


async def test_without_the_allow_list_loopback_is_refused(site: FakeSite) -> None:
    fetcher = SafeFetcher("https://flywheel.acme.test")
    try:
        url = site.page("/a", "<title>Hello</title>")
        assert (await refusal(fetcher, url)).reason == "refused_address"
        # A name that resolves to loopback is refused too, by the resolver it connects through.
        named = url.replace("127.0.0.1", "localhost")
        assert (await refusal(fetcher, named)).reason == "refused_address"
    finally:
        await fetcher.close()
    assert site.served == []


async def test_a_name_connects_only_to_the_checked_address(
    site: FakeSite, fetcher: SafeFetcher
) -> None:
    # localhost resolves to 127.0.0.1 and ::1: only the allowed one is connected to.
    url = site.page("/a", "<title>Hello</title>").replace("127.0.0.1", "localhost")
    assert (await fetcher.fetch(url)).status == 200


async def test_a_redirect_to_a_refused_address_is_refused(
    site: FakeSite, fetcher: SafeFetcher
) -> None:
    port = site.url("/").split(":")[-1].split("/")[0]
    for target in (
        f"http://127.0.0.2:{port}/x",
        "http://169.254.169.254/latest/meta-data/",
        f"http://[::1]:{port}/x",
        f"http://localhost.:{port}/x".replace("localhost.", "10.0.0.1"),
    ):
        url = site.redirect("/hop", target)
        assert (await refusal(fetcher, url)).reason == "refused_address", target


async def test_redirects_are_followed_up_to_five_and_a_loop_is_stopped(
    site: FakeSite, fetcher: SafeFetcher
) -> None:
    site.page("/end", "<title>End</title>")
    for n in range(5):
        site.redirect(f"/r{n}", f"/r{n + 1}" if n < 4 else "/end")
    assert (await fetcher.fetch(site.url("/r0"))).url == site.url("/end")
    site.redirect("/loop", "/loop")
    error = await refusal(fetcher, site.url("/loop"))
    assert error.reason == "redirects" and "more than 5" in error.message


@pytest.mark.parametrize(
    ("setup", "reason"),
    [
        (lambda s: s.status("/gone", 404), "status"),
        (lambda s: s.page("/pdf", b"%PDF-1.7", content_type="application/pdf"), "content_type"),
        (lambda s: s.big("/big", 20 * 1024 * 1024), "too_large"),
        (lambda s: s.url("/nowhere").replace(s.base.split(":")[-1], "9"), "unreachable"),
        (lambda s: "ftp://127.0.0.1/file", "scheme"),
    ],
    ids=["404", "not-html", "20MB", "unreachable", "ftp"],
)
async def test_what_is_not_a_readable_page_is_refused(
    site: FakeSite, fetcher: SafeFetcher, setup: object, reason: str
) -> None:
    url = setup(site)  # type: ignore[operator]
    assert (await refusal(fetcher, url)).reason == reason


async def test_a_slow_site_times_out(site: FakeSite) -> None:
    fetcher = SafeFetcher("https://flywheel.acme.test", LOCAL, timeout=0.3)
    try:
        error = await refusal(fetcher, site.slow("/slow", 2.0))
    finally:
        await fetcher.close()
    assert error.reason == "timeout"


async def test_feeds_are_read_conditionally(site: FakeSite, fetcher: SafeFetcher) -> None:
    url = site.feed("/feed.xml", "<rss version='2.0'><channel/></rss>", etag='"v1"')
    first = await fetcher.fetch(url, kind="feed")
    assert first.etag == '"v1"' and not first.not_modified
    second = await fetcher.fetch(url, kind="feed", etag=first.etag)
    assert second.not_modified and second.body == b""
    # A page-only fetch refuses a feed type.
    assert (await refusal(fetcher, url)).reason == "content_type"
