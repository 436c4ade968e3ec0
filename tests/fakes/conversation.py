"""An in-memory channel history implementing `ConversationSearch`, as an adapter would over its API."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from core.tools.base import FoundMessage


@dataclass
class MemoryConversation:
    messages: list[FoundMessage] = field(default_factory=list)
    queries: list[tuple[str | None, datetime | None, int]] = field(default_factory=list)

    async def search(self, query: str | None, since: datetime | None, limit: int) -> list[FoundMessage]:
        self.queries.append((query, since, limit))
        words = query.lower().split() if query else []
        found = [
            message
            for message in self.messages
            if (since is None or message.time >= since) and all(w in message.text.lower() for w in words)
        ]
        return sorted(found, key=lambda message: message.time, reverse=True)[:limit]
