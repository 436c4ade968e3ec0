"""What the Discord client and its slash commands share, without importing each other."""

from __future__ import annotations

from bots.discord.access import discord_allowlist
from bots.discord.questions import DiscordQuestions
from core.admission import Admission, Work
from core.commands import CommandSpec, Dialect, chat_mention, usage_hint
from core.config import Settings
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
        self.questions = DiscordQuestions()
