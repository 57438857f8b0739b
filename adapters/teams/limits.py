"""Teams' message limits, kept per conversation and per tenant, before each send.

Teams counts a bot's messages per conversation in several sliding windows at once and all
of a bot's calls per tenant; going past any of them earns a 429. The outbox dispatcher
paces each workspace as a whole; this adds what only Teams knows, so one busy conversation
waits without holding back the tenant's other conversations. The counts live in the shared
limiter (`adapters.limits`), so they hold across every process that sends to the tenant.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

import structlog

from adapters.limits import Limit, Limiter, LimiterUnavailable, Window
from adapters.limits.memory import MemoryLimiter
from handlers.core.ports import RateLimited

log = structlog.get_logger(__name__)

# Waits up to this long are spent in place; longer ones hand the message back to the outbox.
# Two seconds covers the two short windows (7 in 1 s, 8 in 2 s), so a burst of a few cards
# to one chat — a form, its answer, a confirmation — goes out in order without a detour.
MAX_WAIT = 2.0

# Each window is kept this much longer than Teams counts it: a call leaves at its slot but
# arrives a little later (a new connection's handshake, a busy machine), and one arriving
# late must still fall outside the window it left. At 0.1 s, three workers on two busy cores
# still overran the tenant's second about once in 3,000 calls; at 0.2 s none did, for 30/1.2 s
# (0.83 of the tenant's rate).
MARGIN = 0.2

# A send woken this much after its slot takes a new one (at most SLOT_TRIES slots in all).
LATE = 0.05
SLOT_TRIES = 3

# Per bot and conversation (chat or channel thread) — Microsoft's published limits.
CONVERSATION_WINDOWS = (Window(7, 1), Window(8, 2), Window(60, 30), Window(1800, 3600))
# Per bot and tenant, across every conversation.
TENANT_WINDOWS = (Window(30, 1),)


@dataclass(frozen=True, slots=True)
class Ticket:
    """A send slot taken: the event loop's time it is due, and the slot on the store's clock."""

    due: float
    at: float

    def late(self) -> bool:
        """Whether sending now would land too far after the slot (see LATE)."""
        return asyncio.get_running_loop().time() - self.due > LATE


class ConversationBusy(RateLimited):
    """One conversation is at its limit: retry this message later, the others need not wait."""

    workspace_wide = False


class TeamsLimiter:
    """Per-conversation and per-tenant windows, consulted by every send to Teams."""

    def __init__(
        self,
        limiter: Limiter | None = None,
        *,
        conversation_windows: Sequence[Window] = CONVERSATION_WINDOWS,
        tenant_windows: Sequence[Window] = TENANT_WINDOWS,
        max_wait: float = MAX_WAIT,
        margin: float = MARGIN,
    ) -> None:
        self.limiter: Limiter = limiter if limiter is not None else MemoryLimiter()
        self.conversation_windows = tuple(
            Window(w.count, w.seconds + margin) for w in conversation_windows
        )
        widened = tuple(Window(w.count, w.seconds + margin) for w in tenant_windows)
        # The tenant's sends are also spaced evenly. With the window alone, a backlog takes
        # its whole budget at once and then again each time the window turns (slot n + 30 is
        # slot n + the window): a burst of 30 calls queued on one busy machine lands spread over
        # its own length, its last calls late and the next burst's first on time, together
        # inside Teams' window. Spaced, each call leaves on its own.
        spacing = tuple(Window(1, w.seconds / w.count) for w in widened if w.count > 1)
        self.tenant_windows = widened + spacing
        self.max_wait = max_wait

    def conversation(self, conversation: str, tenant: str) -> Limit:
        return Limit(
            f"teams:{tenant}:conversation:{conversation}",
            self.conversation_windows,
            "teams_conversation",
        )

    def tenant(self, tenant: str) -> Limit:
        return Limit(f"teams:{tenant}:tenant", self.tenant_windows, "teams_tenant")

    async def acquire(self, conversation: str, tenant: str, missed: Ticket | None = None) -> Ticket:
        """Take a send slot in both the conversation and the tenant, waiting briefly if need be;
        `missed`, a slot the caller was too late for, is handed back in the same step.

        Raises ConversationBusy when the conversation's wait is long (the message goes back
        to the outbox for later), RateLimited when the whole tenant's is, and
        LimiterUnavailable when the shared counts cannot be reached (nothing is sent).
        """
        chat = self.conversation(conversation, tenant)
        loop = asyncio.get_running_loop()
        replacing = missed.at if missed is not None else None
        ticket = Ticket(loop.time(), 0.0)
        for _ in range(SLOT_TRIES):
            slot = await self.limiter.reserve(
                (chat, self.tenant(tenant)), self.max_wait, replacing=replacing
            )
            if not slot.reserved:
                if slot.key == chat.key:
                    raise ConversationBusy(slot.wait, "Teams conversation limit")
                raise RateLimited(slot.wait, "Teams tenant limit")
            ticket = Ticket(loop.time() + slot.wait, slot.at)
            if slot.wait > 0:
                await asyncio.sleep(slot.wait)
            if not ticket.late():
                return ticket
            # Woken late (a busy machine): sent now, it would land among later slots' sends
            # and crowd Teams' window. A new slot keeps the windows; the missed one is handed
            # back with it, so it takes no place in them.
            replacing = slot.at
        return ticket

    async def record(self, conversation: str, tenant: str) -> None:
        """Count a send made outside `acquire` (an answer within the person's own turn).

        The answer goes whatever the count says: the person is waiting for it. With the
        shared counts out of reach, it is not counted, and says so.
        """
        try:
            await self.limiter.record(
                (self.conversation(conversation, tenant), self.tenant(tenant))
            )
        except LimiterUnavailable as error:
            log.warning("teams.reply_not_counted", error=str(error))

    async def throttled(self, conversation: str, tenant: str, seconds: float) -> None:
        """Teams answered 429 for this conversation: keep it quiet for `seconds`."""
        try:
            await self.limiter.block(self.conversation(conversation, tenant), seconds)
        except LimiterUnavailable as error:
            log.warning("teams.throttle_not_shared", error=str(error))


__all__ = [
    "CONVERSATION_WINDOWS",
    "TENANT_WINDOWS",
    "ConversationBusy",
    "TeamsLimiter",
    "Ticket",
    "Window",
]
