"""Confirmation requests: only the asker's first answer before the expiry counts."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from core.tools.confirm import ConfirmationRequest, PendingConfirmation, preview_arguments


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
