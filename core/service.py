"""ChatService: the one path every adapter calls, from a `Turn` to a finished reply.

    platform event -> adapter builds a Turn -> ChatService.answer(turn, surface)
        -> dedupe, per-conversation order, settings, media, context, budget
        -> ChatClient.stream() -> ReplyStreamer drives the adapter's surface
        -> store and ledger updated -> AnswerOutcome

Adapters decide who may talk to the bot (allowlists, admins); everything after that lives here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from core.config import Settings
from core.context import ContextTooLarge, NewTurn, assemble_context
from core.costs import (
    BudgetLimits,
    BudgetPolicy,
    Labeller,
    Period,
    ReportScope,
    call_cost,
    cost_report,
    str_label,
    worst_case_cost,
)
from core.llm import errors
from core.llm.client import ChatClient
from core.llm.types import ChatRequest, CompletionResult, Effort, TextPart, Usage
from core.locks import KeyedLocks
from core.media import MediaPipeline, MediaProgress, PreparedMedia
from core.metrics import Metrics
from core.models import AttachmentMeta, ConversationKey, MessageStatus, Turn
from core.reply.footer import format_footer
from core.reply.pacing import PacerRegistry
from core.reply.split import close_fence, split_message
from core.reply.streamer import FinishResult, ReplyStreamer
from core.reply.surface import MessageRef, PlatformLimits, ReplySurface
from core.store import Store, apply_retention, open_store
from core.store.base import BudgetKind, CostSource, LedgerEntry, Reservation, StoredMessage, utc_now

log = logging.getLogger("seedbot.service")

Outcome = Literal["complete", "interrupted", "stopped", "error", "refused", "duplicate"]
StreamOutcome = Literal["complete", "interrupted", "stopped", "error"]
EffortScope = Literal["user", "channel", "workspace"]

INTERRUPTED_BY_RESTART = "⚠️ Interrupted: the bot restarted before this answer was finished."
# The store lags the chat by at most this much of a streaming answer; after a crash, recovery shows
# what the store has, so up to this many seconds of the answer's tail can go missing.
CHECKPOINT_EVERY_S = 2.0
OUR_FAULT = "something went wrong on our side"
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
    """A reply a crash left mid-stream. The adapter edits message `platform_message_id` to `text`, then
    posts `follow_up` (when set: the warning did not fit in that message) in the same conversation."""

    key: ConversationKey
    platform_message_id: str
    text: str
    follow_up: str | None = None


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
            try:
                purged = await apply_retention(self.store, self.settings)
            except Exception:
                log.exception("retention failed; trying again later")
                continue
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
            try:
                await asyncio.wait_for(self._idle.wait(), self.settings.final_edit_deadline_s)
            except TimeoutError:
                log.error("%d answers did not finish; their replies stay as they are", len(self._flights))

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
        for message in mine:
            # The same split the live reply used, so the last part is what that message showed.
            last = close_fence((split_message(message.text, limits.max_message_chars) or [""])[-1])
            marked = f"{last}\n\n{INTERRUPTED_BY_RESTART}" if last else INTERRUPTED_BY_RESTART
            if len(marked) <= limits.max_message_chars:
                replies.append(InterruptedReply(message.key, message.platform_message_id or "", marked))
            else:
                reply = InterruptedReply(
                    message.key, message.platform_message_id or "", last, INTERRUPTED_BY_RESTART
                )
                replies.append(reply)
        return replies

    # --- settings and reports -------------------------------------------------------------------------

    async def effort_for(
        self, *, platform: str, workspace: str, channel: str, user: str
    ) -> tuple[Effort, str]:
        """The effort in force for this person here, and where it was set ("default" if nowhere)."""
        found = await self.store.resolve_setting("effort", platform, workspace, channel, user)
        return found if found is not None else (self.settings.default_effort, "default")  # type: ignore[return-value]

    async def set_effort(
        self, level: Effort | None, *, scope: EffortScope, platform: str, scope_id: str
    ) -> None:
        await self.store.set_setting("effort", level, scope, platform, scope_id)

    async def budgets_for(self, platform: str, workspace: str) -> BudgetLimits:
        """The budgets in force in a workspace: the environment's, or what an admin set there."""
        return await self.budgets.limits(platform, workspace)

    async def set_budget(
        self, kind: BudgetKind, amount: str | None, *, platform: str, workspace: str
    ) -> None:
        """Set a workspace's budget (`"0.50"`, `"$2"`, `"unlimited"`; None: back to the environment's).
        Raises SettingError, whose text is fit to show the admin who typed the amount."""
        await self.store.set_setting(f"{kind}_budget_usd", amount, "workspace", platform, workspace)

    async def system_prompt_for(self, platform: str, channel: str) -> tuple[str, bool]:
        """The system prompt of a channel, and whether the channel has its own."""
        own = await self.store.get_setting("system_prompt", "channel", platform, channel)
        return own or self.settings.system_prompt, own is not None

    async def set_system_prompt(self, text: str | None, *, platform: str, channel: str) -> None:
        """Give a channel its own system prompt (None: back to SEEDBOT_SYSTEM_PROMPT); SettingError if bad."""
        await self.store.set_setting("system_prompt", text, "channel", platform, channel)

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
        if self.draining:
            # Not claimed: if the platform delivers it again after the restart, it is answered then.
            await surface.post(DRAINING_MESSAGE)
            return AnswerOutcome("refused", DRAINING_MESSAGE)
        flight = _InFlight(turn.key)
        # Registered before anything is awaited, so a prompt deleted right away is still caught.
        flight_key = (platform, turn.message_id) if turn.message_id else None
        if flight_key:
            self._by_prompt[flight_key] = flight
        self._flights.add(flight)
        self._idle.clear()
        try:
            if turn.event_id and not await self.store.claim_event(platform, turn.event_id):
                return AnswerOutcome("duplicate")
            async with self._locks.hold(turn.key):
                if flight.shutdown:
                    await surface.post(DRAINING_MESSAGE)
                    return AnswerOutcome("interrupted", DRAINING_MESSAGE)
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
        turn = self.turn
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
        prompt_parts = [TextPart(text=turn.text), *prepared.parts] if turn.text else prepared.parts
        try:
            context = assemble_context(
                await self._history(),
                NewTurn(turn.user_id, turn.user_name, prompt_parts),
                settings=self.settings,
                system_prompt=await self._system_prompt(),
                media_parts=self.service.media.parts_for,
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
        reply_id = await self.store.add_message(
            turn.key, "assistant", "seedbot", "seedbot", "", status="streaming"
        )
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
                    notes=[context.footer_note] if context.footer_note else (),
                )
            finished = await asyncio.shield(
                self.streamer.finish(outcome, error=error, footer=footer, notes=prepared.notes)
            )
        finally:
            await self.service.budgets.settle(
                reservation, self._ledger_entry(result, effort, outcome, usd, source)
            )
        await self._record(reply_id, outcome, result, finished)
        return AnswerOutcome(outcome, result.content, list(finished.refs), result.request_id, usd)

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
                try:
                    await self.surface.set_status(f"Preparing {progress.name}… {progress.fraction:.0%}")
                except Exception as error:  # cosmetic, like every status
                    log.warning("progress status failed: %s", type(error).__name__)
                await asyncio.sleep(PROGRESS_EVERY_S)

        shower = asyncio.create_task(show())
        try:
            return await self.service.media.prepare(self.turn.attachments, on_progress=on_progress)
        finally:
            shower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await shower

    async def _history(self) -> list[StoredMessage]:
        """The stored conversation, after the earlier messages only the platform knows about (thread
        context, reply chains), whose most recent media are prepared so the context can re-send them."""
        turn = self.turn
        stored = await self.store.conversation(turn.key)
        known = {message.platform_message_id for message in stored if message.platform_message_id}
        extra = []
        for message in turn.history:
            if message.message_id in known:
                continue
            # An earlier part of one of our multi-part replies is in the store already, as that reply.
            found = await self.store.find_by_platform_message(turn.key.platform, message.message_id)
            if found is None or found.key != turn.key:
                extra.append(message)
        recent = self.settings.context_media_turns
        with_media = {id(message) for message in extra[-recent:]} if recent else set()
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
        return [*history, *stored]

    async def _system_prompt(self) -> str:
        key = self.turn.key
        prompt, _ = await self.service.system_prompt_for(key.platform, key.channel)
        return f"{prompt}\n\n{self.instruction}" if self.instruction else prompt

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
