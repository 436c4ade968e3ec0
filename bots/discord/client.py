"""The discord.py client: turns gateway events into `Turn`s for the ChatService.

Messages the bot answers: DMs, @mentions, replies to its messages, and anything in a thread it
started or already answered in. Own messages, other
bots and webhooks are ignored. Every answered message is claimed first (`claim_event`), so a
message the gateway delivers again after a RESUME, or after a restart, is answered once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING

import aiohttp
import discord

from bots.discord import endpoints
from bots.discord.access import NOT_ENABLED, allowed, is_admin, place_of
from bots.discord.attachments import attachment_sources
from bots.discord.commands import SeedCommandTree, register_commands
from bots.discord.conversation import PLATFORM, conversation_key, prompt_text, reply_chain
from bots.discord.surface import DISCORD_LIMITS, DiscordSurface
from core.config import Settings
from core.models import ConversationKey, HistoryMessage, Turn
from core.prompts import is_stop_request

if TYPE_CHECKING:
    from core.service import ChatService, InterruptedReply

log = logging.getLogger(__name__)

USAGE = "Ask me something: mention me with a question (attach images or videos if you like), or use /ask."
THREAD_NAME_CHARS = 90
ANSWERED_TYPES = (discord.MessageType.default, discord.MessageType.reply)
REMEMBERED_DELETIONS = 1000
REMEMBERED_REFUSALS = 10_000


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
            # Anything posted without explicit mentions pings nobody.
            allowed_mentions=discord.AllowedMentions.none(),
            # discord.py sleeps through shorter 429 waits itself; longer ones surface as RateLimited.
            max_ratelimit_timeout=30.0,
            guild_ready_timeout=guild_ready_timeout,
            chunk_guilds_at_startup=False,
        )
        self.settings = settings
        self.service = service
        self.endpoint_override = endpoint_override
        self.tree = SeedCommandTree(self)
        register_commands(self.tree, self)
        self.accepting = True
        self.in_flight: set[asyncio.Task[object]] = set()
        self.is_ready_event = asyncio.Event()
        self._downloads: aiohttp.ClientSession | None = None
        self._refusals_told: set[tuple[int, int]] = set()
        # Prompts deleted before their answer started (the service had nothing to stop yet).
        self._deleted: dict[int, None] = {}

    # --- start-up ------------------------------------------------------------------------------

    async def login(self, token: str) -> None:
        self.endpoint_override.apply()  # before the first request: discord.py builds URLs from it
        await super().login(token)

    async def setup_hook(self) -> None:
        """Runs after login, before the gateway connects: the REST API is usable, no events yet."""
        self._downloads = aiohttp.ClientSession()
        await self.endpoint_override.discover_gateway(self.http)
        assert self.application_id is not None
        threads = self.settings.discord_thread_per_conversation
        log.info("Invite Seed to a server: %s", endpoints.invite_url(self.application_id, threads=threads))
        await self._sync_commands()
        await self._recover_interrupted()

    async def _sync_commands(self) -> None:
        try:
            guilds = [discord.Object(int(guild_id)) for guild_id in self.settings.discord_guild_ids]
        except ValueError:
            log.error("DISCORD_GUILD_IDS must be numeric guild ids; slash commands were not synced")
            return
        try:
            if not guilds:
                synced = await self.tree.sync()
                log.info("synced %d slash commands globally (may take up to an hour to appear)", len(synced))
            for guild in guilds:
                self.tree.copy_global_to(guild=guild)
                synced = await self.tree.sync(guild=guild)
                log.info("synced %d slash commands to guild %s", len(synced), guild.id)
        except discord.HTTPException as error:
            log.warning(
                "could not sync slash commands (%s %s); invite the bot with the applications.commands scope",
                error.status,
                error.text,
            )

    async def _recover_interrupted(self) -> None:
        """Replies a crash left mid-stream say so, instead of looking unfinished forever."""
        for reply in await self.service.recover_interrupted(PLATFORM, DISCORD_LIMITS):
            await self._mark_interrupted(reply)

    async def _mark_interrupted(self, reply: InterruptedReply) -> None:
        key, message_id, quiet = reply.key, reply.platform_message_id, discord.AllowedMentions.none()
        # The message lives in the thread for a thread conversation, else in the channel; a key's
        # `thread` may also name a channel conversation's first prompt, so try it, then the channel.
        for channel_id in dict.fromkeys(c for c in (key.thread, key.channel) if c.isdigit()):
            channel = self.get_partial_messageable(int(channel_id))
            message = channel.get_partial_message(int(message_id))
            try:
                await message.edit(content=reply.text, allowed_mentions=quiet)
                if reply.follow_up:  # the warning did not fit in that message: say it right under it
                    reference = message.to_reference(fail_if_not_exists=False)
                    await channel.send(reply.follow_up, reference=reference, allowed_mentions=quiet)
                return
            except discord.NotFound:
                continue
            except discord.HTTPException as error:
                log.warning("could not mark reply %s as interrupted: %s", message_id, error)
                return
        log.warning("could not find reply %s to mark it as interrupted", message_id)

    async def on_ready(self) -> None:
        self.is_ready_event.set()
        log.info("connected to Discord as %s in %d servers", self.user, len(self.guilds))

    async def close(self) -> None:
        await super().close()
        if self._downloads is not None:
            await self._downloads.close()
        self.endpoint_override.restore()

    # --- work tracking (graceful shutdown) -------------------------------------------------------

    @contextlib.contextmanager
    def track(self) -> Iterator[None]:
        task = asyncio.current_task()
        if task is not None:
            self.in_flight.add(task)
        try:
            yield
        finally:
            if task is not None:
                self.in_flight.discard(task)

    @property
    def downloads(self) -> aiohttp.ClientSession:
        assert self._downloads is not None, "setup_hook has not run"
        return self._downloads

    def channel_of(self, interaction: discord.Interaction) -> discord.abc.Messageable:
        channel = interaction.channel
        if isinstance(channel, discord.abc.Messageable):
            return channel
        return self.get_partial_messageable(interaction.channel_id or 0, guild_id=interaction.guild_id)

    # --- messages -----------------------------------------------------------------------------

    async def on_raw_message_delete(self, payload: discord.RawMessageDeleteEvent) -> None:
        if self.service.stop(PLATFORM, str(payload.message_id)):
            log.info("prompt %s deleted: stopped its answer", payload.message_id)
            return
        # It may be a prompt still being read (reply chain, thread): remember it, a bounded number.
        self._deleted[payload.message_id] = None
        if len(self._deleted) > REMEMBERED_DELETIONS:
            del self._deleted[next(iter(self._deleted))]

    async def on_message(self, message: discord.Message) -> None:
        if not self.accepting or message.author.bot or message.webhook_id is not None:
            return
        if self.user is None or message.author.id == self.user.id:
            return
        if message.type not in ANSWERED_TYPES:
            return
        with self.track():
            await self._on_prompt(message)

    async def _on_prompt(self, message: discord.Message) -> None:
        assert self.user is not None
        if not await self._addressed(message):
            return
        author, channel, guild = message.author, message.channel, message.guild
        admin = is_admin(self.settings, author)
        if not allowed(self.settings, place_of(channel, guild, author), admin=admin):
            await self._refuse(message)
            return
        if not await self.service.claim_event(PLATFORM, f"message:{message.id}"):
            return  # redelivered after a RESUME or restart: already answered
        key, history = await self._context(message)
        text = prompt_text(message, self.user.id)
        if key is not None and is_stop_request(text) and self.service.stop_conversation(key):
            return  # "stop" while an answer is being written there ends that answer
        attachments = attachment_sources(message.attachments, self.downloads)
        if not (text or attachments or history):
            await self._send_quietly(message, USAGE)
            return
        surface_channel: discord.abc.Messageable = channel
        reply_to: discord.Message | None = message
        if key is None:
            thread = await self._thread_for(message, text)
            if thread is not None:
                surface_channel, reply_to = thread, None
                key = conversation_key(thread, guild, thread.id)
            else:
                key = conversation_key(channel, guild, message.id)
        turn = Turn(
            key=key,
            user_id=str(author.id),
            user_name=author.display_name,
            text=text,
            message_id=str(message.id),
            attachments=attachments,
            history=history,
        )
        if message.id in self._deleted:
            return  # deleted while it was being read; from here on, deleting it stops the answer
        surface = DiscordSurface(surface_channel, reply_to=reply_to, asker=author)
        try:
            await self.service.answer(turn, surface)
        finally:
            await surface.close()

    async def _addressed(self, message: discord.Message) -> bool:
        assert self.user is not None
        if message.guild is None or any(user.id == self.user.id for user in message.mentions):
            return True
        reference = message.reference
        if reference is not None and reference.message_id is not None:
            resolved = reference.resolved
            if isinstance(resolved, discord.Message):
                # People replying to each other under a question they asked the bot are not asking it.
                if resolved.author.id == self.user.id:
                    return True
            elif await self.service.conversation_for_message(PLATFORM, str(reference.message_id)):
                return True  # the payload did not carry the replied-to message: the store knows it
        channel = message.channel
        if isinstance(channel, discord.Thread):
            return channel.owner_id == self.user.id or await self.service.is_conversation(
                conversation_key(channel, message.guild, channel.id)
            )
        return False

    async def _context(self, message: discord.Message) -> tuple[ConversationKey | None, list[HistoryMessage]]:
        """The conversation this message continues (None: a new one) and unstored earlier context."""
        channel, guild = message.channel, message.guild
        stored, history = (None, [])
        if message.reference is not None:
            stored, history = await reply_chain(
                message, self, self.service.conversation_for_message, self.downloads
            )
        if guild is None or isinstance(channel, discord.Thread):
            return conversation_key(channel, guild, message.id), history
        return stored, history

    async def _thread_for(self, message: discord.Message, text: str) -> discord.Thread | None:
        if not (
            self.settings.discord_thread_per_conversation and isinstance(message.channel, discord.TextChannel)
        ):
            return None
        name = (text.splitlines()[0] if text else "").strip()[:THREAD_NAME_CHARS] or "Seed"
        try:
            return await message.create_thread(name=name, auto_archive_duration=1440)
        except discord.HTTPException as error:
            log.warning("could not open a thread (%s %s); answering in the channel", error.status, error.text)
            return None

    async def _refuse(self, message: discord.Message) -> None:
        """Say "not enabled here" once per person and channel, not on every message."""
        told = (message.channel.id, message.author.id)
        if told not in self._refusals_told:
            if len(self._refusals_told) >= REMEMBERED_REFUSALS:
                self._refusals_told.clear()  # bounded memory; some people hear it once more
            self._refusals_told.add(told)
            await self._send_quietly(message, NOT_ENABLED)

    async def _send_quietly(self, message: discord.Message, text: str) -> None:
        try:
            await message.reply(text, mention_author=False, allowed_mentions=discord.AllowedMentions.none())
        except discord.HTTPException as error:
            log.warning("could not reply in %s: %s", message.channel.id, error)
