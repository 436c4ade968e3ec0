"""A reply where the platform cannot edit what it has shown (Slack's private answers, sent through a
command's response_url): kept while the streamer writes it, and handed over whole once it is done."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Awaitable, Callable

from core.reply.split import close_fence, split_message
from core.reply.surface import MessageRef, PlatformLimits

log = logging.getLogger("seedbot.reply")


def _unchanged(text: str) -> str:
    return text


class BufferedSurface:
    """Keeps a reply's messages as the streamer posts and edits them, and hands each to `deliver` at
    `close()`. At most `max_messages` are delivered: past that, the last one delivered is cut to make
    room for `cut_note`, which says so. A delivery that fails ends the delivery (logged): the parts
    after it would read as if the failed one had been seen.

    `prepare` makes each text safe for the platform (e.g. defusing mentions); message ids are
    `{id_prefix}-1`, `{id_prefix}-2`, …, so the store can tell them from the platform's own ids."""

    def __init__(
        self,
        limits: PlatformLimits,
        deliver: Callable[[str], Awaitable[object]],
        *,
        channel: str,
        max_messages: int,
        cut_note: str,
        id_prefix: str,
        prepare: Callable[[str], str] = _unchanged,
    ) -> None:
        self.limits = limits
        self._deliver = deliver
        self._channel = channel
        self._max_messages = max_messages
        self._cut_note = cut_note
        self._id_prefix = id_prefix
        self._prepare = prepare
        self._parts: list[str] = []
        self._ids = itertools.count(1)

    async def post(self, text: str) -> MessageRef:
        self._parts.append(self._prepare(text))
        return MessageRef(f"{self._id_prefix}-{next(self._ids)}", self._channel)

    async def edit(self, ref: MessageRef, text: str) -> None:
        index = int(ref.id.rsplit("-", 1)[-1]) - 1
        self._parts[index] = self._prepare(text)

    async def set_status(self, status: str | None) -> None:
        """Nothing is shown until the reply is done; whoever asked was told it is coming."""

    async def close(self) -> None:
        parts = self._parts
        if len(parts) > self._max_messages:
            room = self.limits.max_message_chars - len(self._cut_note) - len("\n```")
            last = close_fence(split_message(parts[self._max_messages - 1], room)[0])
            parts = [*parts[: self._max_messages - 1], last + self._cut_note]
        for part in parts:
            try:
                await self._deliver(part)
            except Exception as error:
                log.warning(
                    "could not deliver a %s reply kept until done: %s", self.limits.name, type(error).__name__
                )
                return
