"""Property tests against the real HTTP edges: whatever arrives, no 5xx and no error log.

Hypothesis generates bodies, headers and strings for `/slack/events` (unsigned, and
properly signed from mutated recorded payloads), `/api/messages` (without a token, with a
bad one, and with a valid one on mutated activities) and the web routes `/r/`, `/s/`,
`/p/`, `/c/` and `/d/`. Every answer must be below 500, no error-level line may be logged,
and a request that is not authenticated must write nothing.

`make test` runs a bounded, repeatable number of examples (the `default` profile in
conftest.py); `HYPOTHESIS_PROFILE=long make test PYTEST_ARGS=tests/test_fuzz_http.py` runs
a long, randomised search.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import given
from hypothesis import strategies as st

from bot.app import Flywheel, build
from testing.fakes.bot_connector import FakeBotConnector
from testing.fakes.clock import FrozenClock
from testing.fakes.slack_api import FakeSlack
from tests.conftest import BOT_TOKEN, SIGNING_SECRET
from tests.http_edges import rows, watching
from tests.slack_http import SlackHttp, fixture
from tests.teams_http import (
    TUESDAY_14,
    KeyServer,
    TeamsHttp,
    connector,
    credentials_factory,
    key_server,
    teams_settings,
)

__all__ = ["connector", "key_server"]

# -- strategies ---------------------------------------------------------------------------

# Strings people (or attackers) type: anything encodable, plus the ones that broke things.
SPECIAL = [
    "\x00",
    "a\x00b",
    "\r\n",
    "\x1b[31m",
    "\x85\u2028",
    "\ue000\uf8ff",
    "<!channel>",
    "<@U0ADMIN>",
    "<https://evil.example|Reset>",
    "&amp;&lt;",
    "%00",
    "9" * 25,
    str(2**31),
    str(2**63),
    str(2**64),
    "-1",
    "0",
    "00001",
    "1e400",
    "１２",
    "١٢",
    "1_000",
    " 7 ",
    "12:34:56",
    "NaN",
    "null",
    "{}",
    "[]",
    "",
]
texts = st.one_of(st.text(max_size=40), st.sampled_from(SPECIAL))
ids = st.one_of(
    st.integers(min_value=-(2**80), max_value=2**80).map(str),
    st.sampled_from(SPECIAL),
    st.text(alphabet="0123456789:-+ ", max_size=30),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=False, allow_infinity=False),
    texts,
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(texts, inner, max_size=4)),
    max_leaves=12,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found: list[tuple[Any, ...]] = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


@st.composite
def mutated(draw: st.DrawFn, base: dict[str, Any], *, keep: tuple[str, ...] = ()) -> Any:
    """`base` with a few values replaced by other JSON, hostile strings or ids, or removed.
    Top-level keys in `keep` are left alone."""
    payload = json.loads(json.dumps(base))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        paths = [p for p in _paths(payload) if p[0] not in keep]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent: Any = payload
        for step in path[:-1]:
            parent = parent[step]
        operation = draw(st.sampled_from(["replace", "text", "id", "delete"]))
        if operation == "delete":
            del parent[path[-1]]
        else:
            strategy = {"replace": json_values, "text": texts, "id": ids}[operation]
            parent[path[-1]] = draw(strategy)
    return payload


def printable(text: str) -> str:
    """What an HTTP client can put in a header value."""
    return "".join(c for c in text if " " <= c <= "~").strip()


def _deep(depth: int) -> bytes:
    return ("[" * depth + "]" * depth).encode()


def _deep_activity(depth: int) -> bytes:
    inner = "{}"
    for _ in range(depth):
        inner = '{"a":' + inner + "}"
    return ('{"type":"message","channelData":' + inner + "}").encode()


# -- the app under test -------------------------------------------------------------------


class Edge:
    """One app serving Slack, Teams and the web routes, and ways to talk to it."""

    def __init__(
        self, flywheel: Flywheel, client: TestClient[Any, Any], slack: SlackHttp, teams: TeamsHttp
    ) -> None:
        self.flywheel = flywheel
        self.client = client
        self.slack = slack
        self.teams = teams

    async def check(
        self, send: Callable[[], Awaitable[ClientResponse | int]], *, authenticated: bool
    ) -> int:
        """Send once; the answer is below 500, nothing is logged at error level, and an
        unauthenticated request writes nothing. Returns the status."""
        before = None if authenticated else await rows(self.flywheel)
        with watching() as logs:
            answer = await send()
            status = answer if isinstance(answer, int) else answer.status
            if not isinstance(answer, int):
                await answer.read()
        assert status < 500, status
        assert logs.lines == []
        if before is not None:
            assert await rows(self.flywheel) == before
        return status


@pytest.fixture
async def edge(
    migrated_url: str,
    fake_slack: FakeSlack,
    key_server: KeyServer,
    connector: FakeBotConnector,
    clock: FrozenClock,
) -> AsyncIterator[Edge]:
    clock.set(TUESDAY_14)
    settings = teams_settings(
        migrated_url,
        key_server,
        slack_bot_token=BOT_TOKEN,
        slack_signing_secret=SIGNING_SECRET,
        slack_api_url=fake_slack.url,
    )
    flywheel = build(settings, clock=clock, teams_credentials=credentials_factory())
    client: TestClient[Any, Any] = TestClient(TestServer(flywheel.web_app()))
    await client.start_server()
    yield Edge(
        flywheel,
        client,
        SlackHttp(client, fake_slack, clock),
        TeamsHttp(client, connector, key_server, clock),
    )
    await client.close()
    await flywheel.close()


CONTENT_TYPES = [
    "application/json",
    "application/x-www-form-urlencoded",
    "text/plain",
    "multipart/form-data; boundary=x",
    "application/json; charset=latin-1",
    "",
]
bodies = st.one_of(
    st.binary(max_size=200),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.integers(min_value=33, max_value=5000).map(_deep),
)

# -- Slack --------------------------------------------------------------------------------


@given(
    body=bodies,
    content_type=st.sampled_from(CONTENT_TYPES),
    timestamp=st.one_of(st.none(), texts, st.integers(-(2**70), 2**70).map(str)),
    signature_header=st.one_of(st.none(), texts, st.just("v0=" + "0" * 64)),
)
async def test_slack_unsigned_bodies_are_refused_and_write_nothing(
    edge: Edge,
    body: bytes,
    content_type: str,
    timestamp: str | None,
    signature_header: str | None,
) -> None:
    headers = {"Content-Type": content_type}
    if timestamp is not None:
        headers["X-Slack-Request-Timestamp"] = printable(timestamp)
    if signature_header is not None:
        headers["X-Slack-Signature"] = printable(signature_header)
    status = await edge.check(
        lambda: edge.client.post("/slack/events", data=body, headers=headers),
        authenticated=False,
    )
    assert status == 401


@given(body=bodies, content_type=st.sampled_from(CONTENT_TYPES))
async def test_slack_signed_bodies_of_any_shape_get_no_5xx(
    edge: Edge, body: bytes, content_type: str
) -> None:
    await edge.check(lambda: edge.slack.post(body, content_type), authenticated=True)


SLACK_JSON = ["event_app_mention", "event_app_home_opened", "url_verification"]
SLACK_PAYLOADS = [
    "block_actions_message",
    "block_actions_home",
    "view_submission",
    "shortcut_global",
    "shortcut_message",
]


@given(data=st.data(), name=st.sampled_from(SLACK_JSON))
async def test_slack_signed_events_mutated_get_no_5xx(edge: Edge, data: Any, name: str) -> None:
    event = data.draw(mutated(fixture(name)))
    await edge.check(lambda: edge.slack.event(event), authenticated=True)


@given(data=st.data(), name=st.sampled_from(SLACK_PAYLOADS))
async def test_slack_signed_interactions_mutated_get_no_5xx(
    edge: Edge, data: Any, name: str
) -> None:
    payload = data.draw(mutated(fixture(name)))
    await edge.check(lambda: edge.slack.interact(payload), authenticated=True)


@given(data=st.data())
async def test_slack_buttons_and_forms_with_any_value_get_no_5xx(edge: Edge, data: Any) -> None:
    router = edge.flywheel.router
    if data.draw(st.booleans()):
        action = data.draw(st.sampled_from(sorted(router.actions)))
        payload = edge.slack.block_action(action, data.draw(ids), home=data.draw(st.booleans()))
    else:
        payload = fixture("view_submission")
        payload["view"]["callback_id"] = data.draw(st.sampled_from(sorted(router.forms)))
        payload["view"]["private_metadata"] = data.draw(ids)
        payload["view"]["state"]["values"] = {
            data.draw(st.sampled_from(["topic", "post", "similar", "comment", "capacity"])): {
                "input": {"type": "plain_text_input", "value": data.draw(texts)}
            }
        }
    await edge.check(lambda: edge.slack.interact(payload), authenticated=True)


@given(text=texts, user=st.sampled_from(["UALICE", "UADMIN", "UNOBODY"]))
async def test_slack_commands_with_any_text_get_no_5xx(edge: Edge, text: str, user: str) -> None:
    await edge.check(lambda: edge.slack.command(text, user=user), authenticated=True)


# -- Teams --------------------------------------------------------------------------------


@given(
    body=bodies,
    content_type=st.sampled_from(CONTENT_TYPES),
    token=st.sampled_from(["none", "garbage", "stranger", "expired", "wrong-audience"]),
)
async def test_teams_unauthenticated_bodies_are_refused_and_write_nothing(
    edge: Edge, body: bytes, content_type: str, token: str
) -> None:
    keys = edge.teams.keys
    url = edge.teams.connector.url
    bearer = {
        "none": None,
        "garbage": "not-a-jwt",
        "stranger": keys.token(url, key=keys.stranger),
        "expired": keys.token(url, exp=1, nbf=0, iat=0),
        "wrong-audience": keys.token(url, aud="someone-else"),
    }[token]
    headers = {"Content-Type": content_type}
    if bearer is not None:
        headers["Authorization"] = f"Bearer {bearer}"
    status = await edge.check(
        lambda: edge.client.post("/api/messages", data=body, headers=headers),
        authenticated=False,
    )
    assert 400 <= status < 500


@given(depth=st.integers(min_value=33, max_value=3000))
async def test_teams_deep_json_is_400_before_authentication(edge: Edge, depth: int) -> None:
    status = await edge.check(
        lambda: edge.client.post(
            "/api/messages",
            data=_deep_activity(depth),
            headers={"Content-Type": "application/json"},
        ),
        authenticated=False,
    )
    assert status == 400


ACTIVITIES = [
    "message",
    "channel_message",
    "submit",
    "form",
    "installed",
    "fetch_task",
    "submit_action",
]


def _activities(teams: TeamsHttp) -> dict[str, dict[str, Any]]:
    return {
        "message": teams.message("request migrations"),
        "channel_message": teams.channel_message("help"),
        "submit": teams.submit({"action": "request_vote", "value": "1"}),
        "form": teams.submit({"form": "request_form", "state": "", "field:topic": "x"}),
        "installed": teams.bot_added_to_team(),
        "fetch_task": teams.fetch_task("Oracle to PostgreSQL"),
        "submit_action": teams.submit_action({"form": "request_form", "state": ""}),
    }


# The activity's addressing stays as Teams set it: the token names the service URL, and the
# bot answers there.
ADDRESSING = ("serviceUrl", "recipient")


@given(data=st.data(), name=st.sampled_from(ACTIVITIES))
async def test_teams_authenticated_activities_mutated_get_no_5xx(
    edge: Edge, data: Any, name: str
) -> None:
    activity = data.draw(mutated(_activities(edge.teams)[name], keep=ADDRESSING))
    await edge.check(lambda: _status(edge.teams.post(activity)), authenticated=True)


@given(data=st.data())
async def test_teams_buttons_and_forms_with_any_value_get_no_5xx(edge: Edge, data: Any) -> None:
    router = edge.flywheel.router
    if data.draw(st.booleans()):
        submit = {
            "action": data.draw(st.sampled_from(sorted(router.actions))),
            "value": data.draw(ids),
        }
    else:
        submit = {
            "form": data.draw(st.sampled_from(sorted(router.forms))),
            "state": data.draw(ids),
            data.draw(st.sampled_from(["field:topic", "field:post", "field:comment"])): data.draw(
                texts
            ),
        }
    activity = edge.teams.submit(submit)
    await edge.check(lambda: _status(edge.teams.post(activity)), authenticated=True)


async def _status(posting: Awaitable[Any]) -> int:
    return int((await posting).status)


# -- web routes ---------------------------------------------------------------------------

ROUTES = ["/r/{}", "/s/{}", "/p/{}", "/c/{}.png", "/d/{}"]
codes = st.one_of(
    st.text(max_size=40), st.text(alphabet="abcdefghijkABCDEF0123456789-_", max_size=30)
)


@given(
    route=st.sampled_from(ROUTES),
    code=codes,
    method=st.sampled_from(["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"]),
    user_agent=texts,
    forwarded=texts,
)
async def test_web_routes_answer_anything_without_5xx_and_write_nothing(
    edge: Edge, route: str, code: str, method: str, user_agent: str, forwarded: str
) -> None:
    path = route.format(quote(code, safe="")) if code else route.format("x")
    headers = {
        "User-Agent": printable(user_agent),
        "X-Forwarded-For": printable(forwarded),
    }
    await edge.check(
        lambda: edge.client.request(method, path, headers=headers), authenticated=False
    )
