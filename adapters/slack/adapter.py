"""The Slack adapter: one verified edge at `POST /slack/events` (or Socket Mode), Bolt behind it.

The edge verifies the signature and checks the body before anything else runs, so a
forged or malformed request is refused (401, 400) without touching the database. Bolt
then routes the request to a listener and, because it processes before responding,
Slack's answer leaves only after everything durable is committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

import aiohttp
import structlog
from aiohttp import web
from pydantic import SecretStr
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_bolt.middleware.async_middleware import AsyncMiddleware
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import Clock as SignatureClock
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import payloads, translate
from adapters.slack.installations import InstallationAuthorize, Installations, SingleWorkspace
from adapters.slack.listeners import Listeners, register
from adapters.slack.profiles import Profiles, SlackDirectory
from adapters.slack.sender import SlackSender
from handlers.core.errors import APOLOGY
from handlers.core.interactions import Origin
from handlers.core.ports import Clock
from handlers.core.router import Router

log = structlog.get_logger(__name__)

EVENTS_PATH = "/slack/events"
# Web API calls made while Slack waits for the acknowledgement (3 s) must be short.
INBOUND_TIMEOUT = 3
OUTBOUND_TIMEOUT = 10
NOT_INSTALLED = (
    "Flywheel isn't installed for your workspace, so it can't do anything here. "
    "Ask your Slack admin about adding it."
)
# Requests that belong to no workspace: Slack's checks of the Request URL.
UNADDRESSED = frozenset({"url_verification", "ssl_check"})
# Where the edge leaves the digest of a verified request for `_FirstDelivery`.
SIGNED_DIGEST = "flywheel_signed_digest"

Body = dict[str, Any]


class SlackSettings(Protocol):
    """What the adapter reads from the application's settings (`bot.settings.Settings`)."""

    @property
    def slack_bot_token(self) -> SecretStr | None: ...

    @property
    def slack_signing_secret(self) -> SecretStr | None: ...

    @property
    def slack_app_token(self) -> SecretStr | None: ...

    @property
    def slack_api_base(self) -> str:
        """SLACK_API_URL, ending with a slash."""
        ...


class _OwnWorkspace(AsyncMiddleware):
    """Runs before authorisation: a request naming a team or organisation this app is not
    installed for is answered here, before anything is read or written for it.

    It checks the team Flywheel would keep the request's work under (`translate.team_id`)
    and the one Bolt authorises (which prefers the installing team in Slack Connect), so
    neither can name a stranger. The answer is a 200, so Slack does not retry an event
    forever; a slash command says why, since the person would otherwise see nothing.
    """

    def __init__(self, installations: Installations) -> None:
        self._installations = installations

    async def async_process(
        self,
        *,
        req: AsyncBoltRequest,
        resp: BoltResponse,
        next: Callable[[], Awaitable[BoltResponse]],
    ) -> BoltResponse | None:
        body = req.body
        kind = payloads.kind(body)
        if kind in UNADDRESSED:
            return await next()
        enterprise = _text(req.context.enterprise_id)
        teams = {translate.team_id(body), _text(req.context.team_id) or ""} - {""}
        # Naming no team at all (an org-level event) is no installation's request either.
        for team in teams or {""}:
            if await self._installations.find(team_id=team, enterprise_id=enterprise) is None:
                log.warning(
                    "slack.foreign_workspace",
                    kind=kind,
                    teams=sorted(teams),
                    enterprise=enterprise,
                    user=translate.user_id(body),
                )
                if kind == "command":
                    return BoltResponse(
                        status=200, body={"response_type": "ephemeral", "text": NOT_INSTALLED}
                    )
                return BoltResponse(status=200, body="")
        return await next()


