"""Messages, mentions, deletions and the assistant view: Slack events handed to core admission.

Answered: DMs (top-level ones in the DM, thread replies in their thread, as in the assistant
view), @mentions (in the message's thread), and, unless SLACK_REQUIRE_MENTION, any later message
in a thread the bot has answered in. A mention arrives twice (`app_mention` and `message`) and
Slack redelivers events it thinks were missed; admission claims each message once. The bot's own
messages are dropped by Bolt; other bots unless SLACK_IGNORE_BOTS=false; edits are ignored.
Deleting a prompt while its answer streams stops the answer.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from slack_sdk.errors import SlackApiError

from bots.slack.api import error_code
from bots.slack.bot import SlackBot
from bots.slack.conversation import (
    PLATFORM,
    PROMPT_SUBTYPES,
    conversation_key,
    is_dm,
    readable_text,
    shared_files,
    thread_context,
    with_shared,
)
from core.admission import Arrival
from core.history import title_of
from core.models import ConversationKey, Turn
from core.reply.surface import ReplySurface

log = logging.getLogger(__name__)

SUGGESTED_PROMPTS = [
    {"title": "Explain a picture", "message": "What is in this image? (attach one)"},
    {"title": "Summarize a video", "message": "Summarize this video for me. (attach one)"},
    {"title": "Think it through", "message": "Help me weigh the pros and cons of a decision."},
    {"title": "Draft a message", "message": "Help me write a short, friendly announcement."},
]
TITLE_CHARS = 60


def route_message(bot: SlackBot, event: Mapping[str, Any], body: Mapping[str, Any]) -> None:
    """Runs inside the acknowledgement: stops are immediate, prompts become background work."""
    subtype = event.get("subtype")
    if subtype == "message_deleted":
        bot.admission.deleted(PLATFORM, str(event.get("deleted_ts") or ""))
    elif subtype == "message_changed":
        # Deleting a thread's first message leaves a tombstone in its place instead.
        message = event.get("message") or {}
        if message.get("subtype") == "tombstone":
            bot.admission.deleted(PLATFORM, str(message.get("ts") or ""))
    elif subtype in PROMPT_SUBTYPES and not (event.get("bot_id") and bot.settings.slack_ignore_bots):
        team = str(body.get("team_id") or bot.identity.team_id)
        bot.work.spawn(on_prompt(bot, dict(event), team), "message")


async def on_prompt(bot: SlackBot, event: dict[str, Any], team: str) -> None:
    channel, ts, user = str(event["channel"]), str(event["ts"]), str(event.get("user") or "")
    if not user:
        return
    text = str(event.get("text") or "")
    thread_ts = event.get("thread_ts")
    dm = is_dm(channel)
    mentioned = f"<@{bot.identity.bot_user_id}>" in text
    follows_thread = bool(thread_ts) and not bot.settings.slack_require_mention
    arrival = Arrival(
        platform=PLATFORM,
        message_id=ts,
        event_id=f"message:{channel}:{ts}",
        where=bot.place(channel, user),
        admin=bot.is_admin(user),
        text=await readable_text(text, bot.identity.bot_user_id, bot.people),
        addressed=dm or mentioned,
        continues=conversation_key(team, channel, thread_ts) if follows_thread else None,
    )
    await bot.admission.admit(arrival, _SlackMessage(bot, event, team, arrival.text))


@dataclass(slots=True)
class _SlackMessage:
    """One Slack message on its way to an answer (core admission's `Asker`)."""

    bot: SlackBot
    event: dict[str, Any]
    team: str
    prompt: str

    @property
    def channel(self) -> str:
        return str(self.event["channel"])

    @property
    def user(self) -> str:
        return str(self.event["user"])

    @property
    def thread_ts(self) -> str | None:
        return self.event.get("thread_ts")

    @property
    def reply_thread(self) -> str | None:
        """DMs answer where they were asked; channel messages in their (new) thread."""
        return self.thread_ts if is_dm(self.channel) else (self.thread_ts or str(self.event["ts"]))

    async def tell(self, text: str) -> None:
        await self.bot.tell(self.channel, self.user, text, thread_ts=self.thread_ts)

    async def conversation(self) -> ConversationKey | None:
        return conversation_key(self.team, self.channel, self.reply_thread)

    async def turn(self) -> tuple[Turn, ReplySurface] | None:
        bot, channel, ts = self.bot, self.channel, str(self.event["ts"])
        attachments = bot.files.sources(shared_files(self.event))
        text = await with_shared(self.event, self.prompt, bot.identity.bot_user_id, bot.people)
        if not (text or attachments):
            return None
        key = conversation_key(self.team, channel, self.reply_thread)
        history = []
        if self.thread_ts:
            history = await thread_context(
                bot.reads,
                channel=channel,
                thread_ts=self.thread_ts,
                before_ts=ts,
                bot_user_id=bot.identity.bot_user_id,
                people=bot.people,
                files=bot.files,
            )
        if is_dm(channel) and self.thread_ts and not await bot.service.store.has_conversation(key):
            await _set_title(bot, channel, self.thread_ts, self.prompt)
        turn = Turn(
            key=key,
            user_id=self.user,
            user_name=await bot.people.name(self.user),
            text=text,
            message_id=ts,
            attachments=attachments,
            history=history,
        )
        return turn, bot.surface(channel=channel, thread_ts=self.reply_thread, user=self.user)


async def _set_title(bot: SlackBot, channel: str, thread_ts: str, prompt: str) -> None:
    """Name a new assistant-view thread after its first question."""
    title = title_of(prompt, TITLE_CHARS, "Question")
    try:
        await bot.reads.assistant_threads_setTitle(channel_id=channel, thread_ts=thread_ts, title=title)
    except SlackApiError as error:
        log.info("thread title not set (%s)", error_code(error))


async def on_assistant_thread_started(bot: SlackBot, event: Mapping[str, Any]) -> None:
    """Someone opened the assistant view: offer a few prompts to start with."""
    thread = event.get("assistant_thread") or {}
    channel, thread_ts, user = (str(thread.get(k) or "") for k in ("channel_id", "thread_ts", "user_id"))
    if not (channel and thread_ts and user):
        return
    if not bot.allows(channel, user):
        await bot.admission.refuse(
            bot.place(channel, user), lambda text: bot.tell(channel, user, text, thread_ts=thread_ts)
        )
        return
    try:
        await bot.reads.assistant_threads_setSuggestedPrompts(
            channel_id=channel, thread_ts=thread_ts, title="Try asking", prompts=SUGGESTED_PROMPTS
        )
    except SlackApiError as error:
        log.info("suggested prompts not set (%s)", error_code(error))
