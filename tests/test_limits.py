"""The shared send limits, held to one behaviour in every store: this process's memory,
PostgreSQL (a schema of its own) and Redis (keys of its own).

Redis is required when CI=true and skipped with the reason otherwise if it is unreachable.
"""

from __future__ import annotations

import asyncio
import os
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import redis

from adapters.limits import Limit, Limiter, LimiterUnavailable, Window, rate
from adapters.limits.memory import MemoryLimiter
from adapters.limits.postgres import PostgresLimiter
from adapters.limits.redis import RedisLimiter
from adapters.teams.limits import TeamsLimiter
from storage.db import create_engine
from storage.migrate import upgrade
from testing.fakes.bot_connector import TeamsWindows
from testing.fakes.clock import Timer
from tests.conftest import postgres_schema

REDIS_URL = os.environ.get("FLYWHEEL_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")

# Another limiter on the same store, as another process would have.
Another = Callable[[], Awaitable[Limiter]]


def require_redis() -> None:
    """Skip without Redis, except in CI, where its absence fails the test."""
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as error:
        if os.environ.get("CI") == "true":
            pytest.fail(f"Redis is required in CI: {error}")
        pytest.skip(f"Redis at {REDIS_URL} unreachable: {error}")


@pytest.fixture(params=["memory", "postgresql", "redis"])
async def stores(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Limiter, Another]]:
    """A limiter, and a way to make another on the same store (memory: the same one)."""
    made: list[Limiter] = []
    if request.param == "memory":
        limiter = MemoryLimiter()

        async def same() -> Limiter:
            return limiter

        yield limiter, same
        return
    if request.param == "postgresql":
        with postgres_schema() as url:
            engines = [create_engine(url)]
            await upgrade(engines[0])

            async def another_pg() -> Limiter:
                engines.append(create_engine(url))
                return PostgresLimiter(engines[-1])

            yield PostgresLimiter(engines[0]), another_pg
            for engine in engines:
                await engine.dispose()
        return
    require_redis()
    prefix = f"flywheel-test:{uuid.uuid4().hex[:10]}:"
    try:

        async def another_redis() -> Limiter:
            made.append(RedisLimiter(REDIS_URL, prefix=prefix))
            return made[-1]

        yield await another_redis(), another_redis
    finally:
        for limiter in made:
            await limiter.close()
        client = redis.Redis.from_url(REDIS_URL)
        for key in client.scan_iter(f"{prefix}*"):
            client.delete(key)
        client.close()


CHAT = Limit("chat", (Window(3, 60), Window(5, 120)))


async def test_each_window_holds_and_a_refusal_counts_nothing(
    stores: tuple[Limiter, Another],
) -> None:
    limiter, _ = stores
    for _ in range(3):
        slot = await limiter.reserve([CHAT], max_wait=0)
        assert slot.reserved and slot.wait == 0
    refused = await limiter.reserve([CHAT], max_wait=0)
    assert not refused.reserved and refused.key == "chat"
    assert 50 < refused.wait <= 60
    # The refusal took nothing: the next reservation is still a minute off, not later.
    later = await limiter.reserve([CHAT], max_wait=120)
    assert later.reserved and 50 < later.wait <= 60
    assert (await limiter.reserve([Limit("other", CHAT.windows)], max_wait=0)).wait == 0


async def test_a_rate_spaces_reservations_one_after_another(
    stores: tuple[Limiter, Another],
) -> None:
    limiter, _ = stores
    workspace = rate("slack:T1:workspace", 0.1)  # one send every 10 s
    waits = [(await limiter.reserve([workspace], max_wait=100)).wait for _ in range(3)]
    assert waits[0] == 0
    assert 9 < waits[1] <= 10 and 19 < waits[2] <= 20


async def test_all_limits_take_the_send_or_none_does(stores: tuple[Limiter, Another]) -> None:
    limiter, _ = stores
    tenant = Limit("tenant", (Window(2, 60),))
    chat_a, chat_b = Limit("a", (Window(4, 60),)), Limit("b", (Window(4, 60),))
    for _ in range(2):
        assert (await limiter.reserve([chat_a, tenant], max_wait=0)).reserved
    refused = await limiter.reserve([chat_b, tenant], max_wait=0)
    assert not refused.reserved and refused.key == "tenant"
    # Chat b was not counted by the refused send: all four of its sends are still there.
    for _ in range(4):
        assert (await limiter.reserve([chat_b], max_wait=0)).reserved
    assert (await limiter.reserve([chat_a], max_wait=0)).reserved
    assert (await limiter.reserve([chat_a], max_wait=0)).reserved
    assert not (await limiter.reserve([chat_a], max_wait=0)).reserved


async def test_a_block_holds_every_send_back_until_it_ends(
    stores: tuple[Limiter, Another],
) -> None:
    limiter, another = stores
    workspace = rate("slack:T1:workspace", 50)
    await limiter.block(workspace, 30)
    other = await another()
    refused = await other.reserve([workspace], max_wait=0)
    assert not refused.reserved and 25 < refused.wait <= 30
    slot = await other.reserve([workspace], max_wait=60)
    assert slot.reserved and 25 < slot.wait <= 30


async def test_a_send_recorded_without_asking_counts(stores: tuple[Limiter, Another]) -> None:
    limiter, _ = stores
    for _ in range(3):
        await limiter.record([CHAT])
    assert not (await limiter.reserve([CHAT], max_wait=0)).reserved