class _FirstDelivery(AsyncMiddleware):
    """A delivery Slack has made before is acknowledged and not processed again.

    Events carry an id, which Slack's retries repeat. Interactivity and slash commands
    carry none, and Slack does not retry them: the same one arriving twice is a replay of a
    captured request within the signature's five minutes. Its key is the digest of what
    was signed (timestamp and body, computed at the edge): any other request, however alike,
    has another timestamp or another `trigger_id`, so a person pressing +1 twice is two
    deliveries and the domain rules decide about the second. Commands answered from their
    own words (help) write nothing, so they are not recorded; nor is anything that came
    over Socket Mode, which has no signature to replay.

    A middleware class rather than a function: Bolt calls a function middleware through its
    argument injection on every request, which alone costs about a sixth of Bolt's whole
    handling of a slash command.
    """

    def __init__(self, router: Router) -> None:
        self._router = router

    async def async_process(
        self,
        *,
        req: AsyncBoltRequest,
        resp: BoltResponse,
        next: Callable[[], Awaitable[BoltResponse]],
    ) -> BoltResponse | None:
        body = req.body
        kind = payloads.kind(body)
        key = self._key(req, kind)
        if key is not None:
            team = translate.team_id(body)
            if not await self._router.first_delivery("slack", team, key):
                log.info("slack.duplicate_delivery", key=key, **translate.describe(body))
                return BoltResponse(status=200, body="")
        return await next()

    def _key(self, req: AsyncBoltRequest, kind: str) -> str | None:
        body = req.body
        if kind == "event_callback":
            event_id = body.get("event_id")
            return event_id if isinstance(event_id, str) else None
        if kind in UNADDRESSED:
            return None
        if kind == "command" and self._router.writes_nothing(
            translate.parse_command(str(body.get("text", "")))[0]
        ):
            return None
        signed = req.context.get(SIGNED_DIGEST)
        return f"signed:{signed}" if isinstance(signed, str) else None


