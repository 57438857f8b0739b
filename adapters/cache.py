"""One small expiring cache for every adapter: profiles, tracked-link targets.

Each process keeps its own copy, so only what may be a few minutes stale goes in it (a
profile, where a tracked link points); anything that must agree across processes lives in
the database. Reads and writes never await, so concurrent tasks on one event loop see each
operation whole.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TTLCache(Generic[K, V]):
    """At most `size` values, each for `ttl` seconds; the least recently used goes first."""

    def __init__(
        self, *, ttl: float, size: int, timer: Callable[[], float] = time.monotonic
    ) -> None:
        if ttl <= 0 or size <= 0:
            raise ValueError(f"a cache needs a positive ttl and size, not {ttl} and {size}")
        self.ttl = ttl
        self.size = size
        self._timer = timer
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()

    def get(self, key: K) -> V | None:
        """The value kept for `key`, or None when there is none or it expired."""
        found = self._entries.get(key)
        if found is None:
            return None
        if found[0] <= self._timer():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return found[1]

    def put(self, key: K, value: V) -> None:
        """Keep `value` for `ttl` seconds from now, dropping the least recently used if full."""
        self._entries[key] = (self._timer() + self.ttl, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)
