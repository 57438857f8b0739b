"""A fake Bot Connector service: the Teams side of the bot's outbound calls.

An aiohttp server at the activities' `serviceUrl` that records replies, proactive
messages, card updates, 1:1 chats created and roster lookups, answers them the way the
Connector does, and misbehaves on request (429 with Retry-After, 5xx), or refuses one
conversation for good the way the real Connector does once the bot is gone from it.
"""

from __future__ import annotations

import itertools
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from aiohttp import web
from aiohttp.test_utils import TestServer

OUTBOUND_TOKEN = "fake-outbound-token"
# The Connector's own words when the bot can no longer post in a conversation.
REFUSALS = {
    403: ("BotNotInConversationRoster", "The bot is not part of the conversation roster."),
    404: ("ConversationNotFound", "Conversation not found."),
}


@dataclass
class ConnectorCall:
    op: str  # create | send | reply | update | member
    conversation: str
    activity_id: str | None
    body: dict[str, Any]
    authorization: str | None
    at: float
    # The activity id the fake answered with (sends and replies).
    landed: str | None = None

    @property
    def card(self) -> dict[str, Any]:
        """The Adaptive Card the activity carried."""
        attachments = self.body.get("attachments") or []
        assert attachments, f"no card in {self.op} to {self.conversation}"
        content: dict[str, Any] = attachments[0]["content"]
        return content

    @property
    def text(self) -> str:
        """Every TextBlock of the card (or the activity's text), for assertions."""
        if not self.body.get("attachments"):
            return str(self.body.get("text") or "")
        return "\n".join(_texts(self.card))


