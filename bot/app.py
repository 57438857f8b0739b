"""The composition root: builds everything from one Settings object, and runs it."""

from __future__ import annotations

import asyncio
import signal
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

import structlog
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.fetch import SafeFetcher
from adapters.limits import Limiter
from adapters.web import Links, oidc
from adapters.web.digests import DigestPages
from adapters.web.linkedin import LinkedInPages
from adapters.web.program import ProgramSite
from bot import housekeeping
from bot.dispatcher import Dispatcher
from bot.flows import build_router
from bot.limits import build_limiter
from bot.scheduler import Scheduler, Sweeper
from bot.settings import Settings
from bot.web import create_app
from handlers.core.context import Config
from handlers.core.ports import AI, LLM, Clock, Embedder, Sender, SystemClock
from handlers.core.router import Router
from handlers.core.sealing import Keyring
from handlers.linkedin.api import LinkedInApi
from storage.db import SessionFactory, create_engine, session_factory

if TYPE_CHECKING:
    from adapters.slack import SlackAdapter
    from adapters.teams.adapter import TeamsAdapter

log = structlog.get_logger(__name__)

# How long a shutdown waits for in-flight sends before giving up on them (they are
# re-sent by the next dispatcher after their lease expires).
SHUTDOWN_GRACE = 20.0


@dataclass
class Flywheel:
    """Everything one process runs, wired together."""

    settings: Settings
    engine: AsyncEngine
    sessions: SessionFactory
    clock: Clock
    router: Router
    dispatcher: Dispatcher
    limiter: Limiter
    sweeper: Sweeper
    links: Links
    slack: SlackAdapter | None = None
    teams: TeamsAdapter | None = None
    digests: DigestPages | None = None
    linkedin: LinkedInPages | None = None
    program: ProgramSite | None = None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def web_app(self) -> web.Application:
        routes: list[web.RouteDef] = self.links.routes()
        if self.digests is not None:
            routes += self.digests.routes()
        if self.linkedin is not None:
            routes += self.linkedin.routes()
        if self.program is not None:
            routes += self.program.routes()
        ack_routes: dict[str, str] = {}
        if self.slack is not None:
            routes += self.slack.routes()
            ack_routes["/slack/events"] = "slack"
        if self.teams is not None:
            routes += self.teams.routes()
            ack_routes["/api/messages"] = "teams"
        return create_app(self.engine, self.sessions, routes, ack_routes, self.clock)

    def health_app(self) -> web.Application:
        """Health, readiness and metrics only: what a `flywheel worker` serves, if asked."""
        return create_app(self.engine, self.sessions, [], {}, self.clock)

    def add_sender(self, sender: Sender) -> None:
        self.dispatcher.senders[sender.platform] = sender

    async def close(self) -> None:
        # Buffered clicks are written while the database is still there.
        await self.links.close()
        if self.program is not None:
            await self.program.close()
        if self.slack is not None:
            await self.slack.close()
        if self.teams is not None:
            await self.teams.close()
        for client in (self.sweeper.ai.embedder, self.sweeper.ai.llm, self.sweeper.ai.linkedin):
            closing = getattr(client, "close", None)
            if closing is not None:
                await closing()
        closing_fetcher = getattr(self.router.config.fetcher, "close", None)
        if closing_fetcher is not None:
            await closing_fetcher()
        await self.limiter.close()
        await self.engine.dispose()


def build(
    settings: Settings,
    *,
    clock: Clock | None = None,
    teams_credentials: object | None = None,
    linkedin_read_timeout: float | None = None,
) -> Flywheel:
    """Wire engine, router, dispatcher and the configured platform adapters. Connects nothing.

    `teams_credentials` replaces how outbound Bot Framework tokens are made (tests);
    `linkedin_read_timeout` how long LinkedIn's answer is waited for (tests).
    """
    clock = clock or SystemClock()
    engine = create_engine(settings.database_url)
    sessions = session_factory(engine)
    limiter = build_limiter(settings, engine)
    dispatcher = Dispatcher(
        engine,
        sessions,
        clock,
        {},
        rate=settings.flywheel_outbox_rate,
        max_attempts=settings.flywheel_outbox_max_attempts,
        concurrency=settings.flywheel_outbox_concurrency,
        limiter=limiter,
        lease=timedelta(seconds=settings.flywheel_outbox_lease_seconds),
    )
    ai = settings.openai_api_key is not None
    linkedin = _linkedin(settings, linkedin_read_timeout)
    allowed = settings.fetch_allow_networks
    if allowed:
        log.info("fetch.allowed_networks", networks=[str(n) for n in allowed])
    fetcher = SafeFetcher(settings.base_url, allowed)
    config = Config(
        admins=settings.admins,
        public_base_url=settings.base_url,
        ai_enabled=ai,
        linkedin=linkedin is not None,
        keyring=Keyring(settings.secret_keys) if settings.secret_keys else None,
        fetcher=fetcher,
    )
    services = AI(embedder=_embedder(settings), llm=_llm(settings), linkedin=linkedin)
    sweeper = Sweeper(sessions, clock, config, services)

    def committed() -> None:
        dispatcher.wake()
        sweeper.wake()

    router = build_router(sessions, clock, config, on_commit=committed)
    sweeper.schedule(router)
    links = Links(
        sessions,
        clock,
        public_base_url=settings.base_url,
        secret_key=(
            settings.flywheel_secret_key.get_secret_value()
            if settings.flywheel_secret_key
            else None
        ),
        trusted_proxies=settings.trusted_proxies,
        flush_interval=settings.flywheel_click_flush_seconds,
    )
    flywheel = Flywheel(
        settings, engine, sessions, clock, router, dispatcher, limiter, sweeper, links
    )
    flywheel.digests = DigestPages(sessions)
    if linkedin is not None:
        flywheel.linkedin = LinkedInPages(sessions, clock, config, linkedin, on_commit=committed)
    flywheel.program = ProgramSite(
        sessions,
        clock,
        config,
        public_base_url=settings.base_url,
        secret_key=(
            settings.flywheel_secret_key.get_secret_value()
            if settings.flywheel_secret_key
            else None
        ),
        providers=signin_providers(settings),
        session_lifetime=timedelta(hours=settings.flywheel_session_hours),
    )
    if settings.slack_configured:
        from adapters.slack import SlackAdapter

        flywheel.slack = SlackAdapter.from_settings(settings, router)
        flywheel.add_sender(flywheel.slack.sender)
    if settings.teams_configured:
        # Imported only when configured: the Bot Framework SDK is heavy to load.
        from adapters.teams.adapter import TeamsAdapter

        flywheel.teams = TeamsAdapter.from_settings(
            settings,
            router,
            credentials_factory=teams_credentials,
            limiter=limiter,
        )
        flywheel.add_sender(flywheel.teams.sender)
    return flywheel


