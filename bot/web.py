"""The aiohttp application: platform routes from the adapters, health, readiness, metrics."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from functools import cache

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot import logs, metrics
from handlers.core.ports import Clock
from storage import outbox
from storage.db import SessionFactory
from storage.migrate import is_current

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ACK_ROUTES = web.AppKey("ack_routes", dict[str, str])


@web.middleware
async def measure(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count requests by route and status; time platform acknowledgements."""
    started = time.perf_counter()
    route = (
        request.match_info.route.resource.canonical
        if request.match_info.route.resource
        else "unmatched"
    )
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as http_error:
        status = http_error.status
        raise
    finally:
        _requests(route, status).inc()
        platform = request.app.get(ACK_ROUTES, {}).get(route)
        if platform:
            _ack_seconds(platform).observe(time.perf_counter() - started)


# Looking a labelled child up takes a lock and costs more than the counting itself; routes,
# statuses and platforms are few, so each child is looked up once.
@cache
def _requests(route: str, status: int) -> Counter:
    return metrics.HTTP_REQUESTS.labels(route, str(status))


@cache
def _ack_seconds(platform: str) -> Histogram:
    return metrics.ACK_SECONDS.labels(platform)


def create_app(
    engine: AsyncEngine,
    sessions: SessionFactory,
    routes: list[web.RouteDef],
    ack_routes: dict[str, str],
    clock: Clock,
) -> web.Application:
    """Assemble routes; `ack_routes` maps platform routes to the platform they acknowledge."""
    logs.demote_worlds_faults()
    app = web.Application(middlewares=[measure], client_max_size=1024**2)
    app[ACK_ROUTES] = ack_routes

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_: web.Request) -> web.Response:
        try:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            current = await is_current(engine)
        except Exception as error:
            return web.json_response(
                {"status": "unavailable", "database": str(error)[:200]}, status=503
            )
        if not current:
            return web.json_response({"status": "unavailable", "migrations": "pending"}, status=503)
        return web.json_response({"status": "ready"})

    async def metrics_endpoint(_: web.Request) -> web.Response:
        async with sessions() as session:
            depth = await outbox.depth(session)
            backlog = await outbox.backlog(session, clock.now())
        for status in (outbox.PENDING, outbox.SENDING, outbox.SENT, outbox.FAILED):
            metrics.OUTBOX_DEPTH.labels(status).set(depth.get(status, 0))
        for age in outbox.BACKLOG_AGES:
            metrics.OUTBOX_BACKLOG.labels(age).set(backlog.rows.get(age, 0))
        metrics.OUTBOX_OLDEST_SECONDS.set(backlog.oldest_seconds)
        return web.Response(
            body=generate_latest(metrics.REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_endpoint)
    app.add_routes(routes)
    return app
