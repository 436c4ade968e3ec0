"""`/seed` (one slash command, several subcommands) and the "Summarize with Seed" message shortcut.

Parsing is plain data (`parse`); the handlers acknowledge at once (help and usage lines ride on the
acknowledgement itself, ephemerally) and do the rest as background work. Public answers start
with a message in the channel that names the asker and quotes the question; the answer streams
into its thread, where replies continue the conversation. Settings, reports and `-p` answers are
ephemeral: only the person who asked sees them.
"""

from __future__ import annotations

import html
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from slack_sdk.errors import SlackApiError

from bots.slack.access import ADMINS_ONLY, NOT_ENABLED, allowed, is_admin
from bots.slack.api import error_code
from bots.slack.bot import SlackBot
from bots.slack.conversation import (
    PLATFORM,
    PROMPT_SUBTYPES,
    conversation_key,
    history_message,
    is_dm,
    read_thread,
)
from bots.slack.surface import EphemeralSurface, Respond
from core.config import EFFORTS
from core.models import HistoryMessage, Turn
from core.money import format_limit
from core.prompts import SUMMARY_INSTRUCTION
from core.store.base import SettingError

log = logging.getLogger(__name__)

SHORTCUT_ID = "seed_summarize"
USAGE = (
    "Usage: `/seed <question>` · `/seed -p <question>` (private) · "
    "`/seed effort [low|medium|high|default] [channel|workspace]` · "
    "`/seed cost [me|channel|workspace] [today|7d|30d|all]` · `/seed summarize [N | 24h]` · "
    "`/seed budget [daily|monthly <$ amount|unlimited|default>]` · `/seed prompt [<text>|default]` · "
    "`/seed forget` · `/seed help`"
)
HELP = "\n".join(
    [
        "*Seed* answers with Dola Seed 2.0 Lite. Mention me in a channel, message me directly, or:",
        "• `/seed <question>`: ask here; the answer streams into a thread under your question",
        "• `/seed -p <question>`: ask privately (only you see the answer)",
        "• `/seed effort [low|medium|high|default] [channel|workspace]`: show or set how hard I think, "
        "for you (or for this channel or the whole workspace, admins only)",
        "• `/seed cost [me|channel|workspace] [today|7d|30d|all]`: requests, tokens and spend",
        "• `/seed summarize [N | 24h]`: summarize this channel's last N messages (default 50) or hours",
        "• `/seed budget [daily|monthly <$ amount|unlimited|default>]`: show the spending limits, or "
        "set each person's daily or the workspace's monthly limit (admins only)",
        "• `/seed prompt [<text>|default]`: show or set this channel's instructions for me (admins only)",
        "• `/seed forget`: delete what I have stored from your messages",
        "• Say `stop` in a thread while I am answering there to stop me",
        "• Message menu → *Summarize with Seed*: summarize that message's thread",
    ]
)
PRIVATE_ACK = "Thinking… (only you will see the answer)"
NO_HISTORY = "I can't read this channel's messages: invite me first with `/invite @Seed`."
CANNOT_POST = "I can't post in this conversation ({code}). Invite me with `/invite @Seed`, or use `/seed -p`."
NOTHING_TO_SUMMARIZE = "There is nothing to summarize here yet."
DEFAULT_SUMMARY_MESSAGES = 50
MAX_SUMMARY_MESSAGES = 200
MAX_SUMMARY_HOURS = 7 * 24
SOURCE_WORDS = {
    "user": "your own setting",
    "channel": "this channel's setting",
    "workspace": "this workspace's setting",
    "default": "the default",
}
SCOPES = ("me", "channel", "workspace")
SHARED_SCOPES = ("channel", "workspace")  # settings only admins change
PERIODS = ("today", "7d", "30d", "all")


# --- parsing ---------------------------------------------------------------------------------------


class BadArguments(ValueError):
    """`str()` says what is wrong, for the usage reply."""


@dataclass(frozen=True, slots=True)
class Ask:
    question: str
    private: bool = False


@dataclass(frozen=True, slots=True)
class SetEffort:
    level: Literal["low", "medium", "high", "default"] | None  # None: show
    scope: Literal["user", "channel", "workspace"] = "user"


@dataclass(frozen=True, slots=True)
class Cost:
    scope: Literal["me", "channel", "workspace"] = "me"
    period: Literal["today", "7d", "30d", "all"] = "today"