def _texts(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [str(node["text"])] if node.get("type") == "TextBlock" else []
        for value in node.values():
            found += _texts(value)
        return found
    if isinstance(node, list):
        return [t for item in node for t in _texts(item)]
    return []


@dataclass
class FakeMember:
    id: str  # the bot-scoped 29:… id
    aad: str
    name: str
    email: str
    tenant: str


# Teams' published limits as the service counts them, (count, seconds): per bot and
# conversation, and per bot and tenant (every conversation here is one tenant's).
CONVERSATION_LIMITS = ((7, 1.0), (8, 2.0), (60, 30.0), (1800, 3600.0))
TENANT_LIMITS = ((30, 1.0),)
TENANT = "\0tenant"


@dataclass
class TeamsWindows:
    """Sliding windows as Teams counts them: a call at `now` fits a window of `count` calls in
    `seconds` when fewer than `count` admitted calls lie in (now - seconds, now]. Refused
    calls count nothing; `exceeded_by` says which window refused them."""

    sent: dict[str, list[float]] = field(default_factory=dict)
    exceeded_by: Counter[str] = field(default_factory=Counter)

    def admit(self, conversation: str, now: float) -> bool:
        windows = {conversation: CONVERSATION_LIMITS, TENANT: TENANT_LIMITS}
        for key, limits in windows.items():
            times = self.sent.setdefault(key, [])
            for count, seconds in limits:
                if sum(1 for t in times[-count:] if now - t < seconds) >= count:
                    kind = "tenant" if key == TENANT else "conversation"
                    self.exceeded_by[f"{kind} {count}/{seconds:g} s"] += 1
                    return False
        for key in windows:
            self.sent[key].append(now)
            del self.sent[key][:-1800]
        return True


@dataclass
class FakeBotConnector:
    """State of the fake: calls seen, members known, faults queued."""

    calls: list[ConnectorCall] = field(default_factory=list)
    members: dict[str, FakeMember] = field(default_factory=dict)
    faults: dict[str, deque[tuple[int, int | None]]] = field(default_factory=dict)
    # Faults for one conversation (and its threads), whatever the call.
    conversation_faults: dict[str, deque[tuple[int, int | None]]] = field(default_factory=dict)
    refused: dict[str, int] = field(default_factory=dict)
    activities: dict[str, set[str]] = field(default_factory=dict)
    server: TestServer | None = None
    # The bearer token the bot must send (a fake Entra ID issues its own).
    token: str = OUTBOUND_TOKEN
    # Teams' published limits, enforced when set: per conversation 7/1 s, 8/2 s, 60/30 s,
    # 1,800/h and 30/s for the whole tenant (every conversation here is one tenant's). A call
    # beyond them answers 429 and is counted in `exceeded`.
    enforce_limits: bool = False
    exceeded: int = 0
    windows: TeamsWindows = field(default_factory=lambda: TeamsWindows())
    _port: int | None = None
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1000))

    def add_member(self, user: str, name: str, email: str, tenant: str) -> FakeMember:
        member = FakeMember(f"29:{user}", f"aad-{user}", name, email, tenant)
        self.members[member.id] = self.members[member.aad] = member
        return member

    def fail(self, op: str, status: int, *, retry_after: int | None = None, times: int = 1) -> None:
        """The next `times` calls of `op` answer `status` (with Retry-After for a 429)."""
        queue = self.faults.setdefault(op, deque())
        queue.extend([(status, retry_after)] * times)

    def fail_in(
        self, conversation: str, status: int, *, retry_after: int | None = None, times: int = 1
    ) -> None:
        """The next `times` calls into `conversation` answer `status`."""
        queue = self.conversation_faults.setdefault(conversation, deque())
        queue.extend([(status, retry_after)] * times)

    def refuse(self, conversation: str, status: int = 403) -> None:
        """Every call into `conversation` from now on is refused as the Connector refuses a
        bot removed from the team (403) or a deleted channel (404)."""
        assert status in REFUSALS, f"the Connector answers {sorted(REFUSALS)} for a lost one"
        self.refused[conversation] = status

    @property
    def url(self) -> str:
        assert self._port is not None, "the fake connector was never started"
        return f"http://127.0.0.1:{self._port}/"

    # -- what the fake saw --------------------------------------------------------------------

    def to(self, conversation: str, *ops: str) -> list[ConnectorCall]:
        ops = ops or ("send", "reply")
        return [c for c in self.calls if c.conversation == conversation and c.op in ops]

    def of(self, op: str) -> list[ConnectorCall]:
        return [c for c in self.calls if c.op == op]

    # -- the server ---------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v3/conversations", self._create)
        app.router.add_post("/v3/conversations/{cid}/activities", self._send)
        app.router.add_post("/v3/conversations/{cid}/activities/{aid}", self._reply)
        app.router.add_put("/v3/conversations/{cid}/activities/{aid}", self._update)
        app.router.add_get("/v3/conversations/{cid}/members/{mid}", self._member)
        self.server = TestServer(app, host="127.0.0.1", port=self._port)
        await self.server.start_server()
        self._port = self.server.port

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()

    async def stop_listening(self) -> None:
        """Microsoft unreachable: connections to the fake are refused until `listen_again`."""
        assert self.server is not None
        await self.server.close()

    async def listen_again(self) -> None:
        """Back on the same address, with everything it saw before."""
        assert self._port is not None
        await self.start()

    async def _record(
        self, request: web.Request, op: str
    ) -> tuple[ConnectorCall, web.Response | None]:
        body = await request.json() if request.can_read_body else {}
        cid = unquote(request.match_info.get("cid", ""))
        call = ConnectorCall(
            op,
            cid,
            request.match_info.get("aid"),
            body,
            request.headers.get("Authorization"),
            time.monotonic(),
        )
        self.calls.append(call)
        if call.authorization != f"Bearer {self.token}":
            return call, web.json_response({"error": {"code": "Unauthorized"}}, status=401)
        base = cid.split(";messageid=", 1)[0]
        if base in self.refused:
            status = self.refused[base]
            code, message = REFUSALS[status]
            return call, web.json_response(
                {"error": {"code": code, "message": message}}, status=status
            )
        if self.enforce_limits and op in ("send", "reply", "update") and not self._admit(base):
            self.exceeded += 1
            return call, web.json_response(
                {"error": {"code": "Throttled"}}, status=429, headers={"Retry-After": "1"}
            )
        queue = self.conversation_faults.get(base) or self.faults.get(op)
        if queue:
            status, retry_after = queue.popleft()
            headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
            return call, web.json_response(
                {"error": {"code": "Throttled" if status == 429 else "ServiceError"}},
                status=status,
                headers=headers,
            )
        return call, None

    def _admit(self, conversation: str) -> bool:
        """Whether one more call fits every window of the conversation and the tenant."""
        return self.windows.admit(conversation, time.monotonic())

    def _new_activity(self, conversation: str) -> str:
        activity_id = str(next(self._ids))
        self.activities.setdefault(conversation, set()).add(activity_id)
        return activity_id

    async def _create(self, request: web.Request) -> web.Response:
        call, refused = await self._record(request, "create")
        if refused is not None:
            return refused
        members = call.body.get("members") or []
        member = self.members.get(str(members[0].get("id"))) if members else None
        # The SDK writes `tenantID`; Teams reads the tenant from channelData as well.
        tenant = call.body.get("tenantID") or (call.body.get("channelData") or {}).get(
            "tenant", {}
        ).get("id")
        if member is None or member.tenant != tenant:
            return web.json_response({"error": {"code": "BadArgument"}}, status=403)
        # Teams answers with the same 1:1 chat every time.
        call.conversation = f"a:chat-{member.aad}"
        return web.json_response({"id": call.conversation, "serviceUrl": self.url}, status=201)

    async def _send(self, request: web.Request) -> web.Response:
        call, refused = await self._record(request, "send")
        if refused is not None:
            return refused
        call.landed = self._new_activity(call.conversation)
        return web.json_response({"id": call.landed}, status=201)

    async def _reply(self, request: web.Request) -> web.Response:
        call, refused = await self._record(request, "reply")
        if refused is not None:
            return refused
        call.landed = self._new_activity(call.conversation)
        return web.json_response({"id": call.landed}, status=201)

    async def _update(self, request: web.Request) -> web.Response:
        call, refused = await self._record(request, "update")
        if refused is not None:
            return refused
        if call.activity_id not in self.activities.get(call.conversation, set()):
            return web.json_response({"error": {"code": "ActivityNotFound"}}, status=404)
        return web.json_response({"id": call.activity_id}, status=200)

    async def _member(self, request: web.Request) -> web.Response:
        _, refused = await self._record(request, "member")
        if refused is not None:
            return refused
        member = self.members.get(unquote(request.match_info["mid"]))
        if member is None:
            return web.json_response(
                {"error": {"code": "MemberNotFoundInConversation"}}, status=404
            )
        return web.json_response(
            {
                "id": member.id,
                "name": member.name,
                "aadObjectId": member.aad,
                "email": member.email,
                "userPrincipalName": member.email,
                "tenantId": member.tenant,
                "userRole": "user",
            }
        )
