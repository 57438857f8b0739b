"""The adapters' one expiring cache: values expire after their time, the least recently used
goes first when full, and both platforms' profiles go through it."""

from __future__ import annotations

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from adapters.cache import TTLCache
from adapters.slack.profiles import Profiles
from testing.fakes.clock import Timer
from testing.fakes.slack_api import FakeSlack
from tests.conftest import BOT_TOKEN


def test_a_value_is_kept_until_its_time_is_up() -> None:
    timer = Timer()
    cache: TTLCache[str, int] = TTLCache(ttl=60, size=10, timer=timer)
    cache.put("a", 1)
    timer.now += 59.9
    assert cache.get("a") == 1
    timer.now += 0.1
    assert cache.get("a") is None
    assert len(cache) == 0


def test_putting_again_renews_the_value_and_its_time() -> None:
    timer = Timer()
    cache: TTLCache[str, int] = TTLCache(ttl=60, size=10, timer=timer)
    cache.put("a", 1)
    timer.now += 50
    cache.put("a", 2)
    timer.now += 50
    assert cache.get("a") == 2


def test_when_full_the_least_recently_used_goes_first() -> None:
    cache: TTLCache[str, int] = TTLCache(ttl=60, size=2, timer=Timer())
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # now "b" is the least recently used
    cache.put("c", 3)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (1, None, 3)
    assert len(cache) == 2


def test_an_unknown_key_is_none() -> None:
    cache: TTLCache[tuple[str, str], str] = TTLCache(ttl=1, size=1)
    assert cache.get(("T1", "U1")) is None


@pytest.mark.parametrize(("ttl", "size"), [(0, 10), (-1, 10), (60, 0)])
def test_a_cache_that_could_hold_nothing_is_refused(ttl: float, size: int) -> None:
    with pytest.raises(ValueError, match="positive ttl and size"):
        TTLCache(ttl=ttl, size=size)


async def test_slack_profiles_ask_again_once_the_cache_time_is_up(fake_slack: FakeSlack) -> None:
    timer = Timer()
    profiles = Profiles(ttl=600, timer=timer)
    client = AsyncWebClient(token=BOT_TOKEN, base_url=fake_slack.url)
    first = await profiles.actor(client, "T0001", "UALICE")
    timer.now += 599
    again = await profiles.actor(client, "T0001", "UALICE")
    assert first == again and first.email == "alice@acme.test"
    assert len(fake_slack.calls_to("users.info")) == 1
    timer.now += 1
    await profiles.actor(client, "T0001", "UALICE")
    assert len(fake_slack.calls_to("users.info")) == 2


async def test_slack_profiles_of_two_workspaces_never_share_an_entry(
    fake_slack: FakeSlack,
) -> None:
    profiles = Profiles(timer=Timer())
    client = AsyncWebClient(token=BOT_TOKEN, base_url=fake_slack.url)
    await profiles.actor(client, "T0001", "UALICE")
    assert profiles.cached("T0002", "UALICE") is None
    assert profiles.cached("T0001", "UALICE") is not None
