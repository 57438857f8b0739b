"""A reply that cannot be sent during a Teams turn is not lost.

When the Connector answers 5xx or cannot be reached, or no outbound token can be had from
Entra ID (unreachable, or refusing the app's password), the turn still ends with a 200 and
no error-level log, and what it would have said goes to the outbox, which delivers it,
once, when Microsoft is back. Tokens come from a fake Entra ID over HTTPS through the real
MSAL client, configured with MICROSOFT_LOGIN_URL and MICROSOFT_OAUTH_SCOPE.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from aiohttp.test_utils import TestClient, TestServer
from sqlmodel import select

from bot.app import Flywheel, build
from storage.models import OutboxMessage
from testing.fakes.bot_connector import ConnectorCall, FakeBotConnector
from testing.fakes.clock import FrozenClock
from testing.fakes.entra import FakeEntra
from tests.teams_http import (
    APP_ID,
    APP_PASSWORD,
    TUESDAY_14,
    KeyServer,
    TeamsHttp,
    connector,
    fill,
    key_server,
    personal,
    submit_data,
    teams,
    teams_app,
    teams_settings,
)

__all__ = ["connector", "key_server", "teams", "teams_app"]

SCOPE = "https://api.botframework.test"


async def queued(flywheel: Flywheel) -> list[OutboxMessage]:
    async with flywheel.sessions() as session:
        return list((await session.exec(select(OutboxMessage))).all())


def landed(connector: FakeBotConnector, chat: str) -> list[ConnectorCall]:
    """What reached the chat: messages the fake took (sends and replies alike)."""
    return [call for call in connector.to(chat) if call.landed]


def errors(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [entry for entry in logs if entry["log_level"] in ("error", "critical", "exception")]


async def test_a_form_the_connector_fails_to_take_is_sent_once_when_it_is_back(
    teams: TeamsHttp, teams_app: Flywheel, connector: FakeBotConnector
) -> None:
    chat = personal(teams.member("alice"))
    connector.fail("reply", 503)
    with structlog.testing.capture_logs() as logs:
        posted = await teams.post(teams.message("request Kubernetes upgrades"))
    assert posted.status == 200
    assert errors(logs) == []
    assert any(entry["event"] == "teams.reply_queued" for entry in logs)
    [failed] = [c for c in connector.to(chat, "reply") if "Welcome to Flywheel" not in c.text]
    assert failed.landed is None
    [row] = [r for r in await queued(teams_app) if r.kind == "card"]  # and her welcome
    assert (row.kind, row.status, row.target) == ("card", "pending", {"channel": chat})

    await teams_app.dispatcher.drain()
    [sent] = [c for c in landed(connector, chat) if "Welcome to Flywheel" not in c.text]
    assert submit_data(sent.card)["form"] == "request_form"
    assert await teams_app.dispatcher.drain() == 0
    assert len(landed(connector, chat)) == 2  # the form and the welcome, once each

    # The form that came late works like any other: its submit replaces it with a note,
    # and that note too waits for the Connector when it has to.
    connector.fail("update", 502)
    done = fill(sent.card, {"tags": "kubernetes"})
    with structlog.testing.capture_logs() as logs:
        assert (await teams.post(teams.submit(done, reply_to=sent.landed))).status == 200
    assert errors(logs) == []
    await teams_app.dispatcher.drain()
    updates = connector.to(chat, "update")
    assert [u.activity_id for u in updates] == [sent.landed, sent.landed]
    assert "sent" in updates[-1].text


async def test_a_connector_that_cannot_be_reached_during_the_turn(
    teams: TeamsHttp, teams_app: Flywheel, connector: FakeBotConnector
) -> None:
    chat = personal(teams.member("alice"))
    await teams.post(teams.message("help"))  # the chat is known before Microsoft goes
    await teams_app.dispatcher.drain()
    activity = teams.message("request Kubernetes upgrades")
    await connector.stop_listening()
    with structlog.testing.capture_logs() as logs:
        posted = await teams.post(activity)
        # Teams delivers the same activity again: nothing is queued twice.
        again = await teams.post(activity)
    assert (posted.status, again.status) == (200, 200)
    assert errors(logs) == []
    rows = [row for row in await queued(teams_app) if row.kind == "card"]
    assert len(rows) == 1
    await teams_app.dispatcher.drain()
    assert [row.status for row in await queued(teams_app) if row.kind == "card"] == ["pending"]

    await connector.listen_again()
    teams.clock.advance(minutes=10)
    await teams_app.dispatcher.drain()
    forms = [c for c in landed(connector, chat) if submit_data(c.card).get("form")]
    assert len(forms) == 1


# -- outbound tokens from a fake Entra ID -------------------------------------------------


@pytest.fixture
def entra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeEntra]:
    fake = FakeEntra(tmp_path, app_id=APP_ID, secret=APP_PASSWORD, scope=SCOPE)
    # MSAL talks to it through requests, which trusts what this names.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(fake.ca_file))
    yield fake
    fake.close()


async def entra_app(
    migrated_url: str, key_server: KeyServer, clock: FrozenClock, entra: FakeEntra, **extra: Any
) -> Flywheel:
    settings = teams_settings(
        migrated_url,
        key_server,
        microsoft_login_url=entra.login_url,
        microsoft_oauth_scope=SCOPE,
        **extra,
    )
    return build(settings, clock=clock)


@pytest.fixture
async def entra_teams(
    migrated_url: str,
    key_server: KeyServer,
    clock: FrozenClock,
    entra: FakeEntra,
    connector: FakeBotConnector,
) -> AsyncIterator[tuple[Flywheel, TeamsHttp]]:
    connector.token = entra.token
    app = await entra_app(migrated_url, key_server, clock, entra)
    clock.set(TUESDAY_14)
    client: TestClient[Any, Any] = TestClient(TestServer(app.web_app()))
    await client.start_server()
    yield app, TeamsHttp(client, connector, key_server, clock)
    await client.close()
    await app.close()


async def test_replies_carry_the_token_entra_issued(
    entra_teams: tuple[Flywheel, TeamsHttp], entra: FakeEntra, connector: FakeBotConnector
) -> None:
    _, teams = entra_teams
    chat = personal(teams.member("alice"))
    assert (await teams.post(teams.message("request Kubernetes upgrades"))).status == 200
    [shown] = connector.to(chat)
    assert shown.authorization == f"Bearer {entra.token}"
    assert entra.issued == 1


async def test_entra_unreachable_during_the_turn_queues_the_reply_until_it_is_back(
    entra_teams: tuple[Flywheel, TeamsHttp], entra: FakeEntra, connector: FakeBotConnector
) -> None:
    app, teams = entra_teams
    chat = personal(teams.member("alice"))
    entra.down = True
    with structlog.testing.capture_logs() as logs:
        posted = await teams.post(teams.message("request Kubernetes upgrades"))
    assert posted.status == 200
    assert errors(logs) == []
    assert any(entry["event"] == "teams.token_unavailable" for entry in logs)
    assert connector.calls == []
    # The answer and, as it is her first message, her welcome: both wait for a token.
    assert sorted(row.kind for row in await queued(app)) == ["card", "message"]

    entra.down = False
    await app.dispatcher.drain()
    [sent] = [c for c in landed(connector, chat) if "Welcome to Flywheel" not in c.text]
    assert submit_data(sent.card)["form"] == "request_form"
    assert sent.authorization == f"Bearer {entra.token}"
    assert await app.dispatcher.drain() == 0


async def test_a_wrong_password_is_a_warning_and_the_reply_waits(
    migrated_url: str,
    key_server: KeyServer,
    clock: FrozenClock,
    entra: FakeEntra,
    connector: FakeBotConnector,
) -> None:
    app = await entra_app(
        migrated_url, key_server, clock, entra, microsoft_app_password="not-the-password"
    )
    clock.set(TUESDAY_14)
    client: TestClient[Any, Any] = TestClient(TestServer(app.web_app()))
    await client.start_server()
    try:
        teams = TeamsHttp(client, connector, key_server, clock)
        with structlog.testing.capture_logs() as logs:
            posted = await teams.post(teams.message("request Kubernetes upgrades"))
        assert posted.status == 200
        assert errors(logs) == []
        [warning] = [e for e in logs if e["event"] == "teams.token_unavailable"]
        assert "invalid_client" in warning["error"]
        assert "not-the-password" not in str(logs)
        assert entra.refused >= 1 and entra.issued == 0
        assert connector.calls == []
        assert sorted(row.kind for row in await queued(app)) == ["card", "message"]
    finally:
        await client.close()
        await app.close()
