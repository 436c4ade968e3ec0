"""Redis lost mid-run and back (issue 12): two instances on one database share stops, conversations'
turns and rate budgets through a TCP proxy to the real Redis at 127.0.0.1:6379; the test takes the
proxy away, as a Redis stopped or out of reach would be, and brings it back on the same port.

While Redis is away answers go on (in each instance's own order, with its own budgets), each part
logs one warning and counts one outage in /metrics; when it is back, stops pass between the instances
and conversations answer one turn at a time across them again. Every wait is bounded."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
import redis.asyncio as redis

from core.conversation_locks import SharedLocks
from core.coordination import Draw, Rate
from core.models import ConversationKey, Turn
from core.reply.surface import MessageRef
from core.service import ChatService
from core.stops import CHANNEL, Stop, StopFanout
from tests.core.service.test_answer import LIMITS, shown
from tests.fakes.memory_surface import MemorySurface
from tests.fakes.model_server import Script
from tests.proxy import Proxy

REDIS = "redis://127.0.0.1:6379/0"
WORDS = 120  # a long answer: 120 words in 5-character chunks, 10 ms apart (about 1.2 s)


async def until(condition: Callable[[], bool], what: str, within_s: float = 15.0) -> None:
    for _ in range(int(within_s / 0.05)):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what}: not within {within_s} s")


class Journaled(MemorySurface):
    """A reply that notes in a journal shared with other replies when it first shows something and
    when it is closed: the order of answers, without reading clocks."""

    def __init__(self, journal: list[str], name: str) -> None:
        super().__init__(LIMITS)
        self.journal, self.name = journal, name

    def _note(self, event: str) -> None:
        if f"{self.name} {event}" not in self.journal:
            self.journal.append(f"{self.name} {event}")

    async def post(self, text: str) -> MessageRef:
        self._note("shown")
        return await super().post(text)

    async def set_status(self, status: str | None) -> None:
        self._note("shown")
        await super().set_status(status)

    async def close(self) -> None:
        await super().close()
        self._note("closed")


def one_after_the_other(journal: list[str], first: str, second: str) -> bool:
    return journal.index(f"{first} closed") < journal.index(f"{second} shown")


def text_of(surface: MemorySurface) -> str:
    return "".join(surface.texts)


def sample(service: ChatService, name: str, part: str) -> float | None:
    return service.metrics.registry.get_sample_value(name, {"part": part})


def outages(service: ChatService, part: str) -> float | None:
    return sample(service, "seedbot_redis_fallbacks_total", part)


def lines(caplog: pytest.LogCaptureFixture, level: int, logger: str, words: str) -> int:
    return len([r for r in caplog.records if r.levelno == level and r.name == logger and words in r.message])


@pytest.fixture
async def proxy() -> AsyncIterator[Proxy]:
    proxy = Proxy(upstream=6379)
    await proxy.start()
    yield proxy
    await proxy.stop()


@pytest.fixture
def key() -> ConversationKey:
    # A conversation of this test's own: other tests on the machine share the real Redis.
    return ConversationKey("test", "W1", "C1", f"outage-{uuid.uuid4().hex}")


@pytest.fixture
async def two_instances(make_settings, proxy: Proxy, key: ConversationKey):
    settings = make_settings(redis_url=f"redis://127.0.0.1:{proxy.port}/0")
    one, two = await ChatService.open(settings), await ChatService.open(settings)
    for service in (one, two):
        await service.join_instances(coordinated=True)
        assert service.stops is not None
        await asyncio.wait_for(service.stops.listening.wait(), 5)
    yield one, two
    for service in (one, two):
        await service.close()
    client = redis.from_url(REDIS)
    lock = f"seedbot:turn:{key.platform}:{key.workspace}:{key.channel}:{key.thread}"
    await client.delete(lock, f"{lock}:fence")
    await client.aclose()


def prompt(key: ConversationKey, text: str) -> Turn:
    return Turn(key, "U1", "Ann", text, message_id=f"p-{uuid.uuid4().hex}")


async def test_redis_lost_mid_answer_answers_go_on_alone_and_coordination_returns_with_it(
    two_instances, proxy: Proxy, key: ConversationKey, model_server, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO)
    one, two = two_instances
    model_server.enqueue(Script(content="word " * WORDS, chunk_chars=5, delay_s=0.01))
    streaming = MemorySurface(LIMITS)
    in_flight = asyncio.create_task(one.answer(prompt(key, "count"), streaming))
    await shown(streaming, "word")

    await proxy.stop()
    await until(lambda: not one.stops.listening.is_set() and not two.stops.listening.is_set(), "stops lost")
    outcome = await asyncio.wait_for(in_flight, 20)
    assert outcome.status == "complete"
    assert text_of(streaming).count("word") == WORDS  # whole, not cut where Redis went

    # New answers while Redis is away: each instance keeps its own order in the conversation.
    slow = Script(content="slow " * 40, chunk_chars=5, delay_s=0.01)
    model_server.enqueue(slow, Script(content="next"), Script(content="other"))
    journal: list[str] = []
    first = asyncio.create_task(one.answer(prompt(key, "a"), Journaled(journal, "first")))
    await until(lambda: "first shown" in journal, "the first answer shown")
    second = asyncio.create_task(one.answer(prompt(key, "b"), Journaled(journal, "second")))
    elsewhere = asyncio.create_task(two.answer(prompt(key, "c"), Journaled(journal, "elsewhere")))
    outcomes = await asyncio.wait_for(asyncio.gather(first, second, elsewhere), 20)
    assert [o.status for o in outcomes] == ["complete", "complete", "complete"]
    assert one_after_the_other(journal, "first", "second")

    for logger in ("seedbot.stops", "seedbot.conversation_locks"):  # once per instance, not per call
        assert lines(caplog, logging.WARNING, logger, "Redis is away") == 2, logger
    for service in (one, two):
        assert outages(service, "stops") == 1 and outages(service, "locks") == 1
        assert sample(service, "seedbot_redis_reachable", "locks") == 0
        assert service.redis_state() == {"stops": False, "locks": False}

    await proxy.start()
    await until(lambda: one.stops.listening.is_set() and two.stops.listening.is_set(), "stops back")
    assert lines(caplog, logging.INFO, "seedbot.stops", "stops pass between instances again") == 2

    # A stop said to the second instance ends the answer streaming on the first again.
    model_server.enqueue(Script(content="word " * 400, chunk_chars=5, delay_s=0.02))
    stoppable, surface = prompt(key, "count again"), MemorySurface(LIMITS)
    task = asyncio.create_task(one.answer(stoppable, surface))
    await shown(surface, "word")
    assert two.stop("test", stoppable.message_id or "") is False  # not answered there: passed on
    assert (await asyncio.wait_for(task, 10)).status == "stopped"

    # And the conversation answers one turn at a time across the instances again.
    model_server.enqueue(slow, Script(content="then"))
    journal = []
    here = asyncio.create_task(one.answer(prompt(key, "d"), Journaled(journal, "here")))
    await until(lambda: "here shown" in journal, "the answer here shown")
    there = asyncio.create_task(two.answer(prompt(key, "e"), Journaled(journal, "there")))
    outcomes = await asyncio.wait_for(asyncio.gather(here, there), 20)
    assert [o.status for o in outcomes] == ["complete", "complete"]
    assert one_after_the_other(journal, "here", "there")
    assert lines(caplog, logging.INFO, "seedbot.conversation_locks", "across instances again") == 2

    for service in (one, two):
        assert outages(service, "stops") == 1 and outages(service, "locks") == 1  # still the one outage
        assert sample(service, "seedbot_redis_reachable", "locks") == 1
        assert service.redis_state() == {"stops": True, "locks": True}


async def test_a_stop_lost_while_redis_is_away_is_counted_with_the_outage_once(
    two_instances, proxy: Proxy, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO)
    one, two = two_instances
    await proxy.stop()
    await until(lambda: not one.stops.listening.is_set() and not two.stops.listening.is_set(), "stops lost")
    for _ in range(3):
        assert one.stop("test", f"p-{uuid.uuid4().hex}") is False
    await until(lambda: lines(caplog, logging.INFO, "seedbot.stops", "could not be passed") == 3, "3 lost")
    assert outages(one, "stops") == 1
    assert lines(caplog, logging.WARNING, "seedbot.stops", "Redis is away") == 2  # the two listeners


async def test_rate_budgets_fall_back_to_this_instance_and_return_to_redis(
    two_instances, proxy: Proxy, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO)
    one, _ = two_instances
    budget = f"outage-test-{uuid.uuid4().hex}"  # a budget of this test's own in the shared Redis
    draw = Draw(budget, Rate.per_minute(600, burst=100), name="test")
    lane = one.reply_budgets.lane()

    async def take() -> bool:
        return await one.reply_budgets.acquire([draw], "urgent", lane=lane, patience_s=1.0)

    try:
        assert await take()
        assert one.redis_links["budgets"].reachable is True
        await proxy.stop()
        assert all([await take() for _ in range(5)])  # served by this instance's own budgets
        assert outages(one, "budgets") == 1
        assert sample(one, "seedbot_redis_reachable", "budgets") == 0
        assert lines(caplog, logging.WARNING, "seedbot.coordination", "unreachable") == 1

        await proxy.start()
        for _ in range(100):  # Redis is looked at again every few seconds
            assert await take()
            if one.redis_links["budgets"].reachable:
                break
            await asyncio.sleep(0.1)
        assert one.redis_links["budgets"].reachable is True
        assert lines(caplog, logging.INFO, "seedbot.coordination", "reachable again") == 1
        assert outages(one, "budgets") == 1 and sample(one, "seedbot_redis_reachable", "budgets") == 1
    finally:
        client = redis.from_url(REDIS)
        await client.delete(f"seedbot:budget:{budget}")
        await client.aclose()


async def test_a_link_to_redis_gone_silent_is_taken_for_lost_and_replaced(proxy: Proxy) -> None:
    channel_key = ConversationKey("test", "W1", "C1", f"silent-{uuid.uuid4().hex}")
    heard: list[Stop] = []

    def apply(stop: Stop) -> bool:
        if stop.key == channel_key:
            heard.append(stop)
        return False

    fanout = StopFanout(f"redis://127.0.0.1:{proxy.port}/0", apply, quiet_s=0.3)
    fanout.start()
    try:
        await asyncio.wait_for(fanout.listening.wait(), 5)
        proxy.silent = True  # nothing is closed: only a ping that goes unanswered tells
        await until(lambda: not fanout.listening.is_set(), "the silent link noticed")
        proxy.silent = False
        await asyncio.wait_for(fanout.listening.wait(), 15)
        publisher = redis.from_url(REDIS)
        await publisher.publish(CHANNEL, Stop("test", key=channel_key).encode())
        await publisher.aclose()
        await until(lambda: bool(heard), "a stop heard on the new link")
    finally:
        await fanout.close()


async def test_leaving_a_turn_while_its_renewal_waits_on_a_silent_redis_ends_within_the_timeouts(
    proxy: Proxy, key: ConversationKey
) -> None:
    locks = SharedLocks(f"redis://127.0.0.1:{proxy.port}/0", lock_s=0.3)
    try:
        async with asyncio.timeout(10):
            async with locks.hold(key) as token:
                assert token is not None
                proxy.silent = True  # the next renewal (within 0.1 s) waits for a reply that never comes
                await asyncio.sleep(0.2)
        proxy.silent = False
        # The release was lost with the packets; the lock expired by itself, and the turn is free.
        async with asyncio.timeout(10), locks.hold(key) as again:
            assert again is not None and again > token
    finally:
        await locks.close()
