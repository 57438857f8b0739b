"""The Teams adapter: one authenticated edge at `POST /api/messages`, CloudAdapter behind it.

The edge reads the activity, authenticates it (401 for any token problem), checks its
shape (400), and only then lets CloudAdapter run the turn through the activity handler.
Invokes get their answer in the response body; everything else gets 200 once what the
turn changed is committed.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Protocol

import structlog
from aiohttp import web
from botbuilder.core import InvokeResponse, TurnContext
from botbuilder.integration.aiohttp import (
    CloudAdapter,
    ConfigurationBotFrameworkAuthentication,
    ConfigurationServiceClientCredentialFactory,
)
from botbuilder.schema import Activity, ActivityTypes
from botframework.connector.auth import (
    AuthenticationConstants,
    ServiceClientCredentialsFactory,
)
from pydantic import SecretStr

from adapters.inbound import BadJson, load_json
from adapters.limits import Limiter
from adapters.teams import quiet, translate
from adapters.teams.auth import InboundAuth, KeysUnavailable, Unauthorized
from adapters.teams.bot import FlywheelTeamsBot
from adapters.teams.connector import Connector
from adapters.teams.credentials import LoginCredentialsFactory, WarmCredentialsFactory
from adapters.teams.directory import TeamsDirectory
from adapters.teams.limits import TeamsLimiter
from adapters.teams.profiles import Profiles
from adapters.teams.sender import TeamsSender
from handlers.core.controls import cleaned
from handlers.core.errors import APOLOGY
from handlers.core.router import Router

log = structlog.get_logger(__name__)
quiet.install()

MESSAGES_PATH = "/api/messages"
# Teams gives up on an invoke after 5 s and on any other turn after 15 s: answer in time.
INVOKE_DEADLINE = 4.5
TURN_DEADLINE = 8.0
DEFAULT_ISSUER = AuthenticationConstants.TO_BOT_FROM_CHANNEL_TOKEN_ISSUER
DEFAULT_METADATA = AuthenticationConstants.TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL


class TeamsSettings(Protocol):
    """What the adapter reads from the application's settings (`bot.settings.Settings`)."""

    @property
    def microsoft_app_id(self) -> str | None: ...

    @property
    def microsoft_app_password(self) -> SecretStr | None: ...

    @property
    def microsoft_app_type(self) -> str: ...

    @property
    def microsoft_app_tenant_id(self) -> str | None: ...

    @property
    def microsoft_openid_metadata_url(self) -> str | None: ...

    @property
    def microsoft_token_issuer(self) -> str | None: ...

    @property
    def microsoft_login_url(self) -> str | None: ...

    @property
    def microsoft_oauth_scope(self) -> str | None: ...

    @property
    def flywheel_teams_anonymous(self) -> bool: ...


@dataclass(frozen=True)
class _BotConfiguration:
    """The SDK's configuration object, built from Flywheel's settings."""

    APP_ID: str | None
    APP_PASSWORD: str | None
    APP_TYPE: str
    APP_TENANTID: str | None
    TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL: str
    TO_BOT_FROM_CHANNEL_TOKEN_ISSUER: str
    TO_CHANNEL_FROM_BOT_LOGIN_URL: str
    TO_CHANNEL_FROM_BOT_OAUTH_SCOPE: str
    VALIDATE_AUTHORITY: bool
    OAUTH_URL: str = AuthenticationConstants.OAUTH_URL


