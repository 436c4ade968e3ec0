"""What each command means, and what it answers, written once for every platform.

    adapter: platform syntax -> a command object (`parse_command` for typed text, or built directly
             from Discord's typed options) -> run_command(service, caller, command, dialect) -> text
             (`answer_command` for a chat that also shows `cost`'s spend chart)

A command is a small frozen dataclass. `run_command` applies the rules (who may change what, where a
setting is stored) and returns the reply in the platform's own markup, written through the `Dialect`
the adapter hands in: how it makes text bold, quotes, names a user, calls a workspace, and spells each
command. `help_text` and `usage_line` are generated from the one `COMMANDS` table, so they cannot drift
from what the commands do.

Summaries are answers, not replies: `Summarize` carries the range and the words of the request; the
adapter reads the platform's history for that range and hands it to `ChatService.answer` with
`SUMMARY_INSTRUCTION`.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from core.charts import spend_chart_png
from core.config import EFFORTS
from core.costs import (
    PERIODS,
    REPORT_SCOPES,
    Labeller,
    Period,
    ReportScope,
    cost_report,
    report_filter,
    str_label,
)
from core.models import ConversationKey, HistoryMessage, Platform, SummaryKind
from core.money import format_limit
from core.preferences import disabled_tools_for, effort_for, system_prompt_for
from core.store.base import (
    NO_TOOLS,
    STORAGE_UNAVAILABLE,
    TOOLS_DISABLED,
    BudgetKind,
    SettingError,
    StoreError,
    tool_names,
)

if TYPE_CHECKING:
    from core.service import ChatService

log = logging.getLogger("seedbot.commands")

EffortLevel = Literal["low", "medium", "high", "default"]
SettingScope = Literal["user", "channel", "workspace"]
ToolAction = Literal["list", "enable", "disable"]
ToolScope = Literal["channel", "workspace"]

DEFAULT_SUMMARY_MESSAGES = 50
MAX_SUMMARY_MESSAGES = 200
MAX_SUMMARY_HOURS = 7 * 24
RESET = "default"  # the word that puts a setting back to what the environment says
BUDGET_KINDS: dict[str, BudgetKind] = {"daily": "user_daily", "monthly": "workspace_monthly"}
# The words for a place wider than one person, as typed or picked ("server" is Discord's workspace).
SHARED_SCOPES: dict[str, ToolScope] = {"channel": "channel", "workspace": "workspace", "server": "workspace"}


def setting_scope(word: str) -> SettingScope:
    """Whose setting a word names: "me" the person's own, else one of `SHARED_SCOPES`."""
    return "user" if word == "me" else SHARED_SCOPES[word]


def report_scope(word: str) -> ReportScope:
    """Whose spending a word names: "me" the person's own, else one of `SHARED_SCOPES`."""
    return "me" if word == "me" else SHARED_SCOPES[word]


class BadArguments(ValueError):
    """A command typed wrongly; `str()` says what is wrong, for the person who typed it."""


class Refusal(str):
    """A reply saying why a command changed nothing (not allowed here, a bad value). Chat adapters send
    it like any other reply; the admin console, which has no chat to answer in, tells it apart from a
    confirmation by its type and shows it as the form's error."""

    __slots__ = ()


# --- where a command runs, and how its platform writes -----------------------------------------------


@dataclass(frozen=True, slots=True)
class Caller:
    """Who used a command, and where. `channel` is where channel settings live (a thread's parent);
    `in_workspace` is False where there is none (a Discord DM)."""

    platform: Platform
    workspace: str
    channel: str
    user: str
    admin: bool = False
    in_workspace: bool = True

    @property
    def place(self) -> ConversationKey:
        return ConversationKey(self.platform, self.workspace, self.channel)


def markdown_bold(text: str) -> str:
    return f"**{text}**"


def markdown_quote(text: str) -> str:
    return "\n".join(f"> {line}" for line in text.splitlines() or [""])


def html_safe_quote(text: str) -> str:
    """A quote that cannot smuggle mentions or links into a message that renders `<…>` markup."""
    return markdown_quote(html.escape(text, quote=False))


