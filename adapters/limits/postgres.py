"""Send limits in the application's own PostgreSQL: nothing else to run.

Each key is a row of `send_limit`. A reservation is one statement, `flywheel_reserve`
(migration 0015): the server creates the rows it needs, locks them in key order (two
reservations sharing keys queue rather than deadlock), applies the rule of
`adapters.limits` with its own clock and writes the new times, and the locks end with the
statement. No lock is held while a client waits for an answer or for the CPU, so a busy
machine slows each dispatcher down without queueing all of them behind one. Recording a
send and blocking a key (rare) lock the rows, apply the rule here and write them back.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, delete, literal_column, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.elements import ColumnClause

from adapters.limits import Book, Limit, LimiterUnavailable, Slot
from storage.models import SendLimit

_table = SendLimit.__table__  # type: ignore[attr-defined]
# PostgreSQL's clock, in seconds: every process reads the same one.
_CLOCK: ColumnClause[float] = literal_column("extract(epoch from clock_timestamp())::float8")
_NOW = _CLOCK.label("now")
_RESERVE = text(
    "SELECT reserved, wait, which, at FROM flywheel_reserve(CAST(:keys AS text[]), "
    "CAST(:windows AS jsonb), CAST(:max_wait AS float8), CAST(:replacing AS float8))"
)
# Rows nobody has used for a while are deleted after this many reservations by a process.
SWEEP_EVERY = 1000


class PostgresLimiter:
    """Limits shared by every process using the same PostgreSQL database."""

    store = "postgresql"

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._counted = 0

    async def reserve(
        self, limits: Sequence[Limit], max_wait: float, replacing: float | None = None
    ) -> Slot:
        params = {
            "keys": [limit.key for limit in limits],
            "windows": json.dumps(
                [[[w.count, w.seconds] for w in limit.windows] for limit in limits]
            ),
            "max_wait": max_wait,
            "replacing": replacing,
        }
        try:
            async with self.engine.connect() as conn:
                # One statement, committed as it ends: the rows' locks last no longer.
                autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
                row = (await autocommit.execute(_RESERVE, params)).one()
            slot = Slot(bool(row.reserved), float(row.wait), limits[row.which - 1].key, row.at)
            if slot.reserved:
                await self._sweep()
            return slot
        except (SQLAlchemyError, OSError) as error:
            raise LimiterUnavailable(_reason(error)) from error

    async def record(self, limits: Sequence[Limit]) -> None:
        try:
            async with self.engine.begin() as conn:
                books, now = await self._lock(conn, limits)
                for limit in limits:
                    books[limit.key].add(now, limit, now)
                await self._write(conn, books, limits)
        except (SQLAlchemyError, OSError) as error:
            raise LimiterUnavailable(_reason(error)) from error

    async def block(self, limit: Limit, seconds: float) -> None:
        try:
            async with self.engine.begin() as conn:
                books, now = await self._lock(conn, [limit])
                book = books[limit.key]
                book.blocked_until = max(book.blocked_until, now + seconds)
                await self._write(conn, books, [limit])
        except (SQLAlchemyError, OSError) as error:
            raise LimiterUnavailable(_reason(error)) from error

    async def close(self) -> None:
        """The engine is the application's: it is disposed of with the rest."""

    async def _lock(
        self, conn: AsyncConnection, limits: Sequence[Limit]
    ) -> tuple[dict[str, Book], float]:
        keys = sorted({limit.key for limit in limits})
        statement = (
            insert(_table)
            .values(
                [{"key": k, "times": [], "blocked_until": 0.0, "expires_at": 0.0} for k in keys]
            )
            # A no-op update: it locks an existing row, where DO NOTHING would not return it.
            .on_conflict_do_update(
                index_elements=["key"], set_={"key": insert(_table).excluded.key}
            )
            .returning(_table.c.key, _table.c.times, _table.c.blocked_until, _NOW)
        )
        rows = (await conn.execute(statement)).all()
        books = {
            row.key: Book(sorted(float(t) for t in row.times), float(row.blocked_until))
            for row in rows
        }
        return books, max(float(row.now) for row in rows)

    async def _write(
        self, conn: AsyncConnection, books: dict[str, Book], limits: Sequence[Limit]
    ) -> None:
        values: list[dict[str, Any]] = []
        for limit in {limit.key: limit for limit in limits}.values():
            book = books[limit.key]
            values.append(
                {
                    "k": limit.key,
                    "times": book.times,
                    "blocked_until": book.blocked_until,
                    "expires_at": book.expires + limit.span,
                }
            )
        statement = (
            update(_table)
            .where(_table.c.key == bindparam("k"))
            .values(
                times=bindparam("times", type_=_table.c.times.type),
                blocked_until=bindparam("blocked_until"),
                expires_at=bindparam("expires_at"),
            )
        )
        await conn.execute(statement, values)

    async def _sweep(self) -> None:
        """Now and then, delete the rows of keys nobody has sent to for a while."""
        self._counted += 1
        if self._counted < SWEEP_EVERY:
            return
        self._counted = 0
        async with self.engine.begin() as conn:
            await conn.execute(delete(_table).where(_table.c.expires_at < _CLOCK))


def _reason(error: BaseException) -> str:
    return f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"[:200]
