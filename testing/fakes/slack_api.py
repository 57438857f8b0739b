"""A fake Slack Web API: an aiohttp server that records every call and misbehaves on request.

The real `slack_sdk` client talks to it through `SLACK_API_URL` (`base_url`). It also
serves `response_url`s (`/response/<id>`), which Slack hands out with interactions.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer


@dataclass
class Call:
    method: str
    args: dict[str, Any]
    token: str | None
    at: float
    # The client's address and port: calls on one kept-alive connection share it.
    peer: tuple[str, int] | None = None


@dataclass
class Fault:
    status: int
    retry_after: int | None = None
    delay: float = 0.0
    error: str | None = None
    # A slow answer rather than a failure: wait `delay`, then answer as usual.
    answer: bool = False


@dataclass
class FakeSlackUser:
    id: str
    name: str
    email: str | None = None
    tz: str = "Europe/Paris"
    is_admin: bool = False
    is_owner: bool = False
    is_bot: bool = False


@dataclass
class FakeSlack:
    """State of the fake: calls seen, users known, faults queued."""

    team_id: str = "T0001"
    team_name: str = "Acme"
    # Enterprise Grid: the organisation, and whether the token is an org-wide install's.
    enterprise_id: str | None = None
    org_wide: bool = False
    bot_user_id: str = "UBOT"
    calls: list[Call] = field(default_factory=list)
    users: dict[str, FakeSlackUser] = field(default_factory=dict)
    faults: dict[str, deque[Fault]] = field(default_factory=dict)
    # Calls per second allowed for message methods; beyond it: 429 with Retry-After.
    rate_limit: float | None = None
    # Requests received and not yet answered (a send "in flight").
    in_flight: int = 0
    # Channels that refuse posts, with Slack's error (`not_in_channel`, `is_archived`…).
    refusing: dict[str, str] = field(default_factory=dict)
    # Every Web API call answers this status (503: Slack down behind its load balancers).
    unavailable: int | None = None
    _window: deque[float] = field(default_factory=deque)
    _ts: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    server: TestServer | None = None
    _port: int | None = None

    # -- set-up -------------------------------------------------------------------------
    def add_user(self, user_id: str, name: str, **profile: Any) -> FakeSlackUser:
        user = FakeSlackUser(user_id, name, **profile)
        self.users[user_id] = user
        return user

    def fail(
        self,
        method: str,
        status: int = 500,
        *,
        times: int = 1,
        retry_after: int | None = None,
        delay: float = 0.0,
        error: str | None = None,
    ) -> None:
        """Answer the next `times` calls of `method` with `status` (or an `ok: false` error)."""
        queue = self.faults.setdefault(method, deque())
        queue.extend(Fault(status, retry_after, delay, error) for _ in range(times))

    def refuse(self, channel: str, error: str) -> None:
        """Answer every post to `channel` with `ok: false` and `error`, as Slack does when the
        bot is not in the channel (`not_in_channel`) or it was archived (`is_archived`)."""
        self.refusing[channel] = error

    def slow(self, method: str, delay: float, *, times: int = 1) -> None:
        """Answer the next `times` calls of `method` normally, but only after `delay` seconds."""
        queue = self.faults.setdefault(method, deque())
        queue.extend(Fault(200, delay=delay, answer=True) for _ in range(times))

    @property
    def url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("/api/"))

    def response_url(self, name: str = "r1") -> str:
        assert self.server is not None
        return str(self.server.make_url(f"/response/{name}"))

    # -- inspection ---------------------------------------------------------------------
    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def sent_texts(self) -> list[str]:
        return [str(c.args.get("text", "")) for c in self.calls_to("chat.postMessage")]

    # -- the server ---------------------------------------------------------------------
    async def start(self) -> FakeSlack:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/response/{name}", self._response_url)
        self.server = TestServer(app, host="127.0.0.1", port=self._port)
        await self.server.start_server()
        self._port = self.server.port
        return self

    async def stop_listening(self) -> None:
        """Slack unreachable: connections are refused until `listen_again`."""
        assert self.server is not None
        await self.server.close()

    async def listen_again(self) -> None:
        """Back on the same address, with everything it saw before."""
        assert self._port is not None
        await self.start()

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()

    async def _args(self, request: web.Request) -> dict[str, Any]:
        args: dict[str, Any] = dict(request.query)
        if request.method == "POST" and request.can_read_body:
            if request.content_type == "application/json":
                args.update(await request.json())
            else:
                form = await request.post()
                args.update({k: v for k, v in form.items() if isinstance(v, str)})
        for key in ("blocks", "view", "attachments"):
            if isinstance(args.get(key), str):
                with contextlib.suppress(json.JSONDecodeError):
                    args[key] = json.loads(args[key])
        return args

    async def _api(self, request: web.Request) -> web.Response:
        self.in_flight += 1
        try:
            return await self._api_call(request)
        finally:
            self.in_flight -= 1

    async def _api_call(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        auth = request.headers.get("Authorization", "")
        args = await self._args(request)
        token = auth.removeprefix("Bearer ") or args.get("token")
        if self.unavailable is not None:
            self.calls.append(Call(f"{method}:unavailable", args, token, time.monotonic()))
            return web.json_response({"ok": False}, status=self.unavailable)
        queue = self.faults.get(method)
        fault = queue.popleft() if queue else None
        if fault is not None and fault.answer:
            await asyncio.sleep(fault.delay)
        elif fault is not None:
            if fault.delay:
                await asyncio.sleep(fault.delay)
            self.calls.append(Call(method, args, token, time.monotonic()))
            if fault.error:
                return web.json_response({"ok": False, "error": fault.error})
            headers = (
                {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
            )
            body = {"ok": False, "error": "ratelimited"} if fault.status == 429 else {"ok": False}
            return web.json_response(body, status=fault.status, headers=headers)
        if self.rate_limit and method.startswith(("chat.", "views.")) and not self._admit():
            self.calls.append(Call(method + ":limited", args, token, time.monotonic()))
            return web.json_response(
                {"ok": False, "error": "ratelimited"}, status=429, headers={"Retry-After": "1"}
            )
        peer = request.transport.get_extra_info("peername") if request.transport else None
        self.calls.append(Call(method, args, token, time.monotonic(), peer))
        if not token or not token.startswith("xoxb-"):
            return web.json_response({"ok": False, "error": "not_authed"})
        return web.json_response(self._answer(method, args))

    def _admit(self) -> bool:
        now = time.monotonic()
        while self._window and now - self._window[0] >= 1.0:
            self._window.popleft()
        assert self.rate_limit is not None
        if len(self._window) >= self.rate_limit:
            return False
        self._window.append(now)
        return True

    def _answer(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        ok: dict[str, Any] = {"ok": True}
        if method == "auth.test":
            return {
                **ok,
                "team_id": self.team_id,
                "team": self.team_name,
                "user_id": self.bot_user_id,
                "bot_id": "B0001",
                "url": "https://acme.slack.com/",
                "is_enterprise_install": self.org_wide,
                **({"enterprise_id": self.enterprise_id} if self.enterprise_id else {}),
            }
        if method in ("chat.postMessage", "chat.postEphemeral"):
            channel = str(args.get("channel", ""))
            if channel in self.refusing:
                return {"ok": False, "error": self.refusing[channel]}
            if channel.startswith("U"):
                channel = "D" + channel[1:]
            if method == "chat.postEphemeral":
                return {**ok, "message_ts": f"{next(self._ts)}.000100"}
            return {**ok, "channel": channel, "ts": f"{next(self._ts)}.000100"}
        if method == "chat.update":
            return {**ok, "channel": args.get("channel"), "ts": args.get("ts")}
        if method in ("views.open", "views.publish", "views.update", "views.push"):
            return {**ok, "view": {"id": f"V{next(self._ts)}", **(args.get("view") or {})}}
        if method in ("users.info", "users.lookupByEmail"):
            if method == "users.info":
                user = self.users.get(str(args.get("user")))
            else:
                email = str(args.get("email", "")).lower()
                matches = (u for u in self.users.values() if (u.email or "").lower() == email)
                user = next(matches, None)
            if user is None:
                error = "user_not_found" if method == "users.info" else "users_not_found"
                return {"ok": False, "error": error}
            return {
                **ok,
                "user": {
                    "id": user.id,
                    "team_id": self.team_id,
                    "name": user.name,
                    "real_name": user.name,
                    "tz": user.tz,
                    "is_admin": user.is_admin,
                    "is_owner": user.is_owner,
                    "is_bot": user.is_bot,
                    "profile": {
                        "email": user.email,
                        "real_name": user.name,
                        "display_name": user.name,
                    },
                },
            }
        if method == "chat.getPermalink":
            return {
                **ok,
                "permalink": f"https://acme.slack.com/archives/{args.get('channel')}/p{args.get('message_ts')}",
            }
        return ok

    async def _response_url(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.calls.append(
            Call(f"response_url:{request.match_info['name']}", body, None, time.monotonic())
        )
        queue = self.faults.get("response_url")
        if queue:
            fault = queue.popleft()
            return web.Response(status=fault.status, text="error")
        return web.Response(text="ok")
