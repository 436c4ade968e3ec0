"""How messages carried inside a message, and a conversation's title, read on every platform."""

from __future__ import annotations

from core.history import title_of, with_quoted


def test_messages_carried_inside_one_follow_its_text_each_with_who_wrote_it():
    quoted = [("Ann", "the plan is ready"), ("", "no author known")]
    assert with_quoted("what do you think?", "shared message", quoted) == (
        "what do you think?\n[shared message from Ann] the plan is ready\n[shared message] no author known"
    )


def test_a_message_that_only_carries_another_is_that_other_alone_and_empty_parts_leave_no_blank_lines():
    assert with_quoted("", "forwarded message", [("", "hello")]) == "[forwarded message] hello"
    assert with_quoted("", "forwarded message", [("", "")]) == "[forwarded message]"
    assert with_quoted("just this", "forwarded message", []) == "just this"


def test_a_title_is_the_first_line_of_the_question_cut_to_size_or_the_default():
    assert title_of("  Plan the offsite  \nwith details below", 60, "Question") == "Plan the offsite"
    assert title_of("x" * 100, 90, "Seed") == "x" * 90
    assert title_of("", 60, "Question") == "Question"
    assert title_of("   \nsecond line", 60, "Question") == "Question"
