"""Who may use the bot where (allowlists) and who may change shared settings (admins).

- `DISCORD_ALLOWED_GUILDS` / `DISCORD_ALLOWED_CHANNELS` name places: a thread counts as its parent
  channel.
- `DISCORD_ALLOWED_ROLES` names people by role.
- A DM is no listed place and has no roles, so when any of these lists is set, DMs are open only to
  admins listed in `SEEDBOT_ADMINS`: otherwise anyone who can message the bot could spend the budget
  outside the places the operator chose (as on Slack).
- Admins: `SEEDBOT_ADMINS` user ids, or the Manage Server permission in that guild.
"""

from __future__ import annotations

from dataclasses import dataclass

import discord

from core.config import Settings


@dataclass(frozen=True, slots=True)
class Place:
    guild_id: int | None
    channel_id: int  # the parent channel for a thread
    role_ids: frozenset[int]


def place_of(channel: object, guild: discord.Guild | None, user: discord.abc.User) -> Place:
    parent = getattr(channel, "parent_id", None) if isinstance(channel, discord.Thread) else None
    roles = frozenset(role.id for role in user.roles) if isinstance(user, discord.Member) else frozenset()
    return Place(
        guild_id=guild.id if guild is not None else None,
        channel_id=parent or getattr(channel, "id", 0),
        role_ids=roles,
    )


def is_admin(
    settings: Settings, user: discord.abc.User, permissions: discord.Permissions | None = None
) -> bool:
    if str(user.id) in settings.admins:
        return True
    if permissions is None and isinstance(user, discord.Member):
        permissions = user.guild_permissions
    return bool(permissions and permissions.manage_guild)


def allowed(settings: Settings, place: Place, *, admin: bool) -> bool:
    if place.guild_id is None:
        return admin or not (
            settings.discord_allowed_roles
            or settings.discord_allowed_guilds
            or settings.discord_allowed_channels
        )
    if settings.discord_allowed_guilds and str(place.guild_id) not in settings.discord_allowed_guilds:
        return False
    if settings.discord_allowed_channels and str(place.channel_id) not in settings.discord_allowed_channels:
        return False
    if admin or not settings.discord_allowed_roles:
        return True
    return any(str(role) in settings.discord_allowed_roles for role in place.role_ids)
