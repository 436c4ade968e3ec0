"""Stop anywhere: with REDIS_URL, a stop received by one instance ends the answer streaming on another
(two services on one database and the real Redis at 127.0.0.1:6379)."""

from __future__ import annotations

import asyncio
import secrets

import pytest
import redis.asyncio as redis

from core.access import Allowlist, Place
from core.admission import Admission, Arrival
from core.conversation_locks import FENCE_KEEP_S, SharedLocks
from core.coordination import REDIS_CONNECTIONS
from core.models import ConversationKey, Turn
from core.reply.surface import ReplySurface
from core.service import ChatService
from tests.core.service.test_answer import LIMITS, shown
from tests.fakes.memory_surface import MemorySurface
from tests.fakes.model_server import Script

REDIS = "redis://127.0.0.1:6379/0"
KEY = ConversationKey("test", "W1", "C1", "stops")


class Stopper:
    """The adapter's side of a "stop" message that arrives on the other instance."""

    async def tell(self, text: str) -> None:
        raise AssertionError(f"nothing should be told: {text}")

    async def conversation(self) -> ConversationKey | None:
        return KEY

    async def turn(self) -> tuple[Turn, ReplySurface] | None:
        raise AssertionError("a stop is not a question")


@pytest.fixture
async def two_instances(make_settings):
    settings = make_settings(redis_url=REDIS)
    one, two = await ChatService.open(settings), await ChatService.open(settings)
    for service in (one, two):
        await service.join_instances(coordinated=True)
        assert service.stops is not None
        await asyncio.wait_for(service.stops.listening.wait(), 5)
    yield one, two
    for service in (one, two):
        await service.close()


async def answering(service: ChatService, model_server) -> tuple[asyncio.Task, MemorySurface]:
    model_server.enqueue(Script(content="word " * 400, chunk_chars=5, delay_s=0.02))
    surface = MemorySurface(LIMITS)
    task = asyncio.create_task(service.answer(Turn(KEY, "U1", "Ann", "count", message_id="p1"), surface))
    await shown(surface, "word")
    return task, surface


async def test_stop_said_to_another_instance_ends_the_answer(two_instances, model_server):
    one, two = two_instances
    task, _ = await answering(one, model_server)
    stop = Arrival(
        "test", "m2", "message:m2", Place("C1", "U1", workspace="W1"), False, "stop", addressed=True
    )
    assert await Admission(two, "", Allowlist()).admit(stop, Stopper()) is None
    assert (await asyncio.wait_for(task, 5)).status == "stopped"


async def test_a_prompt_deleted_on_another_instance_stops_its_answer(two_instances, model_server):
    one, two = two_instances
    task, _ = await answering(one, model_server)
    assert two.stop("test", "p1") is False  # not answered there: passed on
    assert (await asyncio.wait_for(task, 5)).status == "stopped"


async def test_without_an_answer_anywhere_stop_is_an_ordinary_message(two_instances):
    _, two = two_instances
    assert await two.stop_anywhere(KEY) is False


async def test_a_conversation_answers_one_turn_at_a_time_across_instances(two_instances, model_server):
    one, two = two_instances
    first, _ = await answering(one, model_server)  # streaming on the first instance
    model_server.enqueue(Script(content="second answer"))
    second = asyncio.create_task(
        two.answer(Turn(KEY, "U2", "Bob", "and me?", message_id="p2"), MemorySurface(LIMITS))
    )
    await asyncio.sleep(0.3)
    assert len(model_server.requests) == 1 and not second.done()  # the second waits its turn
    one.stop("test", "p1")
    assert (await asyncio.wait_for(first, 5)).status == "stopped"
    assert (await asyncio.wait_for(second, 10)).status == "complete"
    assert len(model_server.requests) == 2


async def test_a_crashed_holder_does_not_block_the_conversation(two_instances, model_server):
    _, two = two_instances
    client = redis.from_url(REDIS)
    lock = f"seedbot:turn:{KEY.platform}:{KEY.workspace}:{KEY.channel}:{KEY.thread}"
    await client.set(lock, "999999", px=500)  # a holder that died without releasing
    await client.aclose()
    outcome = await asyncio.wait_for(two.answer(Turn(KEY, "U1", "Ann", "hi"), MemorySurface(LIMITS)), 10)
    assert outcome.status == "complete"


async def test_a_conversations_fencing_counter_is_forgotten_a_week_after_its_last_turn(
    two_instances, model_server
):
    one, _ = two_instances
    await asyncio.wait_for(one.answer(Turn(KEY, "U1", "Ann", "hi"), MemorySurface(LIMITS)), 10)
    client = redis.from_url(REDIS)
    fence = f"seedbot:turn:{KEY.platform}:{KEY.workspace}:{KEY.channel}:{KEY.thread}:fence"
    expires_in = await client.ttl(fence)
    await client.aclose()
    assert 0 < expires_in <= FENCE_KEEP_S


async def test_a_burst_of_conversations_wider_than_the_connection_pool_each_get_their_turn():
    locks = SharedLocks(REDIS)
    run = secrets.token_hex(4)
    keys = [ConversationKey("test", "W1", f"C{n}", run) for n in range(5 * REDIS_CONNECTIONS)]
    held = asyncio.Event()
    tokens: list[int | None] = []

    async def take_turn(key: ConversationKey) -> None:
        async with locks.hold(key) as token:
            tokens.append(token)
            await held.wait()  # all hold their turn at once

    turns = [asyncio.create_task(take_turn(key)) for key in keys]
    for _ in range(100):  # up to 10 s
        if len(tokens) == len(keys):
            break
        await asyncio.sleep(0.1)
    held.set()
    await asyncio.wait_for(asyncio.gather(*turns), 10)
    await locks.close()
    # Each conversation was ordered across instances: none fell back to this instance's order alone.
    assert len(tokens) == len(keys) and None not in tokens
    assert locks.link.reachable
