"""The shared send limits, held to one behaviour in every store: this process's memory,
PostgreSQL (a schema of its own) and Redis (keys of its own).

Redis is required when CI=true and skipped with the reason otherwise if it is unreachable.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import redis

from adapters.limits import Limit, Limiter, LimiterUnavailable, Window, rate
from adapters.limits.memory import MemoryLimiter
from adapters.limits.postgres import PostgresLimiter
from adapters.limits.redis import RedisLimiter
from storage.db import create_engine
from storage.migrate import upgrade
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
