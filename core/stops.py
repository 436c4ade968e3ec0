"""Stop anywhere: a stop that one instance receives reaches the instance writing the answer.

A deleted prompt or a "stop" in a conversation lands on whichever instance the platform chose; the
answer may be streaming on another. Each instance applies stops it can locally and publishes the
rest on Redis; every instance listens and applies what it has. Redis pub/sub delivers in well under a
second; a stop published while Redis is away is lost (logged), and the listener comes back with it.
Losing Redis is logged and counted once (`RedisLink` "stops"), whether a publish or the listener
noticed first; its return is logged once too.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass

import redis.asyncio as redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from core.coordination import REDIS_TIMEOUT_S, RedisLink
from core.models import ConversationKey

log = logging.getLogger("seedbot.stops")

CHANNEL = "seedbot:stops"
RECONNECT_S = (0.5, 1.0, 2.0, 5.0)  # waits between attempts while Redis is away, the last repeated
# A link that goes quiet this long is pinged; one that stays quiet as long again is dead. A network
# that drops packets closes nothing, and a listener would otherwise wait on it for ever.
QUIET_S = 10.0


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
    def __init__(
        self,
        url: str,
        apply: Callable[[Stop], bool],
        *,
        link: RedisLink | None = None,
        quiet_s: float = QUIET_S,
    ) -> None:
        # A connect timeout only: the listener's reads wait for stops as long as none comes.
        self._redis = redis.from_url(url, socket_connect_timeout=REDIS_TIMEOUT_S)
        self.quiet_s = quiet_s
        self._apply = apply
        self._listener: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()  # subscribed now (for readiness and tests)
        self.link = link or RedisLink("stops")

    def start(self) -> None:
        self._listener = asyncio.create_task(self._listen(), name="stop-fanout")

    async def publish(self, stop: Stop) -> None:
        try:
            # The client's reads have no timeout (the listener's must wait); a publish must not hang.
            await asyncio.wait_for(self._redis.publish(CHANNEL, stop.encode()), REDIS_TIMEOUT_S)
        except (RedisError, OSError, TimeoutError) as error:
            if self.link.lost():
                log.warning("Redis is away: a stop could not be passed to the other instances (%s)", error)
            else:  # the outage is logged already; this is one stop it cost
                log.info("a stop could not be passed to the other instances (Redis is still away)")
            return
        if self.link.back():
            log.info("stops pass between instances again")

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
                    await self._relay(pubsub)
            except (RedisError, OSError) as error:  # anything else would end the listener for good
                failures = 0 if self.listening.is_set() else failures + 1
                self.listening.clear()
                if self.link.lost():
                    log.warning("Redis is away: stops from other instances do not reach this one (%s)", error)
                await asyncio.sleep(RECONNECT_S[min(failures, len(RECONNECT_S) - 1)])

    async def _relay(self, pubsub: redis.client.PubSub) -> None:
        """Apply each stop published; listening from Redis's confirmation of the subscription until
        the link fails or stays quiet through a ping (raises)."""
        pinged = False
        while True:
            message = await pubsub.get_message(timeout=self.quiet_s)
            if message is None:
                if pinged:
                    raise RedisConnectionError(f"no answer to a ping within {self.quiet_s:.0f} s")
                await pubsub.ping()
                pinged = True
                continue
            pinged = False
            if message["type"] == "subscribe":
                self.listening.set()
                if self.link.back():
                    log.info("stops pass between instances again")
            elif message["type"] == "message":
                self._received(message["data"])

    def _received(self, raw: str | bytes) -> None:
        try:
            stop = Stop.decode(raw)
        except (ValueError, KeyError, TypeError) as error:
            log.warning("ignored a malformed stop (%s)", error)
            return
        if self._apply(stop):
            log.info("stopped an answer on another instance's word")
