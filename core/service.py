"""ChatService: the core's lifecycle and the one way into an answer.

    adapter -> core.admission (addressed? allowed? claimed? stop? deleted?) -> ChatService.answer
        -> draining?, per-conversation order -> core.answer.Answer (budget, media, context, model,
        ledger) driving a ReplyStreamer over the adapter's ReplySurface -> AnswerOutcome

What commands mean lives in `core.commands`; the steps from a platform event to `answer` in
`core.admission`. The service holds what they share: settings, store, model client, media, budgets,
pacing, metrics, the tools (built-in and the MCP servers', started with the service and stopped with
it) and the answers in flight (so a stop, a deleted prompt or a shutdown reaches them).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from core.answer import Answer, AnswerOutcome, AnswerProgress, InFlight
from core.config import ConfigError, Settings
from core.conversation_locks import SharedLocks
from core.coordination import RedisLink, bucket_store
from core.costs import BudgetPolicy
from core.deferred import DeferredWrites
from core.instances import Instance
from core.llm.client import ChatClient
from core.locks import KeyedLocks
from core.media import MediaPipeline
from core.media.download import Downloads
from core.metrics import REDIS_PARTS, Metrics
from core.models import ConversationKey, Turn
from core.preferences import disabled_tools_for
from core.reply.budgets import SharedBudgets
from core.reply.pacing import PacerRegistry
from core.reply.split import close_fence, split_message
from core.reply.streamer import ReplyStreamer
from core.reply.surface import PlatformLimits, ReplySurface
from core.stops import Stop, StopFanout
from core.store import Store, apply_retention, open_store
from core.store.base import STORAGE_UNAVAILABLE, StoredMessage, StoreError
from core.tools.base import Tool
from core.tools.builtin import builtin_tools
from core.tools.mcp import McpManager
from core.tools.toolbox import Toolbox

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


async def start_mcp(settings: Settings, media: MediaPipeline) -> McpManager:
    """The configured MCP servers, started (bounded); an unusable config or server is only logged."""
    if not settings.tools_enabled:
        return McpManager([])
    try:
        manager = McpManager.from_settings(settings, media)
    except ConfigError as error:
        log.error("MCP servers not started: %s", error)
        return McpManager([])
    await manager.start()
    for status in manager.status():
        if status.state != "ok":
            log.warning("MCP server %s", status.line())
    return manager


class ChatService:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        client: ChatClient,
        media: MediaPipeline,
        metrics: Metrics,
        mcp: McpManager | None = None,
    ):
        self.settings = settings
        self.store = store
        self.client = client
        self.media = media
        # Adapters fetch shared files through this one client (bounded, redirect-checked).
        self.downloads = Downloads()
        self.budgets = BudgetPolicy(settings, store)
        self.pacers = PacerRegistry()
        redis_url = settings.redis_url.get_secret_value() if settings.redis_url else None
        # What each part that uses Redis last saw of it: logged, counted and shown once per outage.
        self.redis_links = {part: RedisLink(part, metrics.redis_reachable) for part in REDIS_PARTS}
        # Budgets wider than a channel (a Slack workspace's per-method limits), shared by every reply.
        store = bucket_store(redis_url, on_fallback=metrics.budget_fallback, link=self.redis_links["budgets"])
        self.reply_budgets = SharedBudgets(store, metrics=metrics)
        self.metrics = metrics
        self.mcp = mcp or McpManager([])
        self.builtin_tools = builtin_tools(settings, media)
        self._locks = KeyedLocks()
        self._by_prompt: dict[tuple[str, str], InFlight] = {}
        self._flights: set[InFlight] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._recovered: list[StoredMessage] = []
        # How each platform fixes an interrupted reply in chat, for replies taken over later.
        self._repairers: dict[str, tuple[PlatformLimits, ShowInterrupted]] = {}
        self.instance: Instance | None = None  # set by `join_instances` (`seedbot run` only)
        self.stops: StopFanout | None = None  # stops shared with the other instances (REDIS_URL)
        self.shared_locks: SharedLocks | None = None  # conversations' order across instances (REDIS_URL)
        self._publishing: set[asyncio.Task[None]] = set()
        # Ledger rows and final replies of answers that finished while the database was away.
        self.deferred = DeferredWrites()
        self.draining = False

    @classmethod
    async def open(cls, settings: Settings) -> ChatService:
        """Open the store (applying migrations), recover crashed replies, apply retention, start the MCP
        servers (one that cannot start is logged and left out; it never stops the bot)."""
        store = await open_store(settings)
        metrics = Metrics()
        client = ChatClient(settings, on_retry=metrics.retry)
        media = MediaPipeline(settings)
        service = cls(settings, store, client, media, metrics, await start_mcp(settings, media))
        service._recovered = await store.recover_streaming()
        await apply_retention(store, settings)
        return service

    async def join_instances(self, *, coordinated: bool) -> None:
        """Run as one of the bot's instances: hold a lease (waiting first for a live peer when not
        `coordinated`), own the replies this process streams, and take over the replies of instances
        that died (see `keep_instance`)."""
        self.instance = Instance(self.store, coordinated=coordinated, on_heartbeat=self.metrics.lease_renewed)
        await self.instance.join()
        self.metrics.running_as(self.instance.id)
        if self.settings.redis_url is not None:
            url = self.settings.redis_url.get_secret_value()
            self.stops = StopFanout(url, self._stop_here, link=self.redis_links["stops"])
            self.stops.start()
            self.shared_locks = SharedLocks(url, link=self.redis_links["locks"])
        self._recovered += await self.store.recover_streaming(self.instance.id)

    def redis_state(self) -> dict[str, bool] | None:
        """For /readyz (shown, never required: without Redis an instance answers, pacing and stopping
        alone): whether the stop listener is subscribed now, and whether the budgets and the locks
        reached Redis at their latest call (left out until they first try). None without REDIS_URL."""
        if self.settings.redis_url is None:
            return None
        state = {part: link.reachable for part, link in self.redis_links.items() if part != "stops"}
        if self.stops is not None:
            state["stops"] = self.stops.listening.is_set()
        return {part: reachable for part, reachable in state.items() if reachable is not None}

    async def keep_instance(self) -> None:
        """Renew the lease, and now and then take over what dead peers left streaming (cancel to stop)."""
        assert self.instance is not None, "join_instances() first"
        await self.instance.keep_alive(self._take_over)

    async def _take_over(self) -> None:
        assert self.instance is not None
        # Not as `self.instance.id`: that would take over this instance's own replies, which are live
        # (being written right now), not a predecessor's; its lease was just renewed, so they stay.
        orphans = await self.store.recover_streaming()
        if not orphans:
            return
        log.info("took over %d replies of instances whose lease expired", len(orphans))
        self.metrics.takeover(len(orphans))
        self._recovered += orphans
        for platform, (limits, show) in list(self._repairers.items()):
            await self.repair_interrupted(platform, limits, show)

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
        if self.instance is not None:
            await self.instance.leave()
        if self.stops is not None:
            await asyncio.gather(*self._publishing, return_exceptions=True)
            await self.stops.close()
        if self.shared_locks is not None:
            await self.shared_locks.close()
        await self.mcp.aclose()
        await self.client.aclose()
        await self.downloads.aclose()
        await self.deferred.close()
        await self.store.close()

    # --- tools ------------------------------------------------------------------------------------------

    def available_tools(self) -> list[Tool]:
        """Every tool the bot has now: the built-in ones and those of the MCP servers that are up."""
        if not self.settings.tools_enabled:
            return []
        return [*self.builtin_tools, *self.mcp.tools()]

    async def toolbox_for(self, key: ConversationKey) -> Toolbox | None:
        """The tools offered to answers in this channel (without those switched off there, see the
        `tools` command); None when there are none."""
        tools = self.available_tools()
        if not tools:
            return None
        disabled, _ = await disabled_tools_for(
            self.store, platform=key.platform, workspace=key.workspace, channel=key.channel
        )
        enabled = [tool for tool in tools if tool.name not in disabled]
        return Toolbox.from_settings(self.settings, enabled) if enabled else None

    # --- stopping ---------------------------------------------------------------------------------------

    def stop(self, platform: str, prompt_message_id: str) -> bool:
        """Cancel the answer to that prompt, or drop it if it is still waiting its turn. Not answered
        here: the other instances are told (with REDIS_URL). True if it was stopped here."""
        stopped = self._stop_here(Stop(platform, message_id=prompt_message_id))
        if not stopped:
            self._tell_others(Stop(platform, message_id=prompt_message_id))
        return stopped

    def stop_conversation(self, key: ConversationKey) -> bool:
        """Someone asked the bot to stop in this conversation: end what it is writing there and drop
        what is waiting. False if it was not answering there (in this process)."""
        return self._stop_here(Stop(key.platform, key=key))

    async def stop_anywhere(self, key: ConversationKey) -> bool:
        """`stop_conversation` on whichever instance is answering there: False when none is (so the
        "stop" is an ordinary message)."""
        if self.stop_conversation(key):
            return True
        if self.stops is None:
            return False
        recent = await self.store.conversation(key, limit=3)
        if not any(message.role == "assistant" and message.status == "streaming" for message in recent):
            return False
        self._tell_others(Stop(key.platform, key=key))
        return True

    def _turn_across_instances(self, key: ConversationKey) -> contextlib.AbstractAsyncContextManager[object]:
        """The conversation's turn among all instances (with REDIS_URL); this process's order is
        kept by `self._locks` either way."""
        return self.shared_locks.hold(key) if self.shared_locks is not None else contextlib.nullcontext()

    def _stop_here(self, stop: Stop) -> bool:
        if stop.key is not None:
            flights = [flight for flight in self._flights if flight.key == stop.key and not flight.stopped]
        else:
            flight = self._by_prompt.get((stop.platform, stop.message_id or ""))
            flights = [flight] if flight is not None and not flight.stopped else []
        for flight in flights:
            flight.cancel()
        return bool(flights)

    def _tell_others(self, stop: Stop) -> None:
        if self.stops is not None:
            task = asyncio.create_task(self.stops.publish(stop), name="stop-publish")
            self._publishing.add(task)
            task.add_done_callback(self._publishing.discard)

    def live(self) -> list[AnswerProgress]:
        """The answers in flight right now (waiting their turn included), oldest first."""
        return sorted((flight.progress() for flight in self._flights), key=lambda answer: answer.started_at)

    def stop_answer(self, answer_id: str) -> bool:
        """Stop the answer `answer_id` of `live()` as a deleted prompt would; False if it is not running."""
        for flight in self._flights:
            if flight.id == answer_id and not flight.stopped:
                flight.cancel()
                return True
        return False

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
        failure is logged and the rest still get fixed; replies taken over from dead instances later are
        fixed through the same `show`. Returns how many were fixed."""
        self._repairers[platform] = (limits, show)
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

    async def answer(self, turn: Turn, surface: ReplySurface) -> AnswerOutcome:
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
        flight = InFlight(turn.key, streamer, turn.user_id)
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
            async with self._locks.hold(turn.key), self._turn_across_instances(turn.key):
                if flight.shutdown:
                    await surface.post(DRAINING_MESSAGE)
                    return AnswerOutcome("interrupted", DRAINING_MESSAGE)
                if flight.stopped:
                    return AnswerOutcome("stopped")
                return await Answer(self, turn, streamer, flight).run()
        except StoreError as error:
            # The database went away: what the reply shows stays; one not yet written says so.
            log.warning("answer ended without the database: %s", error, extra={"platform": platform})
            if not streamer.finished:
                await streamer.finish("error", error=STORAGE_UNAVAILABLE)
            return AnswerOutcome("error", STORAGE_UNAVAILABLE)
        except Exception:
            # A bug must not take the adapter down with it; the log has the details.
            log.exception("answer failed", extra={"platform": platform})
            return AnswerOutcome("error")
        finally:
            await streamer.close()
            self._flights.discard(flight)
            if not self._flights:
                self._idle.set()
            if flight_key and self._by_prompt.get(flight_key) is flight:
                del self._by_prompt[flight_key]