def chat_mention(kind: str, key: str) -> str:
    """Slack's and Discord's shared mention syntax: a channel as `<#id>`, anyone else as `<@id>`."""
    return f"<#{key}>" if kind == "channel" else f"<@{key}>"


def user_mention(user: str) -> str:
    return chat_mention("user", user)


def plain(text: str) -> str:
    return text


@dataclass(frozen=True, slots=True)
class Dialect:
    """How one platform writes what the commands say."""

    # How the command `name` is typed here, e.g. "`/seed effort [low|medium|high|default]`";
    # None where the platform does not offer it.
    syntax: Callable[[CommandSpec], str | None]
    workspace: str = "workspace"  # Discord calls it a server
    admins: str = "listed in SEEDBOT_ADMINS"  # who counts as an admin, as help and refusals say it
    bold: Callable[[str], str] = markdown_bold
    quote: Callable[[str], str] = markdown_quote
    mention: Labeller = str_label
    # Platform-only entries for help (e.g. a message shortcut), after the shared ones.
    extras: Sequence[CommandSpec] = field(default=())


# --- the commands -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Effort:
    level: EffortLevel | None = None  # None: show what is in force
    scope: SettingScope = "user"


@dataclass(frozen=True, slots=True)
class Cost:
    scope: ReportScope = "me"
    period: Period = "today"


@dataclass(frozen=True, slots=True)
class Budget:
    kind: BudgetKind | None = None  # None: show the limits
    amount: str | None = None  # with a kind: "$0.50", "unlimited" or RESET; None is a mistake


@dataclass(frozen=True, slots=True)
class Prompt:
    text: str | None = None  # None: show; RESET: back to the default


@dataclass(frozen=True, slots=True)
class Forget:
    pass


@dataclass(frozen=True, slots=True)
class Help:
    pass


@dataclass(frozen=True, slots=True)
class Summarize:
    """Summarize the last `messages` messages, or the last `hours` hours, of the place it was asked in;
    `kind` "media": only the files, images and videos shared there, each with who shared it."""

    messages: int | None = DEFAULT_SUMMARY_MESSAGES
    hours: int | None = None
    kind: SummaryKind = "messages"

    def __post_init__(self) -> None:
        if self.hours is not None and not 1 <= self.hours <= MAX_SUMMARY_HOURS:
            raise BadArguments("I can summarize from 1 hour up to 7 days back.")
        if self.messages is not None and not 1 <= self.messages <= MAX_SUMMARY_MESSAGES:
            raise BadArguments(f"I can summarize 1 to {MAX_SUMMARY_MESSAGES} messages.")

    @property
    def what(self) -> str:
        if self.hours is not None:
            return f"the last {self.hours} hours" if self.hours != 1 else "the last hour"
        return f"the last {self.messages} messages"

    def announcement(self, asker: str) -> str:
        """Said where everyone sees it, above the summary's thread (`asker` as the platform names them)."""
        what = f"what was shared in {self.what}" if self.kind == "media" else self.what
        return f"{asker} asked me to summarize {what} here."

    def request(self, found: int) -> str:
        """The question the model is asked, once the adapter found `found` messages in the range."""
        messages = f"{found} message{'' if found == 1 else 's'}"
        if self.kind == "media":
            return f"Summarize what was shared in {self.what} of this channel ({messages} with files)."
        return f"Summarize {self.what} of this channel ({messages})."

    def wants(self, message: HistoryMessage) -> bool:
        """Whether a message of the range goes into the summary."""
        return self.kind == "messages" or bool(message.attachments)


NOTHING_TO_SUMMARIZE = "There is nothing to summarize here yet."
COMMAND_FAILED = "Sorry, that command failed. Please try again."


def question_announcement(asker: str, question: str, dialect: Dialect) -> str:
    """Said where everyone sees it, above the thread a question asked through a command is answered in."""
    return f"{asker} asked:\n{dialect.quote(question)}"


# The questions a summary of one thread or one message (a message shortcut or menu) asks the model.
THREAD_SUMMARY_REQUEST = "Summarize this thread."


def message_summary_request(author: str) -> str:
    return f"Summarize this message by {author} and its attachments."


