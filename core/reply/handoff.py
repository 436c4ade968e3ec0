"""A reply that starts where it can be written only for a while, and goes on where it lasts.

A Discord slash command is answered in the interaction's own response, written through a webhook
whose token expires after 15 minutes; an answer still being written then (a long one, or one that
waited its turn) goes on in ordinary channel messages. The adapter supplies the first place (a
`WhileItLasts`) and how to open the lasting one; `HandOffSurface` keeps track of which message
lives where, so every edit lands, wherever its message now is.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Protocol

from core.feedback import FeedbackSubject
from core.reply.surface import MessageRef, PlatformLimits, ReplySurface

log = logging.getLogger("seedbot.reply")


class WhileItLasts(Protocol):
    """Where a reply is written first; every call says when that place has expired (None / False),
    and from then on the reply is written elsewhere."""

    def holds(self, ref: MessageRef) -> bool:
        """Whether `ref` is a message posted here."""
        ...

    async def post(self, text: str) -> MessageRef | None: ...

    async def edit(self, ref: MessageRef, text: str) -> bool: ...

    async def offer_feedback(self, subject: FeedbackSubject) -> bool: ...


class LastingSurface(ReplySurface, Protocol):
    """Where the reply goes on once the first place has expired."""

    async def offer_feedback(self, subject: FeedbackSubject) -> None: ...


class HandOffSurface:
    """A reply in `first` while it lasts, then in the surface `then()` opens (once, when first
    needed). A message whose edit finds `first` expired is posted again there with the new text,
    and later edits go to that copy."""

    def __init__(
        self, limits: PlatformLimits, first: WhileItLasts, then: Callable[[], LastingSurface]
    ) -> None:
        self.limits = limits
        self._first = first
        self._then = then
        self._lasting: LastingSurface | None = None
        self._moved: dict[str, MessageRef] = {}  # message id in `first` -> its copy where it lasts

    async def post(self, text: str) -> MessageRef:
        ref = await self._first.post(text)
        return ref if ref is not None else await self._where_it_lasts().post(text)

    async def edit(self, ref: MessageRef, text: str) -> None:
        if ref.id in self._moved:
            await self._where_it_lasts().edit(self._moved[ref.id], text)
        elif not self._first.holds(ref):
            await self._where_it_lasts().edit(ref, text)
        elif not await self._first.edit(ref, text):
            self._moved[ref.id] = await self._where_it_lasts().post(text)

    async def set_status(self, status: str | None) -> None:
        """Whoever asked was already told the answer is coming (e.g. Discord's "is thinking…")."""

    async def close(self) -> None:
        if self._lasting is not None:
            await self._lasting.close()

    async def offer_feedback(self, subject: FeedbackSubject) -> None:
        if subject.message.id in self._moved:
            moved = dataclasses.replace(subject, message=self._moved[subject.message.id])
            await self._where_it_lasts().offer_feedback(moved)
        elif not self._first.holds(subject.message):
            await self._where_it_lasts().offer_feedback(subject)
        elif not await self._first.offer_feedback(subject):
            log.info("feedback buttons not added: where the answer was written has expired")

    def _where_it_lasts(self) -> LastingSurface:
        if self._lasting is None:
            self._lasting = self._then()
        return self._lasting