@dataclass(frozen=True, slots=True)
class Summarize:
    messages: int | None = DEFAULT_SUMMARY_MESSAGES
    hours: int | None = None

    @property
    def what(self) -> str:
        if self.hours is not None:
            return f"the last {self.hours} hours" if self.hours != 1 else "the last hour"
        return f"the last {self.messages} messages"


@dataclass(frozen=True, slots=True)
class SetBudget:
    kind: Literal["user_daily", "workspace_monthly"] | None = None  # None: show
    amount: str | None = None  # None with a kind: back to the default


@dataclass(frozen=True, slots=True)
class SetPrompt:
    text: str | None = None  # None: show
    reset: bool = False


@dataclass(frozen=True, slots=True)
class Forget:
    pass


@dataclass(frozen=True, slots=True)
class Help:
    pass


Command = Ask | SetEffort | Cost | Summarize | SetBudget | SetPrompt | Forget | Help
BUDGET_KINDS = {"daily": "user_daily", "monthly": "workspace_monthly"}


def parse(text: str) -> Command:
    """`/seed` text as a command; raises BadArguments for a malformed subcommand."""
    text = text.strip()
    words = text.split()
    if not words or words[0].lower() == "help":
        return Help()
    head, rest = words[0].lower(), [word.lower() for word in words[1:]]
    if head == "-p":
        question = text[2:].strip()
        if not question:
            raise BadArguments("`-p` needs a question after it.")
        return Ask(question, private=True)
    if head == "effort":
        return _parse_effort(rest)
    if head == "cost":
        return _parse_cost(rest)
    if head in ("summarize", "summarise"):
        return _parse_summarize(rest)
    if head == "budget":
        return _parse_budget(rest)
    if head == "prompt":
        instructions = text[len(words[0]) :].strip()
        if instructions.lower() == "default":
            return SetPrompt(reset=True)
        return SetPrompt(instructions or None)
    if head == "forget":
        if rest:
            raise BadArguments("`forget` takes no arguments.")
        return Forget()
    return Ask(text)


def _parse_effort(words: list[str]) -> SetEffort:
    scopes = [word for word in words if word in SHARED_SCOPES]
    words = [word for word in words if word not in SHARED_SCOPES]
    if len(scopes) > 1:
        raise BadArguments("Set the effort for the channel or for the workspace, not both.")
    if len(words) > 1 or (words and words[0] not in (*EFFORTS, "default")):
        raise BadArguments(f"Unknown effort `{' '.join(words)}`: use low, medium, high or default.")
    return SetEffort(words[0] if words else None, scopes[0] if scopes else "user")  # type: ignore[arg-type]


def _parse_cost(words: list[str]) -> Cost:
    scopes = [word for word in words if word in SCOPES]
    periods = [word for word in words if word in PERIODS]
    if len(scopes) > 1 or len(periods) > 1 or len(scopes) + len(periods) != len(words):
        raise BadArguments(f"I don't understand `cost {' '.join(words)}`.")
    return Cost(scopes[0] if scopes else "me", periods[0] if periods else "today")  # type: ignore[arg-type]


def _parse_budget(words: list[str]) -> SetBudget:
    if not words:
        return SetBudget()
    if len(words) != 2 or words[0] not in BUDGET_KINDS:
        raise BadArguments(
            "Use `budget daily <amount>` or `budget monthly <amount>` (or `unlimited`, `default`)."
        )
    kind = BUDGET_KINDS[words[0]]
    return SetBudget(kind, None if words[1] == "default" else words[1])  # type: ignore[arg-type]


def _parse_summarize(words: list[str]) -> Summarize:
    if not words:
        return Summarize()
    if len(words) <= 2 and words[0].isdigit() and words[1:] in ([], ["messages"], ["message"]):
        count = int(words[0])
        if not 1 <= count <= MAX_SUMMARY_MESSAGES:
            raise BadArguments(f"I can summarize 1 to {MAX_SUMMARY_MESSAGES} messages.")
        return Summarize(messages=count)
    if len(words) == 1 and words[0][:-1].isdigit() and words[0][-1:] in ("h", "d"):
        hours = int(words[0][:-1]) * (24 if words[0].endswith("d") else 1)
        if not 1 <= hours <= MAX_SUMMARY_HOURS:
            raise BadArguments("I can summarize from 1 hour up to 7 days back.")
        return Summarize(messages=None, hours=hours)
    raise BadArguments(
        f"I don't understand `summarize {' '.join(words)}`: try `summarize 50` or `summarize 24h`."
    )


