"""A reply that starts where it lasts only a while (an interaction's webhook) and goes on where it
lasts: every edit lands on whichever copy of its message is current."""

from __future__ import annotations

from decimal import Decimal

from core.feedback import FeedbackSubject
from core.reply.handoff import HandOffSurface
from core.reply.surface import MessageRef, PlatformLimits
from tests.fakes.memory_surface import MemorySurface

LIMITS = PlatformLimits(name="test", max_message_chars=100, edits_per_window=100, window_s=1.0)


class Expiring:
    """A first place that takes posts and edits until `expire()`."""

    def __init__(self) -> None:
        self.messages: dict[str, str] = {}
        self.buttons: list[str] = []
        self.expired = False

    def expire(self) -> None:
        self.expired = True

    def holds(self, ref: MessageRef) -> bool:
        return ref.id in self.messages

    async def post(self, text: str) -> MessageRef | None:
        if self.expired:
            return None
        ref = MessageRef(f"first-{len(self.messages) + 1}")
        self.messages[ref.id] = text
        return ref

    async def edit(self, ref: MessageRef, text: str) -> bool:
        if not self.expired:
            self.messages[ref.id] = text
        return not self.expired

    async def offer_feedback(self, subject: FeedbackSubject) -> bool:
        if not self.expired:
            self.buttons.append(subject.message.id)
        return not self.expired


class Lasting(MemorySurface):
    def __init__(self) -> None:
        super().__init__(LIMITS)
        self.buttons: list[str] = []

    async def offer_feedback(self, subject: FeedbackSubject) -> None:
        self.buttons.append(subject.message.id)


def subject(message: MessageRef) -> FeedbackSubject:
    return FeedbackSubject(1, "medium", 0, Decimal("0"), message, "text")


def handoff() -> tuple[HandOffSurface, Expiring, list[Lasting]]:
    first, opened = Expiring(), []

    def then() -> Lasting:
        opened.append(Lasting())
        return opened[-1]

    return HandOffSurface(LIMITS, first, then), first, opened


async def test_while_the_first_place_lasts_everything_is_written_there_and_nothing_else_is_opened():
    surface, first, opened = handoff()
    ref = await surface.post("Thinking…")
    await surface.edit(ref, "The answer.")
    await surface.offer_feedback(subject(ref))
    await surface.close()
    assert first.messages == {ref.id: "The answer."} and first.buttons == [ref.id]
    assert opened == []


async def test_once_it_expires_new_messages_go_where_it_lasts_and_an_edit_moves_its_message_there():
    surface, first, opened = handoff()
    ref = await surface.post("The answer begins")
    first.expire()
    await surface.edit(ref, "The answer begins, and goes on")  # cannot be edited any more: moved
    await surface.edit(ref, "The answer begins, and goes on, and ends.")  # lands on the moved copy
    more = await surface.post("A second part.")
    await surface.edit(more, "A second part, finished.")
    [lasting] = opened  # opened once, when first needed
    assert first.messages[ref.id] == "The answer begins"
    assert lasting.texts == ["The answer begins, and goes on, and ends.", "A second part, finished."]
    await surface.offer_feedback(subject(ref))
    moved = next(iter(lasting.messages))
    assert lasting.buttons == [moved]  # the buttons go on the copy people now read
    await surface.close()
    assert lasting.closed == 1


async def test_feedback_on_a_message_the_first_place_holds_but_can_no_longer_edit_is_left_out():
    surface, first, opened = handoff()
    ref = await surface.post("The whole answer.")
    first.expire()
    await surface.offer_feedback(subject(ref))
    assert first.buttons == [] and opened == []
