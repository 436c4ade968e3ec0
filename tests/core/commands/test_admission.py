"""The one path from a message to an answer, and the allowlists, on no platform at all."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest

from core.access import Allowlist, Place
from core.admission import NOT_ENABLED, REMEMBERED_DELETIONS, Admission, Arrival, Work
from core.models import ConversationKey, Turn
from core.reply.surface import ReplySurface
from core.service import ChatService
from tests.core.service.test_answer import LIMITS, shown
from tests.fakes.memory_surface import MemorySurface
from tests.fakes.model_server import Script

KEY = ConversationKey("test", "W1", "C1", "T1")
HINT = "Ask me something."


@dataclass
class Asker:
    """The adapter's side, as a platform with one channel would give it."""

    text: str = "hello"
    key: ConversationKey | None = KEY
    told: list[str] = field(default_factory=list)
    surfaces: list[MemorySurface] = field(default_factory=list)
    turns_built: int = 0
    while_reading: asyncio.Event | None = None  # set while the turn is being read, if given
    may_finish_reading: asyncio.Event | None = None

    async def tell(self, text: str) -> None:
        self.told.append(text)

    async def conversation(self) -> ConversationKey | None:
        return self.key

    async def turn(self) -> tuple[Turn, ReplySurface] | None:
        self.turns_built += 1
        if self.while_reading is not None and self.may_finish_reading is not None:
            self.while_reading.set()
            await self.may_finish_reading.wait()
        if not self.text:
            return None
        surface = MemorySurface(LIMITS)
        self.surfaces.append(surface)
        return Turn(KEY, "alice", "Alice", self.text, message_id="m1"), surface


def arrival(
    message_id: str = "m1",
    *,
    user: str = "alice",
    channel: str = "C1",
    text: str = "hello",
    addressed: bool = True,
    **facts,
) -> Arrival:
    return Arrival(
        platform="test",
        message_id=message_id,
        event_id=f"message:{message_id}",
        where=Place(channel, user, workspace="W1"),
        admin=False,
        text=text,
        addressed=addressed,
        **facts,
    )


@pytest.fixture
async def service(make_settings):
    service = await ChatService.open(make_settings())
    yield service
    await service.close()


def admission(service: ChatService, allowlist: Allowlist | None = None) -> Admission:
    return Admission(service, HINT, allowlist or Allowlist())


async def test_an_addressed_message_is_answered_once_however_often_it_arrives(service, model_server):
    gate, asker = admission(service), Asker()
    first = await gate.admit(arrival(), asker)
    again = await gate.admit(arrival(), asker)
    assert first is not None and first.status == "complete"
    assert again is None and asker.turns_built == 1
    assert len(model_server.requests) == 1


async def test_a_message_not_meant_for_the_bot_is_left_alone(service, model_server):
    gate, asker = admission(service), Asker()
    assert await gate.admit(arrival(addressed=False), asker) is None
    assert await gate.admit(arrival("m2", addressed=False, continues=KEY), asker) is None
    assert asker.turns_built == 0 and asker.told == []


async def test_a_follow_up_in_a_conversation_the_bot_had_is_answered(service, model_server):
    gate = admission(service)
    await gate.admit(arrival(), Asker())
    outcome = await gate.admit(arrival("m2", addressed=False, continues=KEY), Asker("and then?"))
    assert outcome is not None and outcome.status == "complete"


async def test_a_reply_to_one_of_the_bots_messages_is_answered(service, model_server):
    gate = admission(service)
    first = await gate.admit(arrival(), Asker())
    assert first is not None
    replied = arrival("m2", addressed=False, replies_to=first.refs[-1].id)
    assert (await gate.admit(replied, Asker("more"))) is not None
    assert await gate.admit(arrival("m3", addressed=False, replies_to="someone-else"), Asker()) is None


async def test_outside_the_allowlist_the_person_is_told_once(service, model_server):
    gate = admission(service, Allowlist.of(channels=["C-ok"]))
    asker = Asker()
    for message_id in ("m1", "m2", "m3"):
        assert await gate.admit(arrival(message_id), asker) is None
    assert asker.told == [NOT_ENABLED]
    assert model_server.requests == []


async def test_nothing_asked_gets_the_usage_hint(service, model_server):
    asker = Asker(text="")
    assert await admission(service).admit(arrival(), asker) is None
    assert asker.told == [HINT]


