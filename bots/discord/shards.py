"""Gateway sharding: DISCORD_SHARD_COUNT / DISCORD_SHARD_IDS pick the shards this process runs.

Discord sends a guild's events to shard `(guild_id >> 22) % shard_count` and DMs to shard 0, so a
process answers exactly the guilds of its shards (and DMs when it runs shard 0); several processes
with disjoint shard ids and one database share a bot without answering anything twice.

Sharding is opt-in: without DISCORD_SHARD_COUNT seedbot keeps the plain `discord.Client` (one
connection, no `shard` field in IDENTIFY) it has always run. `AutoShardedClient` is not a drop-in for
it: given no count it connects to the URL `/gateway/bot` returns, ignoring DISCORD_GATEWAY_URL, and
it reconnects through its own per-shard machinery. Here the count is always settled before
`connect()` (from `/gateway/bot` for `auto`), so the shards open the configured gateway.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

import discord

from bots.discord.client import SeedClient

log = logging.getLogger(__name__)


class ShardError(Exception):
    """The shards asked for cannot be run; `str()` is one printable line naming the variable."""


@dataclass(frozen=True)
class Shards:
    count: int
    ids: tuple[int, ...]


def choose_shards(count: int | Literal["auto"], ids: tuple[int, ...], recommended: int | None) -> Shards:
    """The shards to run: `ids` (default: all) of `count`, `auto` taking Discord's `recommended`.
    Settings already checked numeric counts; with `auto` the ids are checked here."""
    if count == "auto":
        if recommended is None:
            raise ShardError(
                "DISCORD_SHARD_COUNT=auto needs GET /gateway/bot, which failed: set DISCORD_SHARD_COUNT"
                " to a number of shards"
            )
        count = recommended
        outside = [shard_id for shard_id in ids if shard_id >= count]
        if outside:
            raise ShardError(
                f"DISCORD_SHARD_IDS lists shard {outside[0]}, but Discord recommends {count} shards"
                f" (DISCORD_SHARD_COUNT=auto): use ids 0 to {count - 1} or set DISCORD_SHARD_COUNT"
            )
    return Shards(count, ids or tuple(range(count)))


class ShardedSeedClient(SeedClient, discord.AutoShardedClient):
    """SeedClient on some shards of the bot, with each shard's connection state for /readyz."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._connected: dict[int, bool] = {}

    async def discover_gateway(self) -> None:
        """Settle the shard count and ids before `connect()` opens the shards."""
        wanted = self.settings.discord_shard_count
        assert wanted is not None  # this client is only built with sharding configured
        recommended = await self.endpoint_override.discover_gateway(
            self.http, need_shard_count=wanted == "auto"
        )
        shards = choose_shards(wanted, self.settings.discord_shard_ids, recommended)
        self.shard_count, self.shard_ids = shards.count, list(shards.ids)
        log.info("running Discord shards %s of %d", ",".join(map(str, shards.ids)), shards.count)

    def shard_readiness(self) -> dict[int, bool]:
        """Each shard of this process: connected (READY or RESUMED since its last disconnect)?"""
        return {shard_id: self._connected.get(shard_id, False) for shard_id in self.shard_ids or ()}

    async def on_shard_ready(self, shard_id: int) -> None:
        self._connected[shard_id] = True
        guilds = sum(1 for guild in self.guilds if guild.shard_id == shard_id)
        log.info("Discord shard %d connected with %d servers", shard_id, guilds)

    async def on_shard_resumed(self, shard_id: int) -> None:
        self._connected[shard_id] = True

    async def on_shard_disconnect(self, shard_id: int) -> None:
        self._connected[shard_id] = False