# --- handling --------------------------------------------------------------------------------------


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
    if not allowed(bot.settings, channel=channel, user=user, is_dm=is_dm(channel)):
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
    bot.spawn(_run(bot, parsed, where), "command")


async def _run(bot: SlackBot, command: Command, where: Invocation) -> None:
    admin = is_admin(bot.settings, where.user)
    match command:
        case Ask(question=question, private=True):
            await _ask_privately(bot, where, question)
        case Ask(question=question):
            header = f"<@{where.user}> asked:\n{_quote(question)}"
            await _answer_in_thread(bot, where, header, question)
        case SetEffort():
            await where.respond(text=await _effort(bot, where, command, admin))
        case Cost(scope=scope, period=period):
            report = await bot.service.cost_report(
                key=conversation_key(where.team, where.channel, None),
                user_id=where.user,
                scope=scope,
                period=period,
                include_top=admin,
                label=mention_label,
            )
            await where.respond(text=report)
        case Summarize():
            await _summarize_channel(bot, where, command)
        case SetBudget():
            await where.respond(text=await _budget(bot, where, command, admin))
        case SetPrompt():
            await where.respond(text=await _prompt(bot, where, command, admin))
        case Forget():
            deleted = await bot.service.forget_user(PLATFORM, where.user)
            await where.respond(text=f"Done: deleted {deleted} stored messages of yours.")


def _quote(text: str) -> str:
    escaped = html.escape(text, quote=False)  # no mentions or links smuggled into the header
    return "\n".join(f"> {line}" for line in escaped.splitlines() or [""])


async def _effort(bot: SlackBot, where: Invocation, command: SetEffort, admin: bool) -> str:
    if command.level is None:
        current, source = await bot.service.effort_for(
            platform=PLATFORM, workspace=where.team, channel=where.channel, user=where.user
        )
        return f"Reasoning effort here: *{current}* (from {SOURCE_WORDS.get(source, source)})."
    if command.scope != "user" and not admin:
        return ADMINS_ONLY
    await bot.service.set_effort(
        None if command.level == "default" else command.level,
        scope=command.scope,
        platform=PLATFORM,
        scope_id={"user": where.user, "channel": where.channel, "workspace": where.team}[command.scope],
    )
    whose = {"user": "you", "channel": "this channel", "workspace": "this workspace"}[command.scope]
    shown = "back to the default" if command.level == "default" else f"*{command.level}*"
    return f"Reasoning effort for {whose} is now {shown}."


async def _budget(bot: SlackBot, where: Invocation, command: SetBudget, admin: bool) -> str:
    if command.kind is not None:
        if not admin:
            return ADMINS_ONLY
        try:
            await bot.service.set_budget(
                command.kind, command.amount, platform=PLATFORM, workspace=where.team
            )
        except SettingError as bad:
            return f"{bad}."
    limits = await bot.service.budgets_for(PLATFORM, where.team)

    return (
        f"Spending limits here: {format_limit(limits.user_daily)} per person per day (resets 00:00 UTC), "
        f"{format_limit(limits.workspace_monthly)} for the workspace per month."
    )


async def _prompt(bot: SlackBot, where: Invocation, command: SetPrompt, admin: bool) -> str:
    if command.text is not None or command.reset:
        if not admin:
            return ADMINS_ONLY
        try:
            await bot.service.set_system_prompt(command.text, platform=PLATFORM, channel=where.channel)
        except SettingError as bad:
            return f"{bad}."
    prompt, own = await bot.service.system_prompt_for(PLATFORM, where.channel)
    whose = "This channel's instructions" if own else "Instructions here (the default)"
    return f"{whose}:\n{_quote(prompt)}"


def _turn(bot: SlackBot, where: Invocation, thread: str, text: str, name: str, **extra: Any) -> Turn:
    return Turn(
        key=conversation_key(where.team, where.channel, thread),
        user_id=where.user,
        user_name=name,
        text=text,
        **extra,
    )


async def _ask_privately(bot: SlackBot, where: Invocation, question: str) -> None:
    # A private conversation per person and channel: follow-up `-p` questions keep their context.
    turn = _turn(bot, where, f"private-{where.user}", question, await bot.people.name(where.user))
    await bot.answer(turn, EphemeralSurface(where.respond, where.channel))