async def test_stop_ends_the_answer_being_written_in_that_conversation(service, model_server):
    model_server.enqueue(Script(content="word " * 400, chunk_chars=5, delay_s=0.01))
    gate, asker = admission(service), Asker()
    answering = asyncio.create_task(gate.admit(arrival(), asker))
    for _ in range(100):
        if asker.surfaces:
            break
        await asyncio.sleep(0.02)
    await shown(asker.surfaces[0], "word")
    stopper = Asker("stop")
    assert await gate.admit(arrival("m2", text="stop"), stopper) is None
    outcome = await asyncio.wait_for(answering, 10)
    assert outcome is not None and outcome.status == "stopped"
    assert stopper.turns_built == 0  # "stop" itself is not a question


async def test_a_prompt_deleted_while_it_is_read_is_never_answered(service, model_server):
    gate = admission(service)
    asker = Asker(while_reading=asyncio.Event(), may_finish_reading=asyncio.Event())
    admitting = asyncio.create_task(gate.admit(arrival(), asker))
    await asker.while_reading.wait()
    gate.deleted("test", "m1")
    asker.may_finish_reading.set()
    assert await asyncio.wait_for(admitting, 10) is None
    assert model_server.requests == []
    assert asker.surfaces[0].calls == []


async def test_deleted_prompts_are_remembered_a_bounded_number(service):
    gate = admission(service)
    for number in range(REMEMBERED_DELETIONS + 1):
        gate.deleted("test", f"gone-{number}")
    assert ("test", "gone-0") not in gate._deleted and (
        "test",
        f"gone-{REMEMBERED_DELETIONS}",
    ) in gate._deleted


async def test_while_draining_nothing_is_claimed_so_a_redelivery_is_answered_later(service, model_server):
    gate = admission(service)
    service.draining = True
    asker = Asker()
    outcome = await gate.admit(arrival(), asker)
    assert outcome is not None and outcome.status == "refused"
    assert await service.store.claim_event("test", "message:m1")  # still unclaimed


class TestAllowlist:
    @pytest.mark.parametrize(
        ("allowlist", "place", "admin", "allowed"),
        [
            (Allowlist(), Place("C1", "u"), False, True),
            (Allowlist.of(channels=["C1"]), Place("C2", "u"), False, False),
            (Allowlist.of(channels=["C1"]), Place("C2", "u"), True, True),
            (Allowlist.of(users=["u"]), Place("C9", "u"), False, True),
            (Allowlist.of(users=["u"]), Place("C9", "v"), False, False),
            # A DM is nobody's channel: with places listed, only listed people use it.
            (Allowlist.of(channels=["C1"]), Place("D1", "u", is_dm=True), False, False),
            (Allowlist.of(channels=["C1"], users=["u"]), Place("D1", "u", is_dm=True), False, True),
            (Allowlist.of(channels=["D1"]), Place("D1", "u", is_dm=True), False, True),
            (Allowlist.of(roles=["r"]), Place("D1", "u", is_dm=True), False, False),
            (Allowlist(), Place("D1", "u", is_dm=True), False, True),
            (Allowlist.of(workspaces=["G1"]), Place("C1", "u", workspace="G2"), False, False),
            (
                Allowlist.of(roles=["r"]),
                Place("C1", "u", workspace="G1", roles=frozenset({"r"})),
                False,
                True,
            ),
            (Allowlist.of(roles=["r"]), Place("C1", "u", workspace="G1"), False, False),
        ],
    )
    def test_who_may_ask_where(self, allowlist, place, admin, allowed):
        assert allowlist.allows(place, admin=admin) is allowed


async def test_work_waits_for_what_runs_then_cancels_what_is_late():
    work = Work("test")
    finished, release = [], asyncio.Event()

    async def quick() -> None:
        finished.append("quick")

    async def slow() -> None:
        await release.wait()
        finished.append("slow")

    work.spawn(quick(), "quick")
    work.spawn(slow(), "slow")
    assert not await work.idle(0.2)
    await work.stop(0.05)
    assert finished == ["quick"] and work.busy == 0
    work.spawn(quick(), "late")  # after stop: dropped, not run
    await asyncio.sleep(0)
    assert finished == ["quick"]
