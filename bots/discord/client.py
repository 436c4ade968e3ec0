"""The discord.py client: gateway events handed to core admission as facts about a message.

Messages the bot answers: DMs, @mentions, replies to its messages, and anything in a thread it
started or already answered in. Own messages, other bots and webhooks are ignored. Admission claims
every answered message first, so one the gateway delivers again after a RESUME, or after a restart,
is answered once.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import discord

from bots.discord import endpoints
from bots.discord.access import is_admin, place_of
from bots.discord.attachments import attachment_sources
from bots.discord.bot import DiscordBot
from bots.discord.budget import NOT_SENT
from bots.discord.commands import SeedCommandTree
from bots.discord.conversation import (
    PLATFORM,
    ChannelSearch,
    conversation_key,
    files_of,
    prompt_text,
    replied_to,
    reply_chain,
)
from bots.discord.feedback import FeedbackButton
from bots.discord.surface import DISCORD_LIMITS, DiscordSurface
from core.admission import Arrival
from core.config import Settings
from core.history import title_of
from core.models import ConversationKey, HistoryMessage, Turn
from core.reply.surface import ReplySurface

if TYPE_CHECKING:
    from core.service import ChatService, InterruptedReply

log = logging.getLogger(__name__)

THREAD_NAME_CHARS = 90
ANSWERED_TYPES = (discord.MessageType.default, discord.MessageType.reply)


class SeedClient(discord.Client):
    def __init__(
        self,
        settings: Settings,
        service: ChatService,
        *,
        endpoint_override: endpoints.EndpointOverride,
        guild_ready_timeout: float = 2.0,
    ):
        super().__init__(
            intents=endpoints.intents(),
            # Anything posted without explicit mentions pings nobody (notices, questions, crash recovery).
            allowed_mentions=discord.AllowedMentions.none(),
            # discord.py sleeps through shorter 429 waits itself; longer ones surface as RateLimited.
            max_ratelimit_timeout=30.0,
            guild_ready_timeout=guild_ready_timeout,
            chunk_guilds_at_startup=False,
        )
        self.settings = settings
        self.seed = DiscordBot(settings, service)
        self.endpoint_override = endpoint_override
        self.tree = SeedCommandTree(self)
        self.add_dynamic_items(FeedbackButton)  # 👍 / 👎 on any answer, whenever it was written
        self.is_ready_event = asyncio.Event()
        # READY or RESUMED since the last disconnect: discord.py's is_ready() stays true while it
        # reconnects, and /readyz must not.
        self.gateway_connected = False

    # --- start-up ------------------------------------------------------------------------------

    async def login(self, token: str) -> None:
        self.endpoint_override.apply()  # before the first request: discord.py builds URLs from it
        await super().login(token)

    async def setup_hook(self) -> None:
        """Runs after login, before the gateway connects: the REST API is usable, no events yet."""
        await self.discover_gateway()
        assert self.application_id is not None
        self.seed.logged_in(self.application_id)
        threads = self.settings.discord_thread_per_conversation
        log.info("Invite Seed to a server: %s", endpoints.invite_url(self.application_id, threads=threads))
        await self._sync_commands()
        await self.seed.service.repair_interrupted(PLATFORM, DISCORD_LIMITS, self._show_interrupted)

    async def discover_gateway(self) -> None:
        """Find the gateway before connecting (the sharded client also settles its shards here)."""
        await self.endpoint_override.discover_gateway(self.http)

    async def _sync_commands(self) -> None:
        try:
            guilds = [discord.Object(int(guild_id)) for guild_id in self.settings.discord_guild_ids]
        except ValueError:
            log.error("DISCORD_GUILD_IDS must be numeric guild ids; slash commands were not synced")
            return
        try:
            if not guilds:
                synced = await self.seed.pacer(self.tree.sync)
                log.info("synced %d slash commands globally (may take up to an hour to appear)", len(synced))
            for guild in guilds:
                self.tree.copy_global_to(guild=guild)
                synced = await self.seed.pacer(functools.partial(self.tree.sync, guild=guild))
                log.info("synced %d slash commands to guild %s", len(synced), guild.id)
        except NOT_SENT as error:
            fix = "invite the bot with the applications.commands scope"
            log.warning("could not sync slash commands (%s); %s", error, fix)

    async def _show_interrupted(self, reply: InterruptedReply) -> bool:
        """Crash recovery's one Discord step: that message shows `reply.text`, then the follow-up, each
        call within the bot's global budget."""
        key, message_id = reply.key, reply.platform_message_id
        # The message lives in the thread for a thread conversation, else in the channel; a key's
        # `thread` may also name a channel conversation's first prompt, so try it, then the channel.
        for channel_id in dict.fromkeys(c for c in (key.thread, key.channel) if c.isdigit()):
            channel = self.get_partial_messageable(int(channel_id))
            message = channel.get_partial_message(int(message_id))
            try:
                await self.seed.pacer(functools.partial(message.edit, content=reply.text))
            except discord.NotFound:
                continue
            if reply.follow_up:  # the warning did not fit in that message: say it right under it
                below = message.to_reference(fail_if_not_exists=False)
                await self.seed.pacer(functools.partial(channel.send, reply.follow_up, reference=below))
            return True
        log.warning("could not find reply %s to mark it as interrupted", message_id)
        return False

    async def on_ready(self) -> None:
        self.gateway_connected = True
        self.is_ready_event.set()
        log.info("connected to Discord as %s in %d servers", self.user, len(self.guilds))

    async def on_resumed(self) -> None:
        self.gateway_connected = True

    async def on_disconnect(self) -> None:
        self.gateway_connected = False

    async def close(self) -> None:
        await super().close()
        self.endpoint_override.restore()

    # --- messages -----------------------------------------------------------------------------

    async def on_raw_message_delete(self, payload: discord.RawMessageDeleteEvent) -> None:
        self.seed.admission.deleted(PLATFORM, str(payload.message_id))

    async def on_raw_bulk_message_delete(self, payload: discord.RawBulkMessageDeleteEvent) -> None:
        for message_id in payload.message_ids:
            self.seed.admission.deleted(PLATFORM, str(message_id))

    async def on_message(self, message: discord.Message) -> None:
        if not self.seed.work.accepting or message.author.bot or message.webhook_id is not None:
            return
        if self.user is None or message.author.id == self.user.id or message.type not in ANSWERED_TYPES:
            return
        me = self.user.id
        reference, channel = replied_to(message), message.channel
        resolved = reference.resolved if reference is not None else None
        in_thread = isinstance(channel, discord.Thread)
        arrival = Arrival(
            platform=PLATFORM,
            message_id=str(message.id),
            event_id=f"message:{message.id}",
            where=place_of(channel, message.guild, message.author),
            admin=is_admin(self.settings, message.author),
            text=prompt_text(message, me),
            addressed=message.guild is None
            or any(user.id == me for user in message.mentions)
            # People replying to each other under a question they asked the bot are not asking it.
            or (isinstance(resolved, discord.Message) and resolved.author.id == me)
            or (isinstance(channel, discord.Thread) and channel.owner_id == me),
            continues=conversation_key(channel, message.guild, channel.id) if in_thread else None,
            # The payload did not carry the replied-to message: the store knows whether it is ours.
            replies_to=None
            if reference is None or isinstance(resolved, discord.Message)
            else str(reference.message_id),
        )
        with self.seed.work.track():
            await self.seed.admission.admit(arrival, _DiscordMessage(self, message, arrival.text))

    async def thread_for(self, message: discord.Message, text: str) -> discord.Thread | None:
        if not (
            self.settings.discord_thread_per_conversation and isinstance(message.channel, discord.TextChannel)
        ):
            return None
        name = title_of(text, THREAD_NAME_CHARS, "Seed")
        try:
            opening = functools.partial(message.create_thread, name=name, auto_archive_duration=1440)
            return await self.seed.pacer(opening)
        except NOT_SENT as error:
            log.warning("could not open a thread (%s); answering in the channel", error)
            return None


