"""How answers are written: native streaming, the post-and-edit fallback, stream expiry, forced edit
mode, Slack's rate limits (429 + Retry-After), long answers and the thinking status."""

from __future__ import annotations

import pytest

from tests.fakes.model_server import FakeModelServer, Script
from tests.slack.conftest import StartBot, World

SLOW = Script(content="".join(f"part {n}. " for n in range(60)), chunk_chars=6, delay_s=0.01)
FULL = SLOW.content.strip()


async def test_answers_in_threads_stream_natively(
    start_bot: StartBot, world: World, model_server: FakeModelServer
):
    bot = await start_bot()
    model_server.enqueue(SLOW)
    ts = await world.slack.post(world.alice, world.general, world.mention("count"))
    await bot.idle()
    [reply] = world.slack.bot_messages(world.general, thread_ts=ts)
    assert reply.text.startswith(FULL)
    assert not reply.streaming
    start = world.slack.calls_to("chat.startStream")[0].args
    assert (start["recipient_user_id"], start["recipient_team_id"]) == (world.alice, "T0FAKE")
    assert world.slack.calls_to("chat.stopStream")
    [update] = world.slack.calls_to("chat.update")  # only to add the feedback buttons, once it ended
    assert update.args["text"] == reply.text and update.args["blocks"][-1]["type"] == "context_actions"


async def test_when_native_streaming_is_refused_the_answer_is_posted_and_edited(
    start_bot: StartBot, world: World, model_server: FakeModelServer
):
    bot = await start_bot()
    world.slack.streaming_refusal = "feature_not_enabled"
    model_server.enqueue(SLOW, Script(content="Second."))
    first = await world.slack.post(world.alice, world.general, world.mention("count"))
    await bot.idle()
    [reply] = world.slack.bot_messages(world.general, thread_ts=first)
    assert reply.text.startswith(FULL) and reply.markdown
    *edits, buttons = world.slack.calls_to("chat.update")
    assert edits and all("markdown_text" in call.args for call in edits)
    assert buttons.args["blocks"][-1]["type"] == "context_actions"
    second = await world.slack.post(world.alice, world.general, world.mention("again"))
    await bot.idle()
    assert world.slack.bot_messages(world.general, thread_ts=second)[0].text.startswith("Second.")
    assert len(world.slack.calls_to("chat.startStream")) == 1  # refused once, not asked again


async def test_an_expired_native_stream_continues_with_edits(
    start_bot: StartBot, world: World, model_server: FakeModelServer
):
    bot = await start_bot()
    model_server.enqueue(Script(content=SLOW.content, chunk_chars=6, delay_s=0.03))
    ts = await world.slack.post(world.alice, world.general, world.mention("count slowly"))
    await world.slack.wait_for(lambda: world.slack.bot_messages(world.general, thread_ts=ts))
    world.slack.expire_streams()
    await bot.idle()
    [reply] = world.slack.bot_messages(world.general, thread_ts=ts)
    assert reply.text.startswith(FULL)
    errors = [call.error for call in world.slack.calls if call.method.startswith("chat.")]
    assert "message_not_in_streaming_state" in errors
    assert world.slack.calls_to("chat.update")[-1].error is None


async def test_slack_stream_mode_edit_never_streams_natively(
    start_bot: StartBot, world: World, model_server: FakeModelServer
):
    bot = await start_bot(slack_stream_mode="edit")
    model_server.enqueue(SLOW)
    ts = await world.slack.post(world.alice, world.general, world.mention("count"))
    await bot.idle()
    assert world.slack.calls_to("chat.startStream") == []
    [reply] = world.slack.bot_messages(world.general, thread_ts=ts)
    assert reply.text.startswith(FULL)
    assert [call.args["thread_ts"] for call in world.slack.calls_to("chat.postMessage")] == [ts]


async def test_a_rate_limited_edit_waits_out_retry_after_and_the_answer_still_lands(
    start_bot: StartBot, world: World, model_server: FakeModelServer
):
    bot = await start_bot(slack_stream_mode="edit")
    world.slack.fail_next("chat.update", "ratelimited", status=429, retry_after=1)
    model_server.enqueue(SLOW)
    ts = await world.slack.post(world.alice, world.general, world.mention("count"))
    await bot.idle()
    updates = world.slack.calls_to("chat.update")
    assert updates[0].status == 429
    assert updates[-1].error is None
    [reply] = world.slack.bot_messages(world.general, thread_ts=ts)
    assert reply.text.startswith(FULL)


