"""Stop anywhere: with REDIS_URL, a stop received by one instance ends the answer streaming on another
(two services on one database and the real Redis at 127.0.0.1:6379)."""

from __future__ import annotations

import asyncio

import pytest

from core.access import Allowlist, Place
from core.admission import Admission, Arrival
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
