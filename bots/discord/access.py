"""Discord's side of the allowlists (`core.access`): a message's place, and who counts as an admin.

`DISCORD_ALLOWED_GUILDS` and `DISCORD_ALLOWED_CHANNELS` name places, `DISCORD_ALLOWED_ROLES` people
by role. Admins: `SEEDBOT_ADMINS` user ids, or the Manage Server permission in that guild.
"""

from __future__ import annotations

import discord

from core.access import Allowlist, Place
from core.config import Settings


def discord_allowlist(settings: Settings) -> Allowlist:
    return Allowlist.of(
        workspaces=settings.discord_allowed_guilds,
        channels=settings.discord_allowed_channels,
        roles=settings.discord_allowed_roles,
    )


def place_of(channel: object, guild: discord.Guild | None, user: discord.abc.User) -> Place:
    parent = getattr(channel, "parent_id", None) if isinstance(channel, discord.Thread) else None
    roles = (
        frozenset(str(role.id) for role in user.roles) if isinstance(user, discord.Member) else frozenset()
    )
    return Place(
        channel=str(parent or getattr(channel, "id", 0)),
        user=str(user.id),
        is_dm=guild is None,
        workspace=str(guild.id) if guild is not None else None,
        roles=roles,
    )


def is_admin(
    settings: Settings, user: discord.abc.User, permissions: discord.Permissions | None = None
) -> bool:
    if str(user.id) in settings.admins:
        return True
    if permissions is None and isinstance(user, discord.Member):
        permissions = user.guild_permissions
    return bool(permissions and permissions.manage_guild)
