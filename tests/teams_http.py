"""Authenticated Bot Framework activities against the real `POST /api/messages` endpoint.

Tokens are RS256 JWTs signed with a key of the test's own, published by an OpenID metadata
and JWKS server running in a thread of its own (the SDK fetches keys with blocking calls).
Activities are shaped like the ones Teams sends; the bot's answers land at the fake Bot
Connector named by their `serviceUrl`.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer
from botframework.connector.auth import AppCredentials, PasswordServiceClientCredentialFactory
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from bot.app import Flywheel, build
from bot.settings import Settings, load_settings
from testing.fakes.bot_connector import OUTBOUND_TOKEN, FakeBotConnector, FakeMember
from testing.fakes.clock import FrozenClock
from tests.conftest import SECRET_KEY

APP_ID = "00000000-0000-0000-0000-00000000f1y"
APP_PASSWORD = "test-app-password"
ISSUER = "https://api.botframework.test"
BOT_ID = f"28:{APP_ID}"
TENANT = "tenant-acme"
OTHER_TENANT = "tenant-globex"
KEY_ID = "test-key-1"
PATH = "/api/messages"
TUESDAY_14 = datetime(2026, 11, 24, 14, 0, tzinfo=UTC)  # 15:00 Paris


FIXTURES = Path(__file__).parent / "fixtures" / "teams"


def fixture(name: str) -> dict[str, Any]:
    """A fresh copy of a recorded-style activity (`tests/fixtures/teams/activity_<name>.json`)."""
    loaded: dict[str, Any] = json.loads(
        (FIXTURES / f"activity_{name}.json").read_text(encoding="utf-8")
    )
    return loaded


class KeyServer:
    """OpenID metadata and a JWKS, served from a thread like the real endpoints."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        jwk.update(kid=KEY_ID, use="sig", endorsements=["msteams"])
        self.jwks = {"keys": [jwk]}
        self.fetches = 0
        # Seconds each answer takes, as a slow identity provider would.
        self.delay = 0.0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.fetches += 1
                time.sleep(server.delay)
                if self.path == "/openid":
                    body = {"issuer": ISSUER, "jwks_uri": f"{server.url}/keys"}
                elif self.path == "/keys":
                    body = server.jwks
                else:
                    self.send_error(404)
                    return
                raw = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def metadata_url(self) -> str:
        return f"{self.url}/openid"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def token(self, service_url: str, *, key: Any = None, kid: str = KEY_ID, **claims: Any) -> str:
        now = int(time.time())
        payload = {
            "iss": ISSUER,
            "aud": APP_ID,
            "serviceurl": service_url,
            "nbf": now - 60,
            "iat": now - 60,
            "exp": now + 3600,
            **claims,
        }
        payload = {k: v for k, v in payload.items() if v is not None}
        return jwt.encode(payload, key or self.key, algorithm="RS256", headers={"kid": kid})


class FakeCredentials(AppCredentials):  # type: ignore[misc]
    """Outbound credentials that never talk to Entra ID: the fake connector's token."""

    def get_access_token(self, force_refresh: bool = False) -> str:
        return OUTBOUND_TOKEN


class FakeCredentialsFactory(PasswordServiceClientCredentialFactory):  # type: ignore[misc]
    """Checks app ids like the real factory; makes credentials without Entra ID."""

    async def create_credentials(
        self, app_id: str, oauth_scope: str, login_endpoint: str, validate_authority: bool
    ) -> AppCredentials:
        if not await self.is_valid_app_id(app_id):
            raise PermissionError(f"unknown app id {app_id}")
        return FakeCredentials(app_id=app_id, oauth_scope=oauth_scope)


def credentials_factory() -> FakeCredentialsFactory:
    return FakeCredentialsFactory(APP_ID, APP_PASSWORD)


@dataclass
class Posted:
    status: int
    body: Any


def personal(member: FakeMember) -> str:
    """The 1:1 chat's id, the same the fake connector answers for a created chat."""
    return f"a:chat-{member.aad}"


