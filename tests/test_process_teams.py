"""The real `flywheel run` process in Teams, end to end: a signed activity in, an outbound
token from a fake Entra ID over HTTPS (MICROSOFT_LOGIN_URL, MICROSOFT_OAUTH_SCOPE), and the
reply at the fake Bot Connector carrying that token — and, with Entra ID down during the
turn, no 500 and the reply delivered by the outbox once it is back."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from storage.db import create_engine
from storage.migrate import upgrade
from testing.fakes.bot_connector import ConnectorCall, FakeBotConnector
from testing.fakes.clock import FrozenClock
from testing.fakes.entra import FakeEntra
from testing.processes import Running, flywheel_run
from tests.teams_http import (
    APP_ID,
    APP_PASSWORD,
    ISSUER,
    TENANT,
    TUESDAY_14,
    KeyServer,
    TeamsHttp,
    key_server,
    personal,
    submit_data,
)

__all__ = ["key_server"]

SCOPE = "https://api.botframework.test"
# How long the process may take to deliver, polled: a bound, not a timing assertion.
PATIENCE = 60.0


@pytest.fixture
def entra(tmp_path: Path) -> Iterator[FakeEntra]:
    fake = FakeEntra(tmp_path, app_id=APP_ID, secret=APP_PASSWORD, scope=SCOPE)
    yield fake
    fake.close()


@pytest.fixture
async def connector(entra: FakeEntra) -> AsyncIterator[FakeBotConnector]:
    fake = FakeBotConnector(token=entra.token)
    fake.add_member("alice", "Alice", "alice@acme.test", TENANT)
    await fake.start()
    yield fake
    await fake.close()


async def database(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'flywheel.db'}"
    engine = create_engine(url)
    await upgrade(engine)
    await engine.dispose()
    return url


def teams_env(key_server: KeyServer, entra: FakeEntra) -> dict[str, str]:
    return {
        "MICROSOFT_APP_ID": APP_ID,
        "MICROSOFT_APP_PASSWORD": APP_PASSWORD,
        "MICROSOFT_OPENID_METADATA_URL": key_server.metadata_url,
        "MICROSOFT_TOKEN_ISSUER": ISSUER,
        "MICROSOFT_LOGIN_URL": entra.login_url,
        "MICROSOFT_OAUTH_SCOPE": SCOPE,
        # The throw-away authority that signed the fake Entra ID's certificate.
        "REQUESTS_CA_BUNDLE": str(entra.ca_file),
    }


async def post(
    http: aiohttp.ClientSession, running: Running, keys: KeyServer, activity: dict[str, Any]
) -> int:
    token = keys.token(str(activity["serviceUrl"]))
    async with http.post(
        f"{running.base}/api/messages",
        data=json.dumps(activity),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    ) as response:
        return response.status


async def landed_form(connector: FakeBotConnector, chat: str) -> ConnectorCall:
    """The request form once the fake connector has taken it, waiting as long as PATIENCE."""
    for _ in range(int(PATIENCE / 0.1)):
        for call in connector.to(chat):
            if call.landed and submit_data(call.card).get("form") == "request_form":
                return call
        await asyncio.sleep(0.1)
    raise AssertionError(f"no form reached {chat}: {connector.calls}")


def error_lines(stderr: str) -> list[str]:
    return [
        line for line in stderr.splitlines() if '"level": "error"' in line or "Traceback" in line
    ]


async def test_a_reply_carries_the_token_the_fake_entra_issued(
    tmp_path: Path, key_server: KeyServer, entra: FakeEntra, connector: FakeBotConnector
) -> None:
    url = await database(tmp_path)
    teams = TeamsHttp(None, connector, key_server, FrozenClock(TUESDAY_14))  # type: ignore[arg-type]
    chat = personal(teams.member("alice"))
    env = teams_env(key_server, entra)
    async with flywheel_run(tmp_path, url, slack=False, **env) as running:
        async with aiohttp.ClientSession() as http:
            assert await running.ready(http) == 200
            activity = teams.message("request Kubernetes upgrades")
            assert await post(http, running, key_server, activity) == 200
            form = await landed_form(connector, chat)
        assert await running.terminate() == 0
    assert form.authorization == f"Bearer {entra.token}"
    assert entra.issued >= 1
    assert error_lines(running.stderr) == []
    assert APP_PASSWORD not in running.stderr and entra.token not in running.stderr


async def test_entra_down_during_the_turn_no_500_and_the_reply_comes_when_it_is_back(
    tmp_path: Path, key_server: KeyServer, entra: FakeEntra, connector: FakeBotConnector
) -> None:
    url = await database(tmp_path)
    teams = TeamsHttp(None, connector, key_server, FrozenClock(TUESDAY_14))  # type: ignore[arg-type]
    chat = personal(teams.member("alice"))
    entra.down = True
    async with flywheel_run(tmp_path, url, slack=False, **teams_env(key_server, entra)) as running:
        async with aiohttp.ClientSession() as http:
            assert await running.ready(http) == 200
            activity = teams.message("request Kubernetes upgrades")
            assert await post(http, running, key_server, activity) == 200
            assert [c for c in connector.calls if c.landed] == []
            entra.down = False
            form = await landed_form(connector, chat)
            # Nothing more arrives: the queued reply was sent once.
            await asyncio.sleep(1.0)
            forms = [c for c in connector.to(chat) if c.landed and submit_data(c.card)]
        assert await running.terminate() == 0
    assert len(forms) == 1
    assert form.authorization == f"Bearer {entra.token}"
    assert error_lines(running.stderr) == []
    assert '"event": "teams.token_unavailable"' in running.stderr
    assert '"event": "teams.reply_queued"' in running.stderr
