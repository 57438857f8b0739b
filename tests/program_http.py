"""The program page over real HTTP: an app with Sign in with Slack and Microsoft pointed at
the fake OpenID provider, a seeded workspace, and a client that follows a sign-in."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.test_utils import TestClient, TestServer

from bot.app import Flywheel, build
from handlers.core import workspace_settings
from handlers.core.workspace_settings import WorkspaceSettings
from storage.db import transaction
from storage.models import Member, Workspace
from testing.fakes.clock import FrozenClock
from testing.fakes.oidc import FakeOIDC
from testing.fakes.slack_api import FakeSlack
from tests.conftest import slack_settings
from tests.test_digest_figures import SEND, at, seed_week

TEAM, OTHER_TEAM, TENANT = "T0001", "T0002", "tenant-0001"
SETTINGS = WorkspaceSettings(
    timezone="Europe/Paris", digest_channels=["C0GENERAL"], reviewers=["UBOB"]
)


@dataclass
class Site:
    flywheel: Flywheel
    client: TestClient  # type: ignore[type-arg]
    oidc: FakeOIDC
    clock: FrozenClock
    ids: dict[str, int]

    async def start_signin(self, provider: str = "slack") -> str:
        """Start signing in; the provider's authorize URL."""
        response = await self.client.get(f"/signin/{provider}", allow_redirects=False)
        assert response.status == 302, await response.text()
        return response.headers["Location"]

    async def consent(self, authorize: str) -> str:
        """What the provider sends the browser back to: the callback's path and query."""
        async with (
            aiohttp.ClientSession() as http,
            http.get(authorize, allow_redirects=False) as response,
        ):
            assert response.status == 302, await response.text()
            back = urlsplit(response.headers["Location"])
        return f"{back.path}?{back.query}"

    async def callback(self, path: str) -> aiohttp.ClientResponse:
        return await self.client.get(path, allow_redirects=False)

    async def sign_in(self, user: str, team: str = TEAM) -> aiohttp.ClientResponse:
        """A whole Slack sign-in as `user` of `team`; the callback's response."""
        self.oidc.sign_in_as_slack(team, user, email=f"{user.lower()}@acme.test")
        return await self.callback(await self.consent(await self.start_signin()))

    def signed_in(self) -> bool:
        return any(c.key == "flywheel_session" for c in self.client.session.cookie_jar)

    async def page(self, path: str) -> tuple[int, str]:
        response = await self.client.get(path, allow_redirects=False)
        return response.status, await response.text()


def session_cookie_set(response: aiohttp.ClientResponse) -> bool:
    """Whether the response starts a session (sets a non-empty session cookie)."""
    return any(
        h.startswith("flywheel_session=")
        and not h.startswith("flywheel_session=;")
        and 'flywheel_session=""' not in h
        for h in response.headers.getall("Set-Cookie", [])
    )


def table_rows(html: str, name: str) -> list[list[str]]:
    """The body rows of the table `table-{name}`, as cell texts."""
    found = re.search(rf'<table id="table-{name}">(.*?)</table>', html, re.S)
    assert found, f"no table {name}"
    body = found.group(1).split("<tbody>")[1]
    return [
        [
            re.sub(r"<[^>]+>", "", cell).strip()
            for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)
        ]
        for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)
    ]


async def seed(flywheel: Flywheel) -> dict[str, int]:
    """The digest tests' fixed week in workspace T0001, and a second workspace T0002."""
    async with transaction(flywheel.sessions) as session:
        workspace = Workspace(platform="slack", external_id=TEAM, name="Acme", created_at=at(1, 0))
        workspace_settings.save(workspace, SETTINGS)
        other = Workspace(
            platform="slack", external_id=OTHER_TEAM, name="Globex", created_at=at(1, 0)
        )
        teams = Workspace(
            platform="teams", external_id=TENANT, name="Acme Teams", created_at=at(1, 0)
        )
        session.add_all([workspace, other, teams])
        await session.flush()
        session.add_all(
            [
                Member(
                    workspace_id=other.id or 0,
                    user_id="UZED",
                    name="Zed",
                    is_platform_admin=True,
                    created_at=at(1, 0),
                    updated_at=at(1, 0),
                ),
                Member(
                    workspace_id=teams.id or 0,
                    user_id="aad-object-admin",
                    name="Tess",
                    is_platform_admin=True,
                    created_at=at(1, 0),
                    updated_at=at(1, 0),
                ),
            ]
        )
    ids = await seed_week(flywheel.sessions, workspace.id or 0)
    ids["workspace"] = workspace.id or 0
    ids["other"] = other.id or 0
    return ids


@asynccontextmanager
async def program_site(
    database_url: str, fake_slack: FakeSlack, clock: FrozenClock, **overrides: Any
) -> AsyncIterator[Site]:
    fake = FakeOIDC()
    await fake.start()
    values: dict[str, Any] = {
        "slack_client_id": fake.client_id,
        "slack_client_secret": fake.client_secret,
        "slack_openid_url": fake.url,
        "microsoft_signin_client_id": fake.client_id,
        "microsoft_signin_client_secret": fake.client_secret,
        "microsoft_signin_url": fake.url,
    }
    settings = slack_settings(database_url, fake_slack, **{**values, **overrides})
    clock.set(SEND)
    flywheel = build(settings, clock=clock)
    ids = await seed(flywheel)
    client: TestClient = TestClient(TestServer(flywheel.web_app()))  # type: ignore[type-arg]
    await client.start_server()
    try:
        yield Site(flywheel, client, fake, clock, ids)
    finally:
        await client.close()
        await flywheel.close()
        await fake.close()
