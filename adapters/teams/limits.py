"""Teams' message limits, kept per conversation and per tenant, before each send.

Teams counts a bot's messages per conversation in several sliding windows at once and all
of a bot's calls per tenant; going past any of them earns a 429. The outbox dispatcher
paces each workspace as a whole; this limiter adds what only Teams knows, so one busy
conversation waits without holding back the tenant's other conversations.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from handlers.core.ports import RateLimited

# Waits up to this long are spent in place; longer ones hand the message back to the outbox.
# Two seconds covers the two short windows (7 in 1 s, 8 in 2 s), so a burst of a few cards
# to one chat — a form, its answer, a confirmation — goes out in order without a detour.
MAX_WAIT = 2.0
# Idle conversations are forgotten once this many sends have been recorded since the last sweep.
SWEEP_EVERY = 1000


@dataclass(frozen=True, slots=True)
class Window:
    """At most `count` sends in any `seconds`."""

    count: int
    seconds: float


# Per bot and conversation (chat or channel thread) — Microsoft's published limits.
CONVERSATION_WINDOWS = (Window(7, 1), Window(8, 2), Window(60, 30), Window(1800, 3600))
# Per bot and tenant, across every conversation.
TENANT_WINDOWS = (Window(30, 1),)


class ConversationBusy(RateLimited):
    """One conversation is at its limit: retry this message later, the others need not wait."""

    workspace_wide = False


class SlidingWindows:
    """Send times per key, checked against every window at once."""

    def __init__(self, windows: Sequence[Window], timer: Callable[[], float]) -> None:
        self.windows = tuple(windows)
        self._timer = timer
        self._span = max(w.seconds for w in self.windows)
        self._depth = max(w.count for w in self.windows)
        self._sent: dict[str, deque[float]] = {}
        self._blocked: dict[str, float] = {}
        self._recorded = 0

    def delay(self, key: str) -> float:
        """Seconds until `key` may send again; 0 when it may send now."""
        now = self._timer()
        wait = max(0.0, self._blocked.get(key, 0.0) - now)
        times = self._sent.get(key)
        if times:
            self._prune(times, now)
            for window in self.windows:
                if len(times) >= window.count:
                    wait = max(wait, times[-window.count] + window.seconds - now)
        return wait

    def record(self, key: str) -> None:
        """Count one send for `key`, now."""
        now = self._timer()
        times = self._sent.setdefault(key, deque(maxlen=self._depth))
        times.append(now)
        self._recorded += 1
        if self._recorded >= SWEEP_EVERY:
            self._sweep(now)

    def block(self, key: str, seconds: float) -> None:
        """Nothing for `key` before `seconds` from now (the platform said so with a 429)."""
        until = self._timer() + seconds
        self._blocked[key] = max(self._blocked.get(key, 0.0), until)

    def _prune(self, times: deque[float], now: float) -> None:
        while times and times[0] <= now - self._span:
            times.popleft()

    def _sweep(self, now: float) -> None:
        self._recorded = 0
        for key in list(self._sent):
            self._prune(self._sent[key], now)
            if not self._sent[key]:
                del self._sent[key]
        for key, until in list(self._blocked.items()):
            if until <= now:
                del self._blocked[key]

    def __len__(self) -> int:
        return len(self._sent)


class TeamsLimiter:
    """Per-conversation and per-tenant windows, consulted by every send to Teams."""

    def __init__(
        self,
        *,
        conversation_windows: Sequence[Window] = CONVERSATION_WINDOWS,
        tenant_windows: Sequence[Window] = TENANT_WINDOWS,
        max_wait: float = MAX_WAIT,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self.conversations = SlidingWindows(conversation_windows, timer)
        self.tenants = SlidingWindows(tenant_windows, timer)
        self.max_wait = max_wait

    async def acquire(self, conversation: str, tenant: str) -> None:
        """Take a send slot, waiting briefly if need be.

        Raises ConversationBusy when the conversation's wait is long (the message goes back
        to the outbox for later) and RateLimited when the whole tenant's is.
        """
        while True:
            for_conversation = self.conversations.delay(conversation)
            for_tenant = self.tenants.delay(tenant)
            wait = max(for_conversation, for_tenant)
            if wait <= 0:
                # Checked and recorded with no await in between: concurrent sends can't both
                # take the last slot.
                self.conversations.record(conversation)
                self.tenants.record(tenant)
                return
            if wait > self.max_wait:
                if for_conversation >= for_tenant:
                    raise ConversationBusy(for_conversation, "Teams conversation limit")
                raise RateLimited(for_tenant, "Teams tenant limit")
            await asyncio.sleep(wait)

    def record(self, conversation: str, tenant: str) -> None:
        """Count a send made outside `acquire` (an answer within the person's own turn)."""
        self.conversations.record(conversation)
        self.tenants.record(tenant)

    def throttled(self, conversation: str, seconds: float) -> None:
        """Teams answered 429 for this conversation: keep it quiet for `seconds`."""
        self.conversations.block(conversation, seconds)


__all__ = [
    "CONVERSATION_WINDOWS",
    "TENANT_WINDOWS",
    "ConversationBusy",
    "SlidingWindows",
    "TeamsLimiter",
    "Window",
]
