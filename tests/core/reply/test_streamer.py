"""ReplyStreamer against an in-memory surface that enforces platform limits and answers 429s."""

from __future__ import annotations

import asyncio
import re
import time

import pytest

from core.llm.errors import OutOfCredits, StreamInterrupted
from core.llm.types import ContentDelta, Finish, ReasoningDelta
from core.reply.pacing import EditPacer, PacerRegistry
from core.reply.split import close_fence
from core.reply.surface import PlatformLimits
from tests.core.reply.helpers import (
    DISCORD,
    SLACK,
    answer_events,
    feed,
    make_streamer,
    run_reply,
    small,
    visible_texts,
    wait_until,
)
from tests.fakes.memory_surface import MemorySurface


def words(count: int) -> str:
    return " ".join(f"w{i}" for i in range(count))


# --- first token, coalescing, pacing ------------------------------------------------------------


@pytest.mark.parametrize("limits", [DISCORD, SLACK], ids=["in-message", "status"])
async def test_first_answer_token_is_shown_alone_without_waiting_for_more(limits):
    surface = MemorySurface(limits)
    streamer = make_streamer(surface)

    async def events():
        yield ReasoningDelta("Let me see.")
        yield ContentDelta("Hello")
        # Nothing more arrives until the platform shows the first token on its own.
        await wait_until(surface, lambda: any("Hello" in text for text in surface.texts))
        for piece in (" there", ", friend."):
            yield ContentDelta(piece)
        yield Finish("stop")

    result = await run_reply(streamer, events())
    first_answer = next(text for text in visible_texts(surface) if "Thinking" not in text)
    assert first_answer == "Hello"
    assert result.delivered and surface.texts == ["Hello there, friend."]


async def test_edits_are_coalesced_far_below_the_token_count():
    surface = MemorySurface(DISCORD)
    content = words(400)
    result = await run_reply(make_streamer(surface), feed(answer_events(content, size=3)))
    calls = [c for c in surface.calls if c.kind != "status"]
    assert len(calls) <= 10  # ~1,000 deltas
    assert result.delivered and surface.texts == [content]


@pytest.mark.parametrize("limits", [DISCORD, SLACK], ids=["discord-5-per-5s", "slack-50-per-min"])
async def test_published_pace_provokes_no_429_and_still_updates_live(limits):
    surface = MemorySurface(limits)
    content = words(300)
    result = await run_reply(make_streamer(surface), feed(answer_events(content, size=6), delay=0.004))
    assert surface.rate_limited == 0
    assert len(surface.edits) >= 4  # the answer grew in place, not just at the end
    assert result.delivered and surface.texts == [content]


async def test_replies_in_one_channel_share_the_pace():
    registry = PacerRegistry()
    first = MemorySurface(DISCORD)
    second = first.sibling()  # another reply in the same channel
    replies = [
        run_reply(
            make_streamer(surface, pacer=registry.for_channel(DISCORD, "C1")),
            feed(answer_events(words(150), size=4), delay=0.004),
        )
        for surface in (first, second)
    ]
    results = await asyncio.gather(*replies)
    assert first.rate_limited == 0
    assert all(result.delivered for result in results)
    assert first.texts == second.texts == [words(150)]


async def test_answer_text_does_not_wait_behind_a_thinking_line_in_a_busy_channel():
    limits = PlatformLimits("discord", 2000, edits_per_window=5, window_s=30.0)
    pacer = EditPacer.for_limits(limits)
    for _ in range(3):  # other replies used most of the window: thinking lines must wait ~30 s
        pacer.release(pacer.reserve(time.monotonic()), time.monotonic())
    surface = MemorySurface(limits)
    streamer = make_streamer(surface, pacer=pacer)

    async def events():
        yield ReasoningDelta("hmm")
        await asyncio.sleep(0.05)  # the thinking line is now waiting for a place
        yield ContentDelta("Here")
        await wait_until(surface, lambda: surface.texts == ["Here"])
        yield Finish("stop")

    result = await run_reply(streamer, events())
    assert visible_texts(surface) == ["Here"]  # the thinking line never got a place; the answer did
    assert result.delivered


