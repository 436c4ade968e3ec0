"""Start and stop the Discord side of seedbot.

    runner = DiscordRunner(settings, service)
    await runner.start()        # logged in, commands synced, crash leftovers fixed, gateway READY
    await runner.wait_closed()  # until stop() or a fatal gateway error
    await runner.stop()         # no new work, in-flight answers get the grace period, then close

Start-up problems raise `DiscordStartupError` whose text is one printable line with the fix.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

import aiohttp
import discord
import yarl

from bots.discord.client import SeedClient
from bots.discord.endpoints import EndpointOverride, intents_fix
from bots.discord.shards import ShardedSeedClient, ShardError
from core.config import Settings

if TYPE_CHECKING:
    from core.service import ChatService

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 60.0
GATEWAY_AUTHENTICATION_FAILED = 4004


def _has_credentials(url: str) -> bool:
    try:
        parsed = yarl.URL(url)
    except ValueError:
        return False  # not a URL at all: login says so
    return parsed.user is not None or parsed.password is not None


class DiscordStartupError(Exception):
    """Discord could not be started; `str()` says why and how to fix it, in one line."""


def build_discord_client(
    settings: Settings, service: ChatService, *, guild_ready_timeout: float = 2.0
) -> SeedClient:
    """A discord.py client for seedbot; `login()` points discord.py at DISCORD_API_BASE and
    DISCORD_GATEWAY_URL (process-wide, see endpoints.py) and `close()` puts the defaults back.
    With DISCORD_SHARD_COUNT set it runs the shards configured (see shards.py)."""
    override = EndpointOverride(settings.discord_api_base, settings.discord_gateway_url)
    kind = SeedClient if settings.discord_shard_count is None else ShardedSeedClient
    return kind(settings, service, endpoint_override=override, guild_ready_timeout=guild_ready_timeout)


class DiscordRunner:
    def __init__(self, settings: Settings, service: ChatService, *, guild_ready_timeout: float = 2.0):
        if settings.discord_bot_token is None:
            raise DiscordStartupError(
                "DISCORD_BOT_TOKEN is not set: copy the bot token from the Developer Portal"
            )
        if _has_credentials(settings.discord_api_base):
            raise DiscordStartupError(
                "DISCORD_API_BASE must not hold a user or password: discord.py sends the bot token as"
                " the Authorization header, so a proxy there has to accept requests without credentials"
            )
        self.settings = settings
        self.client = build_discord_client(settings, service, guild_ready_timeout=guild_ready_timeout)
        self._gateway: asyncio.Task[None] | None = None

    def ready(self) -> bool:
        """Connected to the gateway, on every shard of this process when sharded (for /readyz)."""
        shards = self.shard_readiness()
        connected = all(shards.values()) if shards is not None else self.client.gateway_connected
        return self.client.is_ready() and not self.client.is_closed() and connected

    def shard_readiness(self) -> dict[str, bool] | None:
        """Shard id -> connected, for each shard this process runs; None when not sharded."""
        if not isinstance(self.client, ShardedSeedClient):
            return None
        return {str(shard_id): up for shard_id, up in self.client.shard_readiness().items()}

    async def start(self, *, ready_timeout_s: float = READY_TIMEOUT_S) -> None:
        assert self.settings.discord_bot_token is not None
        try:
            await self.client.login(self.settings.discord_bot_token.get_secret_value())
        except ShardError as error:
            await self._abort()
            raise DiscordStartupError(str(error)) from None
        except discord.LoginFailure:
            await self._abort()
            raise DiscordStartupError(
                "Discord refused DISCORD_BOT_TOKEN (401): reset the token under Bot in the Developer Portal"
            ) from None
        except (discord.HTTPException, aiohttp.ClientError, OSError, ValueError) as error:
            await self._abort()
            raise DiscordStartupError(
                f"cannot reach Discord at {self.settings.discord_api_base}:"
                f" {type(error).__name__}: {str(error) or 'no reason given'}"
            ) from None
        self._gateway = asyncio.create_task(self.client.connect(reconnect=True), name="discord-gateway")
        ready = asyncio.create_task(self.client.is_ready_event.wait())
        done, _ = await asyncio.wait(
            {ready, self._gateway}, timeout=ready_timeout_s, return_when="FIRST_COMPLETED"
        )
        ready.cancel()
        if self._gateway in done:
            await self._fail(self._gateway)
        if not done:
            await self._abort()
            raise DiscordStartupError(f"no READY from the Discord gateway within {ready_timeout_s:.0f} s")

    async def idle(self, timeout_s: float) -> bool:
        """Wait until no message or command is being handled; False if work is left after `timeout_s`."""
        return await self.client.seed.work.idle(timeout_s)

    async def wait_closed(self) -> None:
        if self._gateway is not None:
            await self._fail(self._gateway)

    async def stop(self, grace_s: float | None = None) -> None:
        """Stop taking work, let answers in flight finish within the grace period, cancel the rest."""
        await self.client.seed.work.stop(self.settings.shutdown_grace_s if grace_s is None else grace_s)
        await self._abort()
        if self._gateway is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await self._gateway

    async def _abort(self) -> None:
        await self.client.close()

    async def _fail(self, gateway: asyncio.Task[None]) -> None:
        """Wait for the gateway task; turn a fatal ending into a one-line DiscordStartupError."""
        try:
            await gateway
        except discord.PrivilegedIntentsRequired:
            await self._abort()
            raise DiscordStartupError(intents_fix(self.client.application_id)) from None
        except discord.ConnectionClosed as error:
            await self._abort()
            if error.code == GATEWAY_AUTHENTICATION_FAILED:
                raise DiscordStartupError(
                    "the Discord gateway refused DISCORD_BOT_TOKEN (4004): reset the token under Bot in"
                    " the Developer Portal and set the new one"
                ) from None
            raise DiscordStartupError(
                f"the Discord gateway closed the connection (code {error.code})"
            ) from None
