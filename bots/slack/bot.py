"""What every Slack handler shares: settings, the service, clients, caches and the work in flight.

Bolt listeners only acknowledge and `spawn()` the real work, so Slack gets its answer within its
3-second window however long the model takes; `spawn` keeps the tasks so a shutdown can wait for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from slack_sdk.errors import SlackApiError

from bots.slack.access import NOT_ENABLED, Refusals
from bots.slack.api import error_code, web_client
from bots.slack.conversation import PLATFORM, People
from bots.slack.files import SlackFiles
from bots.slack.surface import SLACK_LIMITS, Capabilities, EphemeralSurface, SlackSurface
from core.config import Settings
from core.models import Turn

if TYPE_CHECKING:
    from core.service import AnswerOutcome, ChatService

log = logging.getLogger(__name__)

_TS = re.compile(r"^\d+\.\d+$")
# Deleted messages remembered in case an answer to one is still being prepared (most are not prompts).
DELETED_REMEMBERED = 1000


@dataclass(frozen=True, slots=True)
class Identity:
    """Who the app is in this workspace (from `auth.test`)."""

    team_id: str
    bot_user_id: str
    bot_id: str


class SlackBot:
    def __init__(self, settings: Settings, service: ChatService):
        self.settings = settings
        self.service = service
        self.replies = web_client(settings, waits_out_rate_limits=False)
        self.reads = web_client(settings, waits_out_rate_limits=True)
        self.capabilities = Capabilities(native_streaming=settings.slack_stream_mode == "native")
        self.files = SlackFiles(settings, self.reads)
        self.people = People(self.reads)
        self.refusals = Refusals()
        self.accepting = True
        # Prompts deleted before their answer started (ts, as an ordered set), so it never starts.
        self._deleted: dict[str, None] = {}
        self.in_flight: set[asyncio.Task[Any]] = set()
        self._identity: Identity | None = None

    @property
    def connected(self) -> bool:
        """`connect()` has run: the handlers know who the app is."""
        return self._identity is not None

    @property
    def identity(self) -> Identity:
        assert self._identity is not None, "connect() has not run"
        return self._identity

    async def connect(self) -> Identity:
        """Check the bot token (`auth.test`) and learn who the app is; raises SlackApiError."""
        response = await self.reads.auth_test()
        self._identity = Identity(str(response["team_id"]), str(response["user_id"]), str(response["bot_id"]))
        return self._identity

    async def close(self) -> None:
        await self.files.close()

    # --- work in flight --------------------------------------------------------------------------

    def spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        if not self.accepting:
            work.close()
            return
        task = asyncio.create_task(self._logged(work, name), name=f"slack-{name}")
        self.in_flight.add(task)
        task.add_done_callback(self.in_flight.discard)

    @staticmethod
    async def _logged(work: Coroutine[Any, Any, None], name: str) -> None:
        try:
            await work
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("Slack %s failed", name)

    async def idle(self, timeout_s: float) -> bool:
        """Wait until no work is in flight (True) or `timeout_s` passes (False)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while self.in_flight:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            await asyncio.wait(set(self.in_flight), timeout=remaining)
        return True

    # --- answering -------------------------------------------------------------------------------

    def stop(self, ts: str) -> None:
        """The message `ts` was deleted: stop its answer, or make sure it never starts."""
        if not ts:
            return
        if self.service.stop(PLATFORM, ts):
            log.info("prompt %s deleted: stopped its answer", ts)
            return
        self._deleted[ts] = None
        if len(self._deleted) > DELETED_REMEMBERED:
            del self._deleted[next(iter(self._deleted))]

    def was_deleted(self, ts: str) -> bool:
        return ts in self._deleted

    def surface(self, *, channel: str, thread_ts: str | None, user: str) -> SlackSurface:
        return SlackSurface(
            self.replies,
            self.capabilities,
            channel=channel,
            thread_ts=thread_ts,
            team_id=self.identity.team_id,
            user_id=user,
        )

    async def answer(
        self, turn: Turn, surface: SlackSurface | EphemeralSurface, *, instruction: str | None = None
    ) -> AnswerOutcome:
        try:
            return await self.service.answer(turn, surface, instruction=instruction)
        finally:
            await surface.close()

    async def tell(self, channel: str, user: str, text: str, *, thread_ts: str | None = None) -> None:
        """An ephemeral notice only `user` sees; failures are logged, not raised."""
        try:
            await self.reads.chat_postEphemeral(channel=channel, user=user, text=text, thread_ts=thread_ts)
        except SlackApiError as error:
            log.warning("could not tell %s in %s (%s)", user, channel, error_code(error))

    async def refuse(self, channel: str, user: str, *, thread_ts: str | None = None) -> None:
        if self.refusals.first_time(channel, user):
            await self.tell(channel, user, NOT_ENABLED, thread_ts=thread_ts)

    async def _show_interrupted(self, channel: str, ts: str, text: str) -> None:
        try:
            await self.replies.chat_update(channel=channel, ts=ts, markdown_text=text)
        except SlackApiError:
            # A native stream that outlived the crash must be stopped before its message can change.
            # Only then: chat.stopStream is the slowest rate tier, and most replies were plain edits.
            with contextlib.suppress(SlackApiError):
                await self.replies.chat_stopStream(channel=channel, ts=ts)
            await self.replies.chat_update(channel=channel, ts=ts, markdown_text=text)

    async def recover_interrupted(self) -> int:
        """Replies a crash left mid-stream say so instead of looking unfinished forever."""
        fixed = 0
        for reply in await self.service.recover_interrupted(PLATFORM, SLACK_LIMITS):
            ts, channel = reply.platform_message_id, reply.key.channel
            if not _TS.match(ts):
                continue  # a private answer: nothing visible to fix
            try:
                await self._show_interrupted(channel, ts, reply.text)
                if reply.follow_up:
                    await self.replies.chat_postMessage(
                        channel=channel, thread_ts=reply.key.thread or None, markdown_text=reply.follow_up
                    )
                fixed += 1
            except SlackApiError as error:
                log.warning(
                    "could not mark reply %s in %s as interrupted (%s)", ts, channel, error_code(error)
                )
        return fixed
