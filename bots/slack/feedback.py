"""👍 / 👎 on Slack: a `context_actions` block of `feedback_buttons` under a finished answer, presses
routed to `core.feedback` (which owns what they mean)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from bots.slack.conversation import PLATFORM
from core.feedback import FeedbackSubject, record_feedback
from core.store import Store

# How the bot tells one person something privately: (channel, user, text, thread_ts=...).
Tell = Callable[..., Awaitable[None]]

FEEDBACK = "seed_feedback"


def feedback_block(subject: FeedbackSubject) -> dict[str, Any]:
    def button(emoji: str, rating: str, label: str) -> dict[str, Any]:
        return {
            "text": {"type": "plain_text", "text": emoji},
            "value": f"{rating}:{subject.token}",
            "accessibility_label": label,
        }

    return {
        "type": "context_actions",
        "block_id": f"feedback-{subject.reply_id}",
        "elements": [
            {
                "type": "feedback_buttons",
                "action_id": FEEDBACK,
                "positive_button": button("👍", "up", "Good answer"),
                "negative_button": button("👎", "down", "Not a good answer"),
            }
        ],
    }


async def on_press(store: Store, tell: Tell, body: dict[str, Any], action: dict[str, Any]) -> None:
    """Record the press against the answer's message and thank the person privately."""
    rating, _, token = str(action.get("value") or "").partition(":")
    user, channel = str(body["user"]["id"]), str(body["channel"]["id"])
    message = body.get("message") or {}
    said = await record_feedback(
        store,
        platform=PLATFORM,
        workspace=str(body["team"]["id"]),
        channel=channel,
        platform_message_id=str(body["container"]["message_ts"]),
        user=user,
        rating=rating,
        token=token,
    )
    await tell(channel, user, said, thread_ts=message.get("thread_ts"))
