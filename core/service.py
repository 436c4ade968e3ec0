"""ChatService: the core's lifecycle and the one way into an answer.

    adapter -> core.admission (addressed? allowed? claimed? stop? deleted?) -> ChatService.answer
        -> draining?, per-conversation order -> core.answer.Answer (budget, media, context, model,
        ledger) driving a ReplyStreamer over the adapter's ReplySurface -> AnswerOutcome

What commands mean lives in `core.commands`; the steps from a platform event to `answer` in
`core.admission`. The service holds what they share: settings, store, model client, media, budgets,
pacing, metrics, and the answers in flight (so a stop, a deleted prompt or a shutdown reaches them).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from core.answer import Answer, AnswerOutcome, InFlight
from core.config import Settings
from core.coordination import bucket_store
from core.costs import BudgetPolicy
from core.llm.client import ChatClient
from core.locks import KeyedLocks
from core.media import MediaPipeline
from core.metrics import Metrics
from core.models import ConversationKey, Turn
from core.reply.budgets import SharedBudgets
from core.reply.pacing import PacerRegistry
from core.reply.split import close_fence, split_message
from core.reply.streamer import ReplyStreamer
from core.reply.surface import PlatformLimits, ReplySurface
from core.store import Store, apply_retention, open_store
from core.store.base import StoredMessage

log = logging.getLogger("seedbot.service")

INTERRUPTED_BY_RESTART = "⚠️ Interrupted: the bot restarted before this answer was finished."
RETENTION_EVERY_S = 6 * 3600.0
DRAINING_MESSAGE = "The bot is restarting; please ask again in a minute."


@dataclass(frozen=True, slots=True)
class InterruptedReply:
    """A reply a crash left mid-stream. The adapter edits message `platform_message_id` to `text`, then
    posts `follow_up` (when set: the warning did not fit in that message) in the same conversation."""

    key: ConversationKey
    platform_message_id: str
    text: str
    follow_up: str | None = None


ShowInterrupted = Callable[[InterruptedReply], Awaitable[bool]]
"""An adapter's way to fix one reply in chat: True when shown, False when there is nothing visible to
fix (a private answer); a platform error is raised and logged by the core."""


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
        redis_url = settings.redis_url.get_secret_value() if settings.redis_url else None
        # Budgets wider than a channel (a Slack workspace's per-method limits), shared by every reply.
        self.reply_budgets = SharedBudgets(
            bucket_store(redis_url, on_fallback=metrics.budget_fallback), metrics=metrics
        )
        self.metrics = metrics
        self._locks = KeyedLocks()
        self._by_prompt: dict[tuple[str, str], InFlight] = {}
        self._flights: set[InFlight] = set()
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

    # --- stopping ---------------------------------------------------------------------------------------

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

    # --- crash recovery ---------------------------------------------------------------------------------

    def interrupted_replies(self, platform: str, limits: PlatformLimits) -> list[InterruptedReply]:
        """Replies of `platform` a crash left mid-stream, with the text their last message should show
        (handed out once)."""
        mine = [m for m in self._recovered if m.key.platform == platform and m.platform_message_id]
        self._recovered = [m for m in self._recovered if m not in mine]
        replies = []
        for message in mine:
            # The same split the live reply used, so the last part is what that message showed.
            last = close_fence((split_message(message.text, limits.max_message_chars) or [""])[-1])
            marked = f"{last}\n\n{INTERRUPTED_BY_RESTART}" if last else INTERRUPTED_BY_RESTART
            message_id = message.platform_message_id or ""
            if len(marked) <= limits.max_message_chars:
                replies.append(InterruptedReply(message.key, message_id, marked))
            else:
                replies.append(InterruptedReply(message.key, message_id, last, INTERRUPTED_BY_RESTART))
        return replies

    async def repair_interrupted(self, platform: str, limits: PlatformLimits, show: ShowInterrupted) -> int:
        """Make every reply a crash left mid-stream say so in chat, through the adapter's `show`; one
        failure is logged and the rest still get fixed. Returns how many were fixed."""
        fixed = 0
        for reply in self.interrupted_replies(platform, limits):
            try:
                fixed += bool(await show(reply))
            except Exception as error:
                log.warning(
                    "could not mark reply %s as interrupted (%s: %s)",
                    reply.platform_message_id,
                    type(error).__name__,
                    error,
                )
        if fixed:
            log.info("marked %d %s replies interrupted by the last shutdown", fixed, platform)
        return fixed

    # --- answering --------------------------------------------------------------------------------------

    async def answer(
        self, turn: Turn, surface: ReplySurface, *, instruction: str | None = None
    ) -> AnswerOutcome:
        """Answer `turn` into `surface`, after the answers before it in its conversation. The surface is
        closed when this returns, whatever happened."""
        platform = turn.key.platform
        use_budgets = getattr(surface, "use_budgets", None)
        if use_budgets is not None:
            use_budgets(self.reply_budgets)
        streamer = ReplyStreamer(
            surface,
            self.pacers.for_channel(surface.limits, turn.key.channel),
            show_reasoning=self.settings.show_reasoning,
            final_edit_deadline_s=self.settings.final_edit_deadline_s,
        )
        flight = InFlight(turn.key)
        # Registered before anything is awaited, so a prompt deleted right away is still caught.
        flight_key = (platform, turn.message_id) if turn.message_id else None
        if flight_key:
            self._by_prompt[flight_key] = flight
        self._flights.add(flight)
        self._idle.clear()
        try:
            if self.draining:
                # Admission claims nothing while draining: delivered again after the restart, it is answered.
                await surface.post(DRAINING_MESSAGE)
                return AnswerOutcome("refused", DRAINING_MESSAGE)
            async with self._locks.hold(turn.key):
                if flight.shutdown:
                    await surface.post(DRAINING_MESSAGE)
                    return AnswerOutcome("interrupted", DRAINING_MESSAGE)
                if flight.stopped:
                    return AnswerOutcome("stopped")
                return await Answer(self, turn, streamer, instruction, flight).run()
        except Exception:
            # A bug or a broken database must not take the adapter down with it; the log has the details.
            log.exception("answer failed", extra={"platform": platform})
            return AnswerOutcome("error")
        finally:
            await streamer.close()
            self._flights.discard(flight)
            if not self._flights:
                self._idle.set()
            if flight_key and self._by_prompt.get(flight_key) is flight:
                del self._by_prompt[flight_key]
