"""What the Discord client and its slash commands share, without importing each other."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from bots.discord.access import discord_allowlist
from bots.discord.questions import DiscordQuestions
from bots.discord.surface import global_budget, paced
from core.admission import Admission, Work
from core.commands import CommandSpec, Dialect, chat_mention, usage_hint
from core.config import Settings
from core.coordination import Draw
from core.service import ChatService

T = TypeVar("T")

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
        self.questions = DiscordQuestions()
        self._global_budget: Draw | None = None

    def logged_in(self, application_id: int) -> None:
        """The bot's global budget is keyed by its application id, known once logged in."""
        self._global_budget = global_budget(application_id, self.settings.discord_global_rate_limit)

    @property
    def global_budget(self) -> Draw:
        assert self._global_budget is not None, "logged_in() has not run"
        return self._global_budget

    async def paced(self, call: Callable[[], Awaitable[T]]) -> T:
        """One call outside a reply within the bot's global budget (see `surface.paced`)."""
        return await paced(self.service.reply_budgets, self.global_budget, call)
