"""Which conversation a Discord message belongs to, and the context it brings along.

Keys: a thread is one conversation (channel = parent, thread = thread id); a DM channel is one
conversation; in a guild channel every new @mention starts a conversation named after its first
prompt, and replies to any of its messages continue it (found through the store, which knows the
platform id of every stored message). A thread opened from a message shares that message's id, so
"thread per conversation" keeps the same name for the conversation.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable
from datetime import datetime

import discord

from bots.discord.attachments import attachment_sources
from bots.discord.budget import HISTORY_PAGE, NOT_SENT, refusal
from core.history import with_quoted
from core.media.download import Downloads
from core.models import ConversationKey, HistoryMessage
from core.reply.budgets import Pacer
from core.tools.base import FoundMessage, SearchUnavailable

PLATFORM = "discord"
DM_WORKSPACE = "@me"
# Messages a conversation search reads back at most (Discord pages them by 100).
SEARCH_DEPTH = 500
SEARCH_BUSY = "Discord is rate limiting the bot; try the search again shortly."
# Replies followed up the chain when the store does not know them (each one is an API call).
REPLY_CHAIN_LIMIT = 12
_USER_MENTION = re.compile(r"<@!?(\d+)>")

ConversationLookup = Callable[[str, str], Awaitable[ConversationKey | None]]


def workspace_of(guild: discord.Guild | None) -> str:
    return str(guild.id) if guild is not None else DM_WORKSPACE


def conversation_key(channel: object, guild: discord.Guild | None, root_id: int | str) -> ConversationKey:
    channel_id = str(getattr(channel, "id", ""))
    if guild is None:
        return ConversationKey(PLATFORM, DM_WORKSPACE, channel_id)
    if isinstance(channel, discord.Thread):
        return ConversationKey(PLATFORM, str(guild.id), str(channel.parent_id), channel_id)
    return ConversationKey(PLATFORM, str(guild.id), channel_id, str(root_id))


def settings_channel(channel: object) -> str:
    """The channel whose settings apply: a thread follows its parent."""
    if isinstance(channel, discord.Thread):
        return str(channel.parent_id)
    return str(getattr(channel, "id", ""))


def prompt_text(message: discord.Message, bot_id: int) -> str:
    """The message text without the bot's own mention; other people's mentions become @names."""
    names = {user.id: user.display_name for user in message.mentions}

    def shown(mention: re.Match[str]) -> str:
        user_id = int(mention.group(1))
        if user_id == bot_id:
            return ""
        # A function, not a replacement string: re.sub would parse a backslash in a name (\1).
        return f"@{names[user_id]}" if user_id in names else mention.group(0)

    return _USER_MENTION.sub(shown, message.content).strip()


def replied_to(message: discord.Message) -> discord.MessageReference | None:
    """The message this one replies to; a forward also carries a reference, but answers nothing."""
    reference = message.reference
    if reference is None or reference.message_id is None:
        return None
    return None if reference.type is discord.MessageReferenceType.forward else reference


def with_forwards(message: discord.Message, text: str) -> str:
    """`text`, followed by what the message forwards (a forward's own content is empty)."""
    quoted = [("", snapshot.content) for snapshot in message.message_snapshots]  # forwards name no author
    return with_quoted(text, "forwarded message", quoted)


def files_of(message: discord.Message) -> list[discord.Attachment]:
    """The message's attachments, and those of the messages it forwards."""
    return [
        *message.attachments,
        *(a for snapshot in message.message_snapshots for a in snapshot.attachments),
    ]


def history_message(message: discord.Message, bot_id: int, downloads: Downloads) -> HistoryMessage:
    return HistoryMessage(
        role="assistant" if message.author.id == bot_id else "user",
        author=message.author.display_name,
        text=with_forwards(message, prompt_text(message, bot_id)),
        message_id=str(message.id),
        attachments=attachment_sources(files_of(message), downloads),
    )


async def reply_chain(
    message: discord.Message,
    client: discord.Client,
    lookup: ConversationLookup,
    downloads: Downloads,
    pace: Pacer,
) -> tuple[ConversationKey | None, list[HistoryMessage]]:
    """Walk the replies above `message`: the stored conversation they lead to (if any) and, oldest
    first, the messages above it that the store does not hold."""
    assert client.user is not None
    found: list[HistoryMessage] = []
    current = message
    for _ in range(REPLY_CHAIN_LIMIT):
        reference = replied_to(current)
        if reference is None or reference.message_id is None:
            break
        key = await lookup(PLATFORM, str(reference.message_id))
        if key is not None:
            return key, found[::-1]
        parent = reference.resolved if isinstance(reference.resolved, discord.Message) else None
        if parent is None:
            channel = client.get_partial_messageable(reference.channel_id)
            try:
                parent = await pace(functools.partial(channel.fetch_message, reference.message_id))
            except NOT_SENT:
                break  # deleted, no permission to read history, or no budget: use what we have
        found.append(history_message(parent, client.user.id, downloads))
        current = parent
    return None, found[::-1]


class ChannelSearch:
    """The `search_conversation` tool's reach on Discord: the channel or thread the question was asked
    in, never another one the asker may not see; each page read within the bot's global budget."""

    def __init__(self, channel: discord.abc.Messageable, bot_id: int, pace: Pacer) -> None:
        self._channel, self._bot_id, self._pace = channel, bot_id, pace

    async def search(self, query: str | None, since: datetime | None, limit: int) -> list[FoundMessage]:
        found: list[FoundMessage] = []
        before: discord.Message | None = None
        try:
            for _ in range(SEARCH_DEPTH // HISTORY_PAGE):
                page = await self._pace(functools.partial(self._page, before, since))
                for message in page:
                    text = with_forwards(message, prompt_text(message, self._bot_id))
                    if query and query.lower() not in text.lower():
                        continue
                    found.append(
                        FoundMessage(message.author.display_name, message.created_at, text, message.jump_url)
                    )
                    if len(found) >= limit:
                        return found
                if len(page) < HISTORY_PAGE:
                    break  # the channel's start, or `since`
                before = page[-1]
        except NOT_SENT as error:
            why = refusal(error)
            reason = f"Discord would not show this channel's history ({why})." if why else SEARCH_BUSY
            raise SearchUnavailable(reason) from None
        return found

    async def _page(self, before: discord.Message | None, since: datetime | None) -> list[discord.Message]:
        """Newest first: the messages before `before` (None: the latest), back to `since` at most."""
        history = self._channel.history(limit=HISTORY_PAGE, before=before, after=since, oldest_first=False)
        return [message async for message in history]
