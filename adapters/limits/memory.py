"""Send limits in this process's memory: right for one process (the SQLite set-up)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from adapters.limits import Book, Limit, Slot, reserve

# Idle keys are forgotten once this many sends have been counted since the last sweep.
SWEEP_EVERY = 1000


class MemoryLimiter:
    """The limits of one process; `timer` is a monotonic clock in seconds (tests move it)."""

    store = "memory"

    def __init__(self, timer: Callable[[], float] = time.monotonic) -> None:
        self._timer = timer
        self._books: dict[str, tuple[Book, Limit]] = {}
        self._counted = 0

    async def reserve(
        self, limits: Sequence[Limit], max_wait: float, replacing: float | None = None
    ) -> Slot:
        now = self._timer()
        slot = reserve([self._book(limit) for limit in limits], limits, now, max_wait, replacing)
        if slot.reserved:
            self._counted += 1
            if self._counted >= SWEEP_EVERY:
                self._sweep(now)
        return slot

    async def record(self, limits: Sequence[Limit]) -> None:
        now = self._timer()
        for limit in limits:
            self._book(limit).add(now, limit, now)

    async def block(self, limit: Limit, seconds: float) -> None:
        book = self._book(limit)
        book.blocked_until = max(book.blocked_until, self._timer() + seconds)

    async def close(self) -> None:
        self._books.clear()

    def __len__(self) -> int:
        """Keys with something to remember."""
        return len(self._books)

    def _book(self, limit: Limit) -> Book:
        known = self._books.get(limit.key)
        if known is None:
            known = self._books[limit.key] = (Book(), limit)
        return known[0]

    def _sweep(self, now: float) -> None:
        self._counted = 0
        for key, (book, limit) in list(self._books.items()):
            if book.expires + limit.span <= now:
                del self._books[key]
