"""Helpers for driving a ReplyStreamer the way the service does, against the in-memory surface."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import replace

from core.llm.errors import ModelAPIError
from core.llm.types import ContentDelta, Finish, ReasoningDelta, StreamEvent, Usage, UsageReport
from core.reply.pacing import EditPacer
from core.reply.streamer import FinishResult, ReplyStreamer
from core.reply.surface import PlatformLimits
from tests.fakes.memory_surface import MemorySurface

# The platforms' published paces, ten (Discord) and sixty (Slack) times faster so tests stay quick.
DISCORD = PlatformLimits("discord", 2000, edits_per_window=5, window_s=0.5)
SLACK = PlatformLimits("slack", 12000, edits_per_window=50, window_s=1.0, thinking_in_message=False)


def small(limits: PlatformLimits, max_chars: int) -> PlatformLimits:
    return replace(limits, max_message_chars=max_chars)


def answer_events(content: str, reasoning: str = "", *, size: int = 4) -> list[StreamEvent]:
    events: list[StreamEvent] = [
        ReasoningDelta(reasoning[i : i + size]) for i in range(0, len(reasoning), size)
    ]
    events += [ContentDelta(content[i : i + size]) for i in range(0, len(content), size)]
    events += [Finish("stop"), UsageReport(Usage(completion_tokens=len(content) // 4))]
    return events


async def feed(
    events: Iterable[StreamEvent | Exception], *, delay: float = 0.0, closed: list[bool] | None = None
) -> AsyncIterator[StreamEvent]:
    """Yield events (raising any exception among them), pausing `delay` seconds before each."""
    try:
        for event in events:
            await asyncio.sleep(delay)
            if isinstance(event, Exception):
                raise event
            yield event
    finally:
        if closed is not None:
            closed.append(True)


async def wait_until(surface: MemorySurface, predicate: Callable[[], bool], within_s: float = 5.0) -> None:
    """Until the surface's messages satisfy `predicate` (bounded)."""
    async with asyncio.timeout(within_s):
        while not predicate():
            surface.changed.clear()
            await surface.changed.wait()


def make_streamer(
    surface: MemorySurface,
    *,
    pacer: EditPacer | None = None,
    show_reasoning: bool = True,
    deadline_s: float = 5.0,
) -> ReplyStreamer:
    return ReplyStreamer(
        surface,
        pacer or EditPacer.for_limits(surface.limits),
        show_reasoning=show_reasoning,
        final_edit_deadline_s=deadline_s,
    )


async def run_reply(
    streamer: ReplyStreamer,
    events: AsyncIterator[StreamEvent],
    *,
    begin: bool = True,
    footer: str | None = None,
    notes: tuple[str, ...] = (),
) -> FinishResult:
    """What the service does: begin, consume, then finish with the outcome the stream had."""
    if begin:
        await streamer.begin()
    try:
        outcome, error = await streamer.consume(events), None
    except ModelAPIError as exc:
        outcome, error = ("interrupted" if streamer.content else "error"), str(exc)
    return await streamer.finish(outcome, error=error, footer=footer, notes=notes)


def visible_texts(surface: MemorySurface) -> list[str]:
    """Every text the platform accepted for a message, in order."""
    return [call.text or "" for call in surface.calls if call.kind != "status" and call.outcome == "ok"]
