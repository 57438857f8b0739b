"""INSERT … ON CONFLICT on both backends, and the one place that tells them apart."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel.ext.asyncio.session import AsyncSession


def on_postgres(session: AsyncSession) -> bool:
    """Whether the session talks to PostgreSQL (else SQLite)."""
    return session.bind is not None and session.bind.dialect.name == "postgresql"


def insert(session: AsyncSession, table: Table) -> Any:
    """The backend's INSERT construct for `table`, which knows ON CONFLICT."""
    return (postgresql if on_postgres(session) else sqlite).insert(table)


async def insert_ignore(
    session: AsyncSession, table: Table, values: dict[str, Any], conflict: Sequence[str]
) -> bool:
    """Insert a row unless one with the same `conflict` columns exists; True if inserted."""
    statement = (
        insert(session, table)
        .values(**values)
        .on_conflict_do_nothing(index_elements=list(conflict))
        .returning(table.c.id)
    )
    result = await session.exec(statement)
    return result.first() is not None


async def insert_ignore_many(
    session: AsyncSession, table: Table, rows: Sequence[dict[str, Any]], conflict: Sequence[str]
) -> None:
    """Insert many rows, skipping those whose `conflict` columns exist already.

    Many parameter sets for one statement: compiled once, sent in batches by the driver.
    """
    if rows:
        statement = insert(session, table).on_conflict_do_nothing(index_elements=list(conflict))
        await session.exec(statement, params=list(rows))


async def add_to_many(
    session: AsyncSession,
    table: Table,
    rows: Sequence[dict[str, Any]],
    key: Sequence[str],
    column: str,
) -> None:
    """Insert rows, or add their `column` to the existing row with the same `key`."""
    if rows:
        statement = insert(session, table)
        statement = statement.on_conflict_do_update(
            index_elements=list(key),
            set_={column: table.c[column] + statement.excluded[column]},
        )
        await session.exec(statement, params=list(rows))