async def test_two_processes_share_one_set_of_limits(stores: tuple[Limiter, Another]) -> None:
    first, another = stores
    second = await another()
    assert (await first.reserve([CHAT], max_wait=0)).reserved
    assert (await second.reserve([CHAT], max_wait=0)).reserved
    assert (await first.reserve([CHAT], max_wait=0)).reserved
    assert not (await second.reserve([CHAT], max_wait=0)).reserved
    assert not (await first.reserve([CHAT], max_wait=0)).reserved


async def test_concurrent_reservations_never_take_the_same_slot(
    stores: tuple[Limiter, Another],
) -> None:
    first, another = stores
    second = await another()
    limit = Limit("burst", (Window(10, 60),))
    slots = await asyncio.gather(
        *(
            (first if n % 2 else second).reserve([limit, Limit("tenant", (Window(30, 1),))], 0)
            for n in range(30)
        )
    )
    assert sum(slot.reserved for slot in slots) == 10


async def test_an_unreachable_store_says_so_rather_than_allowing_the_send() -> None:
    engine = create_engine("postgresql+psycopg://postgres@127.0.0.1:1/none")
    unreachable: list[Limiter] = [PostgresLimiter(engine), RedisLimiter("redis://127.0.0.1:1/0")]
    try:
        for limiter in unreachable:
            with pytest.raises(LimiterUnavailable):
                await limiter.reserve([CHAT], max_wait=10)
            with pytest.raises(LimiterUnavailable):
                await limiter.record([CHAT])
            with pytest.raises(LimiterUnavailable):
                await limiter.block(CHAT, 5)
    finally:
        for limiter in unreachable:
            await limiter.close()
        await engine.dispose()


# -- Teams' windows, replayed through the fake Connector's own count ---------------------------


def _teams_limits(conversation: str) -> list[Limit]:
    # No margin: the windows exactly as published, so a slot one instant early shows.
    teams = TeamsLimiter(margin=0.0)
    return [teams.conversation(conversation, "tenant"), teams.tenant("tenant")]


def _replay(slots: list[tuple[float, str]]) -> TeamsWindows:
    """Every slot sent at its moment to a Connector counting as the fake one does."""
    windows = TeamsWindows()
    for at, conversation in sorted(slots):
        windows.admit(conversation, at)
    return windows


async def test_concurrent_teams_sends_fit_every_window_the_fake_connector_counts(
    stores: tuple[Limiter, Another],
) -> None:
    first, another = stores
    # Three processes, each with four sends reserving at once, over a few busy conversations.
    processes = [first, await another(), await another()]
    rng = random.Random(13)
    slots: list[tuple[float, str]] = []

    async def acquirer(limiter: Limiter) -> None:
        for _ in range(25):
            conversation = f"a:chat-{rng.randrange(5)}"
            slot = await limiter.reserve(_teams_limits(conversation), max_wait=3600)
            assert slot.reserved
            slots.append((slot.at, conversation))
            await asyncio.sleep(0)

    await asyncio.gather(*(acquirer(processes[n % 3]) for n in range(12)))
    windows = _replay(slots)
    assert not windows.exceeded_by, windows.exceeded_by
    assert len(slots) == 300


async def test_teams_slots_fill_the_windows_to_their_edge_and_never_past_it() -> None:
    # A fake clock; acquirers retry when told to wait, as the dispatcher does.
    timer = Timer()
    store = MemoryLimiter(timer)
    rng = random.Random(7)
    conversations = [f"a:chat-{n}" for n in range(40)]
    next_try = {n: timer.now for n in range(6)}  # six acquirers
    slots: list[tuple[float, str]] = []
    while len(slots) < 1500:
        acquirer = min(next_try, key=lambda n: (next_try[n], n))
        timer.now = max(timer.now, next_try[acquirer])
        conversation = rng.choice(conversations)
        slot = await store.reserve(_teams_limits(conversation), max_wait=2.0)
        if slot.reserved:
            slots.append((slot.at, conversation))
            next_try[acquirer] = slot.at + rng.choice((0.0, 0.001, 0.03))
        else:
            next_try[acquirer] = timer.now + slot.wait
    windows = _replay(slots)
    assert not windows.exceeded_by, windows.exceeded_by
    # Tight, too: the tenant's 30 a second are used, not a cautious fraction of them.
    times = sorted(at for at, _ in slots)
    assert (len(times) - 1) / (times[-1] - times[0]) > 29.0
    # And the edge itself: the 31st send of a full second goes exactly one second after the first.
    assert any(b - a == 1.0 for a, b in zip(times, times[30:], strict=False))


async def test_a_slot_handed_back_unused_frees_its_place(stores: tuple[Limiter, Another]) -> None:
    limiter, another = stores
    held = [await limiter.reserve([CHAT], max_wait=0) for _ in range(3)]
    assert all(slot.reserved for slot in held)
    # The sender of the last slot woke too late to use it: a new slot, the old one given back.
    again = await (await another()).reserve([CHAT], max_wait=0, replacing=held[-1].at)
    assert again.reserved and again.wait == 0
    # Handed back without a new slot (told to wait instead), the place is free all the same.
    refused = await limiter.reserve([CHAT], max_wait=-1, replacing=again.at)
    assert not refused.reserved
    assert (await limiter.reserve([CHAT], max_wait=0)).reserved
    assert not (await limiter.reserve([CHAT], max_wait=0)).reserved
