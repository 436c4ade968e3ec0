"""Token buckets shared by every instance of the bot: the platform's rate budgets as one store.

A budget is a token bucket (`Rate`: tokens per second, burst). `BucketStore.take` takes several
budgets at once or none (a call that draws from two budgets must not spend one and wait on the
other); `penalize` empties a budget and lets it refill only from the time a 429's Retry-After named.

`MemoryBuckets` serves one process. `RedisBuckets` keeps the buckets in Redis (one hash per
budget, updated by a Lua script so a take is atomic across instances), so N instances share one
workspace's budgets. `FailoverBuckets` uses Redis while it answers and in-process buckets while it
does not, logging the switch once and checking Redis again every few seconds.

`RedisLink` is what one part that uses Redis (these budgets, the stops, the conversation locks) last
saw of it, so each part logs and counts an outage once, however many calls fail during it.

Times are wall-clock seconds (`time.time()`): instances sharing Redis compare them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import redis.asyncio as redis
from redis.exceptions import RedisError

log = logging.getLogger("seedbot.coordination")

# Seconds to connect to Redis, and for one reply, before a call counts as failed. A budget or a lock
# that waits longer than this holds an answer up; going on alone is better.
REDIS_TIMEOUT_S = 1.0
# Connections one client keeps at most: a burst of answers takes turns on them (waiting up to
# REDIS_TIMEOUT_S for one) instead of opening a socket per answer on both ends.
REDIS_CONNECTIONS = 32


def bounded_redis(url: str) -> redis.Redis:
    """A client whose calls are bounded in time and whose connections are bounded in number."""
    pool = redis.BlockingConnectionPool.from_url(
        url,
        max_connections=REDIS_CONNECTIONS,
        timeout=REDIS_TIMEOUT_S,
        socket_timeout=REDIS_TIMEOUT_S,
        socket_connect_timeout=REDIS_TIMEOUT_S,
    )
    return redis.Redis.from_pool(pool)


class RedisLink:
    """Whether one part that uses Redis (`part`: "budgets", "stops" or "locks") reached it at its latest
    call. `lost()` and `back()` are True only when that changes, so the caller logs an outage once and
    its end once; `on_change(part, reachable)` hears each change (the metrics count each outage once)."""

    def __init__(self, part: str, on_change: Callable[[str, bool], None] = lambda part, reachable: None):
        self.part = part
        self.reachable: bool | None = None  # None: not tried yet
        self._on_change = on_change

    def lost(self) -> bool:
        """A call failed: True if Redis had answered before (or had not been tried: down from the start)."""
        if self.reachable is False:
            return False
        self.reachable = False
        self._on_change(self.part, False)
        return True

    def back(self) -> bool:
        """A call succeeded: True if it follows an outage (the first success ever is no news)."""
        if self.reachable is True:
            return False
        was, self.reachable = self.reachable, True
        self._on_change(self.part, True)
        return was is False


@dataclass(frozen=True, slots=True)
class Rate:
    """`per_s` tokens a second, at most `burst` saved up."""

    per_s: float
    burst: float

    @classmethod
    def per_minute(cls, calls: float, burst: float) -> Rate:
        return cls(calls / 60.0, burst)


@dataclass(frozen=True, slots=True)
class Draw:
    """`cost` tokens from budget `key`, which refills at `rate`. `name` says what kind of budget it
    is without ids (a metrics label). `keep`: leave at least this many tokens behind (a routine
    call leaves room for urgent ones)."""

    key: str
    rate: Rate
    name: str
    cost: float = 1.0
    keep: float = 0.0


@dataclass(frozen=True, slots=True)
class Taken:
    """`wait` 0: every draw was taken; otherwise nothing was, try again in `wait` seconds.
    `tokens`: each budget's fill after the attempt, in draw order."""

    wait: float
    tokens: tuple[float, ...]


class BucketStore(Protocol):
    async def take(self, draws: Sequence[Draw], now: float) -> Taken:
        """Take every draw, or none of them."""
        ...

    async def penalize(self, key: str, until: float) -> None:
        """The platform refused a call of this budget: nothing is taken from it before `until`."""
        ...


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float  # when `tokens` was true; in the future while a penalty lasts (it refills from then)


class MemoryBuckets:
    """The budgets of one process."""

    def __init__(self) -> None:
        self._buckets: dict[str, _Bucket] = {}

    async def take(self, draws: Sequence[Draw], now: float) -> Taken:
        buckets = [self._refill(draw, now) for draw in draws]
        wait = 0.0
        for draw, bucket in zip(draws, buckets, strict=True):
            wait = max(wait, max(0.0, bucket.at - now) + _shortfall(bucket.tokens, draw) / draw.rate.per_s)
        if wait <= 0:
            for draw, bucket in zip(draws, buckets, strict=True):
                bucket.tokens -= draw.cost
        return Taken(max(0.0, wait), tuple(bucket.tokens for bucket in buckets))

    async def penalize(self, key: str, until: float) -> None:
        bucket = self._buckets.setdefault(key, _Bucket(0.0, until))
        bucket.tokens = min(bucket.tokens, 0.0)
        bucket.at = max(bucket.at, until)  # it refills from the end of the penalty, as the platform's does

    def _refill(self, draw: Draw, now: float) -> _Bucket:
        bucket = self._buckets.get(draw.key)
        if bucket is None:
            bucket = self._buckets[draw.key] = _Bucket(draw.rate.burst, now)
        if now > bucket.at:
            bucket.tokens = min(draw.rate.burst, bucket.tokens + (now - bucket.at) * draw.rate.per_s)
            bucket.at = now
        return bucket


