"""What every Slack handler shares: settings, the service, clients, caches and the work in flight.

Bolt listeners only acknowledge and `work.spawn()` the real work, so Slack gets its answer within its
3-second window however long the model takes; `Work` keeps the tasks so a shutdown can wait for them.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from slack_bolt.authorization import AuthorizeResult
from slack_sdk.errors import SlackApiError

from bots.slack.api import error_code, web_client
from bots.slack.conversation import PLATFORM, ChannelSearch, People, is_dm
from bots.slack.files import SlackFiles
from bots.slack.questions import SlackQuestions
from bots.slack.surface import SLACK_LIMITS, Capabilities, SlackSurface, pacer
from core.access import Allowlist, Place
from core.admission import Admission, Work
from core.commands import CommandSpec, Dialect, chat_mention, html_safe_quote, usage_hint
from core.config import Settings
from core.service import InterruptedReply

if TYPE_CHECKING:
    from core.service import ChatService

log = logging.getLogger(__name__)

_TS = re.compile(r"^\d+\.\d+$")
SHORTCUT_NAME = "Summarize with Seed"
EXTRAS = (
    CommandSpec("-p", "<question>", "ask privately (only you see the answer)"),
    CommandSpec("shortcut", "", "summarize that message's thread"),
)


def _syntax(spec: CommandSpec) -> str:
    if spec.name == "shortcut":
        return f"Message menu → *{SHORTCUT_NAME}*"
    typed = " ".join(word for word in ("/seed", "" if spec.name == "ask" else spec.name, spec.args) if word)
    return f"`{typed}`"


SLACK = Dialect(
    syntax=_syntax, bold=lambda text: f"*{text}*", quote=html_safe_quote, mention=chat_mention, extras=EXTRAS
)


@dataclass(frozen=True, slots=True)
class Identity:
    """Who the app is in this workspace (from `auth.test`), and Bolt's view of it (`authorization`)."""

    team_id: str
    bot_user_id: str
    authorization: AuthorizeResult


class SlackBot:
    def __init__(self, settings: Settings, service: ChatService):
        self.settings = settings
        self.service = service
        self.replies = web_client(settings, waits_out_rate_limits=False)
        self.reads = web_client(settings, waits_out_rate_limits=True)
        self.capabilities = Capabilities(native_streaming=settings.slack_stream_mode == "native")
        self.files = SlackFiles(settings, self.reads, service.downloads)
        self.people = People(self.reads)
        self.questions = SlackQuestions(self.replies)
        allowlist = Allowlist.of(channels=settings.slack_allowed_channels, users=settings.slack_allowed_users)
        self.admission = Admission(service, usage_hint(SLACK), allowlist)
        self.work = Work("slack")
        self._identity: Identity | None = None

    def is_admin(self, user: str) -> bool:
        """Admins are named by Slack user id in SEEDBOT_ADMINS."""
        return user in self.settings.admins

    def place(self, channel: str, user: str) -> Place:
        return Place(channel, user, is_dm=is_dm(channel))

    def allows(self, channel: str, user: str) -> bool:
        """The allowlists (SLACK_ALLOWED_CHANNELS, SLACK_ALLOWED_USERS) let `user` ask in `channel`."""
        return self.admission.allowlist.allows(self.place(channel, user), admin=self.is_admin(user))

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
        authorization = AuthorizeResult.from_auth_test_response(
            auth_test_response=response, bot_token=self.reads.token
        )
        self._identity = Identity(str(response["team_id"]), str(response["user_id"]), authorization)
        return self._identity

    def surface(self, *, channel: str, thread_ts: str | None, user: str) -> SlackSurface:
        return SlackSurface(
            self.replies,
            self.capabilities,
            channel=channel,
            thread_ts=thread_ts,
            team_id=self.identity.team_id,
            user_id=user,
            questions=self.questions,
            search=ChannelSearch(
                self.reads,
                channel=channel,
                thread_ts=thread_ts,
                bot_user_id=self.identity.bot_user_id,
                people=self.people,
            ),
        )

    async def tell(self, channel: str, user: str, text: str, *, thread_ts: str | None = None) -> None:
        """An ephemeral notice only `user` sees; failures are logged, not raised."""
        try:
            await self.reads.chat_postEphemeral(channel=channel, user=user, text=text, thread_ts=thread_ts)
        except SlackApiError as error:
            log.warning("could not tell %s in %s (%s)", user, channel, error_code(error))

    async def show_interrupted(self, reply: InterruptedReply) -> bool:
        """Crash recovery's one Slack step: that message shows `reply.text`, then the follow-up, each call
        as urgent as a final text."""
        ts, channel = reply.platform_message_id, reply.key.channel
        if not _TS.match(ts):
            return False  # a private answer: nothing visible to fix
        # Each call waits its turn in the workspace's budget of its method.
        pace = functools.partial(pacer, self.service.reply_budgets, self.identity.team_id, channel)

        def update() -> Awaitable[Any]:
            return self.replies.chat_update(channel=channel, ts=ts, markdown_text=reply.text)

        try:
            await pace("chat.update")(update)
        except SlackApiError:
            # A native stream that outlived the crash must be stopped before its message can change.
            # Only then: chat.stopStream is the slowest rate tier, and most replies were plain edits.
            try:
                await pace("chat.stopStream")(lambda: self.replies.chat_stopStream(channel=channel, ts=ts))
            except SlackApiError as error:
                log.debug("stream %s was not open (%s)", ts, error_code(error))
            await pace("chat.update")(update)
        if reply.follow_up:
            thread, text = reply.key.thread or None, reply.follow_up
            post = functools.partial(
                self.replies.chat_postMessage, channel=channel, thread_ts=thread, markdown_text=text
            )
            await pace("chat.postMessage")(post)
        return True

    async def recover_interrupted(self) -> int:
        """Replies a crash left mid-stream say so instead of looking unfinished forever."""
        return await self.service.repair_interrupted(PLATFORM, SLACK_LIMITS, self.show_interrupted)