class TeamsHttp:
    """Sends what Teams would send, signed; reads what the fake connector received."""

    def __init__(
        self,
        client: TestClient[Any, Any],
        connector: FakeBotConnector,
        keys: KeyServer,
        clock: FrozenClock,
    ) -> None:
        self.client = client
        self.connector = connector
        self.keys = keys
        self.clock = clock
        self._ids: Iterator[int] = itertools.count(1)

    # -- transport ------------------------------------------------------------------------
    async def post(
        self,
        activity: dict[str, Any],
        *,
        token: str | None = "",
        raw: bytes | None = None,
        content_type: str = "application/json",
    ) -> Posted:
        if token == "":
            token = self.keys.token(str(activity.get("serviceUrl", self.connector.url)))
        headers = {"Content-Type": content_type}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        response: ClientResponse = await self.client.post(
            PATH, data=raw if raw is not None else json.dumps(activity).encode(), headers=headers
        )
        text = await response.text()
        try:
            body = json.loads(text) if text else None
        except ValueError:
            body = text
        return Posted(response.status, body)

    # -- activities ----------------------------------------------------------------------
    def member(self, user: str) -> FakeMember:
        return self.connector.members[f"29:{user}"]

    def base(
        self,
        kind: str,
        user: str,
        *,
        conversation: str | None = None,
        conversation_type: str = "personal",
        tenant: str = TENANT,
        team: dict[str, str] | None = None,
        channel: dict[str, str] | None = None,
        tz: str | None = "Europe/Paris",
    ) -> dict[str, Any]:
        member = self.member(user)
        channel_data: dict[str, Any] = {"tenant": {"id": tenant}}
        if team:
            channel_data["team"] = team
        if channel:
            channel_data["channel"] = channel
        activity: dict[str, Any] = {
            "type": kind,
            "id": f"act-{next(self._ids)}",
            "timestamp": self.clock.now().isoformat(),
            "serviceUrl": self.connector.url,
            "channelId": "msteams",
            "from": {"id": member.id, "name": member.name, "aadObjectId": member.aad},
            "conversation": {
                "id": conversation or personal(member),
                "conversationType": conversation_type,
                "tenantId": tenant,
            },
            "recipient": {"id": BOT_ID, "name": "Flywheel"},
            "channelData": channel_data,
        }
        if tz:
            activity["localTimezone"] = tz
        return activity

    def message(self, text: str, user: str = "alice", **kwargs: Any) -> dict[str, Any]:
        activity = self.base("message", user, **kwargs)
        activity["text"] = text
        return activity

    def channel_message(
        self,
        text: str,
        user: str = "alice",
        *,
        channel: str = "19:sales@thread.tacv2",
        name: str = "sales",
    ) -> dict[str, Any]:
        return self.message(
            f"<at>Flywheel</at> {text}",
            user,
            conversation=f"{channel};messageid=1763892000123",
            conversation_type="channel",
            team={"id": "19:team@thread.tacv2", "name": "Acme"},
            channel={"id": channel, "name": name},
        )

    def submit(
        self,
        data: dict[str, Any],
        user: str = "alice",
        *,
        reply_to: str | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        activity = self.base("message", user, **kwargs)
        activity["value"] = data
        if reply_to:
            activity["replyToId"] = reply_to
        return activity

    def bot_added_to_team(
        self,
        user: str = "admin",
        *,
        channel: str = "19:general@thread.tacv2",
        name: str = "General",
    ) -> dict[str, Any]:
        activity = self.base(
            "conversationUpdate",
            user,
            conversation=channel,
            conversation_type="channel",
            team={"id": "19:team@thread.tacv2", "name": "Acme"},
            channel={"id": channel, "name": name},
        )
        activity["membersAdded"] = [{"id": BOT_ID}]
        activity["channelData"]["eventType"] = "teamMemberAdded"
        return activity

    def fetch_task(
        self, text: str, user: str = "alice", *, author: str = "bob", link: str | None = None
    ) -> dict[str, Any]:
        activity = self.base(
            "invoke",
            user,
            conversation="19:sales@thread.tacv2",
            conversation_type="channel",
            team={"id": "19:team@thread.tacv2", "name": "Acme"},
        )
        activity["name"] = "composeExtension/fetchTask"
        author_member = self.member(author)
        activity["value"] = {
            "commandId": "request_from_message",
            "commandContext": "message",
            "messagePayload": {
                "id": "1763892000999",
                "body": {"contentType": "html", "content": f"<p>{text}</p>"},
                "from": {"user": {"id": author_member.aad, "displayName": author_member.name}},
                "linkToMessage": link
                or "https://teams.microsoft.com/l/message/19:sales@thread.tacv2/1763892000999",
            },
        }
        return activity

    def submit_action(self, data: dict[str, Any], user: str = "alice") -> dict[str, Any]:
        activity = self.fetch_task("", user)
        activity["name"] = "composeExtension/submitAction"
        activity["value"] = {
            "commandId": "request_from_message",
            "commandContext": "message",
            "data": data,
        }
        return activity

    # -- cards ---------------------------------------------------------------------------
    def last(self, conversation: str, *ops: str) -> Any:
        calls = self.connector.to(conversation, *ops)
        assert calls, f"nothing was sent to {conversation}"
        return calls[-1]

    def form_call(self, conversation: str) -> Any:
        """The last form card sent (or updated) in a conversation."""
        for call in reversed(self.connector.to(conversation, "send", "reply", "update")):
            if call.body.get("attachments") and submit_data(call.card).get("form"):
                return call
        raise AssertionError(f"no form card in {conversation}")


def inputs(node: Any) -> list[dict[str, Any]]:
    """Every input element of a card, in order."""
    if isinstance(node, dict):
        found = [node] if str(node.get("type", "")).startswith("Input.") else []
        for value in node.values():
            found += inputs(value)
        return found
    if isinstance(node, list):
        return [i for item in node for i in inputs(item)]
    return []


def actions(node: Any) -> list[dict[str, Any]]:
    """Every Action.Submit of a card, in order."""
    if isinstance(node, dict):
        found = [node] if node.get("type") == "Action.Submit" else []
        for value in node.values():
            found += actions(value)
        return found
    if isinstance(node, list):
        return [a for item in node for a in actions(item)]
    return []


def open_urls(node: Any) -> list[dict[str, Any]]:
    """Every Action.OpenUrl of a card, in order."""
    if isinstance(node, dict):
        found = [node] if node.get("type") == "Action.OpenUrl" else []
        for value in node.values():
            found += open_urls(value)
        return found
    if isinstance(node, list):
        return [a for item in node for a in open_urls(item)]
    return []


def submit_data(card: dict[str, Any]) -> dict[str, Any]:
    """The data of the card's form submit action, or {}."""
    for action in actions(card):
        if "form" in action.get("data", {}):
            return dict(action["data"])
    return {}


def fill(card: dict[str, Any], values: dict[str, Any] | None = None) -> dict[str, Any]:
    """What Teams sends when the form is submitted: the action's data plus every input's
    value (shown values unless `values` sets them by field name; lists join with commas)."""
    values = values or {}
    data = submit_data(card)
    for element in inputs(card):
        name = element["id"].split(":", 1)[1]
        value = values.get(name, element.get("value", ""))
        data[element["id"]] = ",".join(value) if isinstance(value, (list, tuple)) else (value or "")
    return data


def button(card: dict[str, Any], action: str) -> dict[str, Any]:
    """The data of the button for `action`."""
    for found in actions(card):
        if found.get("data", {}).get("action") == action:
            return dict(found["data"])
    raise AssertionError(f"no {action} button in the card")


# -- fixtures (imported by the Teams test modules) -----------------------------------------


@pytest.fixture(scope="session")
def key_server() -> Iterator[KeyServer]:
    server = KeyServer()
    yield server
    server.close()


@pytest.fixture
async def connector() -> AsyncIterator[FakeBotConnector]:
    fake = FakeBotConnector()
    fake.add_member("alice", "Alice", "alice@acme.test", TENANT)
    fake.add_member("bob", "Bob", "bob@acme.test", TENANT)
    fake.add_member("pia", "Pia", "pia@acme.test", TENANT)
    fake.add_member("admin", "Ada", "ada@acme.test", TENANT)
    fake.add_member("mallory", "Mallory", "mallory@globex.test", OTHER_TENANT)
    await fake.start()
    yield fake
    await fake.close()


def teams_settings(database_url: str, keys: KeyServer, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url,
        "microsoft_app_id": APP_ID,
        "microsoft_app_password": APP_PASSWORD,
        "microsoft_openid_metadata_url": keys.metadata_url,
        "microsoft_token_issuer": ISSUER,
        "flywheel_secret_key": SECRET_KEY,
        "flywheel_outbox_rate": 1000.0,
        "flywheel_admins": "aad-admin",
        "_env_file": None,
    }
    values.update(overrides)
    return load_settings(**values)


@pytest.fixture
async def teams_app(
    migrated_url: str, key_server: KeyServer, clock: FrozenClock
) -> AsyncIterator[Flywheel]:
    """The whole app with Teams configured, sending to whatever serviceUrl activities name."""
    app = build(
        teams_settings(migrated_url, key_server),
        clock=clock,
        teams_credentials=credentials_factory(),
    )
    yield app
    await app.close()


@pytest.fixture
async def teams(
    teams_app: Flywheel, connector: FakeBotConnector, key_server: KeyServer, clock: FrozenClock
) -> AsyncIterator[TeamsHttp]:
    clock.set(TUESDAY_14)
    client: TestClient[Any, Any] = TestClient(TestServer(teams_app.web_app()))
    await client.start_server()
    yield TeamsHttp(client, connector, key_server, clock)
    await client.close()