@dataclass(frozen=True, slots=True)
class Tools:
    """List the tools of this place, or switch one (by the name the list shows) on or off for the
    channel or the whole workspace."""

    action: ToolAction = "list"
    name: str | None = None
    scope: ToolScope = "channel"

    def __post_init__(self) -> None:
        if self.action != "list" and not self.name:
            raise BadArguments(f"Name the tool to {self.action}, e.g. `tools {self.action} fetch_url`.")


ReplyCommand = Effort | Cost | Budget | Prompt | Forget | Help | Tools
Command = ReplyCommand | Summarize


# --- the table help is made of ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CommandSpec:
    """One entry of help: the command's name, its arguments as typed text, and what it does
    (`{workspace}` stands for the platform's word). `anywhere`: the allowlists do not gate it."""

    name: str
    args: str
    does: str
    anywhere: bool = False


COMMANDS: tuple[CommandSpec, ...] = (
    CommandSpec("ask", "<question>", "ask me here; replies to my answer continue the conversation"),
    CommandSpec(
        "effort",
        "[low|medium|high|default] [channel|{workspace}]",
        "show or set how hard I think, for you (or for this channel or the whole {workspace}, admins only)",
    ),
    CommandSpec("cost", "[me|channel|{workspace}] [today|7d|30d|all]", "requests, tokens and spend"),
    CommandSpec(
        "summarize",
        "[media] [N | 24h]",
        f"summarize this channel's last N messages (default {DEFAULT_SUMMARY_MESSAGES}) or hours; "
        "`media`: only the files, images and videos shared (default: the last 7 days)",
    ),
    CommandSpec(
        "budget",
        "[daily|monthly <$ amount|unlimited|default>]",
        "show the spending limits, or set each person's daily or the {workspace}'s monthly limit "
        "(admins only)",
    ),
    CommandSpec("prompt", "[<text>|default]", "show or set this channel's instructions for me (admins only)"),
    CommandSpec(
        "tools",
        "[enable|disable <name> [channel|{workspace}]]",
        "list the tools I can use here; admins switch one on or off for this channel or the {workspace}",
    ),
    # Anyone may have their stored data deleted, wherever they ask and whether or not Seed serves them there.
    CommandSpec("forget", "", "delete what I have stored from your messages", anywhere=True),
    CommandSpec("help", "", "this list"),
)
STOP_HINT = "Say `stop` where I am answering to stop me"


def _spec(name: str) -> CommandSpec:
    return next(spec for spec in COMMANDS if spec.name == name)


def allowed_anywhere(name: str) -> bool:
    """Whether the command of this name runs outside the allowlists too."""
    return any(spec.name == name and spec.anywhere for spec in COMMANDS)


def _words(text: str, dialect: Dialect) -> str:
    return text.replace("{workspace}", dialect.workspace)


def help_text(dialect: Dialect) -> str:
    """Everything the bot does on this platform, one line a command."""
    intro = "answers with Dola Seed 2.0 Lite. Mention me in a channel, message me directly, or:"
    lines = [f"{dialect.bold('Seed')} {intro}"]
    for spec in (*COMMANDS, *dialect.extras):
        typed = dialect.syntax(spec)
        if typed is not None:
            lines.append(f"• {_words(typed, dialect)}: {_words(spec.does, dialect)}")
    lines.append(f"• {STOP_HINT}")
    return "\n".join(lines)


def usage_line(dialect: Dialect) -> str:
    """Every command's syntax on one line, for a command typed wrongly."""
    typed = [dialect.syntax(spec) for spec in (*COMMANDS, *dialect.extras)]
    return "Usage: " + " · ".join(_words(t, dialect) for t in typed if t is not None)


def usage_hint(dialect: Dialect) -> str:
    """What to say to someone who addressed the bot without asking anything."""
    ask, help_ = dialect.syntax(_spec("ask")), dialect.syntax(_spec("help"))
    hint = "Ask me something: mention me with a question (attach images or videos if you like)"
    hint += f", or use {ask}." if ask else "."
    return f"{hint} {help_} lists everything I can do." if help_ else hint


