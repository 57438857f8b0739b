"""What every figure's query shares: the period, the tables, and reading rows back.

The impact read model answers with SQL aggregates written so that SQLite and PostgreSQL give
the same answer; Python only arranges the few rows that come back. Periods are half-open,
[start, end), in UTC. The read model is split by what it reads: `clicks` (the click tally),
`reach` (shares and clicks by post, sharer or author), `totals` (a workspace's headline
numbers), `rankings` (the week's lists) and `people` (one person's part).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, false
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import (
    Click,
    ClickTally,
    ContentRequest,
    DailyClicks,
    Member,
    Post,
    Share,
    Vote,
    Win,
)

SHARE: Any = Share.__table__  # type: ignore[attr-defined]
CLICK: Any = Click.__table__  # type: ignore[attr-defined]
TALLY: Any = ClickTally.__table__  # type: ignore[attr-defined]
DAILY: Any = DailyClicks.__table__  # type: ignore[attr-defined]
WIN: Any = Win.__table__  # type: ignore[attr-defined]
POST: Any = Post.__table__  # type: ignore[attr-defined]
REQUEST: Any = ContentRequest.__table__  # type: ignore[attr-defined]
VOTE: Any = Vote.__table__  # type: ignore[attr-defined]
MEMBER: Any = Member.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Period:
    start: datetime
    end: datetime


async def rows(session: AsyncSession, statement: Any) -> list[Any]:
    """Every row a statement returns."""
    return list((await session.exec(statement)).all())


async def count(session: AsyncSession, query: Any) -> int:
    """The single number a count query returns (0 for none)."""
    return int((await rows(session, query))[0][0] or 0)


def within(column: Any, start: datetime, end: datetime) -> Any:
    """`column` in [start, end)."""
    return and_(column >= start, column < end)


def counted(table: Any) -> Any:
    """Click rows that count: neither a preview nor a repeat."""
    return and_(table.c.is_preview == false(), table.c.is_repeat == false())
