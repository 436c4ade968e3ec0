"""The answer pipeline: one turn from budget to finished reply.

    effort, media, history and context -> budget reservation -> store the prompt and a streaming reply
    -> ChatClient.stream() into the ReplyStreamer (checkpointed) -> footer, ledger, stored reply

`ChatService.answer` owns what surrounds it (draining, per-conversation order, stop and the reply's
lifecycle); this module is the work itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Literal

from core.context import ContextTooLarge, NewTurn, assemble_context
from core.costs import call_cost, worst_case_cost
from core.history import gather_history
from core.llm import errors
from core.llm.types import ChatRequest, CompletionResult, TextPart, Usage
from core.media import MediaProgress, PreparedMedia
from core.models import ConversationKey, MessageStatus, Turn
from core.preferences import effort_for, system_prompt_for
from core.prompts import summary_instruction
from core.reply.footer import format_footer
from core.reply.streamer import FinishResult, ReplyStreamer
from core.reply.surface import MessageRef
from core.store.base import CostSource, LedgerEntry, Reservation

if TYPE_CHECKING:
    from core.service import ChatService

log = logging.getLogger("seedbot.service")

Outcome = Literal["complete", "interrupted", "stopped", "error", "refused", "duplicate"]
StreamOutcome = Literal["complete", "interrupted", "stopped", "error"]

# The store lags the chat by at most this much of a streaming answer; after a crash, recovery shows
# what the store has, so up to this many seconds of the answer's tail can go missing.
CHECKPOINT_EVERY_S = 2.0
OUR_FAULT = "something went wrong on our side"
PROGRESS_EVERY_S = 1.0
SHUTTING_DOWN = "the bot is shutting down"


@dataclass(slots=True)
class AnswerOutcome:
    status: Outcome
    text: str = ""
    refs: list[MessageRef] = field(default_factory=list)
    request_id: str | None = None
    usd: Decimal | None = None
    # What the model said (None when it was never asked) and the notes about files that did not make it.
    result: CompletionResult | None = None
    notes: Sequence[str] = ()
    estimated_prompt_tokens: int = 0  # the context's own estimate (what budgets were held against)


@dataclass(eq=False, slots=True)
class InFlight:
    """An answer the service may have to stop: by its prompt, its conversation, or a shutdown."""

    key: ConversationKey
    task: asyncio.Task[None] | None = None
    stopped: bool = False
    shutdown: bool = False  # stopped by the process shutting down rather than by the user

    def cancel(self) -> None:
        self.stopped = True
        if self.task is not None:
            self.task.cancel()


class Answer:
    """One answer in progress: the steps of the pipeline and the state they share."""

    def __init__(
        self,
        service: ChatService,
        turn: Turn,
        streamer: ReplyStreamer,
        flight: InFlight,
    ):
        self.service = service
        self.settings = service.settings
        self.store = service.store
        self.turn = turn
        self.streamer = streamer
        self.flight = flight
        self.started = time.monotonic()

    async def run(self) -> AnswerOutcome:
        turn = self.turn
        await self.streamer.begin()
        effort = (
            turn.effort
            or (
                await effort_for(
                    self.store,
                    self.settings,
                    platform=turn.key.platform,
                    workspace=turn.key.workspace,
                    channel=turn.key.channel,
                    user=turn.user_id,
                )
            )[0]
        )
        prepared = await self._prepare_media()
        prompt_parts = [*([TextPart(text=turn.text)] if turn.text else []), *turn.linked, *prepared.parts]
        history = await gather_history(self.store, self.service.media, turn, self.settings)
        try:
            context = assemble_context(
                history.messages,
                NewTurn(turn.user_id, turn.user_name, prompt_parts),
                settings=self.settings,
                system_prompt=await self._system_prompt(),
                media_parts=history.media_parts(self.service.media.parts_for),
                media_turns=history.media_turns,
                left_out=history.left_out,
            )
        except ContextTooLarge as too_large:
            return await self._end_early("error", str(too_large), prepared.notes)
        if self.flight.stopped:  # deleted, stopped or shut down while its files were being read
            return await self._end_early("stopped", None, prepared.notes)
        reservation = await self.service.budgets.reserve(
            turn.key, turn.user_id, worst_case_cost(self.settings, context.estimated_prompt_tokens)
        )
        if not isinstance(reservation, Reservation):
            self.service.metrics.budget_refused(turn.key.platform)
            return await self._end_early("refused", reservation, prepared.notes)

        # Stored only now that it is answered: a refused prompt must not haunt later contexts.
        await self.store.add_message(
            turn.key,
            "user",
            turn.user_id,
            turn.user_name,
            turn.text,
            platform_message_id=turn.message_id,
            attachments=prepared.attachments,
        )
        # Where the reply lives is recorded as soon as it exists, so recovery can fix it after a crash
        # at any moment (the thinking line may be posted already; every later part as it is posted).
        shown = self.streamer.refs
        reply_id = await self.store.add_message(
            turn.key,
            "assistant",
            "seedbot",
            "seedbot",
            "",
            status="streaming",
            platform_message_id=shown[-1].id if shown else None,
            owner=self.service.instance.id if self.service.instance else None,
        )
        self.streamer.on_posted = lambda ref: self._record_part(reply_id)
        request = ChatRequest(
            model=self.settings.model,
            messages=context.messages,
            max_tokens=self.settings.max_tokens,
            reasoning_effort=effort,
        )
        outcome, result, error = await self._stream(request, reply_id)
        usd, source = call_cost(
            self.settings, result, estimated_prompt_tokens=context.estimated_prompt_tokens
        )
        try:
            footer = None
            if self.settings.footer and outcome != "error":
                footer = format_footer(
                    effort=effort,
                    elapsed_s=time.monotonic() - self.started,
                    usage=result.usage,
                    usd=usd,
                    notes=[*([context.footer_note] if context.footer_note else []), *history.notes],
                )
            finished = await asyncio.shield(
                self.streamer.finish(outcome, error=error, footer=footer, notes=prepared.notes)
            )
        finally:
            await self.service.budgets.settle(
                reservation, self._ledger_entry(result, effort, outcome, usd, source)
            )
        await self._record(reply_id, outcome, result, finished)
        return AnswerOutcome(
            outcome,
            result.content,
            list(finished.refs),
            result.request_id,
            usd,
            result,
            prepared.notes,
            context.estimated_prompt_tokens,
        )

    async def _end_early(self, status: Outcome, reason: str | None, notes: Sequence[str]) -> AnswerOutcome:
        """Finish a reply that never reached the model: too long, refused by a budget, or stopped."""
        if self.flight.shutdown:
            finished = await self.streamer.finish("interrupted", error=SHUTTING_DOWN, notes=notes)
            return AnswerOutcome("interrupted", finished.text, list(finished.refs))
        shown = "stopped" if status == "stopped" else "error"
        finished = await self.streamer.finish(shown, error=reason, notes=notes)
        return AnswerOutcome(status, finished.text, list(finished.refs))

    async def _record(
        self, reply_id: int, outcome: StreamOutcome, result: CompletionResult, finished: FinishResult
    ) -> None:
        """The reply as the store keeps it, and the answer's metrics."""
        key = self.turn.key
        stats = self.streamer.stats
        self.service.metrics.edit(key.platform, stats.posts + stats.edits)
        self.service.metrics.rate_limited(key.platform, stats.rate_limited)
        self.service.metrics.record_answer(
            key.platform,
            outcome,
            result.usage,
            self.streamer.cost.usd if self.streamer.cost else result.cost.usd,
            result.time_to_first_token_s,
            time.monotonic() - self.started,
        )
        status: MessageStatus = {"complete": "complete", "error": "error"}.get(outcome, "interrupted")
        if not finished.delivered:
            # The chat shows less than the store holds: the reply, as people saw it, is incomplete.
            log.error(
                "final text of reply %s not delivered: %s",
                reply_id,
                finished.failure,
                extra={"request_id": result.request_id},
            )
            status = "error" if status == "error" else "interrupted"
        await self.store.update_message(
            reply_id,
            text=result.content,
            status=status,
            platform_message_id=finished.refs[-1].id if finished.refs else None,
        )
        if len(finished.refs) > 1:
            await self.store.add_message_parts(reply_id, [ref.id for ref in finished.refs])

    async def _record_part(self, reply_id: int) -> None:
        refs = self.streamer.refs
        await self.store.update_message(reply_id, platform_message_id=refs[-1].id)
        if len(refs) > 1:
            await self.store.add_message_parts(reply_id, [ref.id for ref in refs])

    async def _prepare_media(self) -> PreparedMedia:
        """Run the prompt's files through the media pipeline, showing progress of slow work (video
        re-encoding) as the reply's status, at most once a second."""
        latest: list[MediaProgress] = []
        changed = asyncio.Event()

        def on_progress(progress: MediaProgress) -> None:
            latest[:] = [progress]
            changed.set()

        async def show() -> None:
            while True:
                await changed.wait()
                changed.clear()
                progress = latest[0]
                await self.streamer.show_status(f"Preparing {progress.name}… {progress.fraction:.0%}")
                await asyncio.sleep(PROGRESS_EVERY_S)

        shower = asyncio.create_task(show())
        try:
            return await self.service.media.prepare(self.turn.attachments, on_progress=on_progress)
        finally:
            shower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await shower

    async def _system_prompt(self) -> str:
        key = self.turn.key
        prompt, _ = await system_prompt_for(
            self.store, self.settings, platform=key.platform, channel=key.channel
        )
        summary = self.turn.summary
        return f"{prompt}\n\n{summary_instruction(summary)}" if summary is not None else prompt

    async def _stream(
        self, request: ChatRequest, reply_id: int
    ) -> tuple[StreamOutcome, CompletionResult, str | None]:
        """Run the model stream into the surface. The flight's task covers the whole call, connecting
        and retrying included, so a stop or a shutdown ends it at any point."""
        stream = self.service.client.stream(request)
        result = stream.result

        async def consume() -> None:
            async with stream:
                await self.streamer.consume(stream)

        checkpoint = asyncio.create_task(self._checkpoint(result, reply_id))
        self.flight.task = asyncio.create_task(consume())
        if self.flight.stopped:
            self.flight.task.cancel()
        try:
            with self.service.metrics.streaming():
                await self.flight.task
            return "complete", result, None
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if not self.flight.stopped or (current is not None and current.cancelling()):
                raise
            if self.flight.shutdown:
                return "interrupted", result, SHUTTING_DOWN
            return "stopped", result, None
        except errors.ModelAPIError as error:
            return ("interrupted" if result.content else "error"), result, str(error)
        except Exception:
            log.exception("model stream failed", extra={"request_id": result.request_id})
            return ("interrupted" if result.content else "error"), result, OUR_FAULT
        finally:
            checkpoint.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await checkpoint

    async def _checkpoint(self, result: CompletionResult, reply_id: int) -> None:
        """Save the growing answer and its latest message id now and then, so that after a crash the
        store holds what the chat shows and recovery knows which message to mark as interrupted."""
        saved_text, saved_ref = "", None
        while True:
            refs = self.streamer.refs
            ref_id = refs[-1].id if refs else None
            if result.content != saved_text or ref_id != saved_ref:
                try:
                    await self.store.update_message(reply_id, text=result.content, platform_message_id=ref_id)
                    saved_text, saved_ref = result.content, ref_id
                except Exception:
                    log.exception("checkpoint of reply %s failed; trying again", reply_id)
            await asyncio.sleep(CHECKPOINT_EVERY_S)

    def _ledger_entry(
        self, result: CompletionResult, effort: str, outcome: str, usd: Decimal, source: CostSource
    ) -> LedgerEntry:
        usage = result.usage or Usage()
        key = self.turn.key
        return LedgerEntry(
            request_id=result.request_id,
            platform=key.platform,
            workspace=key.workspace,
            channel=key.channel,
            user=self.turn.user_id,
            model=self.settings.model,
            effort=effort,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            reasoning_tokens=usage.reasoning_tokens,
            cached_tokens=usage.cached_tokens,
            usd=usd,
            cost_source=source,
            ttft_s=result.time_to_first_token_s,
            latency_s=time.monotonic() - self.started,
            outcome="ok" if outcome == "complete" else outcome,
        )