def signin_providers(settings: Settings) -> list[oidc.Provider]:
    """The program page's sign-in providers that are configured: Slack, Microsoft."""
    providers = []
    if settings.slack_signin and settings.slack_client_secret and settings.slack_client_id:
        providers.append(
            oidc.slack_provider(
                settings.slack_openid_url,
                settings.slack_client_id,
                settings.slack_client_secret.get_secret_value(),
            )
        )
    microsoft = settings.microsoft_signin
    if microsoft is not None:
        client_id, secret = microsoft
        providers.append(
            oidc.microsoft_provider(
                settings.microsoft_signin_url,
                settings.microsoft_signin_tenant,
                client_id,
                secret.get_secret_value(),
            )
        )
    return providers


def _embedder(settings: Settings) -> Embedder | None:
    if settings.openai_api_key is None:
        return None
    from adapters.openai.embeddings import OpenAIEmbedder

    return OpenAIEmbedder.from_settings(settings)


def _linkedin(settings: Settings, read_timeout: float | None) -> LinkedInApi | None:
    if not settings.linkedin_configured or settings.linkedin_client_secret is None:
        return None
    from adapters.linkedin import LinkedInClient
    from adapters.linkedin.client import READ_TIMEOUT

    return LinkedInClient(
        client_id=settings.linkedin_client_id or "",
        client_secret=settings.linkedin_client_secret.get_secret_value(),
        oauth_url=settings.linkedin_oauth_url,
        api_url=settings.linkedin_api_url,
        read_timeout=read_timeout or READ_TIMEOUT,
    )


def _llm(settings: Settings) -> LLM | None:
    if settings.openai_api_key is None:
        return None
    from adapters.openai.chat import OpenAIChat

    return OpenAIChat.from_settings(settings)


async def run(flywheel: Flywheel, *, serve: bool = True, work: bool = True) -> None:
    """Serve HTTP and/or dispatch the outbox until SIGINT or SIGTERM, then shut down gently."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    runner: web.AppRunner | None = None
    worker: asyncio.Task[None] | None = None
    cleaning: asyncio.Task[None] | None = None
    scheduling: asyncio.Task[None] | None = None
    try:
        if serve:
            runner = web.AppRunner(
                flywheel.web_app(), access_log=None, shutdown_timeout=SHUTDOWN_GRACE
            )
            await runner.setup()
            site = web.TCPSite(runner, flywheel.settings.host, flywheel.settings.port)
            await site.start()
            log.info("web.listening", host=flywheel.settings.host, port=flywheel.settings.port)
        elif flywheel.settings.flywheel_metrics_port is not None:
            runner = web.AppRunner(flywheel.health_app(), access_log=None)
            await runner.setup()
            port = flywheel.settings.flywheel_metrics_port
            await web.TCPSite(runner, flywheel.settings.host, port).start()
            log.info("metrics.listening", host=flywheel.settings.host, port=port)
        if flywheel.slack is not None:
            await flywheel.slack.start()
        if work:
            worker = asyncio.create_task(flywheel.dispatcher.run())
            cleaning = asyncio.create_task(
                housekeeping.run(flywheel.sessions, flywheel.clock, stop)
            )
            scheduler = Scheduler(flywheel.engine, flywheel.settings.database_url, flywheel.sweeper)
            scheduling = asyncio.create_task(scheduler.run(stop))
        await stop.wait()
        log.info("shutdown.started")
    finally:
        if runner is not None:
            # Stop taking requests first, so nothing new is queued while the outbox drains.
            await runner.cleanup()
        stop.set()
        for task in (cleaning, scheduling):
            if task is not None:
                await task
        if worker is not None:
            await flywheel.dispatcher.stop()
            try:
                await asyncio.wait_for(worker, SHUTDOWN_GRACE)
            except TimeoutError:
                log.warning("shutdown.sends_abandoned", note="rows are retried after their lease")
        await flywheel.close()
        log.info("shutdown.finished")
