"""What the edge tests check after every request: rows written, and error-level log lines.

`rows` counts every table in one query, so a test can say "nothing was written" after a
request of any kind. `ErrorLogs` records error-level lines from structlog and from the
standard library (aiohttp, Bolt and the Bot Framework SDK log there).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import structlog
from sqlalchemy import func, select
from sqlmodel import SQLModel

from bot.app import Flywheel

# Tables a request may not touch when it is refused; the scheduler's job store is the
# scheduler's own.
_SKIPPED = {"apscheduler_jobs", "alembic_version"}


async def rows(flywheel: Flywheel) -> dict[str, int]:
    """How many rows each of Flywheel's tables holds."""
    tables = [t for t in SQLModel.metadata.sorted_tables if t.name not in _SKIPPED]
    query = select(*[select(func.count()).select_from(t).scalar_subquery() for t in tables])
    async with flywheel.engine.connect() as conn:
        counts = (await conn.execute(query)).one()
    return {t.name: int(n) for t, n in zip(tables, counts, strict=True)}


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class ErrorLogs:
    """Error-level lines seen while watching (`lines` describes each in one string)."""

    def __init__(self, structured: list[dict[str, Any]], stdlib: _Errors) -> None:
        self._structured = structured
        self._stdlib = stdlib

    @property
    def lines(self) -> list[str]:
        found = [
            f"{e.get('event')} {e}"
            for e in self._structured
            if e.get("log_level") in ("error", "critical", "exception")
        ]
        found += [f"{r.name}: {r.getMessage()}" for r in self._stdlib.records]
        return found


@contextmanager
def watching() -> Iterator[ErrorLogs]:
    """Record error-level log lines from structlog and the standard library."""
    handler = _Errors()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        with structlog.testing.capture_logs() as structured:
            yield ErrorLogs(structured, handler)
    finally:
        root.removeHandler(handler)


@contextmanager
def warnings_and_errors() -> Iterator[list[logging.LogRecord]]:
    """Standard-library records of warning level and above."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep(level=logging.WARNING)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield records
    finally:
        root.removeHandler(handler)
