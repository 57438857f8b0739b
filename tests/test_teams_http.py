"""The Teams edge: only authenticated, well-formed activities reach the bot, and nothing
else is written; the conversation references proactive sends need are kept."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from botframework.connector.auth import JwtTokenExtractor
from sqlmodel import select

from bot.app import Flywheel, build
from storage.models import ConversationReference, InboundEvent, Member, Workspace
from testing.fakes.bot_connector import FakeBotConnector
from tests.teams_http import (
    APP_ID,
    TENANT,
    KeyServer,
    TeamsHttp,
    connector,
    key_server,
    personal,
    teams,
    teams_app,
    teams_settings,
)

__all__ = ["connector", "key_server", "teams", "teams_app"]


async def rows(flywheel: Flywheel) -> dict[str, int]:
    """How many rows each table the edge could write holds."""
    counts = {}
    async with flywheel.sessions() as session:
        for model in (Workspace, Member, ConversationReference, InboundEvent):
            counts[model.__tablename__] = len((await session.exec(select(model))).all())  # type: ignore[attr-defined]
    return counts


async def test_help_in_personal_chat_is_answered_and_the_chat_remembered(
    teams: TeamsHttp, teams_app: Flywheel, connector: FakeBotConnector
) -> None:
    posted = await teams.post(teams.message("help"))
    assert posted.status == 200
    await teams_app.dispatcher.drain()
    chat = personal(teams.member("alice"))
    # Her first message to the bot: the answer, and the welcome she never had.
    [welcome] = [c for c in connector.to(chat) if "Welcome to Flywheel" in c.text]
    [answer] = [c for c in connector.to(chat) if c is not welcome]
    assert "Here is what I can do" in answer.text
    assert answer.authorization == "Bearer fake-outbound-token"
    async with teams_app.sessions() as session:
        ref = (await session.exec(select(ConversationReference))).one()
        workspace = (await session.exec(select(Workspace))).one()
        member = (await session.exec(select(Member))).one()
    assert (workspace.platform, workspace.external_id) == ("teams", TENANT)
    assert (ref.kind, ref.user_id, ref.tenant_id, ref.bot_id) == (
        "personal",
        "aad-alice",
        TENANT,
        f"28:{APP_ID}",
    )
    assert ref.service_url == connector.url
    assert ref.reference["conversation"]["id"] == chat
    assert (member.user_id, member.email, member.tz) == (
        "aad-alice",
        "alice@acme.test",
        "Europe/Paris",
    )


def expired(keys: KeyServer, url: str) -> str:
    now = int(time.time())
    return keys.token(url, exp=now - 3600, nbf=now - 7200, iat=now - 7200)


async def test_bad_tokens_are_401_and_change_nothing(
    teams: TeamsHttp, teams_app: Flywheel, key_server: KeyServer, connector: FakeBotConnector
) -> None:
    url = connector.url
    bad: dict[str, Any] = {
        "missing": None,
        "not a jwt": "not-a-token",
        "expired": expired(key_server, url),
        "wrongly signed": key_server.token(url, key=key_server.stranger),
        "unknown key": key_server.token(url, kid="rotated-away"),
        "wrong audience": key_server.token(url, aud="someone-elses-bot"),
        "other issuer": key_server.token(url, iss="https://login.example.test/"),
        "other service url": key_server.token("https://smba.evil.test/"),
        "no service url": key_server.token(url, serviceurl=None),
    }
    for reason, token in bad.items():
        posted = await teams.post(teams.message("help"), token=token)
        assert posted.status == 401, reason
        assert posted.body["error"], reason
    await teams_app.dispatcher.drain()
    assert connector.calls == []
    assert await rows(teams_app) == {
        "workspace": 0,
        "member": 0,
        "conversation_reference": 0,
        "inbound_event": 0,
    }


async def test_malformed_activities_are_400_and_change_nothing(
    teams: TeamsHttp, teams_app: Flywheel, connector: FakeBotConnector
) -> None:
    good = teams.message("help")
    no_tenant = teams.message("help")
    del no_tenant["channelData"]
    no_tenant["conversation"].pop("tenantId")
    two_tenants = teams.message("help")
    two_tenants["channelData"]["tenant"]["id"] = "tenant-globex"
    cases: list[tuple[str, dict[str, Any] | None, bytes | None]] = [
        ("not json", None, b"{nope"),
        ("not an object", None, b"[1, 2]"),
        ("no type", {k: v for k, v in good.items() if k != "type"}, None),
        ("unknown type", {**good, "type": "telepathy"}, None),
        ("no tenant", no_tenant, None),
        ("two tenants", two_tenants, None),
        ("text not text", {**good, "text": {"a": 1}}, None),
        ("value not object", {**good, "value": [1]}, None),
        ("no sender", {k: v for k, v in good.items() if k != "from"}, None),
    ]
    for reason, activity, raw in cases:
        posted = await teams.post(activity or good, raw=raw)
        assert posted.status == 400, reason
        assert "error" in posted.body, reason
    wrong_type = await teams.post(good, content_type="text/plain")
    assert wrong_type.status == 415
    # The signing key is endorsed for Teams only: another channel's activity is not ours.
    assert (await teams.post({**good, "channelId": "slack"})).status == 401
    await teams_app.dispatcher.drain()
    assert connector.calls == []
    assert (await rows(teams_app))["conversation_reference"] == 0


async def test_signing_keys_are_fetched_once_and_off_the_event_loop(
    teams: TeamsHttp, key_server: KeyServer
) -> None:
    JwtTokenExtractor.metadataCache.pop(key_server.metadata_url, None)
    key_server.fetches, key_server.delay = 0, 0.2
    ticks = 0
    stop = asyncio.Event()

    async def heartbeat() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0.005)

    beating = asyncio.create_task(heartbeat())
    try:
        results = await asyncio.gather(*(teams.post(teams.message("help")) for _ in range(5)))
    finally:
        stop.set()
        await beating
        key_server.delay = 0.0
    assert [r.status for r in results] == [200] * 5
    # Metadata and keys, once for five concurrent activities; the loop kept running while
    # the two blocking fetches (0.4 s together) were under way.
    assert key_server.fetches == 2
    assert ticks >= 40


async def test_a_retried_activity_is_handled_once(
    teams: TeamsHttp, teams_app: Flywheel, connector: FakeBotConnector
) -> None:
    activity = teams.message("help")
    assert (await teams.post(activity)).status == 200
    assert (await teams.post(activity)).status == 200
    await teams_app.dispatcher.drain()
    # One answer and one welcome, however often the activity came.
    sent = connector.to(personal(teams.member("alice")))
    assert sorted("Welcome to Flywheel" in c.text for c in sent) == [False, True]


async def test_anonymous_mode_takes_unsigned_activities_and_says_so(
    migrated_url: str,
    key_server: KeyServer,
    connector: FakeBotConnector,
    clock: Any,
    capsys: Any,
) -> None:
    settings = teams_settings(
        migrated_url,
        key_server,
        microsoft_app_id=None,
        microsoft_app_password=None,
        flywheel_teams_anonymous=True,
    )
    app = build(settings, clock=clock)
    client: TestClient[Any, Any] = TestClient(TestServer(app.web_app()))
    await client.start_server()
    try:
        assert "teams.ANONYMOUS_MODE" in capsys.readouterr().out
        unsigned = TeamsHttp(client, connector, key_server, clock)
        assert (await unsigned.post(unsigned.message("help"), token=None)).status == 200
        async with app.sessions() as session:
            assert len((await session.exec(select(ConversationReference))).all()) == 1
    finally:
        await client.close()
        await app.close()
