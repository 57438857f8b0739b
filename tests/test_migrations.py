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
        "workspace", "member", "expert_profile", "content_request", "vote", "inbound_event",
        "outbox", "message_ref",
    }
