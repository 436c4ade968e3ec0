"""Slash commands and the "Summarize" message menu.

/ask streams into the interaction's own response: it is deferred at once (Discord allows 3 s), then
edited through the interaction webhook until the token expires (15 min), then continued as channel
messages. Settings and reports are ephemeral: only the person who asked sees them.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Literal

import discord
from discord import app_commands

from bots.discord.access import ADMINS_ONLY, NOT_ENABLED, allowed, is_admin, place_of
from bots.discord.attachments import DiscordAttachment
from bots.discord.conversation import (
    PLATFORM,
    conversation_key,
    history_message,
    settings_channel,
    workspace_of,
)
from bots.discord.surface import InteractionSurface
from core.models import ConversationKey, HistoryMessage, Turn
from core.money import format_limit
from core.prompts import SUMMARY_INSTRUCTION
from core.service import DRAINING_MESSAGE
from core.store.base import SettingError

if TYPE_CHECKING:
    from bots.discord.client import SeedClient

log = logging.getLogger(__name__)

DEFAULT_SUMMARY_COUNT = 30
MAX_REPORT_CHARS = 2000
NO_SERVER_BUDGET = "Budgets belong to a server; use /budget in one."
NO_SERVER = "There is no server here; use scope `me`."
NO_HISTORY = "I can't read this channel's history: I need the Read Message History permission."
SCOPES = {"me": "user", "channel": "channel", "server": "workspace"}
REPORT_SCOPES: dict[str, Literal["me", "channel", "workspace"]] = {
    "me": "me",
    "channel": "channel",
    "server": "workspace",
}
SCOPE_WORDS = {"me": "you", "channel": "this channel", "server": "this server"}
SOURCE_WORDS = {
    "request": "this request",
    "user": "your own setting",
    "channel": "this channel's setting",
    "workspace": "this server's setting",
    "default": "the default",
}


def _caller_is_admin(bot: SeedClient, interaction: discord.Interaction) -> bool:
    permissions = interaction.permissions if interaction.guild_id is not None else None
    return is_admin(bot.settings, interaction.user, permissions)


class SeedCommandTree(app_commands.CommandTree["SeedClient"]):
    async def interaction_check(self, interaction: discord.Interaction, /) -> bool:
        """Each interaction runs once: Discord may deliver one again around a RESUME, and answering
        it twice would fail (it is already acknowledged) or, for /ask, pay for a second answer."""
        if not await self.client.service.claim_event(PLATFORM, f"interaction:{interaction.id}"):
            return False
        if not self.client.accepting:  # shutting down: say so rather than leave it unanswered
            await interaction.response.send_message(DRAINING_MESSAGE, ephemeral=True)
            return False
        return True


async def _admitted(bot: SeedClient, interaction: discord.Interaction) -> bool:
    """Allowlists: a refusal is ephemeral."""
    admin = _caller_is_admin(bot, interaction)
    if allowed(bot.settings, place_of(interaction.channel, interaction.guild, interaction.user), admin=admin):
        return True
    await interaction.response.send_message(NOT_ENABLED, ephemeral=True)
    return False


def _turn(
    bot: SeedClient,
    interaction: discord.Interaction,
    key: ConversationKey,
    text: str,
    **extra: object,
) -> Turn:
    return Turn(
        key=key,
        user_id=str(interaction.user.id),
        user_name=interaction.user.display_name,
        text=text,
        **extra,  # type: ignore[arg-type]
    )


async def _stream(
    bot: SeedClient, interaction: discord.Interaction, turn: Turn, *, instruction: str | None = None
) -> None:
    surface = InteractionSurface(interaction, fallback_channel=bot.channel_of(interaction))
    try:
        await bot.service.answer(turn, surface, instruction=instruction)
    finally:
        await surface.close()


def _place_key(interaction: discord.Interaction, thread: str = "") -> ConversationKey:
    """The server and channel (a thread's parent) the command was used in."""
    return ConversationKey(
        PLATFORM, workspace_of(interaction.guild), settings_channel(interaction.channel), thread
    )


def register_commands(tree: app_commands.CommandTree[SeedClient], bot: SeedClient) -> None:
    @tree.command(name="ask", description="Ask Seed a question, optionally about an image or a video")
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
        if not await _admitted(bot, interaction):
            return
        await interaction.response.defer(thinking=True)
        with bot.track():
            files = [DiscordAttachment(item, bot.downloads) for item in (image, video) if item is not None]
            key = conversation_key(interaction.channel, interaction.guild, interaction.id)
            turn = _turn(bot, interaction, key, prompt, attachments=files, effort=effort)
            await _stream(bot, interaction, turn)

    @tree.command(name="effort", description="Show or set Seed's reasoning effort")
    @app_commands.describe(level="New level (default clears the setting)", scope="Whose setting to change")
    async def effort(
        interaction: discord.Interaction,
        level: Literal["low", "medium", "high", "default"] | None = None,
        scope: Literal["me", "channel", "server"] = "me",
    ) -> None:
        if not await _admitted(bot, interaction):
            return
        workspace = workspace_of(interaction.guild)
        channel = settings_channel(interaction.channel)
        user = str(interaction.user.id)
        if level is None:
            current, source = await bot.service.effort_for(
                platform=PLATFORM, workspace=workspace, channel=channel, user=user
            )
            words = SOURCE_WORDS.get(source, source)
            await interaction.response.send_message(
                f"Reasoning effort here: **{current}** (from {words}).", ephemeral=True
            )
            return
        if scope != "me" and not _caller_is_admin(bot, interaction):
            await interaction.response.send_message(ADMINS_ONLY, ephemeral=True)
            return
        if scope == "server" and interaction.guild_id is None:
            await interaction.response.send_message(NO_SERVER, ephemeral=True)
            return
        scope_id = {"me": user, "channel": channel, "server": workspace}[scope]
        await bot.service.set_effort(
            None if level == "default" else level,
            scope=SCOPES[scope],  # type: ignore[arg-type]
            platform=PLATFORM,
            scope_id=scope_id,
        )
        shown = "back to the default" if level == "default" else f"**{level}**"
        await interaction.response.send_message(
            f"Reasoning effort for {SCOPE_WORDS[scope]} is now {shown}.", ephemeral=True
        )

    @tree.command(name="cost", description="What Seed has cost: requests, tokens and USD")
    @app_commands.describe(scope="Whose spending", period="Over which period")
    async def cost(
        interaction: discord.Interaction,
        scope: Literal["me", "channel", "server"] = "me",
        period: Literal["today", "7d", "30d", "all"] = "today",
    ) -> None:
        if not await _admitted(bot, interaction):
            return
        if scope == "server" and interaction.guild_id is None:
            await interaction.response.send_message(NO_SERVER, ephemeral=True)
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        report = await bot.service.cost_report(
            key=_place_key(interaction),
            user_id=str(interaction.user.id),
            scope=REPORT_SCOPES[scope],
            period=period,
            include_top=_caller_is_admin(bot, interaction),
            label=mention_label,
        )
        await interaction.edit_original_response(content=report[:MAX_REPORT_CHARS])

    @tree.command(name="summarize", description="Summarize this channel's recent messages and shared media")
    @app_commands.describe(count="How many recent messages (default 30)")
    async def summarize(
        interaction: discord.Interaction, count: app_commands.Range[int, 1, 100] = DEFAULT_SUMMARY_COUNT
    ) -> None:
        if not await _admitted(bot, interaction):
            return
        await interaction.response.defer(thinking=True)
        with bot.track():
            assert bot.user is not None
            channel = bot.channel_of(interaction)
            try:
                recent = [
                    history_message(message, bot.user.id, bot.downloads)
                    async for message in channel.history(limit=count + 1)
                    if not _is_response_to(message, interaction)
                ][:count]
            except discord.HTTPException as error:
                await interaction.edit_original_response(content=f"{NO_HISTORY} ({error.status})")
                return
            recent.reverse()
            text = f"Summarize the last {len(recent)} messages of this channel."
            await _summarize(bot, interaction, recent, text)

    @tree.context_menu(name="Summarize")
    async def summarize_message(interaction: discord.Interaction, message: discord.Message) -> None:
        if not await _admitted(bot, interaction):
            return
        await interaction.response.defer(thinking=True)
        with bot.track():
            assert bot.user is not None
            item = history_message(message, bot.user.id, bot.downloads)
            text = f"Summarize this message by {item.author} and its attachments."
            await _summarize(bot, interaction, [item], text)

    @tree.command(name="budget", description="Show Seed's spending limits here, or set one (admins)")
    @app_commands.describe(
        limit="Which limit to set: each person's per day, or the server's per month",
        amount="In US dollars (e.g. 0.50), 'unlimited', or 'default' for the configured limit",
    )
    async def budget(
        interaction: discord.Interaction,
        limit: Literal["daily", "monthly"] | None = None,
        amount: str | None = None,
    ) -> None:
        if not await _admitted(bot, interaction):
            return
        if interaction.guild_id is None:
            await interaction.response.send_message(NO_SERVER_BUDGET, ephemeral=True)
            return
        workspace = workspace_of(interaction.guild)
        if limit is not None:
            if not _caller_is_admin(bot, interaction):
                await interaction.response.send_message(ADMINS_ONLY, ephemeral=True)
                return
            if amount is None:
                await interaction.response.send_message(
                    "Give an amount, `unlimited` or `default`.", ephemeral=True
                )
                return
            kind = "user_daily" if limit == "daily" else "workspace_monthly"
            try:
                value = None if amount.strip().lower() == "default" else amount
                await bot.service.set_budget(kind, value, platform=PLATFORM, workspace=workspace)
            except SettingError as bad:
                await interaction.response.send_message(f"{bad}.", ephemeral=True)
                return
        limits = await bot.service.budgets_for(PLATFORM, workspace)
        await interaction.response.send_message(
            f"Spending limits here: {format_limit(limits.user_daily)} per person per day "
            f"(resets 00:00 UTC), {format_limit(limits.workspace_monthly)} for the server per month.",
            ephemeral=True,
        )

    @tree.command(
        name="prompt", description="Show this channel's instructions for Seed, or set them (admins)"
    )
    @app_commands.describe(text="New instructions, or 'default' to go back to the configured ones")
    async def prompt(interaction: discord.Interaction, text: str | None = None) -> None:
        if not await _admitted(bot, interaction):
            return
        channel = settings_channel(interaction.channel)
        if text is not None:
            if not _caller_is_admin(bot, interaction):
                await interaction.response.send_message(ADMINS_ONLY, ephemeral=True)
                return
            try:
                value = None if text.strip().lower() == "default" else text
                await bot.service.set_system_prompt(value, platform=PLATFORM, channel=channel)
            except SettingError as bad:
                await interaction.response.send_message(f"{bad}.", ephemeral=True)
                return
        current, own = await bot.service.system_prompt_for(PLATFORM, channel)
        whose = "This channel's instructions" if own else "Instructions here (the default)"
        quoted = "\n".join(f"> {line}" for line in current.splitlines())
        await interaction.response.send_message(f"{whose}:\n{quoted}"[:MAX_REPORT_CHARS], ephemeral=True)

    @tree.command(name="forget", description="Delete everything Seed has stored about you")
    async def forget(interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        deleted = await bot.service.forget_user(PLATFORM, str(interaction.user.id))
        await interaction.edit_original_response(content=f"Done: deleted {deleted} stored messages of yours.")

    @tree.error
    async def on_error(interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        log.exception("slash command failed", exc_info=error)
        note = "Sorry, that command failed. Please try again."
        try:
            if interaction.response.is_done():
                await interaction.followup.send(note, ephemeral=True)
            else:
                await interaction.response.send_message(note, ephemeral=True)
        except discord.HTTPException:
            pass


async def _summarize(
    bot: SeedClient, interaction: discord.Interaction, history: list[HistoryMessage], text: str
) -> None:
    # A summary is a conversation of its own (replies to it continue it), not part of a thread's.
    key = _place_key(interaction, f"summary-{interaction.id}")
    turn = _turn(bot, interaction, key, text, history=history)
    await _stream(bot, interaction, turn, instruction=SUMMARY_INSTRUCTION)


def _is_response_to(message: discord.Message, interaction: discord.Interaction) -> bool:
    metadata = message.interaction_metadata
    return metadata is not None and metadata.id == interaction.id


def mention_label(kind: str, key: str) -> str:
    """Users and channels in a /cost report as the platform's mentions, shown as names."""
    return f"<#{key}>" if kind == "channel" else f"<@{key}>"
