"""The footer under an answer: effort, time, tokens, cost, extra notes."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core.llm.types import Usage
from core.reply.footer import format_duration, format_footer


def test_full_footer_reads_like_the_spec():
    usage = Usage(prompt_tokens=900, completion_tokens=1272, total_tokens=2172, reasoning_tokens=877)
    footer = format_footer("medium", 4.23, usage, Decimal("0.0033265"), ["using the last 12 messages"])
    assert (
        footer
        == "medium effort · 4.2 s · 1,272 tokens (877 reasoning) · $0.0033 · using the last 12 messages"
    )


def test_cached_prompt_tokens_are_shown_when_there_are_any():
    usage = Usage(prompt_tokens=900, completion_tokens=10, cached_tokens=640)
    assert format_footer("low", None, usage, None) == "low effort · 10 tokens · 640 prompt tokens cached"


def test_unknown_pieces_are_left_out():
    assert format_footer(None, 1.0, None, None) == "1.0 s"
    assert format_footer("low", None, Usage(completion_tokens=12), None) == "low effort · 12 tokens"
    assert format_footer(None, None, None, None, ["", "note"]) == "note"


@pytest.mark.parametrize(
    ("seconds", "shown"), [(0.04, "0.0 s"), (59.2, "59.2 s"), (125, "2 min 5 s"), (120, "2 min")]
)
def test_durations(seconds: float, shown: str):
    assert format_duration(seconds) == shown
