"""Slash commands and the "Summarize" message menu, as module-level app commands.

What the settings and report commands mean and answer is core's (`core.commands`): each handler here
turns Discord's typed options into a core command and shows the answer privately. /ask and the
summaries stream into the interaction's own response: it is deferred at once (Discord allows 3 s),
then edited through the interaction webhook until the token expires (15 min), then continued as
channel messages.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import AsyncIterator
from typing import Literal

import discord
from discord import app_commands

from bots.discord.access import is_admin, place_of
from bots.discord.attachments import DiscordAttachment
from bots.discord.bot import DISCORD, DiscordBot
from bots.discord.budget import NOT_SENT, history_calls, refusal
from bots.discord.conversation import (
    PLATFORM,
    ChannelSearch,
    conversation_key,
    history_message,
    settings_channel,
    workspace_of,
)
from bots.discord.surface import DISCORD_LIMITS, InteractionSurface
from core.admission import NOT_ENABLED
from core.commands import (
    BUDGET_KINDS,
    COMMAND_FAILED,
    DEFAULT_SUMMARY_MESSAGES,
    MAX_SUMMARY_MESSAGES,
    NOTHING_TO_SUMMARIZE,
    SHARED_SCOPES,
    BadArguments,
    Budget,
    Caller,
    Cost,
    Effort,
    Forget,
    Help,
    Prompt,
    ReplyCommand,
    Summarize,
    Tools,
    allowed_anywhere,
    answer_command,
    message_summary_request,
    report_scope,
    setting_scope,
)
from core.models import ConversationKey, HistoryMessage, SummaryKind, Turn
from core.service import DRAINING_MESSAGE

log = logging.getLogger(__name__)

CHART_NAME = "spend.png"
NO_HISTORY = "I can't read this channel's history: I need the Read Message History permission."
BUSY = "Discord is rate limiting me right now; try again in a minute."


def _bot(interaction: discord.Interaction) -> DiscordBot:
    return interaction.client.seed  # type: ignore[attr-defined]


def _me(interaction: discord.Interaction) -> int:
    """The bot's own user id (the client is logged in by the time commands arrive)."""
    assert interaction.client.user is not None
    return interaction.client.user.id


@contextlib.asynccontextmanager
async def _answering(interaction: discord.Interaction) -> AsyncIterator[DiscordBot]:
    """Defer at once (Discord allows 3 s), and count the command as work in flight while it answers."""
    await interaction.response.defer(thinking=True)
    bot = _bot(interaction)
    with bot.work.track():
        yield bot


class SeedCommandTree(app_commands.CommandTree[discord.Client]):
    def __init__(self, client: discord.Client) -> None:
        super().__init__(client)
        for command in (
            ask,
            effort,
            cost,
            summarize,
            budget,
            prompt,
            tools,
            forget,
            help_,
            summarize_message,
        ):
            self.add_command(command)

    async def interaction_check(self, interaction: discord.Interaction, /) -> bool:
        """Each interaction runs once (Discord may deliver one again around a RESUME, and answering it
        twice would fail or, for /ask, pay twice), only where the allowlists let it, and not while
        shutting down (say so rather than leave it unanswered)."""
        bot = _bot(interaction)
        if not await bot.admission.claim(PLATFORM, f"interaction:{interaction.id}"):
            return False
        if not bot.work.accepting:
            await interaction.response.send_message(DRAINING_MESSAGE, ephemeral=True)
            return False
        place = place_of(interaction.channel, interaction.guild, interaction.user)
        anywhere = allowed_anywhere(str((interaction.data or {}).get("name", "")))
        if not anywhere and not bot.admission.allowlist.allows(place, admin=_admin(interaction)):
            await interaction.response.send_message(NOT_ENABLED, ephemeral=True)
            return False
        return True

    async def on_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError, /
    ) -> None:
        log.exception("slash command failed", exc_info=error)
        try:
            if interaction.response.is_done():
                await interaction.followup.send(COMMAND_FAILED, ephemeral=True)
            else:
                await interaction.response.send_message(COMMAND_FAILED, ephemeral=True)
        except discord.HTTPException:
            pass