def admins_only(dialect: Dialect) -> Refusal:
    return Refusal(f"Only admins ({dialect.admins}) can change that.")


# --- typed text -> commands (Slack's `/seed …`, the terminal's `/…`) ----------------------------------


def parse_command(text: str) -> Command | None:
    """`effort high channel`, `cost 7d`, `summarize 24h`… as a command; None when the text is not a
    command but a question. Raises BadArguments for a known command typed wrongly."""
    words = text.split()
    if not words:
        return Help()
    head, rest = words[0].lower(), [word.lower() for word in words[1:]]
    if head == "help":
        return Help()
    if head == "effort":
        return _parse_effort(rest)
    if head == "cost":
        return _parse_cost(rest)
    if head in ("summarize", "summarise"):
        return _parse_summarize(rest)
    if head == "budget":
        return _parse_budget(rest)
    if head == "prompt":
        return Prompt(text.strip()[len(words[0]) :].strip() or None)
    if head == "tools":
        return _parse_tools(words[1:])
    if head == "forget":
        if rest:
            raise BadArguments("`forget` takes no arguments.")
        return Forget()
    return None


def _parse_effort(words: list[str]) -> Effort:
    shared = [word for word in words if word in SHARED_SCOPES]
    words = [word for word in words if word not in shared]
    if len(shared) > 1:
        raise BadArguments("Set the effort for the channel or for the workspace, not both.")
    if len(words) > 1 or (words and words[0] not in (*EFFORTS, RESET)):
        raise BadArguments(f"Unknown effort `{' '.join(words)}`: use low, medium, high or default.")
    return Effort(words[0] if words else None, setting_scope(shared[0] if shared else "me"))  # type: ignore[arg-type]


def _parse_cost(words: list[str]) -> Cost:
    words = ["workspace" if word == "server" else word for word in words]
    scopes = [word for word in words if word in REPORT_SCOPES]
    periods = [word for word in words if word in PERIODS]
    if len(scopes) > 1 or len(periods) > 1 or len(scopes) + len(periods) != len(words):
        raise BadArguments(f"I don't understand `cost {' '.join(words)}`.")
    return Cost(scopes[0] if scopes else "me", periods[0] if periods else "today")  # type: ignore[arg-type]


def _parse_budget(words: list[str]) -> Budget:
    if not words:
        return Budget()
    if len(words) != 2 or words[0] not in BUDGET_KINDS:
        raise BadArguments(
            "Use `budget daily <amount>` or `budget monthly <amount>` (or `unlimited`, `default`)."
        )
    return Budget(BUDGET_KINDS[words[0]], words[1])


def _parse_tools(words: list[str]) -> Tools:
    if not words or words[0].lower() == "list":
        if len(words) > 1:
            raise BadArguments("`tools` lists the tools; use `tools enable <name>` to change one.")
        return Tools()
    action, rest = words[0].lower(), words[1:]
    scopes = [word for word in rest if word.lower() in SHARED_SCOPES]
    names = [word for word in rest if word not in scopes]
    if action not in ("enable", "disable") or len(names) != 1 or len(scopes) > 1:
        raise BadArguments("Use `tools`, or `tools enable <name> [channel|workspace]` (or `disable`).")
    return Tools(action, names[0], SHARED_SCOPES[scopes[0].lower()] if scopes else "channel")  # type: ignore[arg-type]


def _parse_summarize(words: list[str]) -> Summarize:
    if words[:1] == ["media"]:
        ranged = _parse_summarize(words[1:] or ["7d"])
        return Summarize(ranged.messages, ranged.hours, "media")
    if not words:
        return Summarize()
    if len(words) <= 2 and words[0].isdigit() and words[1:] in ([], ["messages"], ["message"]):
        return Summarize(messages=int(words[0]))
    if len(words) == 1 and words[0][:-1].isdigit() and words[0][-1:] in ("h", "d"):
        return Summarize(messages=None, hours=int(words[0][:-1]) * (24 if words[0].endswith("d") else 1))
    raise BadArguments(
        f"I don't understand `summarize {' '.join(words)}`: try `summarize 50` or `summarize 24h`."
    )


