"""Where a distribution stands: its statuses and the moves between them, checked in one place.

`captioning` (AI caption variants being written) → `pending` → `planned`. Without AI (any
more) a distribution waiting for variants is planned without them, so `captioning` may
also go straight to `planned`. A planned distribution is done: its people and their
messages are written.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Any

from sqlalchemy import update
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.core.errors import InvalidTransition
from storage.models import Distribution


class DistributionStatus(StrEnum):
    CAPTIONING = "captioning"
    PENDING = "pending"
    PLANNED = "planned"


ALLOWED: dict[DistributionStatus, frozenset[DistributionStatus]] = {
    DistributionStatus.CAPTIONING: frozenset(
        {DistributionStatus.PENDING, DistributionStatus.PLANNED}
    ),
    DistributionStatus.PENDING: frozenset({DistributionStatus.PLANNED}),
    DistributionStatus.PLANNED: frozenset(),
}


async def move_distribution(
    session: AsyncSession,
    distribution_id: int | None,
    sources: Iterable[DistributionStatus],
    target: DistributionStatus,
    **changes: Any,
) -> bool:
    """Move the distribution from any of `sources` to `target`, with `changes`.

    A move not allowed from one of `sources` raises `InvalidTransition` and writes nothing.
    The check of the stored status and the write are one UPDATE, so of two workers taking the
    same distribution exactly one moves it; the other gets False.
    """
    sources = list(sources)
    for source in sources:
        if target not in ALLOWED[source]:
            raise InvalidTransition(f"A {source.value} distribution can't become {target.value}.")
    moved = await session.exec(
        update(Distribution)
        .where(
            col(Distribution.id) == distribution_id,
            col(Distribution.status).in_([s.value for s in sources]),
        )
        .values(status=target.value, **changes)
    )
    return moved.rowcount == 1
