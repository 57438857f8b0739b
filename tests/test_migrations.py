"""Migrations and models agree; upgrading twice is harmless; other tables are left alone."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

import storage.models  # noqa: F401
from storage.db import create_engine
from storage.migrate import current_revision, head_revision, include_object, is_current, upgrade


async def test_models_and_migrations_agree(database_url: str) -> None:
    engine = create_engine(database_url)
    await upgrade(engine)

    def diff(conn: Connection) -> list[object]:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "include_object": include_object}
        )
        return list(compare_metadata(context, SQLModel.metadata))

    async with engine.connect() as conn:
        assert await conn.run_sync(diff) == []
    await engine.dispose()


async def test_upgrade_is_idempotent_and_leaves_foreign_tables(database_url: str) -> None:
    engine = create_engine(database_url)
    assert not await is_current(engine)
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE apscheduler_jobs (id VARCHAR(191) PRIMARY KEY)"))
    await upgrade(engine)
    await upgrade(engine)
    assert await current_revision(engine) == head_revision()
    assert await is_current(engine)
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM apscheduler_jobs"))).scalar() == 0
    await engine.dispose()


def test_env_imports_every_model() -> None:
    assert {t for t in SQLModel.metadata.tables} >= {
        "workspace",
        "member",
        "expert_profile",
        "content_request",
        "vote",
        "inbound_event",
        "outbox",
        "message_ref",
    }


async def test_housekeeping_forgets_old_event_ids_sent_rows_and_form_cards(
    migrated_url: str,
) -> None:
    from datetime import timedelta

    from bot.housekeeping import sweep
    from storage import events, outbox
    from storage.db import session_factory, transaction
    from storage.models import TeamsFormCard, Workspace
    from testing.fakes.clock import FrozenClock

    clock = FrozenClock()
    engine = create_engine(migrated_url)
    sessions = session_factory(engine)
    async with transaction(sessions) as session:
        workspace = Workspace(platform="slack", external_id="T1", created_at=clock.now())
        session.add(workspace)
        await session.flush()
        assert await events.first_delivery(
            session, platform="slack", workspace="T1", event_id="Ev1", now=clock.now()
        )
        await outbox.enqueue(
            session,
            workspace_id=workspace.id or 0,
            dedupe_key="k",
            kind="message",
            target={"user": "U1"},
            payload={"text": "hi"},
            now=clock.now(),
        )
        session.add(
            TeamsFormCard(
                workspace_id=workspace.id or 0,
                user_id="U1",
                form_id="request_form",
                state_key="s",
                created_at=clock.now(),
            )
        )
    [row] = await outbox.claim(
        engine, worker="w", now=clock.now(), limit=10, lease=timedelta(seconds=60)
    )
    async with transaction(sessions) as session:
        await outbox.mark_sent(
            session, row, worker="w", now=clock.now(), channel=None, message_id=None
        )
    assert await sweep(sessions, clock) == (0, 0, 0)
    clock.advance(days=15)
    assert await sweep(sessions, clock) == (1, 1, 0)
    clock.advance(days=16)
    assert await sweep(sessions, clock) == (0, 0, 1)
    async with transaction(sessions) as session:
        assert await events.first_delivery(
            session, platform="slack", workspace="T1", event_id="Ev1", now=clock.now()
        )
    await engine.dispose()
