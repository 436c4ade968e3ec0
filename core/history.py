"""History assembly: what came before a turn, from the store and from the platform.

The store holds what the bot took part in. Platforms know more: the earlier messages of a thread the
bot was called into, the messages a reply chain quotes, a channel being summarized. `gather_history`
merges the two into one oldest-first list for `core.context.assemble_context`, never counting a message
twice, and prepares the media of the most recent platform messages so the context can re-send them.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.context import PastMessage
from core.media import MediaPipeline
from core.models import AttachmentMeta, MessageStatus, Role, Turn
from core.store import Store


@dataclass(frozen=True, slots=True)
class EarlierMessage:
    """A message only the platform knows about, in the shape the context assembles."""

    role: Role
    author_id: str
    author_name: str
    text: str
    attachments: tuple[AttachmentMeta, ...] = ()
    status: MessageStatus = "complete"


async def gather_history(
    store: Store, media: MediaPipeline, turn: Turn, *, media_turns: int
) -> list[PastMessage]:
    """The platform's earlier messages that the store does not have, then the stored conversation.
    The media of the last `media_turns` platform messages are prepared (fetched and converted)."""
    stored = await store.conversation(turn.key)
    known = {message.platform_message_id for message in stored if message.platform_message_id}
    extra = []
    for message in turn.history:
        if message.message_id in known:
            continue
        # An earlier part of one of our multi-part replies is in the store already, as that reply.
        found = await store.find_by_platform_message(turn.key.platform, message.message_id)
        if found is None or found.key != turn.key:
            extra.append(message)
    with_media = {id(message) for message in extra[-media_turns:]} if media_turns else set()
    history: list[PastMessage] = []
    for message in extra:
        attachments: tuple[AttachmentMeta, ...] = ()
        if message.attachments and id(message) in with_media:
            attachments = tuple((await media.prepare(message.attachments)).attachments)
        history.append(
            EarlierMessage(message.role, message.author, message.author, message.text, attachments)
        )
    return [*history, *stored]
