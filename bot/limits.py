"""Where the platforms' send limits are kept, chosen from the settings, with their metrics.

Redis when `REDIS_URL` is set; else PostgreSQL when it is the database (the limits are then
shared by every process on it with nothing else to run); else this process's memory, which
is right for the single process SQLite allows.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.limits import Limit, Limiter, LimiterUnavailable, Slot
from adapters.limits.memory import MemoryLimiter
from bot import metrics
from bot.settings import Settings
from storage.db import is_postgres


def build_limiter(settings: Settings, engine: AsyncEngine) -> Limiter:
    """The limiter the settings call for, measured. Connects nothing yet."""
    inner: Limiter
    if settings.redis_url is not None:
        from adapters.limits.redis import RedisLimiter

        inner = RedisLimiter(settings.redis_url.get_secret_value())
    elif is_postgres(engine):
        from adapters.limits.postgres import PostgresLimiter

        inner = PostgresLimiter(engine)
    else:
        inner = MemoryLimiter()
    return MeteredLimiter(inner)


class MeteredLimiter:
    """A limiter whose waits, deferrals and unreachable moments show on /metrics."""

    def __init__(self, inner: Limiter) -> None:
        self.inner = inner
        self.store = inner.store

    async def reserve(
        self, limits: Sequence[Limit], max_wait: float, replacing: float | None = None
    ) -> Slot:
        try:
            slot = await self.inner.reserve(limits, max_wait, replacing)
        except LimiterUnavailable:
            metrics.LIMITER_UNAVAILABLE.labels(self.store).inc()
            raise
        kind = "+".join(limit.kind for limit in limits)
        if replacing is not None:
            metrics.LIMITER_MISSED.labels(kind).inc()
        if slot.reserved:
            metrics.LIMITER_WAIT.labels(kind).observe(slot.wait)
        else:
            metrics.LIMITER_DEFERRED.labels(kind).inc()
        return slot

    async def record(self, limits: Sequence[Limit]) -> None:
        try:
            await self.inner.record(limits)
        except LimiterUnavailable:
            metrics.LIMITER_UNAVAILABLE.labels(self.store).inc()
            raise

    async def block(self, limit: Limit, seconds: float) -> None:
        try:
            await self.inner.block(limit, seconds)
        except LimiterUnavailable:
            metrics.LIMITER_UNAVAILABLE.labels(self.store).inc()
            raise

    async def close(self) -> None:
        await self.inner.close()
