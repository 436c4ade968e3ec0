"""A conversation's turn across instances: one answer at a time per conversation, whichever instance
the platform sent each message to.

A Redis lock per conversation, held under a fencing token (a number that only grows) and an expiry
that the holder keeps renewing: a crashed holder stops renewing, and the conversation is free again
within `LOCK_S`. Release and renewal only touch the lock while it still holds the holder's token.
Without Redis, or while it is away, each instance keeps its own order (logged once).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import redis.asyncio as redis
from redis.exceptions import RedisError

from core.models import ConversationKey

log = logging.getLogger("seedbot.conversation_locks")

LOCK_S = 15.0
WAIT_EVERY_S = 0.05  # how often a waiter looks again; a turn is seconds long, this is noise
# Renew or release only while the lock still holds our token (a compare-and-set in one step).
_IF_OURS = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call({}) end return 0"
_RENEW = _IF_OURS.format("'pexpire', KEYS[1], ARGV[2]")
_RELEASE = _IF_OURS.format("'del', KEYS[1]")


def _name(key: ConversationKey) -> str:
    return f"seedbot:turn:{key.platform}:{key.workspace}:{key.channel}:{key.thread}"


class SharedLocks:
    def __init__(self, url: str, *, lock_s: float = LOCK_S) -> None:
        self._redis = redis.from_url(url)
        self.lock_s = lock_s
        self._warned = False

    @contextlib.asynccontextmanager
    async def hold(self, key: ConversationKey) -> AsyncIterator[int | None]:
        """Wait for the conversation's turn; yields the fencing token (None: Redis is away, and only
        this instance's order holds)."""
        name = _name(key)
        token = await self._acquire(name)
        if token is None:
            yield None
            return
        renewer = asyncio.create_task(self._renew(name, token), name="turn-renew")
        try:
            yield token
        finally:
            renewer.cancel()
            await asyncio.gather(renewer, return_exceptions=True)
            with contextlib.suppress(RedisError):
                await self._redis.eval(_RELEASE, 1, name, str(token))

    async def close(self) -> None:
        await self._redis.aclose()

    async def _acquire(self, name: str) -> int | None:
        try:
            token = int(await self._redis.incr(f"{name}:fence"))
            # Another instance's lock is in Redis, not in this process: nothing here to wait on but time.
            # A crashed holder's lock expires by itself.
            while not await self._redis.set(name, str(token), nx=True, px=int(self.lock_s * 1000)):  # noqa: ASYNC110
                await asyncio.sleep(WAIT_EVERY_S)
        except RedisError as error:
            if not self._warned:
                log.warning("Redis is away: conversations keep their order per instance only (%s)", error)
                self._warned = True
            return None
        if self._warned:
            log.info("conversations keep their order across instances again")
            self._warned = False
        return token

    async def _renew(self, name: str, token: int) -> None:
        while True:
            await asyncio.sleep(self.lock_s / 3)
            try:
                if not await self._redis.eval(_RENEW, 1, name, str(token), str(int(self.lock_s * 1000))):
                    log.warning("lost the turn of %s (it expired while held)", name)
                    return
            except RedisError as error:
                log.warning("turn of %s not renewed (%s)", name, error)
