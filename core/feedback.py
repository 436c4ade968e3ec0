"""Feedback on answers: 👍 / 👎 under every finished answer, and what a press means.

    Answer finished -> ReplyStreamer.offer_feedback(FeedbackSubject) -> the surface shows two buttons
    carrying `subject.token` -> a press -> the adapter calls `record_feedback(...)` -> answer_feedback

The buttons carry the answer's token: the stored reply's id, its effort, tool calls and cost. A press
may come long after the answer, after a restart too, and the platform sends back exactly what the bot
put on the message, so a press needs no lookup and the store keeps no second row for every answer.
A second press by the same person on the same answer replaces the first.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from core.config import EFFORTS
from core.models import Platform
from core.reply.surface import MessageRef
from core.store.base import Feedback, Rating, Store

log = logging.getLogger("seedbot.feedback")

RATINGS: dict[str, Rating] = {"up": "up", "down": "down"}  # what a button may say -> the rating
THANKS: dict[Rating, str] = {
    "up": "Thanks for the 👍.",
    "down": "Thanks for the 👎: it is noted with the answer, for whoever runs the bot.",
}
OUT_OF_DATE = "That button no longer works; nothing was recorded."


@dataclass(frozen=True, slots=True)
class FeedbackSubject:
    """A finished answer that can be rated."""

    reply_id: int  # the stored reply
    effort: str
    tool_calls: int
    usd: Decimal
    message: MessageRef  # the answer's last message, which carries the buttons
    text: str  # what that message shows (a platform that sends buttons with the text needs it again)

    @property
    def token(self) -> str:
        """What the buttons carry, at most 60 characters (Discord's custom ids are 100 at most)."""
        return f"{self.reply_id}:{self.effort}:{self.tool_calls}:{self.usd:f}"


@dataclass(frozen=True, slots=True)
class _Rated:
    reply_id: int
    effort: str
    tool_calls: int
    usd: Decimal


def _parse(token: str) -> _Rated | None:
    parts = token.split(":")
    if len(parts) != 4 or parts[1] not in EFFORTS:
        return None
    reply_id, effort, tool_calls, usd = parts
    try:
        return _Rated(int(reply_id), effort, int(tool_calls), Decimal(usd))
    except (ValueError, InvalidOperation):
        return None


async def record_feedback(
    store: Store,
    *,
    platform: Platform,
    workspace: str,
    channel: str,
    platform_message_id: str,
    user: str,
    rating: str,
    token: str,
) -> str:
    """Keep one press of 👍 (`rating` "up") or 👎 ("down") on the answer `token` names; returns what to
    tell the person who pressed."""
    rated, pressed = _parse(token), RATINGS.get(rating)
    if rated is None or pressed is None:
        log.warning("feedback press with an unknown value ignored", extra={"platform": platform})
        return OUT_OF_DATE
    await store.record_feedback(
        Feedback(
            platform=platform,
            workspace=workspace,
            channel=channel,
            platform_message_id=platform_message_id,
            user=user,
            rating=pressed,
            effort=rated.effort,
            tool_calls=rated.tool_calls,
            usd=rated.usd,
            reply_id=rated.reply_id,
        )
    )
    return THANKS[pressed]