# --- running them -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CommandAnswer:
    """What a chat shows for a command: its text, and for a `Cost` report the spend chart (a PNG) where
    there is one to draw."""

    text: str
    chart: bytes | None = None


async def answer_command(
    service: ChatService, caller: Caller, command: ReplyCommand, dialect: Dialect
) -> CommandAnswer:
    """`run_command`, with the picture that goes with the answer."""
    text = await run_command(service, caller, command, dialect)
    chart = await _cost_chart(service, caller, command) if isinstance(command, Cost) else None
    return CommandAnswer(text, chart)


async def run_command(service: ChatService, caller: Caller, command: ReplyCommand, dialect: Dialect) -> str:
    """Do what `command` asks for `caller` and say what happened, in the dialect's markup; a `Refusal`
    when it changed nothing because it was not allowed, a value was bad, or the database is away."""
    try:
        return await _run(service, caller, command, dialect)
    except StoreError as error:
        log.warning("command %s not run: %s", type(command).__name__, error)
        return Refusal(STORAGE_UNAVAILABLE)


async def _run(service: ChatService, caller: Caller, command: ReplyCommand, dialect: Dialect) -> str:
    match command:
        case Effort():
            return await _effort(service, caller, command, dialect)
        case Cost():
            return await _cost(service, caller, command, dialect)
        case Budget():
            return await _budget(service, caller, command, dialect)
        case Prompt():
            return await _prompt(service, caller, command, dialect)
        case Forget():
            deleted = await service.store.forget_user(caller.platform, caller.user)
            return f"Done: deleted {deleted} stored messages of yours."
        case Help():
            return help_text(dialect)
        case Tools():
            return await _tools(service, caller, command, dialect)


def _no_workspace(dialect: Dialect) -> Refusal:
    return Refusal(f"There is no {dialect.workspace} here; use scope `me`.")


async def _effort(service: ChatService, caller: Caller, command: Effort, dialect: Dialect) -> str:
    if command.level is None:
        current, source = await effort_for(
            service.store,
            service.settings,
            platform=caller.platform,
            workspace=caller.workspace,
            channel=caller.channel,
            user=caller.user,
        )
        words = {
            "user": "your own setting",
            "channel": "this channel's setting",
            "workspace": f"this {dialect.workspace}'s setting",
        }.get(source, "the default")
        return f"Reasoning effort here: {dialect.bold(current)} (from {words})."
    if command.scope != "user" and not caller.admin:
        return admins_only(dialect)
    if command.scope == "workspace" and not caller.in_workspace:
        return _no_workspace(dialect)
    scope_id = {"user": caller.user, "channel": caller.channel, "workspace": caller.workspace}[command.scope]
    level = None if command.level == RESET else command.level
    await service.store.set_setting("effort", level, command.scope, caller.platform, scope_id)
    whose = {"user": "you", "channel": "this channel", "workspace": f"this {dialect.workspace}"}[
        command.scope
    ]
    shown = "back to the default" if level is None else dialect.bold(level)
    return f"Reasoning effort for {whose} is now {shown}."


async def _cost(service: ChatService, caller: Caller, command: Cost, dialect: Dialect) -> str:
    if command.scope == "workspace" and not caller.in_workspace:
        return _no_workspace(dialect)
    return await cost_report(
        service.store,
        service.settings,
        key=caller.place,
        user=caller.user,
        scope=command.scope,
        period=command.period,
        include_top=caller.admin,
        label=dialect.mention,
    )


async def _cost_chart(service: ChatService, caller: Caller, command: Cost) -> bytes | None:
    """The picture that goes with a `Cost` report: the last 30 days' spend in its scope, as a PNG
    (whatever period the report covers: a day alone makes no chart); None where there is no report."""
    if command.scope == "workspace" and not caller.in_workspace:
        return None
    return await spend_chart_png(service.store, report_filter(caller.place, caller.user, command.scope))


