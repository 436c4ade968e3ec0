"""The nouns every part of the core shares: where a conversation lives, who said what, which files.

Adapters build these from platform events; the core never sees a platform type.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from core.llm.types import ContentPart, Effort

Platform = str  # "slack", "discord", "terminal", ...
MediaKind = Literal["image", "video", "text", "pdf", "other"]
MessageStatus = Literal["complete", "streaming", "interrupted", "error"]
Role = Literal["user", "assistant"]
SummaryKind = Literal["messages", "media"]


@dataclass(frozen=True, slots=True)
class ConversationKey:
    """Platform + workspace/guild + channel + thread. A DM uses its channel id; no thread is ""."""

    platform: Platform
    workspace: str
    channel: str
    thread: str = ""


@dataclass(frozen=True, slots=True)
class AttachmentMeta:
    """What the store keeps about a file (never its bytes)."""

    kind: MediaKind
    mime: str
    size: int
    sha256: str
    name: str
    source: str = ""  # where it came from: a platform file id or URL, a local path


class AttachmentError(Exception):
    """A file could not be fetched; `str()` is a short note for the reply."""


class AttachmentSource(Protocol):
    """A file an adapter can fetch on demand. `declared_*` come from the platform and may be wrong.

    Optionally `cache_key: str`: an id that never names other bytes (a Slack file id, a Discord
    attachment id with its size); the prepared file is then kept on disk under it and not fetched again.
    """

    name: str
    declared_size: int | None
    declared_mime: str | None
    source: str

    async def read(self, max_bytes: int) -> bytes:
        """The file's bytes; raises AttachmentError if it is larger than `max_bytes` or unreachable."""
        ...


@dataclass(frozen=True, slots=True)
class HistoryMessage:
    """An earlier message the platform knows about but the store may not (thread context, reply chain)."""

    role: Role
    author: str
    text: str
    message_id: str
    attachments: Sequence[AttachmentSource] = ()


@dataclass(frozen=True, slots=True)
class Turn:
    """One incoming prompt, as an adapter hands it to the core."""

    key: ConversationKey
    user_id: str
    user_name: str
    text: str
    message_id: str | None = None
    attachments: Sequence[AttachmentSource] = ()
    # Media the model fetches itself, by URL, passed through as they are (`seedbot ask --image URL`).
    linked: Sequence[ContentPart] = ()
    # A summary of `history` (all of it, or only the media shared in it): the media of the whole range
    # are sent, within the summary media budget, rather than those of the last few turns.
    summary: SummaryKind | None = None
    history: Sequence[HistoryMessage] = field(default=())
    effort: Effort | None = None  # request-level override, the most specific scope
