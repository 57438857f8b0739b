"""Teams' limits: per conversation 7/1 s, 8/2 s, 60/30 s, 1,800/hour; 30/s per tenant."""

from __future__ import annotations

import itertools

import pytest

from adapters.limits import Limit
from adapters.limits.memory import MemoryLimiter
from adapters.teams.limits import (
    CONVERSATION_WINDOWS,
    MARGIN,
    ConversationBusy,
    TeamsLimiter,
    Window,
)
from handlers.core.ports import RateLimited
from testing.fakes.clock import Timer


async def next_wait(limiter: MemoryLimiter, limit: Limit) -> float:
    """Seconds until `limit` allows one more send (nothing is taken)."""
    return (await limiter.reserve([limit], max_wait=-1)).wait


async def test_each_conversation_window_holds() -> None:
    timer = Timer()
    store = MemoryLimiter(timer)
    chat = Limit("chat", CONVERSATION_WINDOWS)
    for _ in range(7):
        assert await next_wait(store, chat) == 0
        await store.record([chat])
    assert await next_wait(store, chat) == pytest.approx(1.0)
    timer.now += 1.0
    await store.record([chat])  # the 8th within 2 s
    assert await next_wait(store, chat) == pytest.approx(1.0)  # 8 in 2 s: the first must age
    sent = 8
    while sent < 60:
        timer.now += await next_wait(store, chat)
        await store.record([chat])
        sent += 1
    assert timer.now - 1000.0 < 30
    assert await next_wait(store, chat) == pytest.approx(1000.0 + 30 - timer.now)
    assert await next_wait(store, Limit("other chat", CONVERSATION_WINDOWS)) == 0


async def test_the_hourly_cap_holds() -> None:
    timer = Timer()
    store = MemoryLimiter(timer)
    chat = Limit("chat", (Window(1800, 3600),))
    for _ in range(1800):
        await store.record([chat])
        timer.now += 1.0
    # 1,800 sends in the last 1,800 s: the next waits until the first is an hour old.
    assert await next_wait(store, chat) == pytest.approx(1800.0)
    timer.now += 1800.0
    assert await next_wait(store, chat) == 0


async def test_a_busy_conversation_is_handed_back_without_holding_the_tenant() -> None:
    timer = Timer()
    store = MemoryLimiter(timer)
    limiter = TeamsLimiter(store)
    for _ in range(7):
        await limiter.acquire("busy", "tenant")
    timer.now += 0.5
    for _ in range(60 - 7):
        await store.record([limiter.conversation("busy", "tenant")])
    with pytest.raises(ConversationBusy) as busy:
        await limiter.acquire("busy", "tenant")
    assert busy.value.retry_after > limiter.max_wait
    assert getattr(busy.value, "workspace_wide", True) is False
    # Another conversation of the same tenant goes at once.
    await limiter.acquire("quiet", "tenant")


async def test_the_tenant_limit_is_workspace_wide() -> None:
    limiter = TeamsLimiter(MemoryLimiter(Timer()), max_wait=0.0)
    await limiter.acquire("chat-1", "tenant")
    with pytest.raises(RateLimited) as limited:
        await limiter.acquire("chat-2", "tenant")
    assert not isinstance(limited.value, ConversationBusy)
    await limiter.acquire("chat-2", "another tenant")


async def test_the_tenants_sends_are_spaced_not_bunched() -> None:
    """A backlog's slots are evenly spaced, not 30 at once and 30 more a window later."""
    timer = Timer()
    store = MemoryLimiter(timer)
    tenant = TeamsLimiter(store).tenant("tenant")
    window = 1.0 + MARGIN
    slots = [(await store.reserve([tenant], max_wait=100.0)).at for _ in range(61)]
    gaps = [later - earlier for earlier, later in itertools.pairwise(slots)]
    assert min(gaps) == pytest.approx(window / 30)
    # Any 31 consecutive sends span more than Teams' second, with the margin to spare.
    assert min(b - a for a, b in zip(slots, slots[30:], strict=False)) >= window - 1e-9


async def test_a_429_quiets_its_conversation() -> None:
    timer = Timer()
    limiter = TeamsLimiter(MemoryLimiter(timer))
    await limiter.throttled("chat", "tenant", 5.0)
    with pytest.raises(ConversationBusy):
        await limiter.acquire("chat", "tenant")
    timer.now += 5.0
    await limiter.acquire("chat", "tenant")


async def test_short_waits_are_spent_in_place() -> None:
    store = MemoryLimiter()
    limiter = TeamsLimiter(store, conversation_windows=(Window(1, 0.05),))
    await limiter.acquire("chat", "tenant")
    await limiter.acquire("chat", "tenant")  # waited ~50 ms rather than failing
    assert len(store) == 2  # the conversation and its tenant


async def test_a_slot_sent_too_late_for_is_handed_back_with_the_next() -> None:
    timer = Timer()
    teams = TeamsLimiter(MemoryLimiter(timer), tenant_windows=(Window(1, 60),), margin=0.0)
    first = await teams.acquire("a:chat", "tenant")
    with pytest.raises(RateLimited):
        await teams.acquire("a:other", "tenant")  # the tenant's one send a minute is taken
    # Its sender was too late to use it: the new slot takes its place, not a minute later.
    again = await teams.acquire("a:chat", "tenant", missed=first)
    assert again.at == first.at == timer.now