# --- 429s and final delivery --------------------------------------------------------------------


async def test_a_429_mid_stream_slows_the_reply_instead_of_failing_it():
    surface = MemorySurface(DISCORD)
    streamer = make_streamer(surface)
    content = words(200)

    async def events():
        yield ContentDelta("w0")
        await wait_until(surface, lambda: bool(surface.texts) and "w0" in surface.texts[0])
        surface.rate_limit_next(3, retry_after=0.1)
        async for event in feed(answer_events(content[2:], size=5), delay=0.003):
            yield event

    result = await run_reply(streamer, events())
    assert streamer.stats.rate_limited == 3
    assert result.delivered and surface.texts == [content]
    # After each 429 nothing was sent to the channel before its Retry-After had passed.
    for index, call in enumerate(surface.calls):
        if call.outcome == "rate_limited":
            following = next(c for c in surface.calls[index + 1 :] if c.kind != "status")
            assert following.at >= call.at + 0.1


async def test_final_text_is_retried_through_429s_until_it_lands():
    surface = MemorySurface(DISCORD)
    streamer = make_streamer(surface)
    await streamer.begin()
    await streamer.consume(feed(answer_events("The answer is 42.")))
    surface.rate_limit_next(4, retry_after=0.05)
    result = await streamer.finish("complete", footer="low effort · 1.0 s")
    assert result.delivered and result.failure is None
    assert surface.texts == ["The answer is 42.\n\n_low effort · 1.0 s_"]
    assert streamer.stats.rate_limited == 4


@pytest.mark.parametrize("retry_after", [0.05, 30.0], ids=["many-short", "one-long"])
async def test_final_delivery_gives_up_at_the_deadline_and_says_so(retry_after):
    surface = MemorySurface(DISCORD)
    streamer = make_streamer(surface, deadline_s=0.3)
    await streamer.begin()
    await streamer.consume(feed(answer_events("Partial")))
    shown = surface.texts
    surface.rate_limit_next(10_000, retry_after=retry_after)
    result = await streamer.finish("complete", footer="footer")
    assert not result.delivered
    assert "rate limit" in (result.failure or "")
    assert result.text == "Partial\n\n_footer_"  # what the service stores and logs
    assert surface.texts == shown


async def test_a_refused_message_ends_live_edits_and_reports_undelivered():
    surface = MemorySurface(DISCORD)
    streamer = make_streamer(surface)

    async def events():
        yield ContentDelta("first words")
        await wait_until(surface, lambda: "first words" in "".join(surface.texts))
        surface.refuse_from_now("Unknown Message (the reply was deleted)")
        async for event in feed(answer_events(" and the rest", size=2), delay=0.002):
            yield event

    result = await run_reply(streamer, events())
    assert not result.delivered and "deleted" in (result.failure or "")
    assert streamer.content == "first words and the rest"  # the answer is still whole for the store


# --- long answers -------------------------------------------------------------------------------


async def test_long_answer_continues_in_new_messages_with_code_fences_reopened():
    limits = small(DISCORD, 200)
    surface = MemorySurface(limits)
    code = "\n".join(f"result_{i} = compute({i})" for i in range(30))
    content = f"{words(40)}\n\n```python\n{code}\n```\n\n{words(60)} 🇫🇷👍🏽 done."
    result = await run_reply(make_streamer(surface), feed(answer_events(content, size=7), delay=0.001))
    assert result.delivered
    assert len(surface.texts) > 3
    assert not [c for c in surface.calls if c.outcome == "refused"]  # never over the limit
    assert all(len(text) <= 200 and close_fence(text) == text for text in surface.texts)
    for text in surface.texts:
        if "result_" in text:  # every piece of the code is inside a python fence of its own message
            assert "```python\n" in text[: text.index("result_")]
    lines = [line for text in surface.texts for line in text.split("\n") if line.startswith("result_")]
    assert lines == code.split("\n")
    assert surface.texts[-1].endswith("🇫🇷👍🏽 done.")
    assert [ref.id for ref in result.refs] == list(surface.messages)


