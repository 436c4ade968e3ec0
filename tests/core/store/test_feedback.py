"""Feedback on answers: one press per person and message (the last one counts), rates per channel and
per effort, the latest 👎, and a person forgotten takes their presses along."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from core.store.base import Feedback, FeedbackRate, Rating, Store
from tests.core.store.entries import NOW


def press(
    message: str, user: str, rating: Rating, *, channel: str = "C1", effort: str = "medium", **fields
) -> Feedback:
    values = {
        "platform": "slack",
        "workspace": "T1",
        "channel": channel,
        "platform_message_id": message,
        "user": user,
        "rating": rating,
        "effort": effort,
        "tool_calls": 2,
        "usd": Decimal("0.0042"),
        "reply_id": 7,
        "at": NOW,
    }
    values.update(fields)
    return Feedback(**values)


async def test_a_second_press_by_the_same_person_replaces_the_first(store: Store) -> None:
    await store.record_feedback(press("1.1", "U1", "up"))
    later = press("1.1", "U1", "down", at=NOW + timedelta(minutes=1))
    await store.record_feedback(later)
    await store.record_feedback(press("1.1", "U2", "up"))

    assert await store.disliked_answers() == [later]
    assert await store.feedback_rates("channel") == [FeedbackRate("slack", "T1", "C1", up=1, down=1)]


async def test_rates_per_channel_and_per_effort_most_pressed_first(store: Store) -> None:
    await store.record_feedback(press("1", "U1", "up", channel="C1", effort="high"))
    await store.record_feedback(press("2", "U1", "down", channel="C2", effort="low"))
    await store.record_feedback(press("3", "U1", "up", channel="C2", effort="high"))
    await store.record_feedback(press("4", "U2", "up", channel="C2", effort="low", platform="discord"))

    assert await store.feedback_rates("channel") == [
        FeedbackRate("slack", "T1", "C2", up=1, down=1),
        FeedbackRate("discord", "T1", "C2", up=1, down=0),
        FeedbackRate("slack", "T1", "C1", up=1, down=0),
    ]
    by_effort = await store.feedback_rates("effort")
    assert by_effort == [FeedbackRate("", "", "high", 2, 0), FeedbackRate("", "", "low", 1, 1)]
    assert by_effort[1].share_up == 0.5


async def test_disliked_answers_are_newest_first_with_what_the_answer_was(store: Store) -> None:
    old = press("1", "U1", "down", at=NOW - timedelta(hours=1), usd=Decimal("0.123456789"), reply_id=None)
    new = press("2", "U1", "down", tool_calls=0, effort="minimal")
    await store.record_feedback(old)
    await store.record_feedback(new)
    await store.record_feedback(press("3", "U1", "up"))

    assert await store.disliked_answers() == [new, old]
    assert await store.disliked_answers(limit=1) == [new]


async def test_forgetting_a_person_forgets_their_presses(store: Store) -> None:
    await store.record_feedback(press("1", "U1", "down"))
    await store.record_feedback(press("1", "U2", "down"))
    await store.forget_user("slack", "U1")
    assert [pressed.user for pressed in await store.disliked_answers()] == ["U2"]
