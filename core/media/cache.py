"""A bounded LRU of prepared files, keyed by the sha256 of the original bytes.

Lets the context assembler re-send media from recent turns without downloading and converting them
again, and makes a file shared twice cost one conversion. Used from the event loop only.
"""

from __future__ import annotations

import sys
from collections import OrderedDict
from dataclasses import dataclass

from core.llm.types import ContentPart, ImagePart, TextPart
from core.models import MediaKind


@dataclass(frozen=True, slots=True)
class CachedMedia:
    kind: MediaKind
    mime: str  # of the original file
    parts: tuple[ContentPart, ...]
    reasons: tuple[str, ...] = ()  # notes about the conversion, each completing "<file name>: ..."

    @property
    def memory_bytes(self) -> int:
        return sum(sys.getsizeof(_payload(part)) for part in self.parts)


def _payload(part: ContentPart) -> str:
    if isinstance(part, TextPart):
        return part.text
    if isinstance(part, ImagePart):
        return part.image_url.url
    return part.video_url.url


class MediaCache:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, CachedMedia] = OrderedDict()
        self._sizes: dict[str, int] = {}
        self.total_bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, sha256: str) -> CachedMedia | None:
        entry = self._entries.get(sha256)
        if entry is not None:
            self._entries.move_to_end(sha256)
        return entry

    def put(self, sha256: str, entry: CachedMedia) -> None:
        size = entry.memory_bytes
        if size > self.max_bytes:
            return  # one file larger than the whole budget would only evict everything else
        if sha256 in self._entries:
            self.total_bytes -= self._sizes[sha256]
        self._entries[sha256] = entry
        self._entries.move_to_end(sha256)
        self._sizes[sha256] = size
        self.total_bytes += size
        while self.total_bytes > self.max_bytes:
            evicted, _ = self._entries.popitem(last=False)
            self.total_bytes -= self._sizes.pop(evicted)