@dataclass(slots=True)
class _DiscordMessage:
    """One Discord message on its way to an answer (core admission's `Asker`)."""

    client: SeedClient
    message: discord.Message
    text: str
    _read: tuple[ConversationKey | None, list[HistoryMessage]] | None = field(default=None)

    async def tell(self, text: str) -> None:
        try:
            await self.client.seed.pacer(functools.partial(self.message.reply, text, mention_author=False))
        except NOT_SENT as error:
            log.warning("could not reply in %s: %s", self.message.channel.id, error)

    async def conversation(self) -> ConversationKey | None:
        """The conversation this message continues (None: a new one), with the unstored context above
        it, read once."""
        if self._read is None:
            message, channel, guild = self.message, self.message.channel, self.message.guild
            stored, history = None, []
            if replied_to(message) is not None:
                seed = self.client.seed
                stored, history = await reply_chain(
                    message, self.client, seed.admission.conversation_of, seed.downloads, seed.pacer
                )
            if guild is None or isinstance(channel, discord.Thread):
                stored = conversation_key(channel, guild, message.id)
            self._read = stored, history
        return self._read[0]

    async def turn(self) -> tuple[Turn, ReplySurface] | None:
        message, author = self.message, self.message.author
        key = await self.conversation()
        assert self._read is not None
        history = self._read[1]
        attachments = attachment_sources(files_of(message), self.client.seed.downloads)
        if not (self.text or attachments or history):
            return None
        channel: discord.abc.Messageable = message.channel
        reply_to: discord.Message | None = message
        if key is None:
            thread = await self.client.thread_for(message, self.text)
            if thread is not None:
                channel, reply_to = thread, None
                key = conversation_key(thread, message.guild, thread.id)
            else:
                key = conversation_key(message.channel, message.guild, message.id)
        turn = Turn(
            key=key,
            user_id=str(author.id),
            user_name=author.display_name,
            text=self.text,
            message_id=str(message.id),
            attachments=attachments,
            history=history,
        )
        assert self.client.user is not None
        seed = self.client.seed
        search = ChannelSearch(channel, self.client.user.id, seed.pacer)
        surface = DiscordSurface(
            channel,
            budget=seed.pacer.budget,
            reply_to=reply_to,
            asker=author,
            questions=seed.questions,
            search=search,
        )
        return turn, surface