async def _budget(service: ChatService, caller: Caller, command: Budget, dialect: Dialect) -> str:
    if not caller.in_workspace:
        return Refusal(f"Budgets belong to a {dialect.workspace}; use this command in one.")
    if command.kind is not None:
        if not caller.admin:
            return admins_only(dialect)
        if command.amount is None:
            return Refusal("Give an amount, `unlimited` or `default`.")
        amount = None if command.amount.strip().lower() == RESET else command.amount
        try:
            await service.store.set_setting(
                f"{command.kind}_budget_usd", amount, "workspace", caller.platform, caller.workspace
            )
        except SettingError as bad:
            return Refusal(f"{bad}.")
    limits = await service.budgets.limits(caller.platform, caller.workspace)
    return (
        f"Spending limits here: {format_limit(limits.user_daily)} per person per day (resets 00:00 UTC), "
        f"{format_limit(limits.workspace_monthly)} for the {dialect.workspace} per month."
    )


async def _prompt(service: ChatService, caller: Caller, command: Prompt, dialect: Dialect) -> str:
    if command.text is not None:
        if not caller.admin:
            return admins_only(dialect)
        text = None if command.text.strip().lower() == RESET else command.text
        try:
            await service.store.set_setting("system_prompt", text, "channel", caller.platform, caller.channel)
        except SettingError as bad:
            return Refusal(f"{bad}.")
    prompt, own = await system_prompt_for(
        service.store, service.settings, platform=caller.platform, channel=caller.channel
    )
    whose = "This channel's instructions" if own else "Instructions here (the default)"
    return f"{whose}:\n{dialect.quote(prompt)}"


async def _tools(service: ChatService, caller: Caller, command: Tools, dialect: Dialect) -> str:
    if not service.settings.tools_enabled:
        return "Tools are switched off for this bot (SEEDBOT_TOOLS_ENABLED)."
    tools = {tool.name: tool for tool in service.available_tools()}
    said = ""
    if command.action != "list":
        if not caller.admin:
            return admins_only(dialect)
        if command.scope == "workspace" and not caller.in_workspace:
            return f"There is no {dialect.workspace} here; use scope `channel`."
        if command.name not in tools:
            return f"There is no tool named `{command.name}`. Tools: {', '.join(tools) or 'none'}."
        await _switch_tool(service, caller, command)
        where = "this channel" if command.scope == "channel" else f"this {dialect.workspace}"
        state = "on" if command.action == "enable" else "off"
        said = f"{command.name} is now {dialect.bold(state)} in {where}.\n"
    disabled, source = await disabled_tools_for(
        service.store, platform=caller.platform, workspace=caller.workspace, channel=caller.channel
    )
    why = f"switched off in this {'channel' if source == 'channel' else dialect.workspace}"
    lines = [f"{said}Tools here:"]
    for name, tool in tools.items():
        state = f"off ({why})" if name in disabled else "on"
        asks = " · asks before it runs" if tool.needs_confirmation else ""
        lines.append(f"• {name}: {state}{asks}")
    servers = service.mcp.status()
    if servers:
        lines.append("MCP servers: " + "; ".join(status.line() for status in servers))
    return "\n".join(lines)


async def _switch_tool(service: ChatService, caller: Caller, command: Tools) -> None:
    """Store the new list of tools switched off at the command's scope. A channel's list replaces its
    workspace's, so it starts from what is in force there and is cleared when it matches the workspace."""
    assert command.name is not None  # Tools checks it for every action but "list"
    store, platform = service.store, caller.platform
    workspace_value = await store.get_setting(TOOLS_DISABLED, "workspace", platform, caller.workspace)
    workspace_off = set(tool_names(workspace_value or ""))
    if command.scope == "workspace":
        current = workspace_off
    else:
        in_force, _ = await disabled_tools_for(
            store, platform=platform, workspace=caller.workspace, channel=caller.channel
        )
        current = set(in_force)
    off = current | {command.name} if command.action == "disable" else current - {command.name}
    value: str | None = ",".join(sorted(off))
    if command.scope == "workspace":
        await store.set_setting(TOOLS_DISABLED, value or None, "workspace", platform, caller.workspace)
    else:
        channel_value = None if off == workspace_off else (value or NO_TOOLS)
        await store.set_setting(TOOLS_DISABLED, channel_value, "channel", platform, caller.channel)
