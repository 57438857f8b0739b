"""Properly signed Slack requests against the real `/slack/events` endpoint.

Bodies come from the recorded-style payloads in `tests/fixtures/slack/`, encoded the way
Slack sends them: slash commands form-encoded, events as JSON, interactivity as a
form-encoded `payload=` field. Requests are signed with the signing secret at the frozen
clock's time, as Slack would sign them at that moment.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import itertools
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from testing.fakes.clock import FrozenClock
from testing.fakes.slack_api import FakeSlack
from tests.conftest import SIGNING_SECRET

FIXTURES = Path(__file__).parent / "fixtures" / "slack"
PATH = "/slack/events"
_MISSING: Any = object()


def fixture(name: str) -> dict[str, Any]:
    """A fresh copy of a recorded payload (`tests/fixtures/slack/<name>.json`)."""
    return copy.deepcopy(_cached(name))


_loaded: dict[str, dict[str, Any]] = {}


def _cached(name: str) -> dict[str, Any]:
    if name not in _loaded:
        _loaded[name] = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    return _loaded[name]


def signature(body: bytes, timestamp: int, secret: str = SIGNING_SECRET) -> str:
    """Slack's v0 request signature."""
    base = b"v0:" + str(timestamp).encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


class SlackHttp:
    """Sends what Slack would send; builds payloads from fixtures."""

    def __init__(self, client: TestClient[Any, Any], fake: FakeSlack, clock: FrozenClock) -> None:
        self.client = client
        self.fake = fake
        self.clock = clock
        self._ids = itertools.count(1)

    # -- transport ----------------------------------------------------------------------
    def headers(
        self,
        body: bytes,
        content_type: str,
        *,
        timestamp: int | None = None,
        secret: str = SIGNING_SECRET,
    ) -> dict[str, str]:
        when = timestamp if timestamp is not None else int(self.clock.now().timestamp())
        return {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": str(when),
            "X-Slack-Signature": signature(body, when, secret),
        }

    async def post(
        self,
        body: bytes,
        content_type: str,
        *,
        signed: bool = True,
        timestamp: int | None = None,
        secret: str = SIGNING_SECRET,
        extra: dict[str, str] | None = None,
    ) -> ClientResponse:
        headers = (
            self.headers(body, content_type, timestamp=timestamp, secret=secret)
            if signed
            else {"Content-Type": content_type}
        )
        headers.update(extra or {})
        return await self.client.post(PATH, data=body, headers=headers)

    @staticmethod
    def form(fields: dict[str, Any]) -> bytes:
        return urlencode(fields).encode()

    async def command(self, text: str, *, user: str = "UALICE", **fields: Any) -> ClientResponse:
        """`/flywheel <text>` by `user`, form-encoded."""
        body = self.slash_command(text, user=user, **fields)
        return await self.post(self.form(body), "application/x-www-form-urlencoded")

    async def event(
        self, body: dict[str, Any], *, retry: int | None = None, **kwargs: Any
    ) -> ClientResponse:
        """An Events API delivery as JSON; `retry` adds Slack's retry headers."""
        extra = (
            {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"}
            if retry is not None
            else None
        )
        raw = json.dumps(body).encode()
        return await self.post(raw, "application/json", extra=extra, **kwargs)

    async def interact(self, payload: dict[str, Any], **kwargs: Any) -> ClientResponse:
        """An interactivity request: a form with the JSON `payload` field."""
        raw = self.form({"payload": json.dumps(payload)})
        return await self.post(raw, "application/x-www-form-urlencoded", **kwargs)

    # -- payloads -----------------------------------------------------------------------
    def trigger(self) -> str:
        return f"13345224609.738474920.{next(self._ids):031x}"

    def slash_command(self, text: str, *, user: str = "UALICE", **fields: Any) -> dict[str, Any]:
        body = fixture("slash_command")
        body.update(
            user_id=user,
            user_name=self.fake.users[user].name if user in self.fake.users else user.lower(),
            text=text,
            trigger_id=self.trigger(),
            response_url=self.fake.response_url("command"),
        )
        body.update(fields)
        return body

    def mention(
        self,
        text: str,
        *,
        user: str = "UALICE",
        channel: str = "C0SALES",
        ts: str = "1763892000.000100",
        thread_ts: str | None = None,
        event_id: str | None = None,
    ) -> dict[str, Any]:
        body = fixture("event_app_mention")
        body["event"].update(
            text=f"<@{self.fake.bot_user_id}> {text}", user=user, channel=channel, ts=ts
        )
        if thread_ts:
            body["event"]["thread_ts"] = thread_ts
        body["event_id"] = event_id or f"Ev{next(self._ids):08d}"
        return body

    def home_opened(self, *, user: str = "UALICE", tab: str = "home") -> dict[str, Any]:
        body = fixture("event_app_home_opened")
        body["event"].update(user=user, tab=tab)
        body["event_id"] = f"Ev{next(self._ids):08d}"
        return body

    def block_action(
        self,
        action_id: str,
        value: str = "",
        *,
        user: str = "UALICE",
        response_url: str | None = _MISSING,
        home: bool = False,
    ) -> dict[str, Any]:
        """A button press in a message (with a response URL) or in the home tab."""
        payload = fixture("block_actions_home" if home else "block_actions_message")
        payload["user"].update(id=user, username=self.fake.users[user].name)
        payload["trigger_id"] = self.trigger()
        payload["actions"][0].update(action_id=action_id, value=value)
        if not value:
            del payload["actions"][0]["value"]
        if not home:
            url = self.fake.response_url("action") if response_url is _MISSING else response_url
            if url is None:
                del payload["response_url"]
            else:
                payload["response_url"] = url
        return payload

    def global_shortcut(self, *, user: str = "UALICE") -> dict[str, Any]:
        payload = fixture("shortcut_global")
        payload["user"].update(id=user, username=self.fake.users[user].name)
        payload["trigger_id"] = self.trigger()
        return payload

    def message_shortcut(
        self, text: str | None = None, *, user: str = "UALICE", author: str = "UBOB"
    ) -> dict[str, Any]:
        payload = fixture("shortcut_message")
        payload["user"].update(id=user, username=self.fake.users[user].name)
        payload["trigger_id"] = self.trigger()
        payload["response_url"] = self.fake.response_url("shortcut")
        if text is not None:
            payload["message"]["text"] = text
        payload["message"]["user"] = author
        return payload

    def submission(
        self, view: dict[str, Any], values: dict[str, Any] | None = None, *, user: str = "UALICE"
    ) -> dict[str, Any]:
        """Submit a view the bot opened, as Slack would: its inputs start at their initial
        values; `values` sets fields by block id (None clears one)."""
        payload = fixture("view_submission")
        payload["user"].update(id=user, username=self.fake.users[user].name)
        payload["trigger_id"] = self.trigger()
        payload["view"].update(
            blocks=view["blocks"],
            callback_id=view["callback_id"],
            private_metadata=view.get("private_metadata", ""),
            title=view["title"],
            state={"values": state_values(view, values or {})},
        )
        return payload

    # -- what the fake saw --------------------------------------------------------------
    def opened_view(self, index: int = -1) -> dict[str, Any]:
        """The view of a `views.open` call the fake recorded."""
        calls = self.fake.calls_to("views.open")
        assert calls, "no views.open call was made"
        view: dict[str, Any] = calls[index].args["view"]
        return view


def state_values(view: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """`view.state.values` for the input blocks of `view`."""
    state: dict[str, Any] = {}
    for block in view["blocks"]:
        if block["type"] != "input":
            continue
        element = block["element"]
        given = values.get(block["block_id"], _MISSING)
        state[block["block_id"]] = {element["action_id"]: _element_state(element, given)}
    return state


def _element_state(element: dict[str, Any], given: Any) -> dict[str, Any]:
    kind = element["type"]
    out: dict[str, Any] = {"type": kind}
    if kind == "plain_text_input":
        out["value"] = (element.get("initial_value") if given is _MISSING else given) or None
    elif kind == "static_select":
        value = (element.get("initial_option") or {}).get("value") if given is _MISSING else given
        chosen = [o for o in element["options"] if o["value"] == value]
        out["selected_option"] = chosen[0] if chosen else None
    elif kind == "multi_static_select":
        wanted = (
            [o["value"] for o in element.get("initial_options", [])] if given is _MISSING else given
        )
        out["selected_options"] = [o for o in element["options"] if o["value"] in wanted]
    elif kind == "users_select":
        out["selected_user"] = element.get("initial_user") if given is _MISSING else given
    elif kind == "multi_users_select":
        out["selected_users"] = (
            element.get("initial_users", []) if given is _MISSING else list(given)
        )
    elif kind == "conversations_select":
        out["selected_conversation"] = (
            element.get("initial_conversation") if given is _MISSING else given
        )
    elif kind == "multi_conversations_select":
        out["selected_conversations"] = (
            element.get("initial_conversations", []) if given is _MISSING else list(given)
        )
    elif kind == "datepicker":
        out["selected_date"] = element.get("initial_date") if given is _MISSING else given
    else:
        raise AssertionError(f"no state shape for {kind}")
    return out