def _admin(interaction: discord.Interaction) -> bool:
    permissions = interaction.permissions if interaction.guild_id is not None else None
    return is_admin(_bot(interaction).settings, interaction.user, permissions)


def _caller(interaction: discord.Interaction) -> Caller:
    return Caller(
        PLATFORM,
        workspace_of(interaction.guild),
        settings_channel(interaction.channel),
        str(interaction.user.id),
        admin=_admin(interaction),
        in_workspace=interaction.guild_id is not None,
    )


async def _reply(interaction: discord.Interaction, command: ReplyCommand) -> None:
    """Run a core command and show its answer to the person who asked, and only to them; a `Cost`
    report comes with its spend chart, or as text only when Discord refuses the file."""
    await interaction.response.defer(ephemeral=True, thinking=True)
    answer = await answer_command(_bot(interaction).service, _caller(interaction), command, DISCORD)
    text = answer.text[: DISCORD_LIMITS.max_message_chars]
    if answer.chart is not None:
        try:
            await interaction.edit_original_response(
                content=text, attachments=[discord.File(io.BytesIO(answer.chart), CHART_NAME)]
            )
            return
        except discord.HTTPException as error:
            log.warning("spend chart refused (%s %s); the report goes as text only", error.status, error.text)
    await interaction.edit_original_response(content=text)


def _channel(interaction: discord.Interaction) -> discord.abc.Messageable:
    """Where the command was used (a stand-in when discord.py does not have that channel cached)."""
    channel = interaction.channel
    if isinstance(channel, discord.abc.Messageable):
        return channel
    client, channel_id = interaction.client, interaction.channel_id or 0
    return client.get_partial_messageable(channel_id, guild_id=interaction.guild_id)


async def _stream(interaction: discord.Interaction, turn: Turn) -> None:
    channel = _channel(interaction)
    bot = _bot(interaction)
    surface = InteractionSurface(
        interaction,
        fallback_channel=channel,
        budget=bot.pacer.budget,
        questions=bot.questions,
        search=ChannelSearch(channel, _me(interaction), bot.pacer),
    )
    await bot.service.answer(turn, surface)


def _turn(interaction: discord.Interaction, key: ConversationKey, text: str, **extra: object) -> Turn:
    user = interaction.user
    return Turn(key=key, user_id=str(user.id), user_name=user.display_name, text=text, **extra)  # type: ignore[arg-type]


@app_commands.command(name="ask", description="Ask Seed a question, optionally about an image or a video")
@app_commands.describe(
    prompt="Your question",
    image="An image for Seed to look at",
    video="A video for Seed to watch",
    effort="Reasoning effort for this answer",
)
async def ask(
    interaction: discord.Interaction,
    prompt: app_commands.Range[str, 1, 4000],
    image: discord.Attachment | None = None,
    video: discord.Attachment | None = None,
    effort: Literal["low", "medium", "high"] | None = None,
) -> None:
    async with _answering(interaction) as bot:
        files = [DiscordAttachment(item, bot.downloads) for item in (image, video) if item is not None]
        key = conversation_key(interaction.channel, interaction.guild, interaction.id)
        await _stream(interaction, _turn(interaction, key, prompt, attachments=files, effort=effort))


@app_commands.command(name="effort", description="Show or set Seed's reasoning effort")
@app_commands.describe(level="New level (default clears the setting)", scope="Whose setting to change")
async def effort(
    interaction: discord.Interaction,
    level: Literal["low", "medium", "high", "default"] | None = None,
    scope: Literal["me", "channel", "server"] = "me",
) -> None:
    await _reply(interaction, Effort(level, setting_scope(scope)))


@app_commands.command(name="cost", description="What Seed has cost: requests, tokens and USD")
@app_commands.describe(scope="Whose spending", period="Over which period")
async def cost(
    interaction: discord.Interaction,
    scope: Literal["me", "channel", "server"] = "me",
    period: Literal["today", "7d", "30d", "all"] = "today",
) -> None:
    await _reply(interaction, Cost(report_scope(scope), period))


