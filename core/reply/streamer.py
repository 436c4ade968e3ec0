"""ReplyStreamer: one model answer written live into one chat reply.

One owner edits the reply at any time: `begin()`, then a pump task while `consume()` reads the model's
events, then `finish()`. The pump coalesces everything new since its last edit and edits at the
channel's pace (`EditPacer`); the first answer text and the final text jump the routine spacing.

How the service drives it:

    streamer = ReplyStreamer(surface, pacers.for_channel(surface.limits, channel), show_reasoning=True)
    await streamer.begin()                                   # "Thinking…" at once
    try:
        async with client.stream(request) as stream:
            outcome, error = await streamer.consume(stream), None   # "complete" | "interrupted"
    except ModelAPIError as exc:                             # partial answer kept in streamer.content
        outcome, error = "error", str(exc)
    # a stop cancels the task running consume(); then: outcome = "stopped"
    result = await streamer.finish(outcome, error=error, footer=..., notes=...)
    await streamer.close()                                   # once the reply is recorded: ends the surface

`consume()` raises the stream's `ModelAPIError` (unless the model had already finished: then the
answer is whole and it returns "complete"), and is safe to cancel: the reply keeps what it showed and
`finish()` takes over.

An answer that calls tools consumes one stream per round into the same reply: the text of every round
accumulates (a new round starts a new paragraph), and between rounds `show_step()` shows what the tools
are doing, through the surface's own `show_step` when it has one, else in the reply's thinking line or
status. The URLs the steps report become a "Sources:" line under the final answer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterable, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from core.feedback import FeedbackSubject
from core.llm.errors import ModelAPIError
from core.llm.types import (
    ContentDelta,
    Cost,
    CostReport,
    Finish,
    FinishReason,
    ReasoningDelta,
    StreamEvent,
    Usage,
    UsageReport,
)
from core.reply.pacing import EditPacer, Priority, call_priority
from core.reply.split import MIN_MESSAGE_CHARS, close_fence, split_message
from core.reply.surface import (
    MessageRef,
    ReplySurface,
    SurfaceBusy,
    SurfaceError,
    SurfaceRateLimited,
    ToolStep,
)
from core.tools.base import ConversationSearch
from core.tools.confirm import ConfirmationRequest, Decision, PendingConfirmation

log = logging.getLogger("seedbot.reply")

Outcome = Literal["complete", "interrupted", "stopped", "error"]

THINKING = "Thinking…"
STOPPED = "⏹️ Stopped."
CUT_OFF = "The answer was cut off before the model finished."
EXCERPT_CHARS = 200
# Markdown and mention syntax in raw reasoning would break out of the italic excerpt (or ping people).
_EXCERPT_DROP = str.maketrans("", "", "*_~|`<>\\")
# Room the thinking label and italics need next to the excerpt.
_THINKING_LABEL_CHARS = 40


@dataclass(frozen=True, slots=True)
class FinishResult:
    refs: tuple[MessageRef, ...]  # every message of the reply, in order
    delivered: bool  # False: the final text could not be shown (log it and keep it in the store)
    text: str  # the final text of the whole reply, answer plus warning, notes and footer
    failure: str | None = None  # why it was not delivered
    shown: tuple[str, ...] = ()  # the text each message shows now


@dataclass(slots=True)
class ReplyStats:
    posts: int = 0
    edits: int = 0
    rate_limited: int = 0  # 429s the platform answered this reply
    first_token_at: float | None = None  # clock() when the first answer text arrived...
    first_visible_at: float | None = None  # ...and when the platform had it
    streamed_chunks: int = 0  # reasoning and answer chunks received, every round (about a token each)


@dataclass(frozen=True, slots=True)
class _Op:
    kind: Literal["post", "edit", "status"]
    index: int = 0
    text: str | None = None
    priority: Priority = "routine"


class ReplyStreamer:
    """Drives one `ReplySurface` through one answer (see the module docs for the call sequence).

    `pacer` is the channel's (`PacerRegistry.for_channel`), shared with every other reply there.
    `clock` must tick in seconds like `time.monotonic`: waits are real-time.
    After `consume()`, `content`, `finish_reason`, `usage` and `cost` hold what the stream said.
    """

    def __init__(
        self,
        surface: ReplySurface,
        pacer: EditPacer,
        *,
        show_reasoning: bool,
        final_edit_deadline_s: float = 180.0,  # SEEDBOT_FINAL_EDIT_DEADLINE_S's default
        clock: Callable[[], float] = time.monotonic,
    ):
        self._surface = surface
        self._limits = surface.limits
        if self._limits.max_message_chars < MIN_MESSAGE_CHARS:
            raise ValueError(f"{self._limits.name}: max_message_chars must be at least {MIN_MESSAGE_CHARS}")
        self._pacer = pacer
        self._show_reasoning = show_reasoning
        self._excerpt_chars = min(EXCERPT_CHARS, self._limits.max_message_chars - _THINKING_LABEL_CHARS)
        self._deadline_s = final_edit_deadline_s
        self._clock = clock
        # The thinking line changes every second; refreshing it at half the routine pace leaves the
        # channel room for the first answer text.
        self._think_every_s = max(1.0, 2 * pacer.spacing_s)

        self._chunks: list[str] = []
        self._reasoning_tail = ""
        self._reasoning_seen = False
        self._begun = False
        self.finish_reason: FinishReason | None = None
        self.usage: Usage | None = None
        self.cost: Cost | None = None
        self.stats = ReplyStats()

        self._refs: list[MessageRef] = []
        self._shown: list[str] = []
        self._status: str | None = None
        self._started_at: float | None = None
        self._next_think_at = 0.0
        self._broken: str | None = None
        self._changed = asyncio.Event()
        self._closing = asyncio.Event()
        self._pump_task: asyncio.Task[None] | None = None
        self._closed = False
        self.finished = False  # the final text was written (or tried until the deadline)
        self._reasoning_sink = getattr(surface, "show_reasoning", None)
        # Told of every message the reply posts, the moment it exists (so a crash can always be repaired).
        self.on_posted: Callable[[MessageRef], Awaitable[None]] | None = None
        self._step_sink = getattr(surface, "show_step", None)
        self._steps: dict[str, ToolStep] = {}  # this round's steps, when the core shows them itself
        self._sources: list[str] = []
        self._new_round = False  # the next answer text starts a new paragraph
        # What the answer is doing, for `activity`: this round's text has started, the tools running
        # (step id -> tool), a confirmation question open.
        self._answering = False
        self._running: dict[str, str] = {}
        self._confirming = False

    # --- what the service reads ------------------------------------------------------------------

    @property
    def content(self) -> str:
        """The answer text received so far."""
        if len(self._chunks) > 1:
            self._chunks = ["".join(self._chunks)]
        return self._chunks[0] if self._chunks else ""

    @property
    def refs(self) -> tuple[MessageRef, ...]:
        """The messages posted so far (the first one exists soon after `begin()`), e.g. to record
        where a reply lives before it is finished, so a crash can be repaired."""
        return tuple(self._refs)

    @property
    def activity(self) -> str:
        """What the answer is doing right now, in a few words (the console's Live page)."""
        if self._confirming:
            return "waiting for confirmation"
        if self._running:
            return "running " + ", ".join(sorted(set(self._running.values())))
        return "answering" if self._answering else "thinking"

    # --- the three phases ------------------------------------------------------------------------

    async def begin(self) -> None:
        """Show at once that the bot is working: the thinking line, or the thinking status."""
        self._started_at = self._clock()
        self._begun = True
        await self._set_status(THINKING)
        if self._limits.thinking_in_message:
            op = self._next_op(self._started_at)[0]
            if op is not None and self._pacer.delay(self._started_at, op.priority) == 0:
                await self._run(op)

    async def consume(self, events: AsyncIterable[StreamEvent]) -> Literal["complete", "interrupted"]:
        """Read the model's events to the end, editing the reply as they come (see module docs)."""
        if self._started_at is None:
            self._started_at = self._clock()
        # Each stream reports its own finish and usage.
        self.finish_reason, self.usage, self.cost = None, None, None
        self._new_round = bool(self._chunks)
        self._answering = False
        self._ensure_pump()
        try:
            async for event in events:
                match event:
                    case ContentDelta(text=text) if text:
                        self.stats.streamed_chunks += 1
                        self._answering = True
                        if not self._chunks:
                            self.stats.first_token_at = self._clock()
                        if self._new_round:
                            self._new_round = False
                            text = "\n\n" + text.lstrip()
                        # The steps before stay in view while the model reads their results.
                        self._steps.clear()
                        self._chunks.append(text)
                        self._changed.set()
                    case ReasoningDelta(text=text):
                        self.stats.streamed_chunks += bool(text)
                        if self._reasoning_sink is not None and self._show_reasoning:
                            self._reasoning_sink(text)
                        self._reasoning_tail = (self._reasoning_tail + text)[-2 * self._excerpt_chars :]
                        if not self._reasoning_seen:
                            self._reasoning_seen = True
                            self._changed.set()
                    case Finish(reason=reason):
                        self.finish_reason = reason
                    case UsageReport(usage=usage):
                        self.usage = usage
                    case CostReport(cost=cost):
                        self.cost = cost
        except ModelAPIError as error:
            if self.finish_reason is None:
                raise
            log.warning("model stream failed after the answer was complete: %s", error)
        finally:
            await self._stop_pump()
        return "complete" if self.finish_reason is not None else "interrupted"

    async def finish(
        self,
        outcome: Outcome,
        *,
        error: str | None = None,
        footer: str | None = None,
        notes: Sequence[str] = (),
        warning: str | None = None,
    ) -> FinishResult:
        """Write the final text (answer, sources, warning, per-file notes, footer) and make sure it lands.

        `warning` replaces the one the outcome and finish reason imply (a tool loop stopped by a bound).
        The final edits are retried through 429s until they land or `final_edit_deadline_s` passes.
        """
        await self._stop_pump()
        text = self._final_text(outcome, error, footer, notes, warning)
        failure = await self._deliver(split_message(text, self._limits.max_message_chars))
        if self._status is not None:
            await self._set_status(None)
        if failure:
            log.warning("final reply text not delivered on %s: %s", self._limits.name, failure)
        self.finished = True
        return FinishResult(tuple(self._refs), failure is None, text, failure, tuple(self._shown))

    # --- the pump: the only editor while the stream runs -------------------------------------------

    async def _pump(self) -> None:
        while not self._closing.is_set():
            if self._broken:
                await self._closing.wait()
                return
            self._changed.clear()
            now = self._clock()
            op, wait = self._next_op(now)
            if op is None:
                await _wait(self._changed, wait)
                continue
            if op.kind != "status":
                delay = self._pacer.delay(now, op.priority)
                if delay > 0:
                    # A thinking line gives way as soon as answer text arrives; answer text itself
                    # keeps accumulating while it waits, which is the coalescing.
                    await _wait(self._changed if op.priority == "low" else self._closing, delay)
                    continue
            await self._run(op)

    def _ensure_pump(self) -> None:
        if self._pump_task is None:
            self._closing.clear()
            self._pump_task = asyncio.create_task(self._pump(), name="reply-pump")

    async def _stop_pump(self) -> None:
        task = self._pump_task
        if task is None:
            return
        self._closing.set()
        self._changed.set()
        # Never cancel the pump: a post cancelled in flight could land without us knowing its ref.
        await asyncio.wait({task})
        self._pump_task = None
        if not task.cancelled() and task.exception() is not None:
            log.error("reply pump failed", exc_info=task.exception())

    def _next_op(self, now: float) -> tuple[_Op | None, float | None]:
        """The next call to make, or how long until one may be due (None: until something changes)."""
        content = self.content
        steps = self._step_lines()
        in_message = self._limits.thinking_in_message
        status = None if in_message or not steps else " · ".join(steps)
        if content:
            first = self.stats.first_visible_at is None
            if in_message and steps:
                content = close_fence(content) + "\n\n" + "\n".join(f"_{line}_" for line in steps)
            op = self._diff(self._live_parts(content), "urgent" if first else "routine")
            if op is None and self._status != status:
                op = _Op("status", text=status)
            return op, None
        if steps:
            if in_message:
                return self._diff(["\n".join(f"_{line}_" for line in steps)], "routine"), None
            return (_Op("status", text=status) if status != self._status else None), None
        if now < self._next_think_at:
            return None, self._next_think_at - now
        if self._limits.thinking_in_message:
            if not (self._begun or self._reasoning_seen):
                return None, None
            return self._diff([self._thinking_text(now, markdown=True)], "low"), None
        status = self._thinking_text(now, markdown=False)
        return (_Op("status", text=status) if status != self._status else None), None

    def _diff(self, parts: list[str], priority: Priority) -> _Op | None:
        for index, part in enumerate(parts):
            if index >= len(self._refs):
                return _Op("post", index, part, priority)
            if self._shown[index] != part:
                return _Op("edit", index, part, priority)
        return None

    async def _run(self, op: _Op) -> None:
        if op.kind == "status":
            await self._set_status(op.text)
        else:
            await self._send(op)
        if not self._chunks:
            self._next_think_at = self._clock() + self._think_every_s

    async def _send(self, op: _Op) -> None:
        assert op.text is not None
        call_priority.set(op.priority)
        slot = self._pacer.reserve(self._clock())
        posted: MessageRef | None = None
        try:
            if op.kind == "post":
                ref = posted = await self._surface.post(op.text)
                self._refs.append(ref)
                self._shown.append(op.text)
                self.stats.posts += 1
            else:
                await self._surface.edit(self._refs[op.index], op.text)
                self._shown[op.index] = op.text
                self.stats.edits += 1
            if self._chunks and self.stats.first_visible_at is None:
                self.stats.first_visible_at = self._clock()
        except SurfaceRateLimited as limited:
            self.stats.rate_limited += 1
            self._pacer.penalize(self._clock(), limited.retry_after)
        except SurfaceBusy:
            pass  # nothing was shown: the next call carries this text too
        except SurfaceError as error:
            self._broken = str(error) or type(error).__name__
        except Exception as error:  # an adapter bug must not take the answer down with it
            log.exception("reply surface failed")
            self._broken = f"{type(error).__name__}: {error}"
        finally:
            self._pacer.release(slot, self._clock())
        if posted is not None and self.on_posted is not None:
            try:
                await self.on_posted(posted)
            except Exception:
                log.exception("recording a posted message failed")

    async def show_step(self, step: ToolStep) -> None:
        """A tool call started, finished or failed (see `ToolStep`); never raises for the surface."""
        if step.status == "running":
            self._running[step.id] = step.tool or step.title
        else:
            self._running.pop(step.id, None)
        if step.status == "done":
            self._sources.extend(url for url in step.sources if url not in self._sources)
        if self._step_sink is not None:
            try:
                if await self._step_sink(step):
                    return
            except Exception:
                log.exception("reply surface failed to show a step")
        # No native cards here (or not now, e.g. no stream open): the core shows the step itself.
        self._steps[step.id] = step
        self._ensure_pump()
        self._changed.set()

    # --- confirmations and search: optional capabilities the tool loop reaches through here ------

    @property
    def can_confirm(self) -> bool:
        return callable(getattr(self._surface, "ask_confirmation", None))

    async def ask_confirmation(self, pending: PendingConfirmation) -> bool:
        """Show a confirmation question (see `core.tools.confirm`); False when it could not be shown."""
        try:
            self._confirming = bool(await self._surface.ask_confirmation(pending))  # type: ignore[attr-defined]
        except Exception:
            log.exception("reply surface failed to ask for a confirmation")
            return False
        return self._confirming

    async def show_decision(self, request: ConfirmationRequest, decision: Decision) -> None:
        """Let the surface say how a confirmation ended; never raises for the surface."""
        self._confirming = False
        show = getattr(self._surface, "show_decision", None)
        if show is None:
            return
        try:
            await show(request, decision)
        except Exception:
            log.exception("reply surface failed to show a confirmation's decision")

    async def offer_feedback(self, subject: FeedbackSubject) -> None:
        """Let the surface put 👍 / 👎 under the finished reply (`core.feedback`); never raises for it."""
        offer = getattr(self._surface, "offer_feedback", None)
        if offer is None:
            return
        try:
            await offer(subject)
        except (SurfaceRateLimited, SurfaceError) as error:
            log.warning("feedback buttons not shown: %s", error)
        except Exception:
            log.exception("reply surface failed to show the feedback buttons")

    @property
    def conversation_search(self) -> ConversationSearch | None:
        return getattr(self._surface, "conversation_search", None)

    def _step_lines(self) -> list[str]:
        lines = []
        for step in self._steps.values():
            if step.status == "running" or not step.detail:
                lines.append(step.title)
            else:
                lines.append(f"{'✅' if step.status == 'done' else '⚠️'} {step.detail}")
        return lines

    async def show_status(self, status: str | None) -> None:
        """A transient status of the reply (e.g. media progress); failures are logged, never raised."""
        await self._set_status(status)

    async def close(self) -> None:
        """End the reply's life on the platform (`ReplySurface.close`), once, whatever happened before;
        the service calls it last, after the finished reply is recorded."""
        if self._closed:
            return
        self._closed = True
        try:
            await self._surface.close()
        except Exception:
            log.exception("reply surface failed to close")

    async def _set_status(self, status: str | None) -> None:
        self._status = status
        try:
            await self._surface.set_status(status)
        except (SurfaceRateLimited, SurfaceError) as error:
            log.debug("status not shown: %s", error)
        except Exception:
            log.exception("reply surface failed to show a status")

    # --- rendering -------------------------------------------------------------------------------

    def _live_parts(self, content: str) -> list[str]:
        limit = self._limits.max_message_chars
        parts = split_message(content, limit)
        if parts:
            # Close a code block still being written, so it renders as code while it streams.
            closed = close_fence(parts[-1])
            if len(closed) <= limit:
                parts[-1] = closed
        return parts

    def _thinking_text(self, now: float, *, markdown: bool) -> str:
        seconds = int(now - self._started_at) if self._started_at is not None else 0
        label = f"{THINKING} {seconds} s" if seconds >= 1 else THINKING
        excerpt = self._excerpt() if self._show_reasoning else ""
        if not markdown:
            return f"{label} — {excerpt}" if excerpt else label
        line = f"💭 _{label}_"
        return f"{line}\n_{excerpt}_" if excerpt else line

    def _excerpt(self) -> str:
        """The latest reasoning on one line, starting at a word."""
        text = " ".join(self._reasoning_tail.translate(_EXCERPT_DROP).split())
        if len(text) <= self._excerpt_chars:
            return text
        text = text[-(self._excerpt_chars - 1) :]
        space = text.find(" ")
        return "…" + (text[space + 1 :] if 0 <= space < len(text) // 4 else text)

    def _final_text(
        self,
        outcome: Outcome,
        error: str | None,
        footer: str | None,
        notes: Sequence[str],
        warning: str | None,
    ) -> str:
        body = self.content.rstrip()
        if warning is None or outcome != "complete":
            warning = self._warning(outcome, error, body)
        blocks = [close_fence(body)] if body else []
        if self._sources:
            blocks.append("Sources: " + ", ".join(self._sources))
        tail = [line for line in (warning, *notes) if line]
        if tail:
            blocks.append("\n".join(tail))
        if footer:
            blocks.append(f"_{footer}_")
        return "\n\n".join(blocks)

    def _warning(self, outcome: Outcome, error: str | None, body: str) -> str | None:
        if outcome == "stopped":
            return STOPPED
        if outcome in ("interrupted", "error"):
            reason = error or CUT_OFF
            return f"⚠️ Interrupted: {reason}" if body else f"⚠️ {reason}"
        if self.finish_reason == "length":
            return (
                "⚠️ The answer reached the token limit and may be incomplete."
                if body
                else "⚠️ The model spent its whole token budget reasoning and wrote no answer."
            )
        if self.finish_reason == "content_filter":
            return "⚠️ The answer was stopped by the content filter."
        return None if body else "⚠️ The model returned an empty answer."

    # --- final delivery --------------------------------------------------------------------------

    async def _deliver(self, parts: list[str]) -> str | None:
        """Bring every message to its final text; the reason it could not, or None."""
        deadline = self._clock() + self._deadline_s
        # Each attempt either lands a part or waits out a 429 (at least 50 ms), so the deadline
        # bounds this loop; the count is a second, independent bound.
        for _ in range(len(parts) * 4 + 1000):
            if self._broken:
                return self._broken
            op = self._diff(parts, "urgent")
            if op is None:
                return None
            now = self._clock()
            delay = self._pacer.delay(now, "urgent")
            if now + delay > deadline:
                return f"the platform kept rate limiting the reply for {self._deadline_s:g} s"
            if delay > 0:
                await asyncio.sleep(delay)
                continue
            await self._send(op)
        return "the platform kept refusing the final edit"


async def _wait(event: asyncio.Event, seconds: float | None) -> None:
    """Until `event` is set, or at most `seconds` (None: no limit)."""
    if seconds is None:
        await event.wait()
        return
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        pass
