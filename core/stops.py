"""Stop anywhere: a stop that one instance receives reaches the instance writing the answer.

A deleted prompt or a "stop" in a conversation lands on whichever instance the platform chose; the
answer may be streaming on another. Each instance applies stops it can locally and publishes the
rest on Redis; every instance listens and applies what it has. Redis pub/sub delivers in well under a
second; a stop published while Redis is away is lost (logged), and the listener comes back with it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass

import redis.asyncio as redis
from redis.exceptions import RedisError

from core.models import ConversationKey

log = logging.getLogger("seedbot.stops")

CHANNEL = "seedbot:stops"
RECONNECT_S = (0.5, 1.0, 2.0, 5.0)  # waits between attempts while Redis is away, the last repeated


@dataclass(frozen=True, slots=True)
class Stop:
    """End the answer to prompt `message_id` of `platform`, or (with `key`) what is written there."""

    platform: str
    message_id: str | None = None
    key: ConversationKey | None = None

    def encode(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def decode(cls, raw: str | bytes) -> Stop:
        data = json.loads(raw)
        key = data.get("key")
        return cls(data["platform"], data.get("message_id"), ConversationKey(**key) if key else None)


class StopFanout:
    def __init__(self, url: str, apply: Callable[[Stop], bool]) -> None:
        self._redis = redis.from_url(url)
        self._apply = apply
        self._listener: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()  # subscribed now (for readiness and tests)

    def start(self) -> None:
        self._listener = asyncio.create_task(self._listen(), name="stop-fanout")

    async def publish(self, stop: Stop) -> None:
        try:
            await self._redis.publish(CHANNEL, stop.encode())
        except RedisError as error:
            log.warning("a stop could not be passed to the other instances (%s)", error)

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)
        await self._redis.aclose()

    async def _listen(self) -> None:
        failures = 0
        while True:
            try:
                async with self._redis.pubsub() as pubsub:
                    await pubsub.subscribe(CHANNEL)
                    self.listening.set()
                    if failures:
                        log.info("stops from other instances reach this one again")
                    failures = 0
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            self._received(message["data"])
            except RedisError as error:
                self.listening.clear()
                if not failures:
                    log.warning("Redis is away: stops from other instances do not reach this one (%s)", error)
                await asyncio.sleep(RECONNECT_S[min(failures, len(RECONNECT_S) - 1)])
                failures += 1

    def _received(self, raw: str | bytes) -> None:
        try:
            stop = Stop.decode(raw)
        except (ValueError, KeyError, TypeError) as error:
            log.warning("ignored a malformed stop (%s)", error)
            return
        if self._apply(stop):
            log.info("stopped an answer on another instance's word")
