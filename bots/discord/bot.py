"""What the Discord client and its slash commands share, without importing each other."""

from __future__ import annotations

from bots.discord.access import discord_allowlist
from bots.discord.budget import global_budget, rate_limited_for
from bots.discord.questions import DiscordQuestions
from core.admission import Admission, Work
from core.commands import CommandSpec, Dialect, chat_mention, usage_hint
from core.config import Settings
from core.reply.budgets import Pacer
from core.service import ChatService

OFFERED = frozenset({"ask", "effort", "cost", "summarize", "budget", "prompt", "tools", "forget", "help"})
MENU = CommandSpec("menu", "", "summarize that message and its attachments")


def _syntax(spec: CommandSpec) -> str | None:
    if spec is MENU:
        return "Message menu → Apps → **Summarize**"
    return f"`/{spec.name}`" if spec.name in OFFERED else None


DISCORD = Dialect(
    syntax=_syntax,
    workspace="server",
    admins="Manage Server permission, or listed in SEEDBOT_ADMINS",
    mention=chat_mention,
    extras=(MENU,),
)


class DiscordBot:
    """The core's parts the Discord handlers use."""

    def __init__(self, settings: Settings, service: ChatService):
        self.settings = settings
        self.service = service
        self.admission = Admission(service, usage_hint(DISCORD), discord_allowlist(settings))
        self.work = Work("discord")
        self.downloads = service.downloads
        self._pacer: Pacer | None = None
        self._questions: DiscordQuestions | None = None

    def logged_in(self, application_id: int) -> None:
        """The bot's global budget is keyed by its application id, known once logged in."""
        budget = global_budget(application_id, self.settings.discord_global_rate_limit)
        self._pacer = Pacer(self.service.reply_budgets, budget, rate_limited_for)
        self._questions = DiscordQuestions(self._pacer)

    @property
    def pacer(self) -> Pacer:
        """Runs calls outside a reply within the bot's global budget (its `budget`, for replies)."""
        assert self._pacer is not None, "logged_in() has not run"
        return self._pacer

    @property
    def questions(self) -> DiscordQuestions:
        """The confirmation questions open, asked within the global budget."""
        assert self._questions is not None, "logged_in() has not run"
        return self._questions
