"""ChatService: the one path every adapter calls, from a `Turn` to a finished reply.

    platform event -> adapter builds a Turn -> ChatService.answer(turn, surface)
        -> dedupe, per-conversation order, settings, media, context, budget
        -> ChatClient.stream() -> ReplyStreamer drives the adapter's surface
        -> store and ledger updated -> AnswerOutcome

Adapters decide who may talk to the bot (allowlists, admins); everything after that lives here.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from core.config import Settings
from core.context import ContextTooLarge, NewTurn, assemble_context
from core.costs import BudgetPolicy, Labeller, call_cost, cost_report, str_label, worst_case_cost
from core.llm import errors
from core.llm.client import ChatClient
from core.llm.types import ChatRequest, CompletionResult, Effort, TextPart, Usage
from core.locks import KeyedLocks
from core.media import MediaPipeline, MediaProgress, PreparedMedia
from core.metrics import Metrics
from core.models import AttachmentMeta, ConversationKey, Turn
from core.reply.footer import format_footer
from core.reply.pacing import PacerRegistry
from core.reply.split import close_fence, split_message
from core.reply.streamer import ReplyStreamer
from core.reply.surface import MessageRef, PlatformLimits, ReplySurface
from core.store import Store, apply_retention, open_store
from core.store.base import LedgerEntry, Reservation, StoredMessage, utc_now

log = logging.getLogger("seedbot.service")

Outcome = Literal["complete", "interrupted", "stopped", "error", "refused", "duplicate"]
EffortScope = Literal["user", "channel", "workspace"]
ReportScope = Literal["me", "channel", "workspace"]
Period = Literal["today", "7d", "30d", "all"]

INTERRUPTED_BY_RESTART = "⚠️ Interrupted: the bot restarted before this answer was finished."
# A crash loses at most this much of a streaming answer from the store (the chat message keeps it all).
CHECKPOINT_EVERY_S = 2.0
RETENTION_EVERY_S = 6 * 3600.0
PROGRESS_EVERY_S = 1.0


@dataclass(slots=True)
class AnswerOutcome:
    status: Outcome
    text: str = ""
    refs: list[MessageRef] = field(default_factory=list)
    request_id: str | None = None
    usd: Decimal | None = None


@dataclass(frozen=True, slots=True)
class InterruptedReply:
    """A reply a crash left mid-stream; the adapter edits message `platform_message_id` to `text`."""

    key: ConversationKey
    platform_message_id: str
    text: str


SHUTTING_DOWN = "the bot is shutting down"
DRAINING_MESSAGE = "The bot is restarting; please ask again in a minute."


@dataclass(eq=False, slots=True)
class _InFlight:
    key: ConversationKey
    task: asyncio.Task[None] | None = None
    stopped: bool = False
    shutdown: bool = False  # stopped by the process shutting down rather than by the user

    def cancel(self) -> None:
        self.stopped = True
        if self.task is not None:
            self.task.cancel()


class ChatService:
    def __init__(
        self, settings: Settings, store: Store, client: ChatClient, media: MediaPipeline, metrics: Metrics
    ):
        self.settings = settings
        self.store = store
        self.client = client
        self.media = media
        self.budgets = BudgetPolicy(settings, store)
        self.pacers = PacerRegistry()
        self.metrics = metrics
        self._locks = KeyedLocks()
        self._by_prompt: dict[tuple[str, str], _InFlight] = {}
        self._flights: set[_InFlight] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._recovered: list[StoredMessage] = []
        self.draining = False

    @classmethod
    async def open(cls, settings: Settings) -> ChatService:
        """Open the store (applying migrations), recover crashed replies, apply retention."""
        store = await open_store(settings)
        metrics = Metrics()
        client = ChatClient(settings, on_retry=metrics.retry)
        service = cls(settings, store, client, MediaPipeline(settings), metrics)
        service._recovered = await store.recover_streaming()
        await apply_retention(store, settings)
        return service

    async def keep_tidy(self, every_s: float = RETENTION_EVERY_S) -> None:
        """Apply retention now and then for as long as the bot runs (cancel the task to stop it)."""
        while True:
            await asyncio.sleep(every_s)
            purged = await apply_retention(self.store, self.settings)
            if purged:
                log.info("retention: purged %d old messages", purged)

    async def drain(self, grace_s: float) -> None:
        """Stop taking new work; let answers in flight finish for `grace_s`, then end them as interrupted."""
        self.draining = True
        try:
            await asyncio.wait_for(self._idle.wait(), grace_s)
        except TimeoutError:
            log.warning("shutting down with %d answers unfinished", len(self._flights))
            for flight in list(self._flights):
                flight.shutdown = True
                flight.cancel()
            await asyncio.wait_for(self._idle.wait(), self.settings.final_edit_deadline_s)

    async def close(self) -> None:
        await self.client.aclose()
        await self.store.close()

    # --- events and conversations ---------------------------------------------------------------------

    async def claim_event(self, platform: str, event_id: str) -> bool:
        return await self.store.claim_event(platform, event_id)

    async def is_conversation(self, key: ConversationKey) -> bool:
        return await self.store.has_conversation(key)

    async def conversation_for_message(
        self, platform: str, platform_message_id: str
    ) -> ConversationKey | None:
        message = await self.store.find_by_platform_message(platform, platform_message_id)
        return message.key if message else None

    def stop(self, platform: str, prompt_message_id: str) -> bool:
        """Cancel the answer to that prompt, or drop it if it is still waiting its turn."""
        flight = self._by_prompt.get((platform, prompt_message_id))
        if flight is None or flight.stopped:
            return False
        flight.cancel()
        return True

    def stop_conversation(self, key: ConversationKey) -> bool:
        """Someone asked the bot to stop in this conversation: end what it is writing there and drop
        what is waiting. False if it was not answering there."""
        flights = [flight for flight in self._flights if flight.key == key and not flight.stopped]
        for flight in flights:
            flight.cancel()
        return bool(flights)

    async def recover_interrupted(self, platform: str, limits: PlatformLimits) -> list[InterruptedReply]:
        """Replies of `platform` a crash left mid-stream, with the text their last message should show."""
        mine = [m for m in self._recovered if m.key.platform == platform and m.platform_message_id]
        self._recovered = [m for m in self._recovered if m not in mine]
        replies = []
        marker = f"\n\n{INTERRUPTED_BY_RESTART}"
        # Room for the marker and for a code fence that the last part may need closed before it.
        room = limits.max_message_chars - len(marker) - len("\n```")
        for message in mine:
            last = (split_message(message.text, room) or [""])[-1]
            text = close_fence(last) + marker
            replies.append(InterruptedReply(message.key, message.platform_message_id or "", text))
        return replies

    # --- settings and reports -------------------------------------------------------------------------

    async def effort_for(
        self, *, platform: str, workspace: str, channel: str, user: str
    ) -> tuple[Effort, str]:
        for scope, scope_id in (("user", user), ("channel", channel), ("workspace", workspace)):
            value = await self.store.get_setting("effort", scope, platform, scope_id)  # type: ignore[arg-type]
            if value:
                return value, scope  # type: ignore[return-value]
        return self.settings.default_effort, "default"

    async def set_effort(
        self, level: Effort | None, *, scope: EffortScope, platform: str, scope_id: str
    ) -> None:
        await self.store.set_setting("effort", level, scope, platform, scope_id)

    async def cost_report(
        self,
        *,
        key: ConversationKey,
        user_id: str,
        scope: ReportScope,
        period: Period,
        include_top: bool,
        label: Labeller = str_label,
    ) -> str:
        """The `/cost` text for someone talking in `key`'s channel (`include_top` for admins); `label`
        shows a user or channel id the platform's way (a mention, a name)."""
        return await cost_report(
            self.store,
            self.settings,
            key=key,
            user=user_id,
            scope=scope,
            period=period,
            include_top=include_top,
            label=label,
        )

    async def forget_user(self, platform: str, user_id: str) -> int:
        return await self.store.forget_user(platform, user_id)

    # --- answering ------------------------------------------------------------------------------------

    async def answer(
        self, turn: Turn, surface: ReplySurface, *, instruction: str | None = None
    ) -> AnswerOutcome:
        platform = turn.key.platform
        if turn.event_id and not await self.store.claim_event(platform, turn.event_id):
            return AnswerOutcome("duplicate")
        if self.draining:
            await surface.post(DRAINING_MESSAGE)
            return AnswerOutcome("refused", DRAINING_MESSAGE)
        flight = _InFlight(turn.key)
        flight_key = (platform, turn.message_id) if turn.message_id else None
        if flight_key:
            self._by_prompt[flight_key] = flight
        self._flights.add(flight)
        self._idle.clear()
        try:
            async with self._locks.hold(turn.key):
                if flight.stopped:
                    return AnswerOutcome("stopped")
                return await _Answer(self, turn, surface, instruction, flight).run()
        except Exception:
            # A bug or a broken database must not take the adapter down with it; the log has the details.
            log.exception("answer failed", extra={"platform": platform})
            return AnswerOutcome("error")
        finally:
            self._flights.discard(flight)
            if not self._flights:
                self._idle.set()
            if flight_key and self._by_prompt.get(flight_key) is flight:
                del self._by_prompt[flight_key]


