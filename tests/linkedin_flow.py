"""Helpers for the LinkedIn tests: the app with LinkedIn configured, and a browser that goes
through the consent flow against the real `/linkedin/*` routes and the fake LinkedIn."""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import aiohttp
from aiohttp.test_utils import TestClient

from bot.app import Flywheel, build
from bot.settings import Settings
from testing.fakes.clock import FrozenClock
from testing.fakes.linkedin import CLIENT_ID, CLIENT_SECRET, FakeLinkedIn
from testing.fakes.slack_api import FakeSlack
from tests.conftest import slack_settings

READ_TIMEOUT = 0.3


def linkedin_settings(fake: FakeLinkedIn) -> dict[str, object]:
    return {
        "linkedin_client_id": CLIENT_ID,
        "linkedin_client_secret": CLIENT_SECRET,
        "linkedin_oauth_url": fake.oauth_url,
        "linkedin_api_url": fake.api_url,
    }


def settings_with_linkedin(
    database_url: str, slack: FakeSlack, linkedin: FakeLinkedIn, **overrides: object
) -> Settings:
    return slack_settings(database_url, slack, **linkedin_settings(linkedin), **overrides)


def build_with_linkedin(settings: Settings, clock: FrozenClock, **options: Any) -> Flywheel:
    return build(settings, clock=clock, linkedin_read_timeout=READ_TIMEOUT, **options)


@dataclass
class Landing:
    status: int
    text: str


class Browser:
    """One person's browser: its own cookies; follows the flow one redirect at a time."""

    def __init__(self, client: TestClient[Any, Any]) -> None:
        self.client = client
        self.session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))

    async def close(self) -> None:
        await self.session.close()

    def local(self, url: str) -> str:
        """A Flywheel URL (on PUBLIC_BASE_URL) as the test server's address."""
        parts = urlsplit(url)
        return str(self.client.make_url(parts.path)) + (f"?{parts.query}" if parts.query else "")

    async def open_connect_link(self, link: str) -> aiohttp.ClientResponse:
        """`/linkedin/connect?t=…`: answers 302 to LinkedIn (with the state cookie) or a page."""
        return await self.session.get(self.local(link), allow_redirects=False)

    async def consent(self, authorization_url: str) -> str:
        """LinkedIn's consent page: where it sends the browser back (the callback URL)."""
        answer = await self.session.get(authorization_url, allow_redirects=False)
        assert answer.status == 302, await answer.text()
        return answer.headers["Location"]

    async def callback(self, url: str) -> Landing:
        answer = await self.session.get(self.local(url), allow_redirects=False)
        return Landing(answer.status, html.unescape(await answer.text()))

    async def connect(self, link: str) -> Landing:
        """The whole flow: the link, LinkedIn's consent, the callback page."""
        started = await self.open_connect_link(link)
        assert started.status == 302, await started.text()
        return await self.callback(await self.consent(started.headers["Location"]))


def state_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["state"][0]


def with_query(url: str, **query: str) -> str:
    return url.split("?", 1)[0] + "?" + urlencode(query)
