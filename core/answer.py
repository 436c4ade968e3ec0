"""The answer pipeline: one turn from budget to finished reply.

    effort, media, history and context -> budget reservation -> store the prompt and a streaming reply
    -> ChatClient.stream() into the ReplyStreamer (checkpointed) -> footer, ledger, stored reply

With tools on here, the model call is a loop of rounds into the same reply:

    reserve -> stream (offering the tools) -> ledger row -> the model asked for tools?
        -> run them (`core.tools.loop`) -> append the calls and results -> reserve the next round ...

Every round is a model call of its own: its own reservation before it, its own ledger row (and request
id) after it, so budgets and `/cost` see every call. The loop ends when the model answers without
calling a tool, or when a bound stops it: SEEDBOT_TOOL_MAX_ROUNDS, the answer's time for tools
(SEEDBOT_TOOL_ANSWER_TIMEOUT_S), a budget, or a tool call cut by the token limit; the reply then says
which, under what was written. The flight's task covers each stream and each round of tools, so a
stop, a deleted prompt or a shutdown ends the answer at any point, tools and confirmations included.

The conversation keeps the final reply text only: tool calls and results live in the requests of the
answer that made them, not in the store, so a later turn does not see (or pay for) them again.

`ChatService.answer` owns what surrounds it (draining, per-conversation order, stop and the reply's
lifecycle); this module is the work itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
import uuid
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from core.context import ContextTooLarge, NewTurn, assemble_context, estimate_message_tokens
from core.costs import call_cost, worst_case_cost
from core.deferred import Write
from core.feedback import FeedbackSubject
from core.history import gather_history
from core.llm import errors
from core.llm.types import ChatRequest, CompletionResult, Cost, Message, TextPart, Usage
from core.media import MediaProgress, PreparedMedia
from core.media.tokens import estimate_text_tokens
from core.models import ConversationKey, MessageStatus, Turn
from core.preferences import effort_for, system_prompt_for
from core.prompts import summary_instruction
from core.reply.footer import format_footer
from core.reply.streamer import FinishResult, ReplyStreamer
from core.reply.surface import MessageRef
from core.store.base import CostSource, LedgerEntry, Reservation, StoreError, utc_now
from core.tools.base import ToolContext
from core.tools.loop import ToolRunner, unique_ids
from core.tools.toolbox import Toolbox

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
CALL_CUT = (
    "⚠️ The model reached its token limit (SEEDBOT_MAX_TOKENS) while writing a tool call; "
    "the call was not run."
)
T = TypeVar("T")


def rounds_bound(rounds: int) -> str:
    return f"⚠️ Stopped after {rounds} tool round{'s' if rounds != 1 else ''} (SEEDBOT_TOOL_MAX_ROUNDS)."


def time_bound(seconds: float) -> str:
    return (
        f"⚠️ Stopped: the tools of this answer ran out of time ({seconds:g} s, SEEDBOT_TOOL_ANSWER_TIMEOUT_S)."
    )


def budget_bound(refusal: str) -> str:
    return f"⚠️ Stopped before the next step: {refusal}."


def spec_tokens(toolbox: Toolbox) -> int:
    """What offering the tools adds to every request's prompt."""
    return sum(estimate_text_tokens(spec.model_dump_json()) for spec in toolbox.specs())


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


Phase = Literal["waiting", "reading files", "model", "finishing"]


@dataclass(frozen=True, slots=True)
class AnswerProgress:
    """One answer in flight as the admin console's Live page shows it."""

    id: str  # stable while the answer runs; what `ChatService.stop_answer` takes
    platform: str
    workspace: str
    channel: str
    user: str
    effort: str  # "" until the answer knows it
    started_at: datetime
    tokens: int  # reasoning + answer chunks streamed so far (about a token each)
    step: str  # "waiting", "reading files", "thinking", "answering", "running <tool>", ...


