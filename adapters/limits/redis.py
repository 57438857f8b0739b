"""Send limits in Redis (when `REDIS_URL` is set): one Lua script, atomic in the server.

Each key keeps its send times in a sorted set (score: the time, by Redis's own clock) and
its block in a hash; both expire once no window can see them. The script is the rule of
`adapters.limits` (`Book.earliest`, `reserve`) written for Redis, and the shared tests hold
both to the same behaviour.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from adapters.limits import Limit, LimiterUnavailable, Slot

PREFIX = "flywheel:limit:"
# A store that does not answer within this is unavailable: the send waits for a later try.
TIMEOUT = 2.0

SCRIPT = """
local mode, arg, n, replacing = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local function fmt(x) return string.format('%.6f', x) end

local limits, pos = {}, 5
for i = 1, n do
  local windows, span, depth = {}, 0, 0
  for w = 1, tonumber(ARGV[pos]) do
    local count, seconds = tonumber(ARGV[pos + 2 * w - 1]), tonumber(ARGV[pos + 2 * w])
    windows[w] = {count, seconds}
    if seconds > span then span = seconds end
    if count > depth then depth = count end
  end
  pos = pos + 1 + 2 * #windows
  limits[i] = {times = KEYS[2 * i - 1], meta = KEYS[2 * i], windows = windows,
               span = span, depth = depth}
end

local function blocked(l)
  return tonumber(redis.call('HGET', l.meta, 'blocked') or '0')
end

-- Times no window can see any more, and more than the deepest window needs, are dropped.
local function forget(l)
  redis.call('ZREMRANGEBYSCORE', l.times, '-inf', fmt(now - l.span))
  redis.call('ZREMRANGEBYRANK', l.times, 0, -(l.depth + 1))
end

local function keep(l, last)
  local ttl = math.ceil((math.max(last, blocked(l)) - now + l.span) * 1000) + 1000
  redis.call('PEXPIRE', l.times, ttl)
  redis.call('PEXPIRE', l.meta, ttl)
end

local function earliest(l)
  local at = math.max(now, blocked(l))
  local last = redis.call('ZRANGE', l.times, -1, -1, 'WITHSCORES')
  if last[2] then at = math.max(at, tonumber(last[2])) end
  local size = redis.call('ZCARD', l.times)
  for _, w in ipairs(l.windows) do
    if size >= w[1] then
      local nth = redis.call('ZRANGE', l.times, -w[1], -w[1], 'WITHSCORES')
      at = math.max(at, tonumber(nth[2]) + w[2])
    end
  end
  return at
end

local function add(l, at)
  local seq = redis.call('HINCRBY', l.meta, 'seq', 1)
  redis.call('ZADD', l.times, fmt(at), fmt(at) .. ':' .. seq)
  forget(l)
  keep(l, at)
end

-- A reservation handed back unused: one send time at that moment goes.
local function drop(l, at)
  local found = redis.call('ZRANGEBYSCORE', l.times, string.format('%.7f', at - 0.0000006),
                           string.format('%.7f', at + 0.0000006), 'LIMIT', 0, 1)
  if found[1] then redis.call('ZREM', l.times, found[1]) end
end

if mode == 'reserve' then
  local at, which = now, 1
  if replacing then
    for _, l in ipairs(limits) do drop(l, replacing) end
  end
  for i, l in ipairs(limits) do
    forget(l)
    local e = earliest(l)
    if e > at then at, which = e, i end
  end
  if at - now > arg then return {0, fmt(at - now), which, fmt(at)} end
  for _, l in ipairs(limits) do add(l, at) end
  return {1, fmt(at - now), which, fmt(at)}
elseif mode == 'record' then
  for _, l in ipairs(limits) do add(l, now) end
  return {1, '0', 1}
end
local l = limits[1]
if now + arg > blocked(l) then redis.call('HSET', l.meta, 'blocked', fmt(now + arg)) end
keep(l, now)
return {1, '0', 1}
"""


class RedisLimiter:
    """Limits shared by every process using the same Redis."""

    store = "redis"

    def __init__(self, url: str, *, prefix: str = PREFIX, timeout: float = TIMEOUT) -> None:
        self.prefix = prefix
        # No retries inside the client: a send that cannot be limited now is tried later.
        self._client: Redis = Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
        )
        self._script = self._client.register_script(SCRIPT)

    async def reserve(
        self, limits: Sequence[Limit], max_wait: float, replacing: float | None = None
    ) -> Slot:
        reserved, wait, which, at = await self._run("reserve", max_wait, limits, replacing)
        return Slot(bool(int(reserved)), float(wait), limits[int(which) - 1].key, float(at))

    async def record(self, limits: Sequence[Limit]) -> None:
        await self._run("record", 0.0, limits)

    async def block(self, limit: Limit, seconds: float) -> None:
        await self._run("block", seconds, [limit])

    async def close(self) -> None:
        await self._client.aclose()

    async def _run(
        self, mode: str, arg: float, limits: Sequence[Limit], replacing: float | None = None
    ) -> list[Any]:
        keys: list[str] = []
        args: list[str | int | float] = [
            mode,
            repr(float(arg)),
            len(limits),
            "" if replacing is None else repr(float(replacing)),
        ]
        for limit in limits:
            keys += [f"{self.prefix}{limit.key}:times", f"{self.prefix}{limit.key}:meta"]
            args.append(len(limit.windows))
            for window in limit.windows:
                args += [window.count, repr(float(window.seconds))]
        try:
            answer: list[Any] = await self._script(keys=keys, args=args)
        except (RedisError, OSError) as error:
            raise LimiterUnavailable(f"Redis: {type(error).__name__}: {error}"[:200]) from error
        return answer
