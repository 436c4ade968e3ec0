"""Discord adapter: discord.py gateway client, slash commands and the Discord reply surfaces."""

from bots.discord.runner import DiscordRunner, DiscordStartupError, build_discord_client

__all__ = ["DiscordRunner", "DiscordStartupError", "build_discord_client"]