async def test_a_rate_limited_stream_append_is_retried_with_the_text_it_missed(
    start_bot: StartBot, world: World, model_server: FakeModelServer
):
    bot = await start_bot()
    world.slack.fail_next("chat.appendStream", "ratelimited", status=429, retry_after=1)
    model_server.enqueue(Script(content=SLOW.content, chunk_chars=6, delay_s=0.03))
    ts = await world.slack.post(world.alice, world.general, world.mention("count"))
    await bot.idle()
    appends = world.slack.calls_to("chat.appendStream")
    assert any(call.status == 429 for call in appends)
    [reply] = world.slack.bot_messages(world.general, thread_ts=ts)
    # Nothing lost, nothing doubled: the message reads exactly like the answer.
    assert reply.text.startswith(FULL)
    assert reply.text.count("part 59.") == 1


@pytest.mark.parametrize("mode", ["native", "edit"])
async def test_an_answer_longer_than_one_message_continues_in_the_thread(
    start_bot: StartBot, world: World, model_server: FakeModelServer, mode: str
):
    bot = await start_bot(slack_stream_mode=mode)
    paragraphs = [f"Paragraph {n}: " + "lorem ipsum " * 40 for n in range(40)]
    model_server.enqueue(Script(content="\n\n".join(paragraphs), chunk_chars=300, delay_s=0.005))
    ts = await world.slack.post(world.alice, world.general, world.mention("write an essay"))
    await bot.idle()
    replies = world.slack.bot_messages(world.general, thread_ts=ts)
    assert len(replies) == 2
    assert all(len(reply.text) <= 12_000 and not reply.streaming for reply in replies)
    written = "\n\n".join(reply.text for reply in replies)
    assert all(written.count(f"Paragraph {n}:") == 1 for n in range(40))
    assert len(world.slack.calls_to("chat.startStream")) == (2 if mode == "native" else 0)


async def test_a_channel_problem_is_not_mistaken_for_streaming_being_refused(
    start_bot: StartBot, world: World, model_server: FakeModelServer
):
    bot = await start_bot()
    world.slack.fail_next("chat.startStream", "not_in_channel")
    world.slack.fail_next("chat.postMessage", "not_in_channel")
    await world.slack.post(world.alice, world.general, world.mention("first"))
    await bot.idle()
    second = await world.slack.post(world.alice, world.general, world.mention("second"))
    await bot.idle()
    assert [call.error for call in world.slack.calls_to("chat.startStream")] == ["not_in_channel", None]
    assert world.slack.bot_messages(world.general, thread_ts=second)


async def test_top_level_dm_answers_show_thinking_in_the_message_not_as_a_status(
    start_bot: StartBot, world: World, model_server: FakeModelServer
):
    bot = await start_bot()
    model_server.enqueue(Script(content="Done.", reasoning="hmm " * 50, delay_s=0.01))
    dm = world.slack.open_dm(world.alice)
    await world.slack.post(world.alice, dm, "think hard")
    await bot.idle()
    assert world.slack.statuses == []
    assert world.slack.calls_to("chat.startStream") == []  # native streams need a thread
    first_post = world.slack.calls_to("chat.postMessage")[0].args["markdown_text"]
    assert "Thinking" in first_post
    [reply] = world.slack.bot_messages(dm)
    assert reply.text.startswith("Done.")


async def test_when_the_thread_status_is_refused_later_answers_think_in_the_message(
    start_bot: StartBot, world: World, model_server: FakeModelServer
):
    bot = await start_bot(slack_stream_mode="edit")
    world.slack.status_refusal = "not_allowed"
    model_server.enqueue(Script(content="One."), Script(content="Two.", reasoning="hmm " * 50, delay_s=0.01))
    await world.slack.post(world.alice, world.general, world.mention("first"))
    await bot.idle()
    # (In another channel, whose edit pace the first answer did not use.)
    second = await world.slack.post(world.alice, world.random, world.mention("second"))
    await bot.idle()
    assert len(world.slack.calls_to("assistant.threads.setStatus")) == 1
    posts = [
        call.args for call in world.slack.calls_to("chat.postMessage") if call.args["thread_ts"] == second
    ]
    assert "Thinking" in posts[0]["markdown_text"]
    assert world.slack.bot_messages(world.random, thread_ts=second)[0].text.startswith("Two.")


async def test_a_reply_never_notifies_a_whole_channel(
    start_bot: StartBot, world: World, model_server: FakeModelServer
):
    bot = await start_bot()
    model_server.enqueue(Script(content="Hey <!channel> and <!here|here>, ask <!subteam^S0ENG|@eng>."))
    ts = await world.slack.post(world.alice, world.general, world.mention("announce it"))
    await bot.idle()
    [reply] = world.slack.bot_messages(world.general, thread_ts=ts)
    assert reply.text.startswith("Hey @channel and @here, ask @eng.")
