"""Messages, mentions, deletions and the assistant view: Slack events turned into answers.

Answered: DMs (top-level ones in the DM, thread replies in their thread, as in the assistant
view), @mentions (in the message's thread), and, unless SLACK_REQUIRE_MENTION, any later message
in a thread the bot has answered in. A mention arrives twice (`app_mention` and `message`) and
Slack redelivers events it thinks were missed; each message is claimed once (`message:<channel>:<ts>`,
stored, so also across restarts) before it is answered. The bot's own messages are dropped by
Bolt; other bots unless SLACK_IGNORE_BOTS=false; edits are ignored. Deleting a prompt while its
answer streams stops the answer.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from slack_sdk.errors import SlackApiError

from bots.slack.access import allowed
from bots.slack.api import error_code
from bots.slack.bot import SlackBot
from bots.slack.conversation import (
    PLATFORM,
    PROMPT_SUBTYPES,
    conversation_key,
    is_dm,
    readable_text,
    thread_context,
)
from core.models import Turn
from core.prompts import is_stop_request

log = logging.getLogger(__name__)

USAGE_HINT = (
    "Ask me something: mention me with a question (attach images or videos if you like), "
    "or use `/seed <question>`. `/seed help` lists everything I can do."
)
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
        bot.stop(str(event.get("deleted_ts") or ""))
    elif subtype == "message_changed":
        # Deleting a thread's first message leaves a tombstone in its place instead.
        message = event.get("message") or {}
        if message.get("subtype") == "tombstone":
            bot.stop(str(message.get("ts") or ""))
    elif subtype in PROMPT_SUBTYPES and not (event.get("bot_id") and bot.settings.slack_ignore_bots):
        team = str(body.get("team_id") or bot.identity.team_id)
        bot.spawn(on_prompt(bot, dict(event), team), "message")


async def on_prompt(bot: SlackBot, event: dict[str, Any], team: str) -> None:
    me = bot.identity
    channel, ts, user = str(event["channel"]), str(event["ts"]), str(event.get("user") or "")
    text = str(event.get("text") or "")
    thread_ts = event.get("thread_ts")
    dm = is_dm(channel)
    if not user:
        return
    if not dm and f"<@{me.bot_user_id}>" not in text:
        if not thread_ts or bot.settings.slack_require_mention:
            return
        if not await bot.service.is_conversation(conversation_key(team, channel, thread_ts)):
            return
    if not allowed(bot.settings, channel=channel, user=user, is_dm=dm):
        await bot.refuse(channel, user, thread_ts=thread_ts)
        return
    if not await bot.service.claim_event(PLATFORM, f"message:{channel}:{ts}"):
        return  # the other event for this message, or a redelivery: answered already
    reply_thread = thread_ts if dm else (thread_ts or ts)
    key = conversation_key(team, channel, reply_thread)
    prompt = await readable_text(text, me.bot_user_id, bot.people)
    if is_stop_request(prompt) and bot.service.stop_conversation(key):
        return  # "stop" while an answer is being written here ends that answer; nothing to answer
    attachments = bot.files.sources(event.get("files"))
    if not (prompt or attachments):
        await bot.tell(channel, user, USAGE_HINT, thread_ts=reply_thread)
        return
    history = []
    if thread_ts:
        history = await thread_context(
            bot.reads,
            channel=channel,
            thread_ts=thread_ts,
            before_ts=ts,
            bot_user_id=me.bot_user_id,
            people=bot.people,
            files=bot.files,
        )
    if dm and thread_ts and not await bot.service.is_conversation(key):
        await _set_title(bot, channel, thread_ts, prompt)
    turn = Turn(
        key=key,
        user_id=user,
        user_name=await bot.people.name(user),
        text=prompt,
        message_id=ts,
        attachments=attachments,
        history=history,
    )
    if bot.was_deleted(ts):
        return  # deleted while its files, thread or author were read (from here on, stop() reaches it)
    await bot.answer(turn, bot.surface(channel=channel, thread_ts=reply_thread, user=user))


async def _set_title(bot: SlackBot, channel: str, thread_ts: str, prompt: str) -> None:
    """Name a new assistant-view thread after its first question."""
    title = (prompt.splitlines()[0] if prompt else "").strip()[:TITLE_CHARS] or "Question"
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
    if not allowed(bot.settings, channel=channel, user=user, is_dm=True):
        await bot.refuse(channel, user, thread_ts=thread_ts)
        return
    try:
        await bot.reads.assistant_threads_setSuggestedPrompts(
            channel_id=channel, thread_ts=thread_ts, title="Try asking", prompts=SUGGESTED_PROMPTS
        )
    except SlackApiError as error:
        log.info("suggested prompts not set (%s)", error_code(error))
