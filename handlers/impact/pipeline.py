"""Demand and how the loop answers it: requests waiting by age, how long claiming and
publishing take, and how the experts respond and how loaded they are."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.core.lifecycle import Status
from handlers.impact.query import MEMBER, POST, REQUEST, VOTE, Period, rows, within
from handlers.routing.ping_status import ANSWERED, PingStatus
from storage.models import ExpertProfile, Ping

PING: Any = Ping.__table__  # type: ignore[attr-defined]
PROFILE: Any = ExpertProfile.__table__  # type: ignore[attr-defined]

# Waiting for an expert: nobody took it yet (open), or nobody could (unmet).
OPEN, UNMET = Status.OPEN.value, Status.DECLINED.value
# Someone is on it: the expert's load.
ACTIVE = (Status.CLAIMED.value, Status.IN_REVIEW.value, Status.CHANGES_REQUESTED.value)
AGES = ((7, "Under a week"), (14, "1–2 weeks"), (28, "2–4 weeks"), (None, "Over 4 weeks"))


@dataclass(frozen=True, slots=True)
class AgeRow:
    label: str
    open: int
    unmet: int
    votes: int


@dataclass(frozen=True, slots=True)
class Spread:
    """Durations in seconds: how many, the median and the 90th percentile."""

    count: int
    median: float | None
    p90: float | None


@dataclass(frozen=True, slots=True)
class ExpertRow:
    user_id: str
    pinged: int
    answered: int
    claimed: int
    active: int
    capacity: int | None

    @property
    def response_rate(self) -> float | None:
        return self.answered / self.pinged if self.pinged else None


def percentile(values: Sequence[float], share: float) -> float | None:
    """The nearest-rank percentile of sorted `values` (None for none)."""
    if not values:
        return None
    rank = max(1, math.ceil(share * len(values)))
    return values[rank - 1]


def spread(values: Sequence[float]) -> Spread:
    ordered = sorted(values)
    if not ordered:
        return Spread(0, None, None)
    middle = len(ordered) // 2
    median = ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2.0
    return Spread(len(ordered), median, percentile(ordered, 0.9))


async def waiting_by_age(session: AsyncSession, workspace_id: int, now: datetime) -> list[AgeRow]:
    """Requests waiting for an expert now, by how long ago they were asked, with their +1s."""
    votes = (
        select(VOTE.c.request_id, func.count().label("votes"))
        .where(VOTE.c.workspace_id == workspace_id)
        .group_by(VOTE.c.request_id)
        .subquery()
    )
    query = (
        select(REQUEST.c.status, REQUEST.c.created_at, func.coalesce(votes.c.votes, 0))
        .outerjoin(votes, votes.c.request_id == REQUEST.c.id)
        .where(REQUEST.c.workspace_id == workspace_id, REQUEST.c.status.in_((OPEN, UNMET)))
    )
    buckets = {label: [0, 0, 0] for _, label in AGES}
    for status, created, n in await rows(session, query):
        age = now - created
        label = next(name for days, name in AGES if days is None or age < timedelta(days=days))
        bucket = buckets[label]
        bucket[0 if status == OPEN else 1] += 1
        bucket[2] += int(n)
    return [AgeRow(label, *buckets[label]) for _, label in AGES]


async def time_to_claim(session: AsyncSession, workspace_id: int, period: Period) -> Spread:
    """From asked to first claimed, for the requests claimed in the period."""
    query = select(REQUEST.c.created_at, REQUEST.c.claimed_at).where(
        REQUEST.c.workspace_id == workspace_id,
        REQUEST.c.claimed_at.is_not(None),
        within(REQUEST.c.claimed_at, period.start, period.end),
    )
    return spread([(c - a).total_seconds() for a, c in await rows(session, query)])


async def time_to_publish(session: AsyncSession, workspace_id: int, period: Period) -> Spread:
    """From asked to published, for the posts of requests published in the period."""
    query = (
        select(REQUEST.c.created_at, POST.c.published_at)
        .join(REQUEST, REQUEST.c.id == POST.c.request_id)
        .where(
            POST.c.workspace_id == workspace_id,
            within(POST.c.published_at, period.start, period.end),
        )
    )
    return spread([(p - a).total_seconds() for a, p in await rows(session, query)])


async def experts(session: AsyncSession, workspace_id: int, period: Period) -> list[ExpertRow]:
    """Each expert asked in the period (or holding work now): pings, answers, claims, load."""
    answered = [s.value for s in ANSWERED]
    pings = (
        select(
            PING.c.member_id,
            func.count(),
            func.count().filter(PING.c.status.in_(answered)),
            func.count().filter(PING.c.status == PingStatus.CLAIMED.value),
        )
        .where(
            PING.c.workspace_id == workspace_id,
            within(PING.c.created_at, period.start, period.end),
        )
        .group_by(PING.c.member_id)
    )
    figures: dict[int, list[int]] = {}
    for member, n, a, c in await rows(session, pings):
        figures[int(member)] = [int(n), int(a), int(c), 0]
    load = (
        select(REQUEST.c.assignee_id, func.count())
        .where(
            REQUEST.c.workspace_id == workspace_id,
            REQUEST.c.status.in_(ACTIVE),
            REQUEST.c.assignee_id.is_not(None),
        )
        .group_by(REQUEST.c.assignee_id)
    )
    for member, n in await rows(session, load):
        figures.setdefault(int(member), [0, 0, 0, 0])[3] = int(n)
    if not figures:
        return []
    who = (
        select(MEMBER.c.id, MEMBER.c.user_id, PROFILE.c.capacity)
        .outerjoin(PROFILE, PROFILE.c.member_id == MEMBER.c.id)
        .where(MEMBER.c.workspace_id == workspace_id, MEMBER.c.id.in_(list(figures)))
    )
    found = []
    for i, user, cap in await rows(session, who):
        pinged, answered_, claimed, active = figures[int(i)]
        found.append(
            ExpertRow(user, pinged, answered_, claimed, active, None if cap is None else int(cap))
        )
    return sorted(found, key=lambda r: (-r.pinged, -r.active, r.user_id))
