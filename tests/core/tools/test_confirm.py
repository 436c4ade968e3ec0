"""Confirmation requests: only the asker's first answer before the expiry counts."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from core.tools.confirm import (
    ANSWERED,
    NOT_YOURS,
    ConfirmationRequest,
    PendingConfirmation,
    ShownQuestions,
    preview_arguments,
)


def request(seconds: float = 5.0) -> ConfirmationRequest:
    expires = datetime.now(UTC) + timedelta(seconds=seconds)
    return ConfirmationRequest("r1", "call-1", "files__write", '{"path": "a.txt"}', "U1", expires)


async def test_the_askers_first_answer_decides_and_later_clicks_do_not_count():
    pending = PendingConfirmation(request())
    assert pending.answer(True, "U2") is False  # someone else
    assert pending.answer(False, "U1") is True
    assert pending.answer(True, "U1") is False  # already decided
    decision = await pending.wait()
    assert (decision.outcome, decision.user_id) == ("declined", "U1")
    assert decision.summary().startswith("Declined by U1 at ") and decision.summary().endswith(" UTC")


async def test_no_answer_by_the_expiry_is_expired_and_a_late_click_is_ignored():
    pending = PendingConfirmation(request(seconds=0.05))
    decision = await asyncio.wait_for(pending.wait(), 2)
    assert (decision.outcome, decision.user_id) == ("expired", None)
    assert "did not confirm in time" in decision.tool_text()
    assert pending.answer(True, "U1") is False
    late = PendingConfirmation(request(seconds=5))
    assert late.answer(True, "U1", at=late.request.expires_at + timedelta(seconds=1)) is False


async def test_a_cancelled_wait_ends_as_cancelled_and_still_raises():
    pending = PendingConfirmation(request())
    waiter = asyncio.create_task(pending.wait())
    await asyncio.sleep(0.01)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert pending.decision.outcome == "cancelled"


def test_the_question_shows_the_arguments_compactly_and_cut():
    assert preview_arguments('{"note":"buy milk",  "urgent":true}') == '{"note": "buy milk", "urgent": true}'
    assert preview_arguments("not json") == "not json"
    assert len(preview_arguments('{"text": "' + "x" * 1000 + '"}')) == 300
    assert request().question == 'Run files__write with {"path": "a.txt"}?'


async def test_a_click_that_comes_back_before_the_question_is_posted_still_finds_its_request():
    shown: ShownQuestions[str] = ShownQuestions()
    pending = PendingConfirmation(request())

    async def post() -> str:
        # The platform delivers the asker's click while the post is still on its way back.
        assert shown.click("r1", True, "U1") is None
        return "message-1"

    assert await shown.ask(pending, post) is True
    assert (await pending.wait()).outcome == "approved"
    assert shown.decided("r1") == "message-1"
    assert shown.decided("r1") is None  # forgotten once decided
    assert shown.click("r1", True, "U1") == ANSWERED


async def test_only_the_asker_may_answer_a_question_and_one_that_was_not_shown_takes_no_clicks():
    shown: ShownQuestions[str] = ShownQuestions()
    pending = PendingConfirmation(request())

    async def post() -> str:
        return "message-1"

    await shown.ask(pending, post)
    assert shown.click("r1", True, "U2") == NOT_YOURS
    assert not pending.decided

    async def refused() -> None:
        return None  # the platform refused the post

    other = PendingConfirmation(ConfirmationRequest("r2", "c2", "t", "{}", "U1", request().expires_at))
    assert await shown.ask(other, refused) is False
    assert shown.click("r2", True, "U1") == ANSWERED
    assert shown.decided("r2") is None


async def test_a_decided_question_says_who_decided_and_when_in_the_platforms_own_names():
    pending = PendingConfirmation(request())
    pending.answer(True, "U1", at=datetime(2026, 1, 2, 14, 3, tzinfo=UTC))
    decision = await pending.wait()
    mention = lambda user: f"<@{user}>"  # noqa: E731
    assert request().decided_text(decision, mention) == (
        '✅ Run files__write with {"path": "a.txt"}? Approved by <@U1> at 14:03 UTC.'
    )
    assert request().who_answers(mention) == "Only <@U1> can answer."
    expired = PendingConfirmation(request(seconds=0))
    assert request().decided_text(await expired.wait()).startswith("⏹️ Run files__write")