async def test_earlier_parts_are_not_re_edited_once_final():
    limits = small(DISCORD, 120)
    surface = MemorySurface(limits)
    content = "\n\n".join(words(12) for _ in range(12))
    await run_reply(make_streamer(surface), feed(answer_events(content, size=5), delay=0.002))
    final = dict(surface.messages)
    ids = list(final)
    posted_at = {post.message_id: post.at for post in surface.posts}
    assert len(ids) > 3
    for call in surface.edits:
        position = ids.index(call.message_id)
        if position + 1 < len(ids) and call.at >= posted_at[ids[position + 1]]:
            # Once the next message exists, this one is edited only to its final text.
            assert call.text == final[call.message_id]


# --- reasoning phase ----------------------------------------------------------------------------


async def test_thinking_line_counts_seconds_shows_an_excerpt_then_gives_way_to_the_answer():
    surface = MemorySurface(DISCORD)
    reasoning = [ReasoningDelta(f"step {i} *checks* <@U1> the `value`\\\n") for i in range(28)]
    events = [*reasoning, ContentDelta("The answer."), Finish("stop")]
    result = await run_reply(make_streamer(surface), feed(events, delay=0.05))
    texts = visible_texts(surface)
    assert texts[0] == "💭 _Thinking…_"
    ticking = [t for t in texts if re.fullmatch(r"💭 _Thinking… \d+ s_\n_.+_", t)]
    assert ticking, texts
    excerpt = ticking[-1].split("\n")[1]
    assert re.search(r"step \d+ checks @U1 the value_$", excerpt)  # latest reasoning, markup removed
    assert len(excerpt) <= 202
    assert result.delivered and surface.texts == ["The answer."]


async def test_reasoning_stays_hidden_when_not_enabled():
    surface = MemorySurface(DISCORD)
    events = [*(ReasoningDelta(f"secret {i} ") for i in range(25)), ContentDelta("Done."), Finish("stop")]
    await run_reply(make_streamer(surface, show_reasoning=False), feed(events, delay=0.05))
    assert not any("secret" in text for text in visible_texts(surface))
    assert any(re.fullmatch(r"💭 _Thinking… \d+ s_", text) for text in visible_texts(surface))


async def test_status_mode_keeps_thinking_out_of_the_message():
    surface = MemorySurface(SLACK)
    events = [*(ReasoningDelta(f"idea {i} ") for i in range(25)), ContentDelta("Answer."), Finish("stop")]
    result = await run_reply(make_streamer(surface), feed(events, delay=0.05))
    assert surface.statuses[0] == "Thinking…"
    assert any(re.fullmatch(r"Thinking… \d+ s — .*idea \d+", s or "") for s in surface.statuses)
    assert surface.statuses[-1] is None
    assert visible_texts(surface)[0] == "Answer."  # the first message is the answer itself
    assert result.delivered and surface.texts == ["Answer."]


async def test_without_begin_the_first_reasoning_shows_the_thinking_line():
    surface = MemorySurface(DISCORD)
    events = [ReasoningDelta("hmm"), ContentDelta("Yes."), Finish("stop")]
    await run_reply(make_streamer(surface), feed(events, delay=0.02), begin=False)
    assert visible_texts(surface)[0].startswith("💭 _Thinking…_")
    assert surface.texts == ["Yes."]


# --- finish: footer, notes, warnings, errors, stop ------------------------------------------------


async def test_footer_and_per_file_notes_follow_the_answer():
    surface = MemorySurface(DISCORD)
    result = await run_reply(
        make_streamer(surface),
        feed(answer_events("Two cats.")),
        footer="medium effort · 4.2 s · 1,272 tokens (877 reasoning) · $0.0033",
        notes=("⚠️ clip.mov: longer than 180 s, not sent",),
    )
    assert result.text == (
        "Two cats.\n\n⚠️ clip.mov: longer than 180 s, not sent\n\n"
        "_medium effort · 4.2 s · 1,272 tokens (877 reasoning) · $0.0033_"
    )
    assert surface.texts == [result.text]