class TeamsAdapter:
    """Teams in and out: the authenticated edge, the activity handler, the outbox sender."""

    def __init__(
        self,
        *,
        cloud: CloudAdapter,
        bot: FlywheelTeamsBot,
        auth: InboundAuth,
        sender: TeamsSender,
    ) -> None:
        self.cloud = cloud
        self.bot = bot
        self.auth = auth
        self.sender = sender
        cloud.on_turn_error = self._on_error

    @classmethod
    def from_settings(
        cls,
        settings: TeamsSettings,
        router: Router,
        *,
        credentials_factory: ServiceClientCredentialsFactory | None = None,
        limiter: Limiter | None = None,
    ) -> TeamsAdapter:
        """Build the adapter; `credentials_factory` replaces how outbound tokens are made,
        `limiter` is where Teams' counts are kept (this process's memory when None)."""
        anonymous = settings.flywheel_teams_anonymous
        password = settings.microsoft_app_password
        tenant = settings.microsoft_app_tenant_id
        single = settings.microsoft_app_type.strip().lower() == "singletenant"
        login_tenant = (
            tenant if single and tenant else AuthenticationConstants.DEFAULT_CHANNEL_AUTH_TENANT
        )
        metadata_url = settings.microsoft_openid_metadata_url or DEFAULT_METADATA
        issuer = settings.microsoft_token_issuer or DEFAULT_ISSUER
        login_url = settings.microsoft_login_url
        configuration = _BotConfiguration(
            APP_ID=None if anonymous else settings.microsoft_app_id,
            APP_PASSWORD=password.get_secret_value() if password else None,
            APP_TYPE="SingleTenant" if single else "MultiTenant",
            APP_TENANTID=tenant,
            TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL=metadata_url,
            TO_BOT_FROM_CHANNEL_TOKEN_ISSUER=issuer,
            TO_CHANNEL_FROM_BOT_LOGIN_URL=(
                login_url
                or AuthenticationConstants.TO_CHANNEL_FROM_BOT_LOGIN_URL_PREFIX + login_tenant
            ),
            TO_CHANNEL_FROM_BOT_OAUTH_SCOPE=(
                settings.microsoft_oauth_scope
                or AuthenticationConstants.TO_CHANNEL_FROM_BOT_OAUTH_SCOPE
            ),
            # An authority the operator named is trusted as named: MSAL's instance discovery
            # asks the public cloud about it, which knows nothing of a sovereign one.
            VALIDATE_AUTHORITY=login_url is None,
        )
        factory = credentials_factory or WarmCredentialsFactory(
            LoginCredentialsFactory(
                configuration.APP_ID, configuration.APP_PASSWORD, configuration.APP_TENANTID
            )
            if login_url
            else ConfigurationServiceClientCredentialFactory(configuration)
        )
        authentication = ConfigurationBotFrameworkAuthentication(
            configuration, credentials_factory=factory
        )
        if anonymous:
            log.warning(
                "teams.ANONYMOUS_MODE",
                note="Teams activities are NOT authenticated: local development only, "
                "never expose this process to a network",
            )
        cloud = CloudAdapter(authentication)
        teams_limiter = TeamsLimiter(limiter)
        connector = Connector(cloud, configuration.APP_ID)
        sender = TeamsSender(connector, router.sessions, router.clock, teams_limiter)
        router.directories["teams"] = TeamsDirectory(connector, router.sessions)
        bot = FlywheelTeamsBot(
            router, sender, Profiles(), teams_limiter, cloud.BOT_CONNECTOR_CLIENT_KEY
        )
        auth = InboundAuth(
            authentication, metadata_url=metadata_url, issuer=issuer, anonymous=anonymous
        )
        return cls(cloud=cloud, bot=bot, auth=auth, sender=sender)

    def routes(self) -> list[web.RouteDef]:
        # Clients and probes check the endpoint is there with HEAD: a quiet yes, no body.
        return [web.post(MESSAGES_PATH, self.handle), web.head(MESSAGES_PATH, _present)]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Bot Framework activities: parse, authenticate, check, then run the turn."""
        if request.content_type != "application/json":
            return _error(415, "activities are sent as application/json")
        try:
            body: Any = load_json(await request.read(), "the body")
        except BadJson as bad:
            # Before authentication, and without a log line: anyone can send this.
            return _error(400, str(bad))
        if not isinstance(body, dict):
            return _error(400, "the activity is not a JSON object")
        # Control characters out of everything, before any of it is stored (a conversation
        # reference, say) or handed to the SDK.
        body = cleaned(body)
        try:
            activity = Activity().deserialize(body)
        except Exception:  # msrest raises several kinds on bad shapes
            return _error(400, "the body is not a Bot Framework activity")
        try:
            authenticated = await self.auth.authenticate(
                activity, request.headers.get("Authorization")
            )
        except Unauthorized as refused:
            log.warning(
                "teams.request_unauthorized", reason=str(refused), **translate.describe(body)
            )
            return _error(401, str(refused))
        except KeysUnavailable as unavailable:
            return _error(503, str(unavailable))
        try:
            translate.check(body)
        except translate.MalformedActivity as bad:
            log.warning("teams.request_malformed", reason=str(bad), **translate.describe(body))
            return _error(400, f"malformed activity: {bad}")
        deadline = INVOKE_DEADLINE if activity.type == ActivityTypes.invoke else TURN_DEADLINE
        try:
            async with asyncio.timeout(deadline):
                response = await self.cloud.process_activity(
                    authenticated, activity, self.bot.on_turn
                )
        except TimeoutError:
            log.error("teams.turn_too_slow", deadline=deadline, **translate.describe(body))
            return _error(503, "the bot could not answer in time")
        if response is not None:
            return web.json_response(response.body, status=int(response.status or 200))
        return web.Response(status=200)

    async def _on_error(self, turn_context: TurnContext, error: Exception) -> None:
        """The one place unexpected failures end: logged with context, a short apology."""
        activity = turn_context.activity
        log.error(
            "teams.turn_failed",
            error=f"{type(error).__name__}: {error}",
            exc_info=error,
            kind=str(activity.type),
            tenant=translate.tenant_id(activity),
            user=translate.user_id(activity),
        )
        if activity.type == ActivityTypes.message:
            try:
                await turn_context.send_activity(APOLOGY)
            except Exception as failed:  # best effort: Teams may be what failed
                log.warning("teams.apology_failed", error=type(failed).__name__)
        elif activity.type == ActivityTypes.invoke:
            await turn_context.send_activity(
                Activity(
                    type=ActivityTypes.invoke_response,
                    value=_invoke_apology(),
                )
            )

    async def close(self) -> None:
        """Nothing to release: connector clients belong to their turns."""


def _invoke_apology() -> InvokeResponse:
    return InvokeResponse(status=200, body={"task": {"type": "message", "value": APOLOGY}})


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


__all__ = ["MESSAGES_PATH", "TeamsAdapter", "TeamsSettings", "WarmCredentialsFactory"]


async def _present(_: web.Request) -> web.Response:
    return web.Response(status=200, headers={"Allow": "POST, HEAD"})