class _SignatureClock(SignatureClock):
    """The replay window reads the application's clock, which tests can set."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    def now(self) -> float:
        return self._clock.now().timestamp()


class SlackAdapter:
    """Slack in and out: the inbound edge and Bolt listeners, and the outbox sender."""

    def __init__(
        self,
        *,
        app: AsyncApp,
        sender: SlackSender,
        verifier: SignatureVerifier | None,
        router: Router,
        installations: SingleWorkspace,
        app_token: str | None = None,
        inbound_clients: Sequence[AsyncWebClient] = (),
    ) -> None:
        self.app = app
        self.sender = sender
        self.router = router
        self.installations = installations
        self._verifier = verifier
        self._app_token = app_token
        self._socket: AsyncSocketModeHandler | None = None
        self._connecting: asyncio.Task[None] | None = None
        # Bolt's own client, whose session every request's client copies, and the others
        # that call Slack while it waits for the acknowledgement.
        self._inbound_clients = (app.client, *inbound_clients)
        self._http: aiohttp.ClientSession | None = None
        app.use(_FirstDelivery(router))
        app.error(self._on_error)
        router.config.admin_reach.narrow("slack", installations.covers_workspace)

    @classmethod
    def from_settings(cls, settings: SlackSettings, router: Router) -> SlackAdapter:
        """Build the adapter; every Slack client it makes talks to SLACK_API_URL."""
        if settings.slack_bot_token is None:
            raise ValueError("SLACK_BOT_TOKEN is required for the Slack adapter")
        token = settings.slack_bot_token.get_secret_value()
        base_url = settings.slack_api_base
        signing_secret = (
            settings.slack_signing_secret.get_secret_value()
            if settings.slack_signing_secret
            else ""
        )
        identity = AsyncWebClient(token=token, base_url=base_url, timeout=INBOUND_TIMEOUT)
        installations = SingleWorkspace(identity)
        app = AsyncApp(
            name="flywheel",
            logger=_bolt_logger(),
            # Bolt copies base URL, timeout and session from this client into every
            # request's client; the token comes from `authorize`.
            client=AsyncWebClient(base_url=base_url, timeout=INBOUND_TIMEOUT),
            # Strangers are turned away before authorisation, so it only finds the token.
            before_authorize=_OwnWorkspace(installations),
            # Bolt's hint omits it, but it handles None (no installation) from `authorize`.
            authorize=InstallationAuthorize(installations),  # type: ignore[arg-type]
            signing_secret=signing_secret,
            # The edge verifies signatures (and answers 401) before Bolt sees a request.
            request_verification_enabled=False,
            # Listeners finish before Slack gets its answer, so nothing is left running
            # after the acknowledgement: what was acknowledged is committed.
            process_before_response=True,
        )
        profiles = Profiles()
        register(app, Listeners(router, profiles), router)
        lookups = AsyncWebClient(token=token, base_url=base_url, timeout=INBOUND_TIMEOUT)
        router.directories["slack"] = SlackDirectory(lookups, profiles)
        return cls(
            app=app,
            sender=SlackSender(
                AsyncWebClient(token=token, base_url=base_url, timeout=OUTBOUND_TIMEOUT)
            ),
            verifier=(
                SignatureVerifier(signing_secret, clock=_SignatureClock(router.clock))
                if signing_secret
                else None
            ),
            router=router,
            installations=installations,
            app_token=(
                settings.slack_app_token.get_secret_value() if settings.slack_app_token else None
            ),
            inbound_clients=(identity, lookups),
        )

    async def team_id(self) -> str:
        """The workspace the bot token belongs to (Slack's `auth.test`)."""
        return (await self.installations.identify()).team_id or ""

    async def register_workspace(self) -> bool:
        """Store the bot token's workspace now, so commands and the CLI know it before anyone
        has spoken; False when Slack could not say whose token this is."""
        try:
            identity = await self.installations.identify()
        except (SlackApiError, aiohttp.ClientError, TimeoutError) as error:
            log.warning("slack.identity_unavailable", error=type(error).__name__)
            return False
        if not identity.team_id:
            # An org-wide install has no one team to keep: each is stored when it speaks.
            return False
        origin = Origin(
            platform="slack", workspace_id=identity.team_id, workspace_name=identity.team_name
        )
        await self.router.know_workspace(origin)
        return True

    def routes(self) -> list[web.RouteDef]:
        """The one Request URL for events, commands and interactivity."""
        return [web.post(EVENTS_PATH, self.handle)]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Events API, slash commands and interactivity: verify, check, then let Bolt route."""
        raw = await request.read()
        if not self._verified(raw, request):
            log.warning(
                "slack.request_unverified",
                retry=request.headers.get("X-Slack-Retry-Num"),
                has_signature="X-Slack-Signature" in request.headers,
            )
            return web.json_response({"error": "invalid or missing signature"}, status=401)
        try:
            body, form_encoded = payloads.parse_body(raw, request.content_type)
        except payloads.MalformedRequest as bad:
            log.warning("slack.request_malformed", reason=str(bad))
            return web.json_response({"error": f"malformed request: {bad}"}, status=400)
        if payloads.kind(body) == "app_rate_limited":
            log.warning("slack.events_rate_limited", team=body.get("team_id"))
            return web.Response(status=200)
        if payloads.org_wide(body):
            # Acknowledged, or Slack would retry it for hours; there is no workspace to act in.
            log.info(
                "slack.org_wide_event_ignored",
                enterprise=body.get("enterprise_id"),
                event_type=str(body["event"]["type"]),
            )
            return web.Response(status=200)
        headers: dict[str, str | Sequence[str]] = {k.lower(): v for k, v in request.headers.items()}
        if form_encoded:
            # Bolt would parse the form again, and reads a command whose text merely
            # contains "payload" as an empty body; it gets the parsed body instead.
            headers["content-type"] = "application/json"
            text = json.dumps(body)
        else:
            text = raw.decode("utf-8")
        self._connect_clients()
        # What was signed identifies this delivery: a replay of it is the same digest.
        signed = hashlib.sha256(
            b"%s:%s" % (request.headers["X-Slack-Request-Timestamp"].encode(), raw)
        ).hexdigest()
        response = await self.app.async_dispatch(
            AsyncBoltRequest(
                body=text,
                query=request.query_string,
                headers=headers,
                context={SIGNED_DIGEST: signed},
            )
        )
        return await to_aiohttp_response(response)

    def _connect_clients(self) -> None:
        """One connection pool for the calls Slack waits on (views.open, users.info, …).

        Without a session, slack_sdk opens a session and a connection per call, which
        doubles the CPU a call costs. Made on first use because a session belongs to the
        running event loop. slack_sdk ignores its own `timeout` on a session it is given, so
        the session carries the inbound time limit.
        """
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=INBOUND_TIMEOUT))
            for client in self._inbound_clients:
                client.session = self._http

    def _verified(self, raw: bytes, request: web.Request) -> bool:
        if self._verifier is None:
            return False
        try:
            return self._verifier.is_valid(
                body=raw,
                timestamp=request.headers.get("X-Slack-Request-Timestamp"),
                signature=request.headers.get("X-Slack-Signature"),
            )
        except ValueError:  # a timestamp that is not a number, a body that is not text
            return False

    async def _on_error(self, error: Exception, body: Body, client: AsyncWebClient) -> BoltResponse:
        """The one place unexpected failures end: logged with context, a short apology.

        Slack failing or not answering in time is the world's fault, not a bug: one warning
        line. Anything else is an error with its traceback.
        """
        if isinstance(error, SlackApiError | aiohttp.ClientError | TimeoutError):
            log.warning(
                "slack.call_failed",
                error=f"{type(error).__name__}: {' '.join(str(error).split())[:200]}",
                **translate.describe(body),
            )
            return await apologise(body, client)
        log.error(
            "slack.request_failed",
            error=f"{type(error).__name__}: {error}",
            exc_info=error,
            **translate.describe(body),
        )
        return await apologise(body, client)

    async def start(self) -> None:
        """Learn whose token this is; connect Socket Mode when an app token is configured."""
        try:
            identity = await self.installations.identify()
        except (SlackApiError, aiohttp.ClientError, TimeoutError) as error:
            # The first request asks again; until then nobody is served or made admin.
            log.warning("slack.identity_unavailable", error=type(error).__name__)
        else:
            log.info(
                "slack.identified",
                team=identity.team_id,
                enterprise=identity.enterprise_id,
                org_wide=identity.is_enterprise_install,
            )
            await self.register_workspace()
        if self._app_token is None:
            return
        self._connect_clients()
        self._socket = AsyncSocketModeHandler(self.app, self._app_token)
        # slack_sdk keeps retrying until Slack accepts the connection; serving HTTP and
        # sending the outbox must not wait for that.
        self._connecting = asyncio.create_task(
            self._socket.connect_async(),  # type: ignore[no-untyped-call]
            name="slack-socket-mode",
        )
        log.info("slack.socket_mode_connecting")

    async def close(self) -> None:
        """Disconnect Socket Mode and release the sender and the inbound connection pool."""
        if self._connecting is not None:
            self._connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._connecting
            self._connecting = None
        if self._socket is not None:
            await self._socket.close_async()  # type: ignore[no-untyped-call]
            self._socket = None
        await self.sender.close()
        if self._http is not None:
            await self._http.close()
            self._http = None


class _TokenUnused(logging.Filter):
    """Bolt reads SLACK_BOT_TOKEN from the environment itself and, given the client Flywheel
    builds, warns at every start (every CLI command too) that it will not use it: it need
    not, `authorize` hands it the token. Only that one line is dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "`token` will be unused" not in record.getMessage()


def _bolt_logger() -> logging.Logger:
    logger = logging.getLogger("slack_bolt.AsyncApp")
    if not any(isinstance(f, _TokenUnused) for f in logger.filters):
        logger.addFilter(_TokenUnused())
    return logger


async def apologise(body: Body, client: AsyncWebClient) -> BoltResponse:
    """Tell the person something failed, wherever this kind of request can be answered."""
    match payloads.kind(body):
        case "command":
            return BoltResponse(status=200, body={"response_type": "ephemeral", "text": APOLOGY})
        case "view_submission":
            # Keep the modal open with the person's answers, rather than closing it silently.
            inputs = translate.input_block_ids(body.get("view") or {})
            if inputs:
                return BoltResponse(
                    status=200, body={"response_action": "errors", "errors": {inputs[0]: APOLOGY}}
                )
    await _notify(body, client)
    return BoltResponse(status=200, body="")


async def _notify(body: Body, client: AsyncWebClient) -> None:
    """Best effort, straight to Slack: the outbox may be what failed."""
    kind = payloads.kind(body)
    user = translate.user_id(body)
    try:
        if isinstance(body.get("response_url"), str):
            message = {"response_type": "ephemeral", "replace_original": False, "text": APOLOGY}
            async with (
                aiohttp.ClientSession() as session,
                session.post(
                    body["response_url"],
                    json=message,
                    timeout=aiohttp.ClientTimeout(total=INBOUND_TIMEOUT),
                ) as response,
            ):
                response.raise_for_status()
        elif kind == "event_callback" and (body.get("event") or {}).get("type") == "app_mention":
            event = body["event"]
            await client.chat_postMessage(
                channel=event["channel"],
                thread_ts=event.get("thread_ts") or event["ts"],
                text=APOLOGY,
            )
        elif kind in ("block_actions", "shortcut", "message_action", "view_submission") and user:
            await client.chat_postMessage(channel=user, text=APOLOGY)
    except (SlackApiError, aiohttp.ClientError, TimeoutError, KeyError) as error:
        log.warning("slack.apology_failed", kind=kind, user=user, error=type(error).__name__)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


__all__ = ["EVENTS_PATH", "Installations", "SlackAdapter", "SlackSettings"]
