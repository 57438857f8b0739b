"""Teams' limits: per conversation 7/1 s, 8/2 s, 60/30 s, 1,800/hour; 30/s per tenant."""

from __future__ import annotations

import pytest

from adapters.teams.limits import ConversationBusy, SlidingWindows, TeamsLimiter, Window
from handlers.core.ports import RateLimited
from testing.fakes.clock import Timer


def test_each_conversation_window_holds() -> None:
    timer = Timer()
    windows = SlidingWindows(
        (Window(7, 1), Window(8, 2), Window(60, 30), Window(1800, 3600)), timer
    )
    for _ in range(7):
        assert windows.delay("chat") == 0
        windows.record("chat")
    assert windows.delay("chat") == pytest.approx(1.0)
    timer.now += 1.0
    windows.record("chat")  # the 8th within 2 s
    assert windows.delay("chat") == pytest.approx(1.0)  # 8 in 2 s: wait for the first to age
    sent = 8
    while sent < 60:
        timer.now += windows.delay("chat")
        windows.record("chat")
        sent += 1
    assert timer.now - 1000.0 < 30
    assert windows.delay("chat") == pytest.approx(1000.0 + 30 - timer.now)
    assert windows.delay("other chat") == 0


def test_the_hourly_cap_holds() -> None:
    timer = Timer()
    windows = SlidingWindows((Window(1800, 3600),), timer)
    for _ in range(1800):
        windows.record("chat")
        timer.now += 1.0
    # 1,800 sends in the last 1,800 s: the next waits until the first is an hour old.
    assert windows.delay("chat") == pytest.approx(1800.0)
    timer.now += 1800.0
    assert windows.delay("chat") == 0


async def test_a_busy_conversation_is_handed_back_without_holding_the_tenant() -> None:
    timer = Timer()
    limiter = TeamsLimiter(timer=timer)
    for _ in range(7):
        await limiter.acquire("busy", "tenant")
    timer.now += 0.5
    for _ in range(60 - 7):
        limiter.conversations.record("busy")
    with pytest.raises(ConversationBusy) as busy:
        await limiter.acquire("busy", "tenant")
    assert busy.value.retry_after > limiter.max_wait
    assert getattr(busy.value, "workspace_wide", True) is False
    # Another conversation of the same tenant goes at once.
    await limiter.acquire("quiet", "tenant")


async def test_the_tenant_limit_is_workspace_wide() -> None:
    timer = Timer()
    limiter = TeamsLimiter(timer=timer, max_wait=0.0)
    for n in range(30):
        await limiter.acquire(f"chat-{n}", "tenant")
    with pytest.raises(RateLimited) as limited:
        await limiter.acquire("chat-31", "tenant")
    assert not isinstance(limited.value, ConversationBusy)
    await limiter.acquire("chat-31", "another tenant")


async def test_a_429_quiets_its_conversation() -> None:
    timer = Timer()
    limiter = TeamsLimiter(timer=timer)
    limiter.throttled("chat", 5.0)
    with pytest.raises(ConversationBusy):
        await limiter.acquire("chat", "tenant")
    timer.now += 5.0
    await limiter.acquire("chat", "tenant")


async def test_short_waits_are_spent_in_place() -> None:
    limiter = TeamsLimiter(conversation_windows=(Window(1, 0.05),))
    await limiter.acquire("chat", "tenant")
    await limiter.acquire("chat", "tenant")  # waited ~50 ms rather than failing
    assert len(limiter.conversations) == 1
