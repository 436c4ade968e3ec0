"""A conversation's turn across instances: one answer at a time per conversation, whichever instance
the platform sent each message to.

A Redis lock per conversation, held under a fencing token (a number that only grows) and an expiry
that the holder keeps renewing: a crashed holder stops renewing, and the conversation is free again
within `LOCK_S`. Release and renewal only touch the lock while it still holds the holder's token.
Without Redis, or while it is away, each instance keeps its own order (logged and counted once per
outage, `RedisLink` "locks"). A lock whose release did not reach Redis is released at the next call
that does, rather than left to block the conversation until it expires.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

from redis.exceptions import RedisError

from core.coordination import REDIS_TIMEOUT_S, RedisLink, bounded_redis
from core.models import ConversationKey

log = logging.getLogger("seedbot.conversation_locks")

LOCK_S = 15.0
FENCE_KEEP_S = 7 * 24 * 3600
WAIT_EVERY_S = 0.05  # how often a waiter looks again; a turn is seconds long, this is noise
# A renewal in flight when the turn ends is bounded by the Redis timeouts (a connection, then a reply).
RENEWER_EXIT_S = 3 * REDIS_TIMEOUT_S
# Renew or release only while the lock still holds our token (a compare-and-set in one step).
_IF_OURS = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call({}) end return 0"
_RENEW = _IF_OURS.format("'pexpire', KEYS[1], ARGV[2]")
_RELEASE = _IF_OURS.format("'del', KEYS[1]")


def _name(key: ConversationKey) -> str:
    return f"seedbot:turn:{key.platform}:{key.workspace}:{key.channel}:{key.thread}"


class SharedLocks:
    def __init__(self, url: str, *, lock_s: float = LOCK_S, link: RedisLink | None = None) -> None:
        # Bounded calls: an answer waits on them, and going on in this instance's order beats hanging.
        self._redis = bounded_redis(url)
        self.lock_s = lock_s
        self.link = link or RedisLink("locks")
        # Lock name -> (our token, when it expires by itself): locks released while Redis was away.
        self._unreleased: dict[str, tuple[int, float]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: ConversationKey) -> AsyncIterator[int | None]:
        """Wait for the conversation's turn; yields the fencing token (None: Redis is away, and only
        this instance's order holds)."""
        name = _name(key)
        token = await self._acquire(name)
        if token is None:
            yield None
            return
        released = asyncio.Event()
        renewer = asyncio.create_task(self._renew(name, token, released), name="turn-renew")
        try:
            yield token
        finally:
            # Told, not cancelled: a cancellation landing inside a Redis call can come out of redis-py
            # as a timeout or connection error, which the renewer would take for Redis being away and
            # keep renewing, holding the conversation and this answer forever.
            released.set()
            await asyncio.wait({renewer}, timeout=RENEWER_EXIT_S)
            renewer.cancel()
            await self._release(name, token)

    async def close(self) -> None:
        await self._redis.aclose()

    async def _acquire(self, name: str) -> int | None:
        try:
            token = await self._next_token(name)
            self._answered()
            for held, (ours, expires) in list(self._unreleased.items()):
                if time.monotonic() < expires:
                    await self._release(held, ours)
                else:
                    del self._unreleased[held]  # gone by itself already
            # Another instance's lock is in Redis, not in this process: nothing here to wait on but time.
            # A crashed holder's lock expires by itself.
            while not await self._redis.set(name, str(token), nx=True, px=int(self.lock_s * 1000)):  # noqa: ASYNC110
                await asyncio.sleep(WAIT_EVERY_S)
        except (RedisError, OSError) as error:
            self._failed(error)
            return None
        return token

    async def _next_token(self, name: str) -> int:
        """The conversation's next fencing token. Its counter is kept for `FENCE_KEEP_S` after the
        latest turn (far longer than any holder lives), so Redis does not keep one per conversation
        forever."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(f"{name}:fence")
            pipe.expire(f"{name}:fence", FENCE_KEEP_S)
            token, _ = await pipe.execute()
        return int(token)

    async def _release(self, name: str, token: int) -> None:
        try:
            # Only while it still holds our token: a later holder's lock is left alone.
            await self._redis.eval(_RELEASE, 1, name, str(token))
        except (RedisError, OSError) as error:
            self._unreleased[name] = (token, time.monotonic() + self.lock_s)
            self._failed(error)
        else:
            self._unreleased.pop(name, None)

    async def _renew(self, name: str, token: int, released: asyncio.Event) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(released.wait(), self.lock_s / 3)
            if released.is_set():
                return
            try:
                if not await self._redis.eval(_RENEW, 1, name, str(token), str(int(self.lock_s * 1000))):
                    log.warning("lost the turn of %s (it expired while held)", name)
                    return
            except (RedisError, OSError) as error:
                self._failed(error)  # tried again at the next renewal, while the lock has not expired
            else:
                self._answered()

    def _failed(self, error: BaseException) -> None:
        if self.link.lost():
            log.warning("Redis is away: conversations keep their order per instance only (%s)", error)

    def _answered(self) -> None:
        if self.link.back():
            log.info("conversations keep their order across instances again")
