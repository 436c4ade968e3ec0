"""History assembly: what came before a turn, from the store and from the platform.

The store holds what the bot took part in. Platforms know more: the earlier messages of a thread the
bot was called into, the messages a reply chain quotes, a channel being summarized. `gather_history`
merges the two into one oldest-first list for `core.context.assemble_context`, never counting a message
twice, and prepares the media the context may send:

- for a question, those of the last `SEEDBOT_CONTEXT_MEDIA_TURNS` platform messages;
- for a summary, those of its whole range, newest first, within the summary media budget
  (`SEEDBOT_SUMMARY_MAX_IMAGES`, `_MAX_VIDEOS`, `_MEDIA_TOKENS`); the rest are named, not sent, and
  the footer says how many were left out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from core.config import Settings
from core.context import MediaLookup, PastMessage
from core.media import MediaPipeline
from core.media.tokens import estimate_tokens
from core.models import AttachmentMeta, HistoryMessage, MessageStatus, Role, Turn
from core.store import Store

# Stored messages read for one turn; a longer conversation is cut here, and the footer says so.
STORED_MESSAGES = 200


def with_quoted(text: str, kind: str, quoted: Iterable[tuple[str, str]]) -> str:
    """`text`, then each message carried inside it (shared, forwarded), as (author, text) pairs, one a
    line: "[shared message from Ann] …" (an empty author is left out), so the model reads who said it."""
    lines = [f"[{kind}{f' from {author}' if author else ''}] {body}".rstrip() for author, body in quoted]
    return "\n".join(part for part in (text, *lines) if part)


def title_of(text: str, max_chars: int, default: str) -> str:
    """A short name for a conversation (a thread's title) from its first question: its first line."""
    return (text.splitlines()[0] if text else "").strip()[:max_chars] or default


@dataclass(frozen=True, slots=True)
class EarlierMessage:
    """A message only the platform knows about, in the shape the context assembles."""

    role: Role
    author_id: str
    author_name: str
    text: str
    attachments: tuple[AttachmentMeta, ...] = ()
    status: MessageStatus = "complete"


@dataclass(slots=True)
class History:
    messages: list[PastMessage]
    media_turns: int  # how many of the latest human turns may re-send their media
    left_out: int = 0  # older stored messages not read at all
    notes: list[str] = field(default_factory=list)  # for the footer
    hidden: set[AttachmentMeta] = field(default_factory=set)  # past the media budget: named, not sent

    def media_parts(self, lookup: MediaLookup) -> MediaLookup:
        """`lookup`, except for the files the budget left out (the context names those instead)."""
        return lambda meta: None if meta in self.hidden else lookup(meta)


@dataclass(slots=True)
class _MediaBudget:
    images: int
    videos: int
    tokens: int
    skipped: dict[str, int] = field(default_factory=dict)

    def admit(self, meta: AttachmentMeta, tokens: int) -> bool:
        """Spend on this file if it fits; a file that does not is counted as left out."""
        room = {"image": self.images, "video": self.videos}.get(meta.kind, 1)
        if room <= 0 or tokens > self.tokens:
            self.skipped[meta.kind] = self.skipped.get(meta.kind, 0) + 1
            return False
        if meta.kind == "image":
            self.images -= 1
        elif meta.kind == "video":
            self.videos -= 1
        self.tokens -= tokens
        return True

    def notes(self) -> list[str]:
        nouns = {"image": "image", "video": "video", "pdf": "PDF"}
        return [
            f"{count} older {nouns.get(kind, 'file')}{'' if count == 1 else 's'} not shown"
            for kind, count in self.skipped.items()
        ]


async def gather_history(store: Store, media: MediaPipeline, turn: Turn, settings: Settings) -> History:
    """The platform's earlier messages that the store does not have, then the stored conversation."""
    stored = await store.conversation(turn.key, limit=STORED_MESSAGES + 1)
    left_out = max(len(stored) - STORED_MESSAGES, 0)
    stored = stored[left_out:]
    known = {message.platform_message_id for message in stored if message.platform_message_id}
    extra: list[HistoryMessage] = []
    for message in turn.history:
        if message.message_id in known:
            continue
        # An earlier part of one of our multi-part replies is in the store already, as that reply.
        found = await store.find_by_platform_message(turn.key.platform, message.message_id)
        if found is None or found.key != turn.key:
            extra.append(message)
    if turn.summary is not None:
        budget = _MediaBudget(
            settings.summary_max_images, settings.summary_max_videos, settings.summary_media_tokens
        )
        earlier, hidden = await _with_media(media, extra, budget)
        humans = sum(message.role == "user" for message in [*earlier, *stored])
        return History([*earlier, *stored], humans + 1, left_out, budget.notes(), hidden)
    recent = settings.context_media_turns
    earlier, _ = await _with_media(media, extra, None, newest=recent)
    return History([*earlier, *stored], recent, left_out)


async def _with_media(
    media: MediaPipeline, messages: list[HistoryMessage], budget: _MediaBudget | None, *, newest: int = 0
) -> tuple[list[EarlierMessage], set[AttachmentMeta]]:
    """The messages as the context reads them, with their media prepared: for the `newest` ones, or
    (with a budget) for all, the newest first, and those past the budget returned as hidden."""
    prepared: dict[int, tuple[AttachmentMeta, ...]] = {}
    hidden: set[AttachmentMeta] = set()
    latest_first = list(enumerate(messages))[::-1]
    for position, message in latest_first if budget is not None else latest_first[:newest]:
        if not message.attachments:
            continue
        metas = tuple((await media.prepare(message.attachments)).attachments)
        prepared[position] = metas
        for meta in metas if budget is not None else ():
            if not budget.admit(meta, sum(estimate_tokens(part) for part in media.parts_for(meta) or [])):
                hidden.add(meta)
    earlier = [
        EarlierMessage(m.role, m.author, m.author, m.text, prepared.get(position, ()))
        for position, m in enumerate(messages)
    ]
    return earlier, hidden
