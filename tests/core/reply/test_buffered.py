"""A reply the platform cannot edit: kept while written, handed over whole when done, within a
message limit that a note makes visible."""

from __future__ import annotations

from core.reply.buffered import BufferedSurface
from core.reply.surface import PlatformLimits

LIMITS = PlatformLimits(name="test", max_message_chars=100, edits_per_window=5, window_s=1.0)
CUT = "\n(the rest did not fit)"


def surface(delivered: list[str], *, max_messages: int = 3) -> BufferedSurface:
    async def deliver(text: str) -> None:
        delivered.append(text)

    return BufferedSurface(
        LIMITS, deliver, channel="C1", max_messages=max_messages, cut_note=CUT, id_prefix="kept"
    )


async def test_nothing_is_shown_until_the_reply_is_done_then_each_message_as_last_edited():
    delivered: list[str] = []
    reply = surface(delivered)
    first = await reply.post("Thinking…")
    await reply.set_status("Thinking… 3 s")
    await reply.edit(first, "The answer, part one.")
    second = await reply.post("Part two")
    await reply.edit(second, "Part two, finished.")
    assert delivered == []
    assert (first.id, second.id, first.channel) == ("kept-1", "kept-2", "C1")
    await reply.close()
    assert delivered == ["The answer, part one.", "Part two, finished."]


async def test_past_the_message_limit_the_last_message_kept_says_the_rest_did_not_fit():
    delivered: list[str] = []
    reply = surface(delivered, max_messages=2)
    for n in range(4):
        await reply.post(f"part {n} " + "x" * 90)
    await reply.close()
    assert len(delivered) == 2
    assert delivered[0] == "part 0 " + "x" * 90
    assert delivered[1].startswith("part 1") and delivered[1].endswith(CUT)
    assert len(delivered[1]) <= LIMITS.max_message_chars


async def test_texts_are_made_safe_for_the_platform_and_a_failed_delivery_ends_the_delivery():
    delivered: list[str] = []

    async def deliver(text: str) -> None:
        if text == "BROKEN":
            raise ConnectionError("gone")
        delivered.append(text)

    reply = BufferedSurface(
        LIMITS, deliver, channel="C1", max_messages=5, cut_note=CUT, id_prefix="p", prepare=str.upper
    )
    for text in ("one", "broken", "three"):
        await reply.post(text)
    await reply.close()
    assert delivered == ["ONE"]
