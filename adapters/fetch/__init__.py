"""Fetching a URL someone typed, or a feed, without becoming a way into the network.

A URL from chat is a classic server-side request forgery hole: `http://169.254.169.254/`,
`http://localhost:8080/admin`, a public name that resolves to `10.0.0.5`, or a public page
that redirects to any of these. So:

- only `http` and `https`, on hosts that resolve to global addresses (loopback, private,
  link-local, multicast, reserved and unspecified addresses are refused, in IPv4, IPv6 and
  IPv4-mapped, 6to4 and Teredo forms), unless an operator allowed a network;
- the connection goes to the address that was checked: the resolver aiohttp connects
  through is this module's, and it returns only checked addresses, so a name that
  resolves differently a moment later (DNS rebinding) cannot swap it;
- redirects are followed here, at most five, each hop checked the same way;
- five seconds in all, two megabytes read at most, and only the content types asked for.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable, Sequence
from importlib import metadata
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp
import structlog
from aiohttp.abc import AbstractResolver, ResolveResult

from handlers.core.ports import Fetched, FetchError, FetchKind

log = structlog.get_logger(__name__)

MAX_BYTES = 2 * 1024 * 1024
TIMEOUT = 5.0
MAX_REDIRECTS = 5
PAGE_TYPES = frozenset({"text/html", "application/xhtml+xml"})
FEED_TYPES = PAGE_TYPES | {
    "application/rss+xml",
    "application/atom+xml",
    "application/rdf+xml",
    "application/xml",
    "text/xml",
    "application/feed+json",
    "application/json",
    # Some servers send feeds as plain text; the feed parser decides whether it is one.
    "text/plain",
}
REDIRECTS = frozenset({301, 302, 303, 307, 308})

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(value: str) -> tuple[IPNetwork, ...]:
    """`10.0.0.0/8,127.0.0.1/32` as networks; ValueError naming the entry that is not one."""
    networks: list[IPNetwork] = []
    for item in value.split(","):
        item = item.strip()
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"{item!r} is not an IP network like 10.0.0.0/8") from None
    return tuple(networks)


def _embedded(address: IPAddress) -> list[IPAddress]:
    """The IPv4 addresses an IPv6 address carries (6to4, Teredo)."""
    found: list[IPAddress] = []
    if isinstance(address, ipaddress.IPv6Address):
        if address.sixtofour is not None:
            found.append(address.sixtofour)
        if address.teredo is not None:
            found.extend(address.teredo)
    return found


def _public(address: IPAddress) -> bool:
    return not (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    )


def refused(address: IPAddress, allowed: Sequence[IPNetwork] = ()) -> bool:
    """Whether fetching from `address` is refused: anything not on the public internet,
    unless it is in one of the `allowed` networks."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        # ::ffff:a.b.c.d reaches a.b.c.d: it is that address.
        address = address.ipv4_mapped
    for candidate in (address, *_embedded(address)):
        if not _public(candidate) and not any(candidate in network for network in allowed):
            return True
    return False


class RefusedAddress(OSError):
    """The host resolves only to addresses Flywheel does not fetch from."""


class CheckedResolver(AbstractResolver):
    """Resolves names and returns only the addresses that pass `refused`: what aiohttp
    connects to is what was checked."""

    def __init__(self, allowed: Sequence[IPNetwork]) -> None:
        self.allowed = allowed

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, family=family)
        results: list[ResolveResult] = []
        for fam, _, proto, _, sockaddr in infos:
            address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
            if refused(address, self.allowed):
                continue
            results.append(
                ResolveResult(
                    hostname=host,
                    host=str(address),
                    port=int(sockaddr[1]),
                    family=fam,
                    proto=proto,
                    flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
                )
            )
        if not results:
            raise RefusedAddress(f"{host} resolves only to refused addresses")
        return results

    async def close(self) -> None:
        return None


def _version() -> str:
    try:
        return metadata.version("flywheel")
    except metadata.PackageNotFoundError:
        return "0"