@dataclass(eq=False, slots=True)
class InFlight:
    """An answer the service may have to stop (by its prompt, its conversation, a shutdown or the
    console), and how far it has got."""

    key: ConversationKey
    streamer: ReplyStreamer
    user: str = ""
    effort: str = ""
    phase: Phase = "waiting"
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    started_at: datetime = field(default_factory=utc_now)
    task: asyncio.Task[None] | None = None
    stopped: bool = False
    shutdown: bool = False  # stopped by the process shutting down rather than by the user

    def cancel(self) -> None:
        self.stopped = True
        if self.task is not None:
            self.task.cancel()

    def progress(self) -> AnswerProgress:
        # While the model or the tools work, the streamer knows best what is happening.
        step = self.streamer.activity if self.phase == "model" else self.phase
        key = self.key
        return AnswerProgress(
            self.id,
            key.platform,
            key.workspace,
            key.channel,
            self.user,
            self.effort,
            self.started_at,
            self.streamer.stats.streamed_chunks,
            step,
        )


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
        self.calls: list[tuple[CompletionResult, Decimal]] = []  # every model call, with its cost
        self.tool_calls = 0

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
        self.flight.effort = effort
        self.flight.phase = "reading files"
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
        toolbox = await self.service.toolbox_for(turn.key)
        prompt_tokens = context.estimated_prompt_tokens + (spec_tokens(toolbox) if toolbox else 0)
        reservation = await self._reserve(prompt_tokens)
        if not isinstance(reservation, Reservation):
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
        checkpoint = asyncio.create_task(self._checkpoint(reply_id))
        self.flight.phase = "model"
        try:
            outcome, error, warning = await self._converse(
                context.messages, reservation, prompt_tokens, effort, toolbox
            )
        finally:
            self.flight.phase = "finishing"
            checkpoint.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await checkpoint
        result = self._combined()
        usd = sum((cost for _, cost in self.calls), Decimal(0))
        footer = None
        if self.settings.footer and outcome != "error":
            footer = format_footer(
                effort=effort,
                elapsed_s=time.monotonic() - self.started,
                usage=result.usage,
                usd=usd,
                notes=[*([context.footer_note] if context.footer_note else []), *history.notes],
                tool_calls=self.tool_calls,
            )
        finished = await asyncio.shield(
            self.streamer.finish(outcome, error=error, footer=footer, notes=prepared.notes, warning=warning)
        )
        await self._record(reply_id, outcome, result, usd, finished)
        # Shutting down, the platform's budget goes to other answers' final texts, not to buttons.
        if outcome == "complete" and finished.delivered and finished.refs and not self.service.draining:
            # As the flight's task: the buttons wait their turn in the platform's budget behind other
            # answers' final texts, and a stop or shutdown meanwhile ends the wait instead of holding
            # the process up. (offer_feedback never raises; the answer is whole either way.)
            message, text = finished.refs[-1], finished.shown[-1]
            subject = FeedbackSubject(reply_id, effort, self.tool_calls, usd, message, text)
            await self._in_flight(self.streamer.offer_feedback(subject))
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

    async def _reserve(self, prompt_tokens: int) -> Reservation | str:
        """Hold the worst case of the next model call; the refusal to show when a budget is spent."""
        key = self.turn.key
        reservation = await self.service.budgets.reserve(
            key, self.turn.user_id, worst_case_cost(self.settings, prompt_tokens)
        )
        if not isinstance(reservation, Reservation):
            self.service.metrics.budget_refused(key.platform)
        return reservation

    async def _converse(
        self,
        messages: list[Message],
        reservation: Reservation,
        prompt_tokens: int,
        effort: str,
        toolbox: Toolbox | None,
    ) -> tuple[StreamOutcome, str | None, str | None]:
        """The model calls of the answer, with the tool rounds between them (see the module docs).
        Returns the outcome, the error to show, and the bound that stopped the loop, if one did."""
        runner = None
        offer: dict[str, Any] = {}
        if toolbox is not None:
            runner = ToolRunner(
                toolbox,
                self._tool_context(),
                self.streamer,
                confirm_timeout_s=self.settings.tool_confirm_timeout_s,
                time_limit_s=self.settings.tool_answer_timeout_s,
            )
            offer = {"tools": toolbox.specs(), "tool_choice": "auto", "parallel_tool_calls": True}
        messages = list(messages)
        max_rounds = self.settings.tool_max_rounds
        for number in range(1, max_rounds + 2):
            request = ChatRequest(
                model=self.settings.model,
                messages=messages,
                max_tokens=self.settings.max_tokens,
                reasoning_effort=effort,  # type: ignore[arg-type]
                **offer,
            )
            outcome, result, error = await self._call_model(request, reservation, prompt_tokens, effort)
            if outcome != "complete" or runner is None or not result.tool_calls:
                return outcome, error, None
            if result.finish_reason == "length":
                return "complete", None, CALL_CUT
            if number > max_rounds:
                return "complete", None, rounds_bound(max_rounds)
            if runner.out_of_time:
                return "complete", None, time_bound(self.settings.tool_answer_timeout_s)
            outcome, done, error = await self._in_flight(runner.run(unique_ids(result.tool_calls, number)))
            self.tool_calls = runner.calls_made
            if done is None:
                return outcome, error, None
            added = done.messages(result.content)
            messages.extend(added)
            if done.out_of_time:
                return "complete", None, time_bound(self.settings.tool_answer_timeout_s)
            prompt_tokens += sum(estimate_message_tokens(message) for message in added)
            next_reservation = await self._reserve(prompt_tokens)
            if not isinstance(next_reservation, Reservation):
                return "complete", None, budget_bound(next_reservation)
            reservation = next_reservation
        raise AssertionError("unreachable: the last round returns")  # pragma: no cover

    def _tool_context(self) -> ToolContext:
        """What tools may know: ids and the platform's search, never a token or a key."""
        key = self.turn.key
        return ToolContext(
            platform=key.platform,
            workspace_id=key.workspace,
            channel_id=key.channel,
            user_id=self.turn.user_id,
            conversation_search=self.streamer.conversation_search,
        )

    def _combined(self) -> CompletionResult:
        """The answer's model calls as one result: the reply's whole text, usage and cost summed."""
        results = [result for result, _ in self.calls]
        if len(results) == 1:
            return results[0]
        last = results[-1]
        usages = [result.usage for result in results if result.usage is not None]
        reported = [result.cost.usd for result in results]
        return CompletionResult(
            request_id=last.request_id,
            content=self.streamer.content,
            reasoning="\n\n".join(result.reasoning for result in results if result.reasoning),
            tool_calls=last.tool_calls,
            finish_reason=last.finish_reason,
            usage=sum(usages[1:], usages[0]) if usages else None,
            cost=Cost(usd=None if None in reported else sum(reported, Decimal(0))),  # type: ignore[arg-type]
            model=last.model,
            time_to_first_token_s=results[0].time_to_first_token_s,
            total_s=sum(result.total_s or 0.0 for result in results),
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
        self,
        reply_id: int,
        outcome: StreamOutcome,
        result: CompletionResult,
        usd: Decimal,
        finished: FinishResult,
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
            usd,
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
        refs = list(finished.refs)

        async def store_reply() -> None:
            await self.store.update_message(
                reply_id,
                text=result.content,
                status=status,
                platform_message_id=refs[-1].id if refs else None,
            )
            if len(refs) > 1:
                await self.store.add_message_parts(reply_id, [ref.id for ref in refs])

        await self._write_or_defer(f"reply {reply_id}", store_reply)

    async def _write_or_defer(self, what: str, write: Write) -> None:
        """Write now, or, with the database away, once it is back: the answer has been shown and paid
        for, and an outage must lose neither its ledger row nor its final text."""
        try:
            await write()
        except StoreError:
            self.service.deferred.add(what, write)

    async def _record_part(self, reply_id: int) -> None:
        refs = self.streamer.refs
        try:
            await self.store.update_message(reply_id, platform_message_id=refs[-1].id)
            if len(refs) > 1:
                await self.store.add_message_parts(reply_id, [ref.id for ref in refs])
        except StoreError as error:
            # The next checkpoint saves where the reply is; the final record, every part.
            log.info("part of reply %s not recorded yet (%s)", reply_id, error)

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

    async def _call_model(
        self, request: ChatRequest, reservation: Reservation, prompt_tokens: int, effort: str
    ) -> tuple[StreamOutcome, CompletionResult, str | None]:
        """One model call streamed into the reply; its reservation is settled with its ledger row
        however it ends (a cancellation of the whole answer included)."""
        stream = self.service.client.stream(request)
        result = stream.result
        started = time.monotonic() if self.calls else self.started
        outcome: str = "cancelled"

        async def consume() -> None:
            async with stream:
                await self.streamer.consume(stream)

        try:
            with self.service.metrics.streaming():
                outcome, _, error = await self._in_flight(consume())
            return outcome, result, error  # type: ignore[return-value]
        finally:
            usd, source = call_cost(self.settings, result, estimated_prompt_tokens=prompt_tokens)
            self.calls.append((result, usd))
            entry = self._ledger_entry(result, effort, outcome, usd, source, time.monotonic() - started)
            settle = functools.partial(self.service.budgets.settle, reservation, entry)
            await self._write_or_defer(f"the ledger row of {entry.request_id}", settle)

    async def _in_flight(self, work: Coroutine[Any, Any, T]) -> tuple[StreamOutcome, T | None, str | None]:
        """Run one step of the answer (a model stream, a round of tools) as the flight's task, so a stop
        or a shutdown ends it at any point, connecting, retrying and confirming included. Returns the
        outcome, the step's value when it completed, and the error to show."""
        self.flight.task = task = asyncio.create_task(work)
        if self.flight.stopped:
            task.cancel()
        try:
            return "complete", await task, None
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if not self.flight.stopped or (current is not None and current.cancelling()):
                raise
            if self.flight.shutdown:
                return "interrupted", None, SHUTTING_DOWN
            return "stopped", None, None
        except errors.ModelAPIError as error:
            return ("interrupted" if self.streamer.content else "error"), None, str(error)
        except Exception:
            log.exception("answer step failed", extra={"request_id": self._last_request_id()})
            return ("interrupted" if self.streamer.content else "error"), None, OUR_FAULT

    def _last_request_id(self) -> str | None:
        return self.calls[-1][0].request_id if self.calls else None

    async def _checkpoint(self, reply_id: int) -> None:
        """Save the growing answer and its latest message id now and then, so that after a crash the
        store holds what the chat shows and recovery knows which message to mark as interrupted."""
        saved_text, saved_ref = "", None
        failing = False
        while True:
            refs = self.streamer.refs
            ref_id = refs[-1].id if refs else None
            text = self.streamer.content
            if text != saved_text or ref_id != saved_ref:
                try:
                    await self.store.update_message(reply_id, text=text, platform_message_id=ref_id)
                    saved_text, saved_ref = text, ref_id
                    failing = False
                except StoreError as error:
                    # The database is away: one line per outage, not one traceback per checkpoint.
                    if not failing:
                        log.warning("checkpoint of reply %s failed (%s); trying again", reply_id, error)
                    failing = True
                except Exception:
                    log.exception("checkpoint of reply %s failed; trying again", reply_id)
            await asyncio.sleep(CHECKPOINT_EVERY_S)

    def _ledger_entry(
        self,
        result: CompletionResult,
        effort: str,
        outcome: str,
        usd: Decimal,
        source: CostSource,
        latency_s: float,
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
            latency_s=latency_s,
            outcome="ok" if outcome == "complete" else outcome,
        )