async def _answer_in_thread(
    bot: SlackBot,
    where: Invocation,
    header: str,
    text: str,
    *,
    history: list[HistoryMessage] | None = None,
    instruction: str | None = None,
) -> None:
    """Post `header` in the channel, then stream the answer into its thread."""
    if not await _first_delivery(bot, "command", where.trigger_id):
        return
    try:
        posted = await bot.replies.chat_postMessage(channel=where.channel, text=header)
    except SlackApiError as error:
        await where.respond(text=CANNOT_POST.format(code=error_code(error)))
        return
    root = str(posted["ts"])
    name = await bot.people.name(where.user)
    turn = _turn(bot, where, root, text, name, history=history or ())
    surface = bot.surface(channel=where.channel, thread_ts=root, user=where.user)
    await bot.answer(turn, surface, instruction=instruction)


async def _first_delivery(bot: SlackBot, kind: str, trigger_id: str) -> bool:
    """False for a second delivery of one command or shortcut (its trigger id is unique; without one
    there is nothing to tell deliveries apart by, and every one is answered)."""
    return not trigger_id or await bot.service.claim_event(PLATFORM, f"{kind}:{trigger_id}")


def _summarizable(message: Mapping[str, Any]) -> bool:
    return message.get("subtype") in PROMPT_SUBTYPES | {"bot_message"} and bool(
        message.get("text") or message.get("files")
    )


async def _history(bot: SlackBot, messages: list[Mapping[str, Any]]) -> list[HistoryMessage]:
    me = bot.identity.bot_user_id
    return [
        await history_message(m, bot_user_id=me, people=bot.people, files=bot.files)
        for m in messages
        if _summarizable(m)
    ]


async def _summarize_channel(bot: SlackBot, where: Invocation, command: Summarize) -> None:
    oldest = str(time.time() - command.hours * 3600) if command.hours is not None else None
    try:
        response = await bot.reads.conversations_history(
            channel=where.channel, limit=command.messages or MAX_SUMMARY_MESSAGES, oldest=oldest
        )
    except SlackApiError as error:
        log.info("no history for %s (%s)", where.channel, error_code(error))
        await where.respond(text=NO_HISTORY)
        return
    history = await _history(bot, list(reversed(response.get("messages") or [])))
    if not history:
        await where.respond(text=NOTHING_TO_SUMMARIZE)
        return
    header = f"<@{where.user}> asked me to summarize {command.what} here."
    text = f"Summarize {command.what} of this channel ({len(history)} messages)."
    await _answer_in_thread(bot, where, header, text, history=history, instruction=SUMMARY_INSTRUCTION)


async def on_summarize_shortcut(bot: SlackBot, shortcut: Mapping[str, Any], respond: Respond) -> None:
    """ "Summarize with Seed" on a message: summarize its thread, in that thread."""
    user = str(shortcut["user"]["id"])
    channel = str(shortcut["channel"]["id"])
    if not allowed(bot.settings, channel=channel, user=user, is_dm=is_dm(channel)):
        await bot.tell(channel, user, NOT_ENABLED)
        return
    if not await _first_delivery(bot, "shortcut", str(shortcut.get("trigger_id") or "")):
        return
    message = shortcut.get("message") or {}
    root = str(message.get("thread_ts") or message.get("ts"))
    try:
        messages = await read_thread(
            bot.reads, channel=channel, thread_ts=root, keep=MAX_SUMMARY_MESSAGES, wanted=_summarizable
        )
    except SlackApiError as error:
        log.info("no thread %s in %s (%s)", root, channel, error_code(error))
        await bot.tell(channel, user, NO_HISTORY)
        return
    history = await _history(bot, messages)
    if not history:
        await bot.tell(channel, user, NOTHING_TO_SUMMARIZE)
        return
    team = str((shortcut.get("team") or {}).get("id") or bot.identity.team_id)
    where = Invocation(team, channel, user, str(shortcut.get("trigger_id") or ""), respond)
    turn = _turn(bot, where, root, "Summarize this thread.", await bot.people.name(user), history=history)
    surface = bot.surface(channel=channel, thread_ts=root, user=user)
    await bot.answer(turn, surface, instruction=SUMMARY_INSTRUCTION)


def mention_label(kind: str, key: str) -> str:
    """Users and channels in a /cost report as the platform's mentions, shown as names."""
    return f"<#{key}>" if kind == "channel" else f"<@{key}>"
