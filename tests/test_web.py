"""Liveness, readiness (database reachable, migrations current) and Prometheus metrics."""

from __future__ import annotations

from datetime import timedelta

from aiohttp.test_utils import TestClient, TestServer

from adapters.limits import rate
from bot.app import Flywheel, build
from bot.settings import load_settings
from storage import outbox
from storage.db import transaction
from storage.migrate import upgrade
from storage.models import Workspace
from testing.fakes.clock import FrozenClock


async def client_for(database_url: str) -> tuple[TestClient, Flywheel]:  # type: ignore[type-arg]
    app = build(load_settings(database_url=database_url, _env_file=None), clock=FrozenClock())
    client = TestClient(TestServer(app.web_app()))
    await client.start_server()
    return client, app


async def test_health_and_readiness(database_url: str) -> None:
    client, app = await client_for(database_url)
    try:
        assert (await client.get("/healthz")).status == 200
        pending = await client.get("/readyz")
        assert pending.status == 503
        assert (await pending.json())["migrations"] == "pending"
        await upgrade(app.engine)
        ready = await client.get("/readyz")
        assert ready.status == 200
        assert (await ready.json()) == {"status": "ready"}
    finally:
        await client.close()
        await app.close()


async def test_readiness_fails_when_the_database_is_unreachable(tmp_path: object) -> None:
    client, app = await client_for("postgresql+psycopg://nobody@127.0.0.1:9/none?connect_timeout=1")
    try:
        response = await client.get("/readyz")
        assert response.status == 503
        assert "database" in await response.json()
    finally:
        await client.close()
        await app.close()


async def test_metrics_exposes_requests_and_outbox_depth(migrated_url: str) -> None:
    client, app = await client_for(migrated_url)
    try:
        await client.get("/healthz")
        await client.get("/no-such-page")
        body = await (await client.get("/metrics")).text()
        assert 'flywheel_http_requests_total{route="/healthz",status="200"}' in body
        assert 'status="404"' in body
        assert 'flywheel_outbox_rows{status="pending"} 0.0' in body
        assert "flywheel_ack_seconds" in body
        assert "flywheel_outbox_sent_total" in body
    finally:
        await client.close()
        await app.close()


async def test_metrics_show_the_backlog_by_age_and_the_limits(migrated_url: str) -> None:
    clock = FrozenClock()
    app = build(load_settings(database_url=migrated_url, _env_file=None), clock=clock)
    client = TestClient(TestServer(app.web_app()))
    await client.start_server()
    try:
        async with transaction(app.sessions) as session:
            workspace = Workspace(platform="slack", external_id="T1", created_at=clock.now())
            session.add(workspace)
            await session.flush()
            for n, minutes in enumerate((0, 2, 2, 90)):
                await outbox.enqueue(
                    session,
                    workspace_id=workspace.id or 0,
                    dedupe_key=f"k{n}",
                    kind="message",
                    target={"user": f"U{n}"},
                    payload={"text": "hi"},
                    now=clock.now() - timedelta(minutes=minutes),
                )
        await app.limiter.reserve([rate("slack:T1:workspace", 1.0, "slack_workspace")], 10)
        body = await (await client.get("/metrics")).text()
        assert 'flywheel_outbox_backlog{age="under_1m"} 1.0' in body
        assert 'flywheel_outbox_backlog{age="1m_to_5m"} 2.0' in body
        assert 'flywheel_outbox_backlog{age="5m_to_1h"} 0.0' in body
        assert 'flywheel_outbox_backlog{age="over_1h"} 1.0' in body
        assert "flywheel_outbox_oldest_unsent_seconds 5400.0" in body
        assert 'flywheel_limiter_wait_seconds_count{limit="slack_workspace"}' in body
        assert "flywheel_outbox_rate_limited_total" in body
    finally:
        await client.close()
        await app.close()
