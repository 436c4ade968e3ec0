"""The streamer with a surface whose calls draw from budgets shared beyond the channel: it states
each call's priority, and a call the surface could not make for lack of budget (`SurfaceBusy`) is
neither a 429 nor lost: its text comes with the next call."""

from __future__ import annotations

from core.reply.pacing import EditPacer, Priority, call_priority
from core.reply.surface import MessageRef, SurfaceBusy
from tests.core.reply.helpers import SLACK, answer_events, feed, make_streamer, run_reply
from tests.fakes.memory_surface import MemorySurface


class ScarceSurface(MemorySurface):
    """A surface with no budget for its first `busy` edits; records the priority of every call."""

    def __init__(self, busy: int):
        super().__init__(SLACK)
        self.busy = busy
        self.priorities: list[tuple[str, Priority]] = []

    async def post(self, text: str) -> MessageRef:
        self.priorities.append(("post", call_priority.get()))
        return await super().post(text)

    async def edit(self, ref: MessageRef, text: str) -> None:
        self.priorities.append(("edit", call_priority.get()))
        if self.busy:
            self.busy -= 1
            raise SurfaceBusy("no budget")
        await super().edit(ref, text)


async def test_edits_without_budget_are_merged_into_later_ones_and_the_final_text_lands():
    surface = ScarceSurface(busy=3)
    pacer = EditPacer.for_limits(SLACK)
    streamer = make_streamer(surface, pacer=pacer)
    content = "".join(f"word{n} " for n in range(60))
    result = await run_reply(streamer, feed(answer_events(content), delay=0.01), footer="footer")
    assert result.delivered
    assert list(surface.messages.values()) == [result.text]
    assert streamer.stats.rate_limited == 0 and pacer.rate_limited == 0
    assert surface.priorities[0] == ("post", "urgent")  # the first sign of life
    assert surface.priorities[-1] == ("edit", "urgent")  # the final text
    assert ("edit", "routine") in surface.priorities  # what came in between
