"""Where discord.py talks to (REST base, gateway), what it asks for (intents) and the invite URL.

discord.py has no per-client option for either address:
- every REST call, interaction webhooks included, builds its URL from the class attribute
  `discord.http.Route.BASE` (discord.py itself only rewrites it in `_set_api_version`);
- `Client.connect` opens `DiscordWebSocket.DEFAULT_GATEWAY` (it never asks `GET /gateway/bot`) and
  later RESUMEs at the `resume_gateway_url` that READY names.
So the supported cut is to set those two class attributes before `login()`, which makes them
process-wide: one Discord bot per process, which is how seedbot runs. `EndpointOverride` restores
the previous values on stop so a second client (tests) starts clean.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import discord
import yarl
from discord.gateway import DiscordWebSocket
from discord.http import HTTPClient, Route

log = logging.getLogger(__name__)

SCOPES = ("bot", "applications.commands")


def intents() -> discord.Intents:
    """Only what the features use: guild + channel cache, guild and DM messages, message text."""
    wanted = discord.Intents.none()
    wanted.guilds = True  # channels, threads and roles (allowlists, Manage Server) in the cache
    wanted.guild_messages = True
    wanted.dm_messages = True
    # Privileged: without it Discord blanks the text of messages that do not mention the bot, so
    # follow-ups in threads and replies without a ping would arrive empty.
    wanted.message_content = True
    return wanted


def permissions(*, threads: bool) -> discord.Permissions:
    """Exactly the channel permissions the bot uses; thread creation only when that setting is on."""
    needed = discord.Permissions.none()
    needed.view_channel = True
    needed.send_messages = True
    needed.send_messages_in_threads = True
    needed.read_message_history = True  # reply chains and /summarize read earlier messages
    needed.create_public_threads = threads
    return needed


def invite_url(application_id: int, *, threads: bool) -> str:
    return discord.utils.oauth_url(application_id, permissions=permissions(threads=threads), scopes=SCOPES)


def intents_fix(application_id: int | None) -> str:
    page = f"https://discord.com/developers/applications/{application_id or '<app id>'}/bot"
    return (
        "Discord refused the privileged Message Content intent: open "
        f"{page}, turn on 'Message Content Intent' under Privileged Gateway Intents, then restart."
    )


@dataclass
class EndpointOverride:
    """Points discord.py at `api_base` and a gateway; `restore()` puts the old addresses back."""

    api_base: str
    gateway_url: str | None

    def __post_init__(self) -> None:
        self._old_base = Route.BASE
        self._old_gateway = DiscordWebSocket.DEFAULT_GATEWAY

    def apply(self) -> None:
        Route.BASE = self.api_base.rstrip("/")
        if self.gateway_url:
            DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(self.gateway_url)

    async def discover_gateway(self, http: HTTPClient, *, need_shard_count: bool = False) -> int | None:
        """Without DISCORD_GATEWAY_URL, ask the REST base where its gateway is (`GET /gateway/bot`),
        so an API proxy or test server that serves its own gateway is followed. The same answer holds
        Discord's recommended shard count: returned when `need_shard_count` (asked even with
        DISCORD_GATEWAY_URL), else None; None too when the call failed."""
        if self.gateway_url and not need_shard_count:
            return None
        try:
            shards, url, limits = await http.get_bot_gateway()
        except discord.GatewayNotFound:
            log.warning("GET /gateway/bot failed; connecting to %s", DiscordWebSocket.DEFAULT_GATEWAY)
            return None
        if not self.gateway_url:
            DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(url)
        if limits.get("remaining", 1) < 10:
            log.warning("only %s Discord session starts left today", limits.get("remaining"))
        return shards if need_shard_count else None

    def restore(self) -> None:
        Route.BASE = self._old_base
        DiscordWebSocket.DEFAULT_GATEWAY = self._old_gateway