async def test_error_before_any_text_shows_a_short_explanation():
    surface = MemorySurface(DISCORD)
    result = await run_reply(make_streamer(surface), feed([OutOfCredits("403")]))
    assert surface.texts == [f"⚠️ {OutOfCredits('403')}"]
    assert "out of credits" in result.text


async def test_error_mid_stream_keeps_the_partial_answer_and_warns():
    surface = MemorySurface(DISCORD)
    events = [ContentDelta("The first half"), ContentDelta(" of it"), StreamInterrupted("connection reset")]
    result = await run_reply(make_streamer(surface), feed(events, delay=0.01))
    assert surface.texts == [
        f"The first half of it\n\n⚠️ Interrupted: {StreamInterrupted('connection reset')}"
    ]
    assert result.delivered


async def test_error_inside_a_code_block_closes_it_before_the_warning():
    surface = MemorySurface(DISCORD)
    events = [ContentDelta("```py\nx = 1\ny ="), StreamInterrupted()]
    await run_reply(make_streamer(surface), feed(events))
    assert surface.texts[0].startswith("```py\nx = 1\ny =\n```\n\n⚠️ Interrupted:")


async def test_stream_ending_without_finish_is_interrupted():
    surface = MemorySurface(DISCORD)
    streamer = make_streamer(surface)
    outcome = await streamer.consume(feed([ContentDelta("cut sh")]))
    assert outcome == "interrupted"
    result = await streamer.finish(outcome)
    assert surface.texts == ["cut sh\n\n⚠️ Interrupted: The answer was cut off before the model finished."]
    assert result.delivered


async def test_a_failure_after_finish_still_counts_as_complete():
    surface = MemorySurface(DISCORD)
    streamer = make_streamer(surface)
    events = [ContentDelta("Whole answer."), Finish("stop"), StreamInterrupted("lost the usage chunk")]
    assert await streamer.consume(feed(events)) == "complete"


@pytest.mark.parametrize(
    ("content", "reason", "warning"),
    [
        ("Half an ans", "length", "⚠️ The answer reached the token limit and may be incomplete."),
        ("", "length", "⚠️ The model spent its whole token budget reasoning and wrote no answer."),
        ("", "content_filter", "⚠️ The answer was stopped by the content filter."),
        ("", "stop", "⚠️ The model returned an empty answer."),
    ],
)
async def test_finish_reasons_that_need_a_word(content, reason, warning):
    surface = MemorySurface(DISCORD)
    events = [ReasoningDelta("thinking"), *([ContentDelta(content)] if content else []), Finish(reason)]
    await run_reply(make_streamer(surface), feed(events))
    assert surface.texts == [f"{content}\n\n{warning}" if content else warning]


async def test_stop_cancels_consumption_and_keeps_the_partial_text():
    surface = MemorySurface(DISCORD)
    streamer = make_streamer(surface)
    closed: list[bool] = []
    endless = feed((ContentDelta(f"w{i} ") for i in range(100_000)), delay=0.005, closed=closed)
    await streamer.begin()
    task = asyncio.create_task(streamer.consume(endless))
    await wait_until(surface, lambda: "w3" in "".join(surface.texts))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    result = await streamer.finish("stopped")
    assert closed == [True]  # the upstream stream was closed
    partial = streamer.content.rstrip()
    assert surface.texts == [f"{partial}\n\n⏹️ Stopped."]
    assert result.delivered
    calls = len(surface.calls)
    await asyncio.sleep(0.2)
    assert len(surface.calls) == calls  # nothing edits after finish


async def test_stop_before_any_answer_replaces_the_thinking_line():
    surface = MemorySurface(DISCORD)
    streamer = make_streamer(surface)
    await streamer.begin()
    assert [ref.id for ref in streamer.refs] == list(surface.messages)  # known before the answer ends
    thinking = feed((ReasoningDelta("hm ") for _ in range(1000)), delay=0.01)
    task = asyncio.create_task(streamer.consume(thinking))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await streamer.finish("stopped")
    assert surface.texts == ["⏹️ Stopped."]
