"""Platform send limits, shared by every process that sends: one protocol, three stores.

A limit is a key (a Slack workspace, a Teams conversation or tenant) and its sliding windows:
at most `count` sends in any `seconds`. A send *reserves* the earliest moment every one of
its limits allows one more, then waits until that moment. The reservation is one atomic step
in the store, so processes never race for the same slot and never poll: N dispatchers asking
at once get N successive slots.

The rule is written here (`reserve`, `Book`); each store keeps each key's recent send times
and runs the rule atomically, inside the store where it can, and the shared tests
(tests/test_limits.py, which also replays slots through the fake Teams Connector's count)
hold all three to the same behaviour:

- `MemoryLimiter` — this process's memory: one process (the SQLite set-up).
- `PostgresLimiter` — a row per key in the application's own PostgreSQL; a reservation is
  one statement (`flywheel_reserve`, the rule in PL/pgSQL) that locks the rows only while
  it runs (no other service to run).
- `RedisLimiter` — a Lua script in Redis, when `REDIS_URL` is set.

Times are the store's own clock (PostgreSQL's, Redis's), so processes on machines whose
clocks disagree still agree on the windows. A store that cannot be reached raises
`LimiterUnavailable`: the caller does not send, rather than send without limits.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Window:
    """At most `count` sends in any `seconds`."""

    count: int
    seconds: float


@dataclass(frozen=True, slots=True)
class Limit:
    """A key and the windows its sends must fit in; `kind` names it in metrics."""

    key: str
    windows: tuple[Window, ...]
    kind: str = "send"

    @property
    def span(self) -> float:
        """How far back send times matter."""
        return max(w.seconds for w in self.windows)

    @property
    def depth(self) -> int:
        """How many recent send times matter."""
        return max(w.count for w in self.windows)


def rate(key: str, per_second: float, kind: str = "send") -> Limit:
    """`per_second` sends a second, evenly spaced: one send in every 1/`per_second` s.

    Spacing rather than a budget per second: platforms count calls in sliding windows, and
    a second's budget spent at once, then again at the start of the next, earns a 429.
    """
    return Limit(key, (Window(1, 1.0 / per_second),), kind)


@dataclass(frozen=True, slots=True)
class Slot:
    """The answer to a reservation.

    `reserved`: the send may go `wait` seconds from now and is counted. Otherwise nothing was
    counted, and `wait` is how long until one could be reserved; `key` names the limit that
    is furthest off (a busy conversation, or its whole tenant). `at` is that moment on the
    store's clock: what the store counted, to hand back with `release`.
    """

    reserved: bool
    wait: float
    key: str | None = None
    at: float = 0.0


class LimiterUnavailable(Exception):
    """The store that keeps the limits cannot be reached: nothing may be sent for now."""


class Limiter(Protocol):
    """Send limits kept in one store, shared by everyone using that store."""

    store: str

    async def reserve(
        self, limits: Sequence[Limit], max_wait: float, replacing: float | None = None
    ) -> Slot:
        """Reserve the earliest moment all `limits` allow one more send, if it is at most
        `max_wait` seconds away; otherwise reserve nothing. Raises LimiterUnavailable.

        `replacing` hands back, in the same step, a slot (`Slot.at`) that was not used: the
        sender woke too late to send at it, and it must not take up a place in the windows.
        """
        ...

    async def record(self, limits: Sequence[Limit]) -> None:
        """Count a send made now without a reservation (an answer within a person's turn)."""
        ...

    async def block(self, limit: Limit, seconds: float) -> None:
        """Nothing for `limit` before `seconds` from now (the platform answered 429)."""
        ...

    async def close(self) -> None:
        """Release connections; the limiter may not be used afterwards."""
        ...


@dataclass
class Book:
    """One key's recent send times (sorted; reservations may lie ahead) and its block."""

    times: list[float] = field(default_factory=list)
    blocked_until: float = 0.0

    def earliest(self, limit: Limit, now: float) -> float:
        """The first moment `limit` allows one more send, never before an earlier one."""
        times = self.times
        at = max(now, self.blocked_until, times[-1] if times else now)
        for window in limit.windows:
            if len(times) >= window.count:
                at = max(at, times[-window.count] + window.seconds)
        return at

    def drop(self, at: float) -> None:
        """Forget a reservation that was never used (if it is still remembered)."""
        i = bisect.bisect_left(self.times, at)
        if i < len(self.times) and self.times[i] == at:
            del self.times[i]

    def add(self, at: float, limit: Limit, now: float) -> None:
        """Count a send at `at`, forgetting times no window can see any more."""
        bisect.insort(self.times, at)
        cutoff = now - limit.span
        first = bisect.bisect_right(self.times, cutoff)
        self.times = self.times[max(first, len(self.times) - limit.depth) :]

    @property
    def expires(self) -> float:
        """When this book says nothing any more (so a store may forget it), minus the span."""
        return max(self.times[-1] if self.times else 0.0, self.blocked_until)


def reserve(
    books: Sequence[Book],
    limits: Sequence[Limit],
    now: float,
    max_wait: float,
    replacing: float | None = None,
) -> Slot:
    """The rule every store runs atomically: one slot for all `limits`, or none; the unused
    slot `replacing` given back first."""
    if replacing is not None:
        for book in books:
            book.drop(replacing)
    at, key = now, None
    for book, limit in zip(books, limits, strict=True):
        earliest = book.earliest(limit, now)
        if earliest > at or key is None:
            at, key = max(at, earliest), limit.key
    wait = at - now
    if wait > max_wait:
        return Slot(False, wait, key, at)
    for book, limit in zip(books, limits, strict=True):
        book.add(at, limit, now)
    return Slot(True, wait, key, at)


__all__ = [
    "Book",
    "Limit",
    "Limiter",
    "LimiterUnavailable",
    "Slot",
    "Window",
    "rate",
    "reserve",
]
