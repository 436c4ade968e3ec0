"""`/seed` (one slash command, several subcommands) and the "Summarize with Seed" message shortcut.

What the subcommands mean and answer is core's (`core.commands`); this module reads Slack's text,
acknowledges at once (help and usage lines ride on the acknowledgement itself, ephemerally) and does
the rest as background work. Public answers start with a message in the channel that names the asker
and quotes the question; the answer streams into its thread, where replies continue the conversation.
Settings, reports and `-p` answers are ephemeral: only the person who asked sees them.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from slack_sdk.errors import SlackApiError

from bots.slack.api import busy_note, error_code
from bots.slack.bot import SLACK, SlackBot
from bots.slack.conversation import (
    PLATFORM,
    PROMPT_SUBTYPES,
    conversation_key,
    history_message,
    read_channel,
    read_thread,
    shared_files,
)
from bots.slack.surface import Respond, ephemeral_surface
from bots.slack.uploads import upload_to_dm
from core.admission import NOT_ENABLED
from core.commands import (
    MAX_SUMMARY_MESSAGES,
    NOTHING_TO_SUMMARIZE,
    THREAD_SUMMARY_REQUEST,
    BadArguments,
    Caller,
    Command,
    Help,
    Summarize,
    allowed_anywhere,
    answer_command,
    help_text,
    parse_command,
    question_announcement,
    usage_line,
    user_mention,
)
from core.models import HistoryMessage, SummaryKind, Turn

log = logging.getLogger(__name__)

SHORTCUT_ID = "seed_summarize"
HELP = help_text(SLACK)
USAGE = usage_line(SLACK)
PRIVATE_ACK = "Thinking… (only you will see the answer)"
NO_HISTORY = "I can't read this channel's messages: invite me first with `/invite @Seed`."
CANNOT_POST = "I can't post in this conversation ({code}). Invite me with `/invite @Seed`, or use `/seed -p`."
CHART_NAME, CHART_TITLE = "spend.png", "Spend per day, last 30 days"
CHART_IN_DM = "📈 A chart of the last 30 days is in your direct messages with me."


@dataclass(frozen=True, slots=True)
class Ask:
    question: str
    private: bool = False


def parse(text: str) -> Command | Ask:
    """`/seed` text as a command, or a question; raises BadArguments for a malformed subcommand."""
    text = text.strip()
    if text.split()[:1] == ["-p"]:
        question = text[2:].strip()
        if not question:
            raise BadArguments("`-p` needs a question after it.")
        return Ask(question, private=True)
    return parse_command(text) or Ask(text)


@dataclass(frozen=True, slots=True)
class Invocation:
    """Who used a command where, and how to answer them privately."""

    team: str
    channel: str
    user: str
    trigger_id: str
    respond: Respond


async def on_command(bot: SlackBot, ack: Respond, command: Mapping[str, Any], respond: Respond) -> None:
    """The listener: acknowledge (with the whole answer, when it is instant), then work."""
    user, channel = str(command["user_id"]), str(command["channel_id"])
    subcommand = next(iter(str(command.get("text") or "").split()), "").lower()
    if not allowed_anywhere(subcommand) and not bot.allows(channel, user):
        await ack(text=NOT_ENABLED)
        return
    try:
        parsed = parse(str(command.get("text") or ""))
    except BadArguments as bad:
        await ack(text=f"{bad}\n{USAGE}")
        return
    if isinstance(parsed, Help):
        await ack(text=HELP)
        return
    private = isinstance(parsed, Ask) and parsed.private
    await ack(text=PRIVATE_ACK if private else "")
    where = Invocation(
        str(command.get("team_id") or bot.identity.team_id),
        channel,
        user,
        str(command.get("trigger_id") or ""),
        respond,
    )
    bot.work.spawn(_run(bot, parsed, where), "command")


async def _run(bot: SlackBot, command: Command | Ask, where: Invocation) -> None:
    match command:
        case Ask(question=question, private=True):
            await _ask_privately(bot, where, question)
        case Ask(question=question):
            header = question_announcement(user_mention(where.user), question, SLACK)
            await _answer_in_thread(bot, where, header, question)
        case Summarize():
            await _summarize_channel(bot, where, command)
        case _:
            caller = Caller(PLATFORM, where.team, where.channel, where.user, admin=bot.is_admin(where.user))
            answer = await answer_command(bot.service, caller, command, SLACK)
            # An ephemeral answer cannot carry a file: the chart goes to the asker's DM, unless Slack
            # refuses it there too (then the report goes as text only).
            if answer.chart is not None and await upload_to_dm(
                bot.reads, caller.user, answer.chart, filename=CHART_NAME, title=CHART_TITLE
            ):
                await where.respond(text=f"{answer.text}\n\n{CHART_IN_DM}")
            else:
                await where.respond(text=answer.text)


def _turn(where: Invocation, thread: str, text: str, name: str, **extra: Any) -> Turn:
    return Turn(
        key=conversation_key(where.team, where.channel, thread),
        user_id=where.user,
        user_name=name,
        text=text,
        **extra,
    )


async def _ask_privately(bot: SlackBot, where: Invocation, question: str) -> None:
    # A private conversation per person and channel: follow-up `-p` questions keep their context.
    turn = _turn(where, f"private-{where.user}", question, await bot.people.name(where.user))
    await bot.service.answer(turn, ephemeral_surface(where.respond, where.channel))


async def _answer_in_thread(
    bot: SlackBot,
    where: Invocation,
    header: str,
    text: str,
    *,
    history: list[HistoryMessage] | None = None,
    summary: SummaryKind | None = None,
) -> None:
    """Post `header` in the channel, then stream the answer into its thread."""
    if where.trigger_id and not await bot.admission.claim(PLATFORM, f"command:{where.trigger_id}"):
        return  # a second delivery of one command (without a trigger id every delivery is answered)
    try:
        posted = await bot.replies.chat_postMessage(channel=where.channel, text=header)
    except SlackApiError as error:
        await where.respond(text=CANNOT_POST.format(code=error_code(error)))
        return
    root = str(posted["ts"])
    turn = _turn(where, root, text, await bot.people.name(where.user), history=history or (), summary=summary)
    surface = bot.surface(channel=where.channel, thread_ts=root, user=where.user)
    await bot.service.answer(turn, surface)


def _summarizable(message: Mapping[str, Any]) -> bool:
    return message.get("subtype") in PROMPT_SUBTYPES | {"bot_message"} and bool(
        message.get("text") or shared_files(message) or message.get("attachments")
    )


async def _summary_history(
    bot: SlackBot,
    read: Awaitable[list[Mapping[str, Any]]],
    tell: Callable[[str], Awaitable[Any]],
    wanted: Callable[[HistoryMessage], bool] = lambda message: True,
) -> list[HistoryMessage] | None:
    """The messages a summary reads, oldest first, from what `read` finds; None, with the asker told
    why, when Slack would not show them or there is nothing to summarize."""
    try:
        messages = await read
    except SlackApiError as error:
        log.info("no history to summarize (%s)", error_code(error))
        await tell(busy_note(error) or NO_HISTORY)
        return None
    me = bot.identity.bot_user_id
    found = [
        await history_message(m, bot_user_id=me, people=bot.people, files=bot.files)
        for m in messages
        if _summarizable(m)
    ]
    history = [item for item in found if wanted(item)]
    if not history:
        await tell(NOTHING_TO_SUMMARIZE)
    return history or None


async def _summarize_channel(bot: SlackBot, where: Invocation, command: Summarize) -> None:
    oldest = time.time() - command.hours * 3600 if command.hours is not None else None
    limit = command.messages or MAX_SUMMARY_MESSAGES
    read = read_channel(bot.reads, channel=where.channel, limit=limit, oldest=oldest)
    history = await _summary_history(bot, read, lambda text: where.respond(text=text), command.wants)
    if history is None:
        return
    header = command.announcement(user_mention(where.user))
    text = command.request(len(history))
    await _answer_in_thread(bot, where, header, text, history=history, summary=command.kind)


async def on_summarize_shortcut(bot: SlackBot, shortcut: Mapping[str, Any], respond: Respond) -> None:
    """ "Summarize with Seed" on a message: summarize its thread, in that thread."""
    user = str(shortcut["user"]["id"])
    channel = str(shortcut["channel"]["id"])
    if not bot.allows(channel, user):
        await bot.tell(channel, user, NOT_ENABLED)
        return
    trigger = str(shortcut.get("trigger_id") or "")
    if trigger and not await bot.admission.claim(PLATFORM, f"shortcut:{trigger}"):
        return
    message = shortcut.get("message") or {}
    root = str(message.get("thread_ts") or message.get("ts"))
    read = read_thread(
        bot.reads, channel=channel, thread_ts=root, keep=MAX_SUMMARY_MESSAGES, wanted=_summarizable
    )
    history = await _summary_history(bot, read, functools.partial(bot.tell, channel, user))
    if history is None:
        return
    team = str((shortcut.get("team") or {}).get("id") or bot.identity.team_id)
    where = Invocation(team, channel, user, trigger, respond)
    name = await bot.people.name(user)
    turn = _turn(where, root, THREAD_SUMMARY_REQUEST, name, history=history, summary="messages")
    await bot.service.answer(turn, bot.surface(channel=channel, thread_ts=root, user=user))