def _shortfall(tokens: float, draw: Draw) -> float:
    return max(0.0, draw.cost + draw.keep - tokens)


# KEYS: one hash per budget. ARGV: now, then per key: per_s, burst, cost, keep.
# Returns {wait, tokens...} as strings (Lua numbers would be truncated to integers).
_TAKE = """
local now = tonumber(ARGV[1])
local tokens, wait = {}, 0
for i, key in ipairs(KEYS) do
  local per_s, burst = tonumber(ARGV[4 * i - 2]), tonumber(ARGV[4 * i - 1])
  local cost, keep = tonumber(ARGV[4 * i]), tonumber(ARGV[4 * i + 1])
  local state = redis.call('HMGET', key, 'tokens', 'at')
  local level, at = tonumber(state[1]) or burst, tonumber(state[2]) or now
  if now > at then
    level = math.min(burst, level + (now - at) * per_s)
    at = now
  end
  tokens[i] = level
  wait = math.max(wait, math.max(0, at - now) + math.max(0, cost + keep - level) / per_s)
  redis.call('HSET', key, 'tokens', level, 'at', at)
  -- Once full again a bucket holds nothing worth keeping.
  redis.call('EXPIRE', key, math.ceil(math.max(0, at - now) + burst / per_s) + 60)
end
if wait <= 0 then
  for i, key in ipairs(KEYS) do
    tokens[i] = tokens[i] - tonumber(ARGV[4 * i])
    redis.call('HSET', key, 'tokens', tokens[i])
  end
  wait = 0
end
local out = {tostring(wait)}
for i = 1, #tokens do out[i + 1] = tostring(tokens[i]) end
return out
"""

_PENALIZE = """
local until_at = tonumber(ARGV[1])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local level, at = tonumber(state[1]) or 0, tonumber(state[2]) or until_at
redis.call('HSET', KEYS[1], 'tokens', math.min(level, 0), 'at', math.max(at, until_at))
-- A Retry-After is seconds or minutes; the next take sets the real lifetime.
redis.call('EXPIRE', KEYS[1], 3600)
return 1
"""


class RedisBuckets:
    """The budgets in Redis, shared by every instance using the same `prefix`."""

    def __init__(self, client: redis.Redis, prefix: str = "seedbot:budget:"):
        self._client = client
        self._prefix = prefix
        self._take = client.register_script(_TAKE)
        self._penalize = client.register_script(_PENALIZE)

    async def take(self, draws: Sequence[Draw], now: float) -> Taken:
        args: list[float] = [now]
        for draw in draws:
            args += [draw.rate.per_s, draw.rate.burst, draw.cost, draw.keep]
        reply = await self._take(keys=[self._prefix + draw.key for draw in draws], args=args)
        wait, *tokens = (float(value) for value in reply)
        return Taken(max(0.0, wait), tuple(tokens))

    async def penalize(self, key: str, until: float) -> None:
        await self._penalize(keys=[self._prefix + key], args=[until])


class FailoverBuckets:
    """Redis while it answers; the in-process budgets while it does not (each instance then paces
    alone, which is the best it can do), trying Redis again every `retry_s`."""

    def __init__(
        self,
        primary: BucketStore,
        *,
        retry_s: float = 5.0,
        on_fallback: Callable[[], None] = lambda: None,
        link: RedisLink | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._primary = primary
        self._fallback = MemoryBuckets()
        self._retry_s = retry_s
        self._on_fallback = on_fallback  # every call served in-process (`link` hears each outage once)
        self.link = link or RedisLink("budgets")
        self._clock = clock
        self._down_since: float | None = None
        self.fallbacks = 0  # calls served by the in-process budgets

    @property
    def degraded(self) -> bool:
        return self._down_since is not None

    async def take(self, draws: Sequence[Draw], now: float) -> Taken:
        if self._use_primary():
            try:
                taken = await self._primary.take(draws, now)
            except (RedisError, OSError) as error:
                self._failed(error)
            else:
                self._recovered()
                return taken
        self._count_fallback()
        return await self._fallback.take(draws, now)

    async def penalize(self, key: str, until: float) -> None:
        # Both: the in-process budgets take over mid-penalty if Redis goes away.
        await self._fallback.penalize(key, until)
        if self._use_primary():
            try:
                await self._primary.penalize(key, until)
            except (RedisError, OSError) as error:
                self._failed(error)
            else:
                self._recovered()

    def _use_primary(self) -> bool:
        return self._down_since is None or self._clock() - self._down_since >= self._retry_s

    def _failed(self, error: BaseException) -> None:
        self._down_since = self._clock()
        if self.link.lost():
            log.warning(
                "shared rate budgets unreachable (%s); pacing with this instance's own budgets until"
                " they return",
                type(error).__name__,
            )

    def _recovered(self) -> None:
        self._down_since = None
        if self.link.back():
            log.info("shared rate budgets reachable again")

    def _count_fallback(self) -> None:
        self.fallbacks += 1
        self._on_fallback()


def bucket_store(
    redis_url: str | None,
    *,
    on_fallback: Callable[[], None] = lambda: None,
    link: RedisLink | None = None,
) -> BucketStore:
    """Redis-backed budgets when a URL is set (with the in-process fallback), else in-process ones."""
    if not redis_url:
        return MemoryBuckets()
    return FailoverBuckets(RedisBuckets(bounded_redis(redis_url)), on_fallback=on_fallback, link=link)
