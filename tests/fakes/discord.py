"""A fake Discord: REST v10 + Gateway on 127.0.0.1, close enough to the real one for discord.py.

The real discord.py client logs in, opens the gateway, syncs commands and posts/edits messages
against it. State lives in plain wire-format dicts (guilds, channels, messages, users, roles) so
tests can read exactly what Discord would show. Limits are enforced as Discord does: 2,000-char
content, embed limits, per-channel message buckets and the bot's global 50 requests a second
(interaction webhooks exempt) answered with 429 + `retry_after` (JSON body and headers, with `Via`
so discord.py treats it as a real rate limit, not a Cloudflare ban),
the 3-second interaction deadline and expiring interaction webhook tokens. Files come as Discord takes
them: multipart bodies (`payload_json` plus `files[n]`), each named in the body's `attachments`, at
most `upload_limit` bytes each (larger: 413, code 40005). The gateway shards as
Discord does (see discord_gateway.py): `add_guild(..., shard=(id, count))` makes a server of that
shard and `recommended_shards` is what `GET /gateway/bot` recommends.

    async with FakeDiscord() as discord_api:
        guild = discord_api.add_guild("Test")
        channel = discord_api.add_channel(guild, "general")
        alice = discord_api.add_user("alice")
        ... start the bot with DISCORD_API_BASE=discord_api.api_base ...
        await discord_api.wait_ready()
        prompt = await discord_api.user_message(channel, alice, f"<@{discord_api.bot_id}> hi")
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import BodyPartReader, web

from tests.fakes.discord_gateway import Gateway, shard_of
from tests.fakes.loopback import serve_on_loopback

BOT_TOKEN = "fake-bot-token"
APPLICATION_ID = 1100000000000000001
MAX_CONTENT = 2000
INTERACTION_DEADLINE_S = 3.0
WEBHOOK_TOKEN_TTL_S = 15 * 60.0
GLOBAL_RATE = (50, 1.0)  # requests per second for the whole bot, all shards together
EPHEMERAL = 1 << 6
LOADING = 1 << 7
MANAGE_GUILD = 1 << 5
EVERYONE_PERMISSIONS = (1 << 10) | (1 << 11) | (1 << 16) | (1 << 38)  # view, send, history, send in threads

BODY = web.RequestKey("body", object)
RATELIMIT = web.RequestKey("ratelimit", tuple)
_MENTION_USER = re.compile(r"<@!?(\d+)>")
_MENTION_ROLE = re.compile(r"<@&(\d+)>")


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


class DiscordError(Exception):
    """An API error answered with Discord's JSON error body."""

    def __init__(self, status: int, code: int, message: str, errors: dict[str, Any] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.errors = status, code, message, errors


def _form_error(field_name: str, message: str) -> DiscordError:
    errors = {field_name: {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH", "message": message}]}}
    return DiscordError(400, 50035, "Invalid Form Body", errors)


@dataclass
class Bucket:
    """A fixed-window bucket like Discord's: `limit` requests per `per` seconds from the first one."""

    limit: int
    per: float
    remaining: int = 0
    reset_at: float = 0.0

    def take(self) -> float | None:
        """Consume one request; None if allowed, else the seconds to wait."""
        now = time.monotonic()
        if now >= self.reset_at:
            self.remaining, self.reset_at = self.limit, now + self.per
        if self.remaining <= 0:
            return self.reset_at - now
        self.remaining -= 1
        return None


@dataclass
class Interaction:
    id: int
    token: str
    channel_id: int
    guild_id: int | None
    user: dict[str, Any]
    created: float
    acknowledged: bool = False
    late: bool = False
    response_type: int | None = None
    original_id: int | None = None
    ephemeral: bool = False


@dataclass
class Recorded:
    method: str
    path: str
    body: Any
    status: int
    at: float = field(default_factory=time.monotonic)


@dataclass
class FakeAttachment:
    id: int
    filename: str
    data: bytes
    content_type: str | None
    declared_size: int | None = None  # lie about the size, as a misbehaving proxy might

    def payload(self, base: str) -> dict[str, Any]:
        url = f"{base}/attachments/{self.id}/{self.filename}"
        payload = {
            "id": str(self.id),
            "filename": self.filename,
            "size": self.declared_size if self.declared_size is not None else len(self.data),
            "url": url,
            "proxy_url": url,
        }
        if self.content_type:
            payload["content_type"] = self.content_type
        return payload


@dataclass
class Hold:
    """The next request on a route waits here until the test releases it (at most `within_s`)."""

    route_prefix: str
    within_s: float = 10.0
    reached: asyncio.Event = field(default_factory=asyncio.Event)
    released: asyncio.Event = field(default_factory=asyncio.Event)

    def release(self) -> None:
        self.released.set()


@dataclass
class FaultPlan:
    """Faults a test asks for: forced 429s and held requests on the next matching requests."""

    forced_429: list[tuple[str, float]] = field(default_factory=list)  # (route key prefix, retry_after)
    holds: list[Hold] = field(default_factory=list)


class FakeDiscord:
    def __init__(
        self,
        *,
        token: str = BOT_TOKEN,
        gateway_token: str | None = None,
        heartbeat_interval_ms: int = 41_250,
        refuse_privileged: bool = False,
        message_rate: tuple[int, float] = (5, 5.0),
        global_rate: tuple[int, float] = GLOBAL_RATE,
        interaction_deadline_s: float = INTERACTION_DEADLINE_S,
        webhook_token_ttl_s: float = WEBHOOK_TOKEN_TTL_S,
        recommended_shards: int = 1,
    ):
        self.token = token
        # The token the gateway accepts, where it differs from REST's (one reset in between).
        self.gateway_token = gateway_token or token
        self.application_id = APPLICATION_ID
        self.message_rate = message_rate
        # One bucket for the bot's every REST call, whichever shard's process makes it.
        self._global = Bucket(*global_rate)
        self.interaction_deadline_s = interaction_deadline_s
        self.webhook_token_ttl_s = webhook_token_ttl_s
        self.recommended_shards = recommended_shards  # what GET /gateway/bot answers in `shards`
        self._ids = itertools.count(1_200_000_000_000_000_000)
        self.users: dict[int, dict[str, Any]] = {}
        self.guilds: dict[int, dict[str, Any]] = {}
        self.channels: dict[int, dict[str, Any]] = {}
        self.messages: dict[int, dict[str, Any]] = {}  # every message ever created, by id
        self.deleted: set[int] = set()
        self.attachments: dict[int, FakeAttachment] = {}
        self.interactions: dict[int, Interaction] = {}
        self.commands: dict[int | None, list[dict[str, Any]]] = {}  # guild id (None: global) -> commands
        self.typing: dict[int, int] = {}  # channel id -> typing triggers
        self.requests: list[Recorded] = []
        self.rate_limited: list[Recorded] = []  # every 429 this server answered
        self.attachment_downloads: list[int] = []
        self.upload_limit = 10 * 1024 * 1024  # bytes per uploaded file, as for a server without boosts
        self.faults = FaultPlan()
        self._buckets: dict[str, Bucket] = {}
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.bot = self.add_user("seedbot", bot=True)
        self.bot_id = int(self.bot["id"])
        self.gateway = Gateway(
            self, heartbeat_interval_ms=heartbeat_interval_ms, refuse_privileged=refuse_privileged
        )

    # --- lifecycle -------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_base(self) -> str:
        return f"{self.base_url}/api/v10"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    async def __aenter__(self) -> FakeDiscord:
        app = web.Application(middlewares=[self._middleware])
        api = "/api/v10"
        routes = [
            ("GET", "/users/@me", self._me),
            ("GET", "/oauth2/applications/@me", self._application),
            ("GET", "/gateway/bot", self._gateway_bot),
            ("GET", "/gateway", self._gateway_bot),
            ("GET", "/applications/{app}/commands", self._get_commands),
            ("PUT", "/applications/{app}/commands", self._put_commands),
            ("GET", "/applications/{app}/guilds/{guild}/commands", self._get_commands),
            ("PUT", "/applications/{app}/guilds/{guild}/commands", self._put_commands),
            ("GET", "/channels/{channel}", self._get_channel),
            ("GET", "/channels/{channel}/messages", self._list_messages),
            ("POST", "/channels/{channel}/messages", self._create_message),
            ("GET", "/channels/{channel}/messages/{message}", self._get_message),
            ("PATCH", "/channels/{channel}/messages/{message}", self._edit_message),
            ("DELETE", "/channels/{channel}/messages/{message}", self._delete_message),
            ("POST", "/channels/{channel}/messages/{message}/threads", self._thread_from_message),
            ("POST", "/channels/{channel}/typing", self._typing),
            ("POST", "/users/@me/channels", self._open_dm),
            ("POST", "/interactions/{interaction}/{token}/callback", self._interaction_callback),
            ("POST", "/webhooks/{app}/{token}", self._followup),
            ("GET", "/webhooks/{app}/{token}/messages/{message}", self._webhook_get),
            ("PATCH", "/webhooks/{app}/{token}/messages/{message}", self._webhook_edit),
            ("DELETE", "/webhooks/{app}/{token}/messages/{message}", self._webhook_delete),
        ]
        for method, path, handler in routes:
            app.router.add_route(method, api + path, handler)
        app.router.add_get("/attachments/{attachment}/{filename}", self._download)
        app.router.add_get("/gateway", self.gateway.handle)
        self._runner, self.port = await serve_on_loopback(app)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.gateway.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # --- state a test builds -----------------------------------------------------------------------

    def next_id(self) -> int:
        return next(self._ids)

    def _id_on_shard(self, shard_id: int, shard_count: int) -> int:
        # A snowflake's shard comes from its timestamp bits (>> 22): step the timestamp to reach it.
        candidate = self.next_id()
        candidate += ((shard_id - shard_of(candidate, shard_count)) % shard_count) << 22
        self._ids = itertools.count(candidate + 1)  # later ids stay above it, so ids stay unique
        return candidate

    def changed(self) -> None:
        self._changed.set()

    def add_user(self, name: str, *, bot: bool = False) -> dict[str, Any]:
        user_id = self.next_id()
        user = {
            "id": str(user_id),
            "username": name,
            "global_name": name.title(),
            "discriminator": "0",
            "avatar": None,
            "bot": bot,
            "public_flags": 0,
        }
        self.users[user_id] = user
        return user

    def add_guild(
        self, name: str, *, owner: dict[str, Any] | None = None, shard: tuple[int, int] | None = None
    ) -> dict[str, Any]:
        """A server; `shard=(id, count)` picks an id whose events Discord sends to that shard."""
        guild_id = self.next_id() if shard is None else self._id_on_shard(*shard)
        guild = {
            "id": str(guild_id),
            "name": name,
            "icon": None,
            "owner_id": (owner or self.bot)["id"],
            "roles": [
                {
                    "id": str(guild_id),  # @everyone shares the guild's id
                    "name": "@everyone",
                    "permissions": str(EVERYONE_PERMISSIONS),
                    "position": 0,
                    "color": 0,
                    "hoist": False,
                    "managed": False,
                    "mentionable": False,
                    "flags": 0,
                }
            ],
            "members": {},  # user id -> member payload (converted to a list on the wire)
            "features": [],
            "emojis": [],
            "stickers": [],
            "member_count": 0,
            "large": False,
            "unavailable": False,
            "joined_at": now_iso(),
            "premium_tier": 0,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "preferred_locale": "en-US",
            "system_channel_flags": 0,
        }
        self.guilds[guild_id] = guild
        self.add_member(guild, self.bot)
        return guild

    def add_role(self, guild: dict[str, Any], name: str, *, permissions: int = 0) -> dict[str, Any]:
        role = {
            "id": str(self.next_id()),
            "name": name,
            "permissions": str(permissions),
            "position": len(guild["roles"]),
            "color": 0,
            "hoist": False,
            "managed": False,
            "mentionable": True,
            "flags": 0,
        }
        guild["roles"].append(role)
        return role

    def add_member(
        self, guild: dict[str, Any], user: dict[str, Any], *, roles: Iterable[dict[str, Any]] = ()
    ) -> dict[str, Any]:
        member = {
            "user": user,
            "roles": [role["id"] for role in roles],
            "joined_at": now_iso(),
            "deaf": False,
            "mute": False,
            "flags": 0,
            "nick": None,
        }
        guild["members"][int(user["id"])] = member
        guild["member_count"] = len(guild["members"])
        return member

    def add_channel(self, guild: dict[str, Any], name: str) -> dict[str, Any]:
        channel_id = self.next_id()
        channel = {
            "id": str(channel_id),
            "type": 0,
            "guild_id": guild["id"],
            "name": name,
            "position": len(self.channels),
            "permission_overwrites": [],
            "nsfw": False,
            "parent_id": None,
            "topic": None,
            "last_message_id": None,
            "rate_limit_per_user": 0,
        }
        self.channels[channel_id] = channel
        return channel

    def add_thread(self, parent: dict[str, Any], name: str, *, owner: dict[str, Any]) -> dict[str, Any]:
        """A public thread someone opened earlier (the bot learns it from GUILD_CREATE)."""
        thread = self._thread(parent, str(self.next_id()), name, owner=owner)
        self.channels[int(thread["id"])] = thread
        return thread

    def add_bot_message(self, channel: dict[str, Any], content: str) -> dict[str, Any]:
        """A message the bot posted in an earlier life (before a restart)."""
        return self._new_message(channel, self.bot, content, allowed={"parse": []})

    def dm_channel(self, user: dict[str, Any]) -> dict[str, Any]:
        for channel in self.channels.values():
            if channel["type"] == 1 and channel["recipients"][0]["id"] == user["id"]:
                return channel
        channel_id = self.next_id()
        channel = {"id": str(channel_id), "type": 1, "recipients": [user], "last_message_id": None}
        self.channels[channel_id] = channel
        return channel

    def add_attachment(
        self, filename: str, data: bytes, content_type: str | None, *, declared_size: int | None = None
    ) -> FakeAttachment:
        attachment = FakeAttachment(self.next_id(), filename, data, content_type, declared_size)
        self.attachments[attachment.id] = attachment
        return attachment

    # --- what users do (arrives at the bot through the gateway) ------------------------------------

    async def user_message(
        self,
        channel: dict[str, Any],
        author: dict[str, Any],
        content: str,
        *,
        reply_to: dict[str, Any] | None = None,
        reply_ping: bool = True,
        attachments: Iterable[FakeAttachment] = (),
    ) -> dict[str, Any]:
        """A person (or another bot) posts a message; the bot receives MESSAGE_CREATE."""
        message = self._new_message(
            channel,
            author,
            content,
            attachments=[a.payload(self.base_url) for a in attachments],
            reference=reply_to,
            reply_ping=reply_ping,
            allowed=None,
        )
        await self.gateway.dispatch("MESSAGE_CREATE", self.message_event(message))
        return message

    async def forward(
        self, channel: dict[str, Any], author: dict[str, Any], original: dict[str, Any]
    ) -> dict[str, Any]:
        """`author` forwards `original` into `channel`: an empty message whose reference has type 1
        (forward) and which carries a snapshot of the original's content and attachments."""
        message = self._new_message(channel, author, "", allowed=None)
        message["message_reference"] = {
            "type": 1,
            "message_id": original["id"],
            "channel_id": original["channel_id"],
            **({"guild_id": original["guild_id"]} if "guild_id" in original else {}),
        }
        fields = ("type", "content", "embeds", "attachments", "timestamp", "edited_timestamp", "flags")
        message["message_snapshots"] = [{"message": {key: original[key] for key in fields}}]
        await self.gateway.dispatch("MESSAGE_CREATE", self.message_event(message))
        return message

    async def bulk_delete(self, channel: dict[str, Any], messages: list[dict[str, Any]]) -> None:
        """A moderator removes several messages at once; the bot receives MESSAGE_DELETE_BULK."""
        self.deleted.update(int(message["id"]) for message in messages)
        payload: dict[str, Any] = {"ids": [m["id"] for m in messages], "channel_id": channel["id"]}
        if "guild_id" in channel:
            payload["guild_id"] = channel["guild_id"]
        self.changed()
        await self.gateway.dispatch("MESSAGE_DELETE_BULK", payload)

    async def delete_by_user(self, message: dict[str, Any]) -> None:
        """The author deletes their message; the bot receives MESSAGE_DELETE."""
        self.deleted.add(int(message["id"]))
        payload = {"id": message["id"], "channel_id": message["channel_id"]}
        if "guild_id" in message:
            payload["guild_id"] = message["guild_id"]
        self.changed()
        await self.gateway.dispatch("MESSAGE_DELETE", payload)

    async def invoke_command(
        self,
        channel: dict[str, Any],
        user: dict[str, Any],
        name: str,
        options: Iterable[dict[str, Any]] = (),
        *,
        attachments: Iterable[FakeAttachment] = (),
        target_message: dict[str, Any] | None = None,
    ) -> Interaction:
        """A user runs a slash command (or, with `target_message`, the message context menu)."""
        interaction_id = self.next_id()
        guild_id = int(channel["guild_id"]) if "guild_id" in channel else None
        command = self._registered_command(name, guild_id)
        data: dict[str, Any] = {"id": command["id"], "name": name, "type": command.get("type", 1)}
        resolved: dict[str, Any] = {}
        if target_message is not None:
            data["target_id"] = target_message["id"]
            resolved["messages"] = {target_message["id"]: self.message_event(target_message)}
        else:
            data["options"] = list(options)
        if attachments:
            resolved["attachments"] = {str(a.id): a.payload(self.base_url) for a in attachments}
        if resolved:
            data["resolved"] = resolved
        if guild_id is not None:
            data["guild_id"] = str(guild_id)
        return await self._interact(channel, user, 2, data, interaction_id)

    async def press(self, message: dict[str, Any], user: dict[str, Any], custom_id: str) -> Interaction:
        """`user` presses the button `custom_id` of a bot message: a MESSAGE_COMPONENT interaction."""
        channel = self.channels[int(message["channel_id"])]
        interaction_id = self.next_id()
        return await self._interact(
            channel,
            user,
            3,
            {"custom_id": custom_id, "component_type": 2},
            interaction_id,
            message=self.message_event(message),
        )

    async def _interact(
        self,
        channel: dict[str, Any],
        user: dict[str, Any],
        kind: int,
        data: dict[str, Any],
        interaction_id: int,
        **extra: Any,
    ) -> Interaction:
        """Dispatch one INTERACTION_CREATE of `kind` (2: a command, 3: a component) from `user`."""
        token = f"itoken-{interaction_id}"
        guild_id = int(channel["guild_id"]) if "guild_id" in channel else None
        payload: dict[str, Any] = {
            "id": str(interaction_id),
            "application_id": str(APPLICATION_ID),
            "type": kind,
            "data": data,
            "channel_id": channel["id"],
            "channel": self._channel_payload(channel),
            "token": token,
            "version": 1,
            "app_permissions": str(EVERYONE_PERMISSIONS),
            "locale": "en-US",
            "attachment_size_limit": 10 * 1024 * 1024,
            "entitlements": [],
            "authorizing_integration_owners": {},
            "context": 0 if guild_id is not None else 2,
            **extra,
        }
        if guild_id is not None:
            guild = self.guilds[guild_id]
            member = dict(self._member(guild, user) or self.add_member(guild, user))
            member["permissions"] = str(self.permissions(guild, user))
            payload.update(guild_id=str(guild_id), member=member, guild_locale="en-US")
        else:
            payload["user"] = user
        interaction = Interaction(interaction_id, token, int(channel["id"]), guild_id, user, time.monotonic())
        self.interactions[interaction_id] = interaction
        await self.gateway.dispatch("INTERACTION_CREATE", payload)
        return interaction

    # --- reading state -----------------------------------------------------------------------------

    def channel_messages(self, channel: dict[str, Any]) -> list[dict[str, Any]]:
        channel_id = channel["id"]
        return [
            m
            for m in self.messages.values()
            if m["channel_id"] == channel_id and int(m["id"]) not in self.deleted and not m.get("_ephemeral")
        ]

    def bot_messages(self, channel: dict[str, Any]) -> list[dict[str, Any]]:
        return [m for m in self.channel_messages(channel) if m["author"]["id"] == self.bot["id"]]

    def responses(self, interaction: Interaction) -> list[dict[str, Any]]:
        """The interaction's original response and follow-ups (ephemeral ones too), oldest first."""
        marker = str(interaction.id)
        return [
            m
            for m in self.messages.values()
            if m.get("interaction_metadata", {}).get("id") == marker and int(m["id"]) not in self.deleted
        ]

    def permissions(self, guild: dict[str, Any], user: dict[str, Any]) -> int:
        if guild["owner_id"] == user["id"]:
            return (1 << 41) - 1
        member = self._member(guild, user)
        granted = set(member["roles"]) if member else set()
        value = 0
        for role in guild["roles"]:
            if role["id"] == guild["id"] or role["id"] in granted:
                value |= int(role["permissions"])
        return value

    async def wait_for(self, predicate: Callable[[], Any], *, within_s: float = 10.0, what: str = "") -> Any:
        """Wait (bounded) until `predicate()` is truthy; re-checked whenever the fake's state changes."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within_s
        while not (result := predicate()):
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"timed out after {within_s}s waiting for {what or predicate}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.25))
            except TimeoutError:
                pass
        return result

    async def wait_ready(self, *, within_s: float = 10.0) -> None:
        await self.wait_for(lambda: self.gateway.ready_sent, within_s=within_s, what="the bot to connect")

    def hold(self, route_prefix: str) -> Hold:
        """Hold the next request whose route key starts with `route_prefix` until `release()`."""
        hold = Hold(route_prefix)
        self.faults.holds.append(hold)
        return hold

    def force_429(self, route_prefix: str, *, retry_after: float = 0.2, count: int = 1) -> None:
        """The next `count` requests whose route key starts with `route_prefix` get a 429."""
        self.faults.forced_429.extend([(route_prefix, retry_after)] * count)

    # --- wire helpers ------------------------------------------------------------------------------

    def message_event(self, message: dict[str, Any]) -> dict[str, Any]:
        """A message as the gateway dispatches it (guild messages carry the author's member)."""
        event = {k: v for k, v in message.items() if not k.startswith("_")}
        if "guild_id" in message:
            guild = self.guilds[int(message["guild_id"])]
            member = self._member(guild, message["author"])
            if member is not None:
                event["member"] = {k: v for k, v in member.items() if k != "user"}
        return event

    def guild_payload(self, guild_id: int) -> dict[str, Any]:
        guild = self.guilds[guild_id]
        channels = [c for c in self.channels.values() if c.get("guild_id") == guild["id"]]
        return {
            **guild,
            "members": list(guild["members"].values()),
            "channels": [c for c in channels if c["type"] in (0, 2, 4, 5)],
            "threads": [c for c in channels if c["type"] in (10, 11, 12)],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "voice_states": [],
            "presences": [],
        }

    def _member(self, guild: dict[str, Any], user: dict[str, Any]) -> dict[str, Any] | None:
        return guild["members"].get(int(user["id"]))

    def _channel_payload(self, channel: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in channel.items() if k != "recipients"} | (
            {"recipients": channel["recipients"]} if "recipients" in channel else {}
        )

    def _thread(
        self,
        parent: dict[str, Any],
        thread_id: str,
        name: str,
        *,
        owner: dict[str, Any],
        archive: int | None = None,
    ) -> dict[str, Any]:
        return {
            "id": thread_id,
            "type": 11,
            "guild_id": parent["guild_id"],
            "parent_id": parent["id"],
            "owner_id": owner["id"],
            "name": name,
            "last_message_id": None,
            "message_count": 0,
            "member_count": 1,
            "rate_limit_per_user": 0,
            "flags": 0,
            "thread_metadata": {
                "archived": False,
                "auto_archive_duration": archive or 1440,
                "archive_timestamp": now_iso(),
                "locked": False,
                "create_timestamp": now_iso(),
            },
        }

    def _registered_command(self, name: str, guild_id: int | None) -> dict[str, Any]:
        for scope in (guild_id, None):
            for command in self.commands.get(scope, []):
                if command["name"] == name:
                    return command
        raise AssertionError(f"command {name!r} was never synced")

    def _new_message(
        self,
        channel: dict[str, Any],
        author: dict[str, Any],
        content: str,
        *,
        attachments: list[dict[str, Any]] | None = None,
        embeds: list[dict[str, Any]] | None = None,
        reference: dict[str, Any] | None = None,
        reply_ping: bool = True,
        allowed: dict[str, Any] | None,
        flags: int = 0,
        webhook_id: int | None = None,
    ) -> dict[str, Any]:
        message_id = self.next_id()
        message: dict[str, Any] = {
            "id": str(message_id),
            "channel_id": channel["id"],
            "author": author,
            "content": content,
            "timestamp": now_iso(),
            "edited_timestamp": None,
            "tts": False,
            "attachments": attachments or [],
            "embeds": embeds or [],
            "pinned": False,
            "type": 19 if reference is not None else 0,
            "flags": flags,
        }
        if "guild_id" in channel:
            message["guild_id"] = channel["guild_id"]
        if webhook_id is not None:
            message["webhook_id"] = str(webhook_id)
            message["application_id"] = str(APPLICATION_ID)
        if reference is not None:
            message["message_reference"] = {
                "type": 0,
                "message_id": reference["id"],
                "channel_id": reference["channel_id"],
                **({"guild_id": reference["guild_id"]} if "guild_id" in reference else {}),
            }
            # Discord nests one level: the replied-to message comes without its own referenced message.
            nested = self.message_event(reference)
            nested.pop("referenced_message", None)
            message["referenced_message"] = nested
        self._apply_mentions(message, allowed, reply_ping=reply_ping)
        self.messages[message_id] = message
        channel["last_message_id"] = message["id"]
        self.changed()
        return message

    def _apply_mentions(
        self, message: dict[str, Any], allowed: dict[str, Any] | None, *, reply_ping: bool
    ) -> None:
        """Resolve who a message pings, honouring `allowed_mentions` exactly as Discord does."""
        content = message["content"]
        if allowed is None:
            parse, users_allowed, roles_allowed = {"users", "roles", "everyone"}, None, None
            replied_user = reply_ping
        else:
            parse = set(allowed.get("parse", []))
            users_allowed = {str(u) for u in allowed.get("users", [])}
            roles_allowed = {str(r) for r in allowed.get("roles", [])}
            replied_user = bool(allowed.get("replied_user", False))
        user_ids = []
        for user_id in _MENTION_USER.findall(content):
            if ("users" in parse or (users_allowed is not None and user_id in users_allowed)) and int(
                user_id
            ) in self.users:
                user_ids.append(user_id)
        if replied_user and "referenced_message" in message:
            user_ids.append(message["referenced_message"]["author"]["id"])
        message["mentions"] = [self.users[int(u)] for u in dict.fromkeys(user_ids)]
        message["mention_roles"] = [
            r
            for r in _MENTION_ROLE.findall(content)
            if "roles" in parse or (roles_allowed and r in roles_allowed)
        ]
        message["mention_everyone"] = "everyone" in parse and ("@everyone" in content or "@here" in content)

    def _validate_message(self, body: dict[str, Any], *, partial: bool) -> None:
        content = body.get("content")
        if content is not None and len(content) > MAX_CONTENT:
            raise _form_error("content", f"Must be {MAX_CONTENT} or fewer in length.")
        embeds = body.get("embeds") or []
        if len(embeds) > 10:
            raise _form_error("embeds", "Must be 10 or fewer in length.")
        total = 0
        for embed in embeds:
            for key, limit in (("title", 256), ("description", 4096)):
                value = embed.get(key) or ""
                if len(value) > limit:
                    raise _form_error(f"embeds.{key}", f"Must be {limit} or fewer in length.")
                total += len(value)
            fields = embed.get("fields") or []
            if len(fields) > 25:
                raise _form_error("embeds.fields", "Must be 25 or fewer in length.")
            for item in fields:
                if len(item.get("name", "")) > 256 or len(item.get("value", "")) > 1024:
                    raise _form_error("embeds.fields", "Field too long.")
                total += len(item.get("name", "")) + len(item.get("value", ""))
            total += len((embed.get("footer") or {}).get("text", "")) + len(
                (embed.get("author") or {}).get("name", "")
            )
        if total > 6000:
            raise _form_error("embeds", "Embed size exceeds maximum size of 6000")
        if not partial and not content and not embeds:
            raise DiscordError(400, 50006, "Cannot send an empty message")

    def _attachments_of(self, message: dict[str, Any], body: dict[str, Any]) -> list[dict[str, Any]]:
        """A message's attachments after an edit: the kept ones (by id) and the files uploaded with it
        (by their index in the multipart body)."""
        uploaded: dict[str, tuple[str, str | None, bytes]] = body.get(UPLOADED, {})
        if any(len(data) > self.upload_limit for _, _, data in uploaded.values()):
            raise DiscordError(413, 40005, "Request entity too large")
        kept = {item["id"]: item for item in message.get("attachments", [])}
        attachments = []
        for item in body["attachments"] or []:
            key = str(item.get("id"))
            if key in uploaded:
                filename, content_type, data = uploaded[key]
                attachment = self.add_attachment(item.get("filename") or filename, data, content_type)
                attachments.append(attachment.payload(self.base_url))
            elif key in kept:
                attachments.append(kept[key])
            else:
                raise _form_error("attachments", "Unknown attachment")
        return attachments

    def _find_channel(self, channel_id: str) -> dict[str, Any]:
        channel = self.channels.get(int(channel_id))
        if channel is None:
            raise DiscordError(404, 10003, "Unknown Channel")
        return channel

    def _find_message(self, channel_id: str | int, message_id: str | int) -> dict[str, Any]:
        message_id = str(message_id)
        message = self.messages.get(int(message_id)) if message_id.isdigit() else None
        if message is None or message["channel_id"] != str(channel_id) or int(message_id) in self.deleted:
            raise DiscordError(404, 10008, "Unknown Message")
        return message

    # --- HTTP plumbing -----------------------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Callable[..., Any]) -> web.StreamResponse:
        if not request.path.startswith("/api/"):
            return await handler(request)
        body: Any = None
        if request.content_type == "multipart/form-data":
            body = await _multipart(request)
        elif request.can_read_body:
            body = (
                await request.json() if request.content_type == "application/json" else await request.text()
            )
        request[BODY] = body
        route = request.match_info.route.resource.canonical if request.match_info.route.resource else ""
        key = f"{request.method} {route.removeprefix('/api/v10')}"
        webhook_route = route.startswith("/api/v10/webhooks") or route.startswith("/api/v10/interactions")
        if not webhook_route and request.headers.get("Authorization") != f"Bot {self.token}":
            response = _error(DiscordError(401, 0, "401: Unauthorized"))
        else:
            await self._hold(key)
            response = (
                (None if webhook_route else self._global_limit())
                or self._rate_limit(request, key)
                or await self._call(handler, request)
            )
        self.requests.append(Recorded(request.method, request.path, body, response.status))
        if response.status == 429:
            self.rate_limited.append(self.requests[-1])
        self.changed()
        return response

    async def _hold(self, key: str) -> None:
        hold = next((h for h in self.faults.holds if key.startswith(h.route_prefix)), None)
        if hold is None:
            return
        self.faults.holds.remove(hold)
        hold.reached.set()
        try:
            await asyncio.wait_for(hold.released.wait(), hold.within_s)
        except TimeoutError:
            pass  # a test that never releases still ends

    async def _call(self, handler: Callable[..., Any], request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except DiscordError as error:
            return _error(error)

    def _global_limit(self) -> web.Response | None:
        wait = self._global.take()
        if wait is None:
            return None
        return _too_many(wait, bucket="global", limit=self._global.limit, scope="global")

    def _rate_limit(self, request: web.Request, key: str) -> web.Response | None:
        for index, (prefix, retry_after) in enumerate(self.faults.forced_429):
            if key.startswith(prefix):
                del self.faults.forced_429[index]
                return _too_many(retry_after, bucket=key, limit=self.message_rate[0])
        if "/messages" not in key or request.method == "GET":
            return None
        major = request.match_info.get("channel") or request.match_info.get("token") or ""
        bucket_key = f"{key}:{major}"
        bucket = self._buckets.get(bucket_key)
        if bucket is None:
            bucket = self._buckets[bucket_key] = Bucket(*self.message_rate)
        wait = bucket.take()
        if wait is not None:
            return _too_many(wait, bucket=key, limit=bucket.limit)
        request[RATELIMIT] = (bucket, key)
        return None

    # --- REST handlers ------------------------------------------------------------------------------

    async def _me(self, request: web.Request) -> web.Response:
        return _json(self.bot)

    async def _application(self, request: web.Request) -> web.Response:
        return _json(
            {
                "id": str(APPLICATION_ID),
                "name": "seedbot",
                "description": "",
                "icon": None,
                "bot_public": True,
                "bot_require_code_grant": False,
                "owner": self.bot,
                "verify_key": "0" * 64,
                "flags": 0,
                "team": None,
            }
        )

    async def _gateway_bot(self, request: web.Request) -> web.Response:
        limit = {"total": 1000, "remaining": 999, "reset_after": 14_400_000, "max_concurrency": 1}
        return _json(
            {"url": self.gateway_url, "shards": self.recommended_shards, "session_start_limit": limit}
        )

    async def _get_commands(self, request: web.Request) -> web.Response:
        guild = request.match_info.get("guild")
        return _json(self.commands.get(int(guild) if guild else None, []))

    async def _put_commands(self, request: web.Request) -> web.Response:
        guild = request.match_info.get("guild")
        stored = []
        for command in request[BODY]:
            if not 1 <= len(command.get("name", "")) <= 32:
                raise _form_error("name", "Must be between 1 and 32 in length.")
            if command.get("type", 1) == 1 and not 1 <= len(command.get("description", "")) <= 100:
                raise _form_error("description", "Must be between 1 and 100 in length.")
            stored.append(
                {
                    "description": "",
                    "options": [],
                    **command,
                    "id": str(self.next_id()),
                    "application_id": str(APPLICATION_ID),
                    "version": str(self.next_id()),
                    **({"guild_id": guild} if guild else {}),
                }
            )
        self.commands[int(guild) if guild else None] = stored
        return _json(stored)

    async def _get_channel(self, request: web.Request) -> web.Response:
        return _json(self._channel_payload(self._find_channel(request.match_info["channel"])))

    async def _list_messages(self, request: web.Request) -> web.Response:
        channel = self._find_channel(request.match_info["channel"])
        limit = max(1, min(100, int(request.query.get("limit", "50"))))
        messages = self.channel_messages(channel)
        if "before" in request.query:
            messages = [m for m in messages if int(m["id"]) < int(request.query["before"])]
        if "after" in request.query:
            messages = [m for m in messages if int(m["id"]) > int(request.query["after"])][:limit]
        newest_first = sorted(messages, key=lambda m: int(m["id"]), reverse=True)[:limit]
        return _json([self.message_event(m) for m in newest_first])

    async def _get_message(self, request: web.Request) -> web.Response:
        message = self._find_message(request.match_info["channel"], request.match_info["message"])
        return _json(self.message_event(message))

    async def _create_message(self, request: web.Request) -> web.Response:
        channel = self._find_channel(request.match_info["channel"])
        body = request[BODY] or {}
        self._validate_message(body, partial=False)
        reference = None
        if body.get("message_reference"):
            ref = body["message_reference"]
            try:
                reference = self._find_message(ref.get("channel_id", channel["id"]), ref["message_id"])
            except DiscordError:
                if ref.get("fail_if_not_exists", True):
                    raise _form_error("message_reference", "Unknown message") from None
        message = self._new_message(
            channel,
            self.bot,
            body.get("content") or "",
            embeds=body.get("embeds"),
            reference=reference,
            allowed=body.get(
                "allowed_mentions", {"parse": ["users", "roles", "everyone"], "replied_user": True}
            ),
        )
        message["components"] = body.get("components") or []
        await self.gateway.dispatch("MESSAGE_CREATE", self.message_event(message))
        return self._ok(request, self.message_event(message))

    async def _edit_message(self, request: web.Request) -> web.Response:
        message = self._find_message(request.match_info["channel"], request.match_info["message"])
        if message["author"]["id"] != self.bot["id"]:
            raise DiscordError(403, 50005, "Cannot edit a message authored by another user")
        return self._ok(request, await self._apply_edit(message, request[BODY] or {}))

    async def _apply_edit(self, message: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        self._validate_message(body, partial=True)
        # Files first: a refused one leaves the message as it was.
        attachments = self._attachments_of(message, body) if "attachments" in body else None
        if "content" in body:
            message["content"] = body["content"] or ""
        if "embeds" in body:
            message["embeds"] = body["embeds"] or []
        if "components" in body:
            message["components"] = body["components"] or []
        if attachments is not None:
            message["attachments"] = attachments
        message["flags"] = message.get("flags", 0) & ~LOADING
        message["edited_timestamp"] = now_iso()
        message.setdefault("_edits", 0)
        message["_edits"] += 1
        # Discord parses an edit without `allowed_mentions` with the defaults (everyone, roles, users),
        # whatever the original message allowed.
        replied = message.get("referenced_message", {}).get("author", {}).get("id")
        pinged = any(user["id"] == replied for user in message.get("mentions", []))
        self._apply_mentions(message, body.get("allowed_mentions"), reply_ping=pinged)
        self.changed()
        event = self.message_event(message)
        if not message.get("_ephemeral"):
            await self.gateway.dispatch("MESSAGE_UPDATE", event)
        return event

    async def _delete_message(self, request: web.Request) -> web.Response:
        message = self._find_message(request.match_info["channel"], request.match_info["message"])
        self.deleted.add(int(message["id"]))
        return web.Response(status=204)

    async def _thread_from_message(self, request: web.Request) -> web.Response:
        parent = self._find_channel(request.match_info["channel"])
        starter = self._find_message(parent["id"], request.match_info["message"])
        if int(starter["id"]) in self.channels:
            raise DiscordError(400, 160004, "A thread has already been created for this message")
        name = (request[BODY] or {}).get("name", "")
        if not 1 <= len(name) <= 100:
            raise _form_error("name", "Must be between 1 and 100 in length.")
        # A thread started from a message shares its id.
        body = request[BODY] or {}
        thread = self._thread(
            parent, starter["id"], name, owner=self.bot, archive=body.get("auto_archive_duration")
        )
        self.channels[int(thread["id"])] = thread
        await self.gateway.dispatch("THREAD_CREATE", {**thread, "newly_created": True})
        return _json(thread, status=201)

    async def _typing(self, request: web.Request) -> web.Response:
        channel = self._find_channel(request.match_info["channel"])
        self.typing[int(channel["id"])] = self.typing.get(int(channel["id"]), 0) + 1
        return web.Response(status=204)

    async def _open_dm(self, request: web.Request) -> web.Response:
        user = self.users.get(int(request[BODY]["recipient_id"]))
        if user is None:
            raise DiscordError(404, 10013, "Unknown User")
        return _json(self.dm_channel(user))

    # --- interactions and their webhooks -----------------------------------------------------------

    async def _interaction_callback(self, request: web.Request) -> web.Response:
        interaction = self.interactions.get(int(request.match_info["interaction"]))
        if interaction is None or interaction.token != request.match_info["token"]:
            raise DiscordError(404, 10062, "Unknown interaction")
        if time.monotonic() - interaction.created > self.interaction_deadline_s:
            interaction.late = True
            raise DiscordError(404, 10062, "Unknown interaction")
        if interaction.acknowledged:
            raise DiscordError(400, 40060, "Interaction has already been acknowledged.")
        body = request[BODY]
        kind, data = body["type"], body.get("data") or {}
        if kind == 6:  # a component's "deferred update": acknowledged, nothing posted
            interaction.acknowledged, interaction.response_type = True, kind
            return web.Response(status=204)
        if kind not in (4, 5):
            raise _form_error("type", "Value must be one of {4, 5, 6}.")
        if kind == 4:
            self._validate_message(data, partial=False)
        interaction.acknowledged, interaction.response_type = True, kind
        interaction.ephemeral = bool(data.get("flags", 0) & EPHEMERAL)
        message = self._interaction_message(
            interaction, data.get("content", "") if kind == 4 else "", data, loading=kind == 5
        )
        interaction.original_id = int(message["id"])
        if not interaction.ephemeral:
            await self.gateway.dispatch("MESSAGE_CREATE", self.message_event(message))
        callback = {
            "interaction": {
                "id": str(interaction.id),
                "type": 2,
                "response_message_id": message["id"],
                "response_message_loading": kind == 5,
                "response_message_ephemeral": interaction.ephemeral,
            },
            "resource": {"type": kind, "message": self.message_event(message)},
        }
        return _json(callback)

    def _interaction_message(
        self, interaction: Interaction, content: str, data: dict[str, Any], *, loading: bool = False
    ) -> dict[str, Any]:
        flags = (data.get("flags", 0) & EPHEMERAL) | (LOADING if loading else 0)
        message = self._new_message(
            self.channels[interaction.channel_id],
            self.bot,
            content,
            embeds=data.get("embeds"),
            allowed=data.get("allowed_mentions"),
            flags=flags,
            webhook_id=APPLICATION_ID,
        )
        message["interaction_metadata"] = {"id": str(interaction.id), "type": 2, "user": interaction.user}
        if flags & EPHEMERAL:
            message["_ephemeral"] = True
        return message

    def _webhook_interaction(self, request: web.Request) -> Interaction:
        token = request.match_info["token"]
        for interaction in self.interactions.values():
            if interaction.token == token and int(request.match_info["app"]) == APPLICATION_ID:
                if time.monotonic() - interaction.created > self.webhook_token_ttl_s:
                    raise DiscordError(401, 50027, "Invalid Webhook Token")
                if not interaction.acknowledged:
                    raise DiscordError(404, 10015, "Unknown Webhook")
                return interaction
        raise DiscordError(404, 10015, "Unknown Webhook")

    def _webhook_message(self, request: web.Request, interaction: Interaction) -> dict[str, Any]:
        wanted = request.match_info["message"]
        message_id = (
            interaction.original_id if wanted == "@original" else int(wanted) if wanted.isdigit() else 0
        )
        message = self.messages.get(message_id or 0)
        if message is None or message.get("interaction_metadata", {}).get("id") != str(interaction.id):
            raise DiscordError(404, 10008, "Unknown Message")
        return message

    async def _followup(self, request: web.Request) -> web.Response:
        interaction = self._webhook_interaction(request)
        body = request[BODY] or {}
        self._validate_message(body, partial=False)
        message = self._interaction_message(interaction, body.get("content") or "", body)
        if not message.get("_ephemeral"):
            await self.gateway.dispatch("MESSAGE_CREATE", self.message_event(message))
        return self._ok(request, self.message_event(message))

    async def _webhook_get(self, request: web.Request) -> web.Response:
        interaction = self._webhook_interaction(request)
        return _json(self.message_event(self._webhook_message(request, interaction)))

    async def _webhook_edit(self, request: web.Request) -> web.Response:
        interaction = self._webhook_interaction(request)
        message = self._webhook_message(request, interaction)
        return self._ok(request, await self._apply_edit(message, request[BODY] or {}))

    async def _webhook_delete(self, request: web.Request) -> web.Response:
        interaction = self._webhook_interaction(request)
        self.deleted.add(int(self._webhook_message(request, interaction)["id"]))
        return web.Response(status=204)

    async def _download(self, request: web.Request) -> web.Response:
        attachment = self.attachments.get(int(request.match_info["attachment"]))
        if attachment is None or attachment.filename != request.match_info["filename"]:
            return web.Response(status=404, text="Not Found")
        self.attachment_downloads.append(attachment.id)
        self.changed()
        return web.Response(
            body=attachment.data, content_type=attachment.content_type or "application/octet-stream"
        )

    def _ok(self, request: web.Request, payload: Any) -> web.Response:
        """A success carrying the bucket headers Discord sends, so the client can pace itself."""
        headers = {}
        if RATELIMIT in request:
            bucket, key = request[RATELIMIT]
            reset_after = max(0.0, bucket.reset_at - time.monotonic())
            headers = {
                "X-RateLimit-Limit": str(bucket.limit),
                "X-RateLimit-Remaining": str(bucket.remaining),
                "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
                "X-RateLimit-Reset-After": f"{reset_after:.3f}",
                "X-RateLimit-Bucket": _bucket_hash(key),
            }
        return _json(payload, headers=headers)


def _json(payload: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    # Exactly `application/json`, no charset: discord.py only parses a body with that exact header.
    return web.Response(
        body=json.dumps(payload).encode(),
        status=status,
        headers={**(headers or {}), "Content-Type": "application/json"},
    )


def _bucket_hash(key: str) -> str:
    return f"{abs(hash(key)) % 16**12:012x}"


def _error(error: DiscordError) -> web.Response:
    body: dict[str, Any] = {"message": error.message, "code": error.code}
    if error.errors:
        body["errors"] = error.errors
    return _json(body, status=error.status)


def _too_many(retry_after: float, *, bucket: str, limit: int, scope: str = "user") -> web.Response:
    retry_after = round(max(retry_after, 0.001), 3)
    headers = {
        "Retry-After": str(max(1, round(retry_after))),
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": f"{time.time() + retry_after:.3f}",
        "X-RateLimit-Reset-After": f"{retry_after:.3f}",
        "X-RateLimit-Bucket": _bucket_hash(bucket),
        "X-RateLimit-Scope": scope,
        "Via": "1.1 google",
    }
    if scope == "global":
        headers["X-RateLimit-Global"] = "true"
    body = {"message": "You are being rate limited.", "retry_after": retry_after, "global": scope == "global"}
    return _json(body, status=429, headers=headers)


UPLOADED = "_uploaded"  # where a multipart body keeps its files: index -> (filename, content type, bytes)


async def _multipart(request: web.Request) -> dict[str, Any]:
    """A multipart body as Discord reads it: the JSON of `payload_json`, and the files `files[n]`."""
    body: dict[str, Any] = {}
    uploaded: dict[str, tuple[str, str | None, bytes]] = {}
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        assert isinstance(part, BodyPartReader)
        if part.name == "payload_json":
            body.update(json.loads(await part.text()))
        elif part.name and (index := re.fullmatch(r"files\[(\d+)\]", part.name)):
            data = bytes(await part.read())
            uploaded[index.group(1)] = (part.filename or "file", part.headers.get("Content-Type"), data)
    body[UPLOADED] = uploaded
    return body
