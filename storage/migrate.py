"""Apply and inspect Alembic migrations from inside the running program."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

MIGRATIONS = Path(__file__).parent / "migrations"


def include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    """Only our tables: the scheduler's (and anyone else's) are never altered or dropped."""
    if type_ == "table" and reflected and compare_to is None:
        from sqlmodel import SQLModel

        return name in SQLModel.metadata.tables
    return True


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the schema to `revision`; running it again changes nothing."""

    def run(connection: Connection) -> None:
        command.upgrade(alembic_config(connection), revision)

    async with engine.connect() as conn:
        await migrating(conn, run)


async def migrating(conn: AsyncConnection, run: Callable[[Connection], None]) -> None:
    """Run migrations in one transaction; on SQLite, with foreign keys off meanwhile.

    SQLite alters a table by copying it and dropping the old one, which its foreign keys
    refuse while other rows point at it. The pragma only takes effect outside a
    transaction, and the keys are checked before the migration commits.
    """
    sqlite = conn.dialect.name == "sqlite"
    if sqlite:
        await conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
        await conn.commit()
    try:
        async with conn.begin():
            await conn.run_sync(run)
            if sqlite:
                broken = (await conn.exec_driver_sql("PRAGMA foreign_key_check")).all()
                if broken:
                    raise RuntimeError(f"the migration left rows pointing nowhere: {broken[:5]}")
    finally:
        if sqlite:
            await conn.exec_driver_sql("PRAGMA foreign_keys=ON")
            await conn.commit()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def current_revision(engine: AsyncEngine) -> str | None:
    def read(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with engine.connect() as conn:
        return await conn.run_sync(read)


async def is_current(engine: AsyncEngine) -> bool:
    return await current_revision(engine) == head_revision()
