"""What a 👍 / 👎 press means: the token its buttons carry names the answer, and a press that names
none (a mangled or foreign value) records nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from core.feedback import OUT_OF_DATE, THANKS, FeedbackSubject, record_feedback
from core.reply.surface import MessageRef
from core.store import Store
from core.store.sqlite import SqliteStore

SUBJECT = FeedbackSubject(41, "high", 3, Decimal("0.012345678"), MessageRef("1.5", "C1"), "It is 42.")


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await SqliteStore.open(tmp_path / "seedbot.db")
    yield opened
    await opened.close()


async def press(store: Store, rating: str, token: str) -> str:
    return await record_feedback(
        store,
        platform="slack",
        workspace="T1",
        channel="C1",
        platform_message_id="1.5",
        user="U1",
        rating=rating,
        token=token,
    )


async def test_a_press_stores_what_the_token_says_about_the_answer(store: Store) -> None:
    assert len(SUBJECT.token) <= 60
    assert await press(store, "down", SUBJECT.token) == THANKS["down"]
    [kept] = await store.disliked_answers()
    assert (kept.reply_id, kept.effort, kept.tool_calls, kept.usd) == (41, "high", 3, Decimal("0.012345678"))
    assert (kept.platform_message_id, kept.user, kept.rating) == ("1.5", "U1", "down")


@pytest.mark.parametrize(
    ("rating", "token"),
    [
        ("meh", SUBJECT.token),
        ("up", "41:high:3"),
        ("up", "41:loud:3:0.1"),
        ("up", "x:high:3:0.1"),
        ("up", ""),
    ],
)
async def test_a_press_that_names_no_answer_records_nothing(store: Store, rating: str, token: str) -> None:
    assert await press(store, rating, token) == OUT_OF_DATE
    assert await store.feedback_rates("channel") == []