@app_commands.command(name="budget", description="Show Seed's spending limits here, or set one (admins)")
@app_commands.describe(
    limit="Which limit to set: each person's per day, or the server's per month",
    amount="In US dollars (e.g. 0.50), 'unlimited', or 'default' for the configured limit",
)
async def budget(
    interaction: discord.Interaction,
    limit: Literal["daily", "monthly"] | None = None,
    amount: str | None = None,
) -> None:
    await _reply(interaction, Budget(BUDGET_KINDS[limit] if limit else None, amount))


@app_commands.command(
    name="prompt", description="Show this channel's instructions for Seed, or set them (admins)"
)
@app_commands.describe(text="New instructions, or 'default' to go back to the configured ones")
async def prompt(interaction: discord.Interaction, text: str | None = None) -> None:
    await _reply(interaction, Prompt(text))


@app_commands.command(name="forget", description="Delete everything Seed has stored about you")
async def forget(interaction: discord.Interaction) -> None:
    await _reply(interaction, Forget())


@app_commands.command(name="tools", description="List the tools Seed may use here, or switch one (admins)")
@app_commands.describe(
    action="List them, or switch one on or off", name="The tool, as the list names it", scope="Where"
)
async def tools(
    interaction: discord.Interaction,
    action: Literal["list", "enable", "disable"] = "list",
    name: str | None = None,
    scope: Literal["channel", "server"] = "channel",
) -> None:
    try:
        command = Tools(action, name, SHARED_SCOPES[scope])
    except BadArguments as bad:
        await interaction.response.send_message(str(bad), ephemeral=True)
        return
    await _reply(interaction, command)


@app_commands.command(name="help", description="What Seed can do")
async def help_(interaction: discord.Interaction) -> None:
    await _reply(interaction, Help())


@app_commands.command(
    name="summarize", description="Summarize this channel's recent messages and shared media"
)
@app_commands.describe(
    count=f"How many recent messages (default {DEFAULT_SUMMARY_MESSAGES})",
    what="Everything said, or only the files, images and videos shared",
)
async def summarize(
    interaction: discord.Interaction,
    count: app_commands.Range[int, 1, MAX_SUMMARY_MESSAGES] = DEFAULT_SUMMARY_MESSAGES,
    what: Literal["messages", "media"] = "messages",
) -> None:
    async with _answering(interaction) as bot:

        async def read() -> list[discord.Message]:
            return [message async for message in _channel(interaction).history(limit=count + 1)]

        try:
            read_back = await bot.pacer(read, calls=history_calls(count + 1))
        except NOT_SENT as error:
            why = refusal(error)
            await interaction.edit_original_response(content=f"{NO_HISTORY} ({why})" if why else BUSY)
            return
        recent = [
            history_message(message, _me(interaction), bot.downloads)
            for message in read_back
            if not _is_response_to(message, interaction)
        ][:count]
        command = Summarize(messages=count, kind=what)
        wanted = [message for message in reversed(recent) if command.wants(message)]
        if not wanted:
            await interaction.edit_original_response(content=NOTHING_TO_SUMMARIZE)
            return
        await _summarize(interaction, wanted, command.request(len(wanted)), what)


@app_commands.context_menu(name="Summarize")
async def summarize_message(interaction: discord.Interaction, message: discord.Message) -> None:
    async with _answering(interaction) as bot:
        item = history_message(message, _me(interaction), bot.downloads)
        await _summarize(interaction, [item], message_summary_request(item.author), "messages")


async def _summarize(
    interaction: discord.Interaction, history: list[HistoryMessage], text: str, kind: SummaryKind
) -> None:
    # A summary is a conversation of its own (replies to it continue it), not part of a thread's.
    key = ConversationKey(
        PLATFORM,
        workspace_of(interaction.guild),
        settings_channel(interaction.channel),
        f"summary-{interaction.id}",
    )
    await _stream(interaction, _turn(interaction, key, text, history=history, summary=kind))


def _is_response_to(message: discord.Message, interaction: discord.Interaction) -> bool:
    metadata = message.interaction_metadata
    return metadata is not None and metadata.id == interaction.id