class _Answer:
    """One answer in progress: the steps of `ChatService.answer` and the state they share."""

    def __init__(
        self,
        service: ChatService,
        turn: Turn,
        surface: ReplySurface,
        instruction: str | None,
        flight: _InFlight,
    ):
        self.service = service
        self.settings = service.settings
        self.store = service.store
        self.turn = turn
        self.surface = surface
        self.instruction = instruction
        self.flight = flight
        self.started = time.monotonic()
        self.streamer = ReplyStreamer(
            surface,
            service.pacers.for_channel(surface.limits, turn.key.channel),
            show_reasoning=self.settings.show_reasoning,
            final_edit_deadline_s=self.settings.final_edit_deadline_s,
        )

    async def run(self) -> AnswerOutcome:
        turn, store = self.turn, self.store
        await self.streamer.begin()
        effort = (
            turn.effort
            or (
                await self.service.effort_for(
                    platform=turn.key.platform,
                    workspace=turn.key.workspace,
                    channel=turn.key.channel,
                    user=turn.user_id,
                )
            )[0]
        )
        prepared = await self._prepare_media()
        history = [*await self._platform_history(), *await store.conversation(turn.key)]
        await store.add_message(
            turn.key,
            "user",
            turn.user_id,
            turn.user_name,
            turn.text,
            platform_message_id=turn.message_id,
            attachments=prepared.attachments,
        )
        prompt_parts = [TextPart(text=turn.text), *prepared.parts] if turn.text else prepared.parts
        try:
            context = assemble_context(
                history,
                NewTurn(turn.user_id, turn.user_name, prompt_parts),
                settings=self.settings,
                system_prompt=await self._system_prompt(),
                media_parts=self.service.media.parts_for,
            )
        except ContextTooLarge as too_large:
            result = await self.streamer.finish("error", error=str(too_large), notes=prepared.notes)
            return AnswerOutcome("error", result.text, result.refs)
        request = ChatRequest(
            model=self.settings.model,
            messages=context.messages,
            max_tokens=self.settings.max_tokens,
            reasoning_effort=effort,
        )
        if self.flight.stopped:  # the prompt was deleted while its files were being read
            result = await self.streamer.finish("stopped", notes=prepared.notes)
            return AnswerOutcome("stopped", result.text, result.refs)
        worst_case = worst_case_cost(self.settings, context.estimated_prompt_tokens)
        reservation = await self.service.budgets.reserve(turn.key, turn.user_id, worst_case)
        if not isinstance(reservation, Reservation):
            self.service.metrics.budget_refused(turn.key.platform)
            result = await self.streamer.finish("error", error=reservation, notes=prepared.notes)
            return AnswerOutcome("refused", result.text, result.refs)

        reply_id = await store.add_message(
            turn.key, "assistant", "seedbot", "seedbot", "", status="streaming"
        )
        outcome, result, error = await self._stream(request, reply_id)
        notes = list(prepared.notes)
        footer = None
        usd, source = call_cost(
            self.settings, result, estimated_prompt_tokens=context.estimated_prompt_tokens
        )
        if self.settings.footer and outcome != "error":
            footer = format_footer(
                effort=effort,
                elapsed_s=time.monotonic() - self.started,
                usage=result.usage,
                usd=usd,
                notes=[context.footer_note] if context.footer_note else (),
            )
        finished = await asyncio.shield(
            self.streamer.finish(outcome, error=error, footer=footer, notes=notes)
        )
        stats = self.streamer.stats
        self.service.metrics.edit(turn.key.platform, stats.posts + stats.edits)
        self.service.metrics.rate_limited(turn.key.platform, stats.rate_limited)
        if not finished.delivered:
            log.error(
                "final text of reply %s could not be delivered",
                reply_id,
                extra={"request_id": result.request_id},
            )
        await store.update_message(
            reply_id,
            text=result.content,
            status="complete"
            if outcome == "complete"
            else ("error" if outcome == "error" else "interrupted"),
            platform_message_id=finished.refs[-1].id if finished.refs else None,
        )
        await self.service.budgets.settle(
            reservation, self._ledger_entry(result, effort, outcome, usd, source)
        )
        self.service.metrics.record_answer(
            turn.key.platform,
            outcome,
            result.usage,
            usd,
            result.time_to_first_token_s,
            time.monotonic() - self.started,
        )
        return AnswerOutcome(outcome, result.content, finished.refs, result.request_id, usd)

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
                await self.surface.set_status(f"Preparing {progress.name}… {progress.fraction:.0%}")
                await asyncio.sleep(PROGRESS_EVERY_S)

        shower = asyncio.create_task(show())
        try:
            return await self.service.media.prepare(self.turn.attachments, on_progress=on_progress)
        finally:
            shower.cancel()

    async def _platform_history(self) -> list[StoredMessage]:
        """Earlier messages the platform handed over that the store does not have (thread context, reply
        chains), with the media of the most recent ones prepared so the context can re-send them."""
        turn = self.turn
        stored_ids = {
            m.platform_message_id for m in await self.store.conversation(turn.key) if m.platform_message_id
        }
        extra = [message for message in turn.history if message.message_id not in stored_ids]
        with_media = (
            {id(message) for message in extra[-self.settings.context_media_turns :]}
            if self.settings.context_media_turns
            else set()
        )
        now = utc_now()
        history = []
        for message in extra:
            attachments: tuple[AttachmentMeta, ...] = ()
            if message.attachments and id(message) in with_media:
                attachments = tuple((await self.service.media.prepare(message.attachments)).attachments)
            history.append(
                StoredMessage(
                    id=0,
                    key=turn.key,
                    role=message.role,
                    author_id=message.author,
                    author_name=message.author,
                    text=message.text,
                    status="complete",
                    platform_message_id=message.message_id,
                    attachments=attachments,
                    created_at=now,
                )
            )
        return history

    async def _system_prompt(self) -> str:
        key = self.turn.key
        channel_prompt = await self.store.get_setting("system_prompt", "channel", key.platform, key.channel)
        prompt = channel_prompt or self.settings.system_prompt
        return f"{prompt}\n\n{self.instruction}" if self.instruction else prompt

    async def _stream(
        self, request: ChatRequest, reply_id: int
    ) -> tuple[Literal["complete", "interrupted", "stopped", "error"], CompletionResult, str | None]:
        """Run the model stream into the surface; cancellation (stop) and errors end it cleanly."""
        stream = self.service.client.stream(request)
        checkpoint = asyncio.create_task(self._checkpoint(stream.result, reply_id))
        self.service.metrics.stream_started()
        try:
            async with stream:
                self.flight.task = asyncio.create_task(self.streamer.consume(stream))
                if self.flight.stopped:
                    self.flight.task.cancel()
                await self.flight.task
            return "complete", stream.result, None
        except asyncio.CancelledError:
            if not self.flight.stopped:
                raise
            if self.flight.shutdown:
                return "interrupted", stream.result, SHUTTING_DOWN
            return "stopped", stream.result, None
        except errors.ModelAPIError as error:
            outcome = "interrupted" if stream.result.content else "error"
            return outcome, stream.result, str(error)
        finally:
            self.service.metrics.stream_finished()
            checkpoint.cancel()

    async def _checkpoint(self, result: CompletionResult, reply_id: int) -> None:
        """Save the growing answer and its latest message id now and then, so that after a crash the
        store holds what the chat shows and recovery knows which message to mark as interrupted."""
        saved_text, saved_ref = "", None
        while True:
            refs = self.streamer.refs
            ref_id = refs[-1].id if refs else None
            if result.content != saved_text or ref_id != saved_ref:
                saved_text, saved_ref = result.content, ref_id
                await self.store.update_message(reply_id, text=saved_text, platform_message_id=ref_id)
            await asyncio.sleep(CHECKPOINT_EVERY_S)

    def _ledger_entry(
        self, result: CompletionResult, effort: str, outcome: str, usd: Decimal, source: str
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
            cost_source=source,  # type: ignore[arg-type]
            ttft_s=result.time_to_first_token_s,
            latency_s=time.monotonic() - self.started,
            outcome="ok" if outcome == "complete" else outcome,
        )