class SafeFetcher:
    """The `Fetcher` port over aiohttp, with every check of the module docstring."""

    def __init__(
        self,
        public_base_url: str,
        allowed: Iterable[IPNetwork] = (),
        *,
        timeout: float = TIMEOUT,
        max_bytes: int = MAX_BYTES,
    ) -> None:
        self.allowed = tuple(allowed)
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.user_agent = f"Flywheel/{_version()} (+{public_base_url})"
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        # Built on first use, inside the running loop; never at import or construction.
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                resolver=CheckedResolver(self.allowed), limit=100, ttl_dns_cache=60
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                # Never through a proxy from the environment: it would connect, not us.
                trust_env=False,
                headers={"User-Agent": self.user_agent},
                auto_decompress=True,
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def check_literal(self, url: str) -> str:
        """The URL's host, after checking scheme and (for an IP literal) address."""
        parts = urlsplit(url)
        if parts.scheme.lower() not in ("http", "https"):
            raise FetchError("scheme", "Only http and https links can be fetched.")
        host = parts.hostname
        if not host:
            raise FetchError("invalid", "That link has no host name.")
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return host
        if refused(address, self.allowed):
            raise FetchError(
                "refused_address",
                "That link points to a private or internal address, which I don't fetch.",
            )
        return host

    def names_internal_host(self, url: str) -> bool:
        host = (urlsplit(url).hostname or "").lower().rstrip(".")
        if host == "localhost" or host.endswith(".localhost"):
            return not any(ipaddress.ip_address("127.0.0.1") in network for network in self.allowed)
        try:
            self.check_literal(url)
        except FetchError:
            return True
        return False

    async def fetch(
        self,
        url: str,
        *,
        kind: FetchKind = "page",
        etag: str | None = None,
        last_modified: str | None = None,
    ) -> Fetched:
        try:
            async with asyncio.timeout(self.timeout):
                return await self._follow(url, kind, etag, last_modified)
        except TimeoutError:
            raise FetchError(
                "timeout", f"The site took longer than {self.timeout:g} seconds to answer."
            ) from None

    async def _follow(
        self, url: str, kind: FetchKind, etag: str | None, last_modified: str | None
    ) -> Fetched:
        headers: dict[str, str] = {
            "Accept": (
                "text/html,application/xhtml+xml;q=0.9,*/*;q=0.1"
                if kind == "page"
                else "application/rss+xml,application/atom+xml,application/feed+json,"
                "application/xml;q=0.9,text/xml;q=0.9,*/*;q=0.1"
            )
        }
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        current = url
        for _hop in range(MAX_REDIRECTS + 1):
            host = self.check_literal(current)
            try:
                async with self._client().get(
                    current, headers=headers, allow_redirects=False
                ) as response:
                    if response.status in REDIRECTS and "Location" in response.headers:
                        current = urljoin(current, response.headers["Location"])
                        continue
                    return await self._read(current, response, kind)
            except aiohttp.ClientConnectorError as error:
                if isinstance(error.os_error, RefusedAddress):
                    raise FetchError(
                        "refused_address",
                        "That link points to a private or internal address, which I don't fetch.",
                    ) from None
                raise FetchError("unreachable", f"I couldn't reach {host}.") from None
            except (aiohttp.InvalidURL, ValueError):
                raise FetchError("invalid", "That doesn't look like a valid link.") from None
            except aiohttp.ClientError as error:
                log.info("fetch.failed", host=host, error=type(error).__name__)
                raise FetchError(
                    "unreachable", f"I couldn't read the answer from {host}."
                ) from None
        raise FetchError(
            "redirects", f"That link redirects more than {MAX_REDIRECTS} times, so I stopped."
        )

    async def _read(self, url: str, response: aiohttp.ClientResponse, kind: FetchKind) -> Fetched:
        validators: dict[str, Any] = {
            "etag": response.headers.get("ETag"),
            "last_modified": response.headers.get("Last-Modified"),
        }
        if response.status == 304:
            return Fetched(url=url, status=304, **validators)
        if response.status >= 400 or response.status < 200:
            raise FetchError("status", f"The site answered {response.status} for that link.")
        content_type = response.content_type.lower()
        accepted = PAGE_TYPES if kind == "page" else FEED_TYPES
        if content_type not in accepted:
            what = "a web page" if kind == "page" else "a feed"
            raise FetchError(
                "content_type", f"That link is not {what} (it is {content_type or 'unknown'})."
            )
        size = response.content_length
        if size is not None and size > self.max_bytes:
            raise FetchError("too_large", self._too_large())
        body = bytearray()
        async for chunk in response.content.iter_chunked(64 * 1024):
            body += chunk
            if len(body) > self.max_bytes:
                raise FetchError("too_large", self._too_large())
        return Fetched(
            url=url,
            status=response.status,
            content_type=content_type,
            body=bytes(body),
            charset=response.charset,
            **validators,
        )

    def _too_large(self) -> str:
        return (
            f"That page is larger than {self.max_bytes // (1024 * 1024)} MB, so I didn't read it."
        )
