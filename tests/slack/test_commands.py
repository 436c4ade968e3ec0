"""`/seed` and its subcommands, and the "Summarize with Seed" message shortcut."""

from __future__ import annotations

import pytest

from bots.slack.bot import SLACK
from bots.slack.commands import HELP, SHORTCUT_ID, USAGE
from bots.slack.surface import PRIVATE_CUT
from core.admission import NOT_ENABLED
from core.commands import admins_only
from core.prompts import MEDIA_SUMMARY_INSTRUCTION, SUMMARY_INSTRUCTION
from tests.core.media.samples import encode, photo, write_video
from tests.fakes.model_server import FakeModelServer, Script
from tests.fakes.slack import TEAM_ID, FakeSlack
from tests.slack.conftest import StartBot, World, model_parts, model_prompt, reply_text

ADMINS_ONLY = admins_only(SLACK)


def private_texts(slack: FakeSlack, user: str) -> list[str]:
    return [notice.text for notice in slack.ephemerals_for(user)]


async def test_help_and_an_empty_command_show_what_seed_can_do(start_bot: StartBot, world: World):
    await start_bot()
    await world.slack.slash(world.alice, world.general, "help")
    await world.slack.slash(world.alice, world.general, "")
    assert private_texts(world.slack, world.alice) == [HELP, HELP]


@pytest.mark.parametrize(
    "text",
    [
        "effort extreme",
        "effort high low",
        "effort low channel workspace",
        "cost forever",
        "cost me channel",
        "summarize lots",
        "summarize 0",
        "summarize 30d",
        "-p",
        "forget everything",
    ],
)
async def test_malformed_subcommands_get_the_usage_line_privately(
    start_bot: StartBot, world: World, model_server: FakeModelServer, text: str
):
    bot = await start_bot()
    await world.slack.slash(world.alice, world.general, text)
    await bot.idle()
    [reply] = private_texts(world.slack, world.alice)
    assert reply.endswith(USAGE)
    assert model_server.requests == []
    assert world.slack.bot_messages(world.general) == []


async def test_seed_question_quotes_it_names_the_asker_and_streams_the_answer_in_the_thread(
    start_bot: StartBot, world: World, model_server: FakeModelServer
):
    bot = await start_bot()
    model_server.enqueue(Script(content="Four."), Script(content="Because 2+2=4."))
    await world.slack.slash(world.alice, world.general, "what is 2+2? <!channel>")
    await bot.idle()
    header, answer = world.slack.bot_messages(world.general)
    assert header.text.startswith(f"<@{world.alice}> asked:\n> what is 2+2? &lt;!channel&gt;")
    assert answer.thread_ts == header.ts and answer.text.startswith("Four.")
    assert "what is 2+2?" in model_prompt(model_server)
    # Replies in that thread continue the conversation.
    await world.slack.post(world.bob, world.general, "why?", thread_ts=header.ts)
    await bot.idle()
    assert "what is 2+2?" in model_prompt(model_server) and "why?" in model_prompt(model_server)


async def test_seed_p_answers_privately(start_bot: StartBot, world: World, model_server: FakeModelServer):
    bot = await start_bot()
    model_server.enqueue(Script(content="A secret answer."))
    await world.slack.slash(world.alice, world.general, "-p tell me a secret")
    await bot.idle()
    assert world.slack.bot_messages(world.general) == []
    texts = private_texts(world.slack, world.alice)
    assert texts[0].startswith("Thinking")
    assert texts[-1].startswith("A secret answer.")
    assert "tell me a secret" in model_prompt(model_server)
    assert private_texts(world.slack, world.bob) == []


async def test_a_private_answer_too_long_for_the_response_url_says_where_it_was_cut(
    start_bot: StartBot, world: World, model_server: FakeModelServer
):
    bot = await start_bot()
    paragraphs = [f"Paragraph {n}: " + "lorem ipsum " * 90 for n in range(70)]  # ~6 messages' worth
    model_server.enqueue(Script(content="\n\n".join(paragraphs), chunk_chars=2000))
    await world.slack.slash(world.alice, world.general, "-p write a book")
    await bot.idle()
    [ack, *parts] = private_texts(world.slack, world.alice)
    assert ack.startswith("Thinking") and len(parts) == 5  # all the response_url takes
    assert all(len(part) <= 12_000 for part in parts)
    assert "Paragraph 0:" in parts[0] and "Paragraph 69:" not in parts[-1]
    assert parts[-1].endswith(PRIVATE_CUT)


async def test_effort_can_be_shown_set_for_yourself_and_reset(
    start_bot: StartBot, world: World, model_server: FakeModelServer
):
    bot = await start_bot()
    for text in ("effort", "effort high", "effort"):
        await world.slack.slash(world.alice, world.general, text)
        await bot.idle()
    await world.slack.post(world.alice, world.general, world.mention("think hard"))
    await bot.idle()
    assert model_server.requests[-1].body["reasoning_effort"] == "high"
    await world.slack.slash(world.alice, world.general, "effort default")
    await bot.idle()
    shown = private_texts(world.slack, world.alice)
    assert "*medium* (from the default)" in shown[0]
    assert shown[1] == "Reasoning effort for you is now *high*."
    assert "*high* (from your own setting)" in shown[2]
    assert shown[3] == "Reasoning effort for you is now back to the default."


async def test_admins_set_budgets_and_everyone_else_is_refused_or_limited(
    start_bot: StartBot, world: World, model_server: FakeModelServer
):
    bot = await start_bot()
    for user, text in [
        (world.alice, "budget daily 5"),
        (world.boss, "budget daily $0.0001"),
        (world.boss, "budget monthly lots"),
        (world.alice, "budget"),
    ]:
        await world.slack.slash(user, world.general, text)
        await bot.idle()
    assert private_texts(world.slack, world.alice)[0] == ADMINS_ONLY
    boss = private_texts(world.slack, world.boss)
    assert boss[0].startswith("Spending limits here: $0.0001 per person per day")
    assert "US dollars" in boss[1]
    assert "$0.0001 per person per day" in private_texts(world.slack, world.alice)[1]
    root = await world.slack.post(world.alice, world.general, world.mention("expensive question"))
    await bot.idle()
    assert model_server.requests == []
    assert (
        "daily budget of $0.0001 reached" in world.slack.bot_messages(world.general, thread_ts=root)[-1].text
    )
    await world.slack.slash(world.boss, world.general, "budget daily default")
    await bot.idle()
    assert private_texts(world.slack, world.boss)[-1].startswith("Spending limits here: unlimited per person")


async def test_admins_give_a_channel_its_own_instructions(
    start_bot: StartBot, world: World, model_server: FakeModelServer
):
    bot = await start_bot()
    for user, text in [(world.alice, "prompt Be terse."), (world.boss, "prompt Answer in French, tersely.")]:
        await world.slack.slash(user, world.general, text)
        await bot.idle()
    assert private_texts(world.slack, world.alice) == [ADMINS_ONLY]
    assert "This channel's instructions" in private_texts(world.slack, world.boss)[0]
    await world.slack.post(world.bob, world.general, world.mention("hello"))
    await bot.idle()
    assert model_server.requests[-1].body["messages"][0]["content"] == "Answer in French, tersely."
    await world.slack.slash(world.boss, world.general, "prompt default")
    await bot.idle()
    assert "(the default)" in private_texts(world.slack, world.boss)[-1]


async def test_only_admins_set_the_channels_effort(
    start_bot: StartBot, world: World, model_server: FakeModelServer
):
    bot = await start_bot()
    await world.slack.slash(world.alice, world.general, "effort low channel")
    await bot.idle()
    assert private_texts(world.slack, world.alice) == [ADMINS_ONLY]
    await world.slack.slash(world.boss, world.general, "effort low channel")
    await bot.idle()
    assert private_texts(world.slack, world.boss) == ["Reasoning effort for this channel is now *low*."]
    await world.slack.post(world.bob, world.general, world.mention("quick one"))
    await bot.idle()
    assert model_server.requests[-1].body["reasoning_effort"] == "low"


async def test_only_admins_set_the_workspaces_effort(
    start_bot: StartBot, world: World, model_server: FakeModelServer
):
    bot = await start_bot()
    await world.slack.slash(world.alice, world.general, "effort high workspace")
    await world.slack.slash(world.boss, world.general, "effort high workspace")
    await bot.idle()
    assert private_texts(world.slack, world.alice) == [ADMINS_ONLY]
    assert private_texts(world.slack, world.boss) == ["Reasoning effort for this workspace is now *high*."]
    await world.slack.slash(world.bob, world.random, "effort")
    await world.slack.post(world.bob, world.random, world.mention("anywhere"))
    await bot.idle()
    assert "*high* (from this workspace's setting)" in private_texts(world.slack, world.bob)[0]
    assert model_server.requests[-1].body["reasoning_effort"] == "high"


async def test_cost_reports_spend_privately_with_its_chart_in_the_dm_and_admins_see_top_spenders(
    start_bot: StartBot, world: World, model_server: FakeModelServer
):
    bot = await start_bot()
    await world.slack.post(world.alice, world.general, world.mention("hello"))
    await bot.idle()
    await world.slack.slash(world.alice, world.general, "cost")
    await world.slack.slash(world.boss, world.general, "cost workspace all")
    await bot.idle()
    [mine] = private_texts(world.slack, world.alice)
    assert "1 request" in mine and "$" in mine and "Top spenders" not in mine
    assert mine.endswith("\n\n📈 A chart of the last 30 days is in your direct messages with me.")
    [everyone] = private_texts(world.slack, world.boss)
    assert "Top spenders" in everyone and f"<@{world.alice}>" in everyone

    [upload] = [u for u in world.slack.uploads.values() if u.channel == world.slack.open_dm(world.alice)]
    assert (upload.filename, upload.title) == ("spend.png", "Spend per day, last 30 days")
    assert upload.data is not None and upload.data.startswith(b"\x89PNG\r\n\x1a\n")
    [shared] = world.slack.bot_messages(upload.channel)
    assert [file["id"] for file in shared.files] == [upload.id]


@pytest.mark.parametrize("refusal", ["no files:write scope", "no im:write scope", "upload refused"])
async def test_cost_falls_back_to_text_only_when_slack_refuses_the_chart(
    start_bot: StartBot, world: World, model_server: FakeModelServer, refusal: str
):
    bot = await start_bot()
    if refusal == "upload refused":
        world.slack.fail_next("files.completeUploadExternal", "not_allowed")
    else:
        world.slack.scopes.discard(refusal.split()[1])
    await world.slack.slash(world.alice, world.general, "cost")
    await bot.idle()
    [report] = private_texts(world.slack, world.alice)
    assert "0 requests" in report and "direct messages" not in report
    assert not [upload for upload in world.slack.uploads.values() if upload.channel is not None]


async def test_summarize_sums_up_recent_messages_and_shared_media_in_a_thread(
    start_bot: StartBot, world: World, model_server: FakeModelServer
):
    bot = await start_bot()
    for n in range(5):
        await world.slack.post(world.bob, world.general, f"update number {n}")
    image = world.slack.add_file("chart.png", encode(photo(64, 48), "PNG"), "image/png", owner=world.bob)
    await world.slack.post(world.bob, world.general, "the chart", files=[image])
    await world.slack.slash(world.alice, world.general, "summarize 3")
    await bot.idle()
    prompt = model_prompt(model_server)
    assert "update number 4" in prompt and "the chart" in prompt
    assert "update number 2" not in prompt  # only the last 3 messages
    assert SUMMARY_INSTRUCTION in prompt
    assert len(model_parts(model_server, "image_url")) == 1
    header = world.slack.bot_messages(world.general)[0]
    assert header.text == f"<@{world.alice}> asked me to summarize the last 3 messages here."
    assert world.slack.bot_messages(world.general, thread_ts=header.ts)


async def share_a_busy_channel(world: World, tmp_path) -> None:
    """30 messages in #general; 8 of them carry an image, one a video."""
    clip = write_video(tmp_path / "demo.mp4", seconds=1, width=64, height=48).read_bytes()
    for n in range(30):
        files = []
        if n % 4 == 1:
            files = [
                world.slack.add_file(
                    f"shot{n}.png", encode(photo(40 + n, 30), "PNG"), "image/png", owner=world.bob
                )
            ]
        if n == 20:
            files = [world.slack.add_file("demo.mp4", clip, "video/mp4", owner=world.alice)]
        author = world.alice if n == 20 else world.bob
        await world.slack.post(author, world.general, f"message {n}", files=files)


async def test_a_summary_sends_every_image_and_video_shared_in_its_range(
    start_bot: StartBot, world: World, model_server: FakeModelServer, tmp_path
):
    bot = await start_bot()
    await share_a_busy_channel(world, tmp_path)
    await world.slack.slash(world.alice, world.general, "summarize 30")
    await bot.idle()
    assert len(model_parts(model_server, "image_url")) == 8
    assert len(model_parts(model_server, "video_url")) == 1
    prompt = model_prompt(model_server)
    assert "Bob: message 29" in prompt and "Alice: message 20" in prompt  # who shared what
    header = world.slack.bot_messages(world.general)[0]
    assert "not shown" not in reply_text(world.slack.bot_messages(world.general, thread_ts=header.ts))


async def test_past_the_summary_media_budget_the_newest_win_and_the_footer_says_so(
    start_bot: StartBot, world: World, model_server: FakeModelServer, tmp_path
):
    bot = await start_bot(summary_max_images=3)
    await share_a_busy_channel(world, tmp_path)
    await world.slack.slash(world.alice, world.general, "summarize 30")
    await bot.idle()
    images = model_parts(model_server, "image_url")
    assert len(images) == 3
    prompt = model_prompt(model_server)
    assert "[earlier image: shot1.png]" in prompt and "[earlier image: shot29.png]" not in prompt
    header = world.slack.bot_messages(world.general)[0]
    answer = reply_text(world.slack.bot_messages(world.general, thread_ts=header.ts))
    assert "5 older images not shown" in answer


async def test_summarize_media_covers_only_the_files_shared_and_who_shared_them(
    start_bot: StartBot, world: World, model_server: FakeModelServer, tmp_path
):
    bot = await start_bot()
    await share_a_busy_channel(world, tmp_path)
    await world.slack.slash(world.alice, world.general, "summarize media 7d")
    await bot.idle()
    prompt = model_prompt(model_server)
    assert "message 20" in prompt and "message 21" in prompt and "message 2\n" not in prompt
    assert "message 3" not in prompt.replace("message 30", "")  # no file: left out
    assert MEDIA_SUMMARY_INSTRUCTION in prompt
    header = world.slack.bot_messages(world.general)[0]
    assert (
        header.text == f"<@{world.alice}> asked me to summarize what was shared in the last 168 hours here."
    )


async def test_summarize_by_hours_reads_that_window(
    start_bot: StartBot, world: World, model_server: FakeModelServer
):
    bot = await start_bot()
    await world.slack.post(world.bob, world.general, "news from today")
    await world.slack.slash(world.alice, world.general, "summarize 24h")
    await bot.idle()
    [history_call] = world.slack.calls_to("conversations.history")
    assert float(history_call.args["oldest"]) > 0
    assert "news from today" in model_prompt(model_server)


async def test_summarize_where_the_bot_cannot_read_says_how_to_fix_it(start_bot: StartBot, world: World):
    bot = await start_bot()
    elsewhere = world.slack.add_channel("secret", members=[world.alice], bot_member=False)
    await world.slack.slash(world.alice, elsewhere, "summarize")
    await bot.idle()
    assert "/invite @Seed" in private_texts(world.slack, world.alice)[0]


async def test_summarize_behind_a_long_rate_limit_says_so_instead_of_waiting(
    start_bot: StartBot, world: World
):
    bot = await start_bot()
    world.slack.fail_next("conversations.history", "ratelimited", status=429, retry_after=60)
    await world.slack.slash(world.alice, world.general, "summarize")
    await bot.idle()
    assert private_texts(world.slack, world.alice) == [
        "Slack is rate limiting the bot here right now; try again in 60 s."
    ]
    assert len(world.slack.calls_to("conversations.history")) == 1  # not retried after a minute


async def test_a_question_where_the_bot_cannot_post_says_how_to_fix_it(
    start_bot: StartBot, world: World, model_server: FakeModelServer
):
    bot = await start_bot()
    elsewhere = world.slack.add_channel("secret", members=[world.alice], bot_member=False)
    await world.slack.slash(world.alice, elsewhere, "what is 2+2?")
    await bot.idle()
    [notice] = private_texts(world.slack, world.alice)
    assert "(not_in_channel)" in notice and "/invite @Seed" in notice and "/seed -p" in notice
    assert model_server.requests == []


# Anyone may have their stored data deleted, even where the allowlists keep Seed from answering them.
@pytest.mark.parametrize("asked_in", ["general", "random"], ids=["answered-there", "outside-allowlist"])
async def test_forget_deletes_your_stored_messages(
    start_bot: StartBot, world: World, model_server: FakeModelServer, asked_in: str
):
    bot = await start_bot(slack_allowed_channels=world.general)
    await world.slack.post(world.alice, world.general, world.mention("remember this"))
    await bot.idle()
    await world.slack.slash(world.alice, getattr(world, asked_in), "forget")
    await bot.idle()
    [done] = private_texts(world.slack, world.alice)
    assert done.startswith("Done: deleted ") and not done.startswith("Done: deleted 0")


async def test_the_shortcut_summarizes_the_thread_of_a_message_in_that_thread(
    start_bot: StartBot, world: World, model_server: FakeModelServer
):
    bot = await start_bot()
    root = await world.slack.post(world.bob, world.general, "Incident: the site is down")
    reply = await world.slack.post(world.alice, world.general, "Rolled back, it is up again", thread_ts=root)
    await world.slack.post(world.bob, world.general, "unrelated chatter")
    await world.slack.shortcut(world.alice, world.general, reply, SHORTCUT_ID)
    await bot.idle()
    prompt = model_prompt(model_server)
    assert "the site is down" in prompt and "Rolled back" in prompt and "unrelated chatter" not in prompt
    assert SUMMARY_INSTRUCTION in prompt
    assert world.slack.bot_messages(world.general, thread_ts=root)


async def test_commands_outside_the_allowlist_are_refused_privately(
    start_bot: StartBot, world: World, model_server: FakeModelServer
):
    bot = await start_bot(slack_allowed_channels=world.general)
    await world.slack.slash(world.alice, world.random, "what is 2+2?")
    await bot.idle()
    assert private_texts(world.slack, world.alice) == [NOT_ENABLED]
    assert model_server.requests == []


async def test_commands_without_a_trigger_id_are_each_answered(
    start_bot: StartBot, world: World, model_server: FakeModelServer
):
    bot = await start_bot()
    for question in ("first question", "second question"):
        payload = {"command": "/seed", "text": question, "channel_id": world.general, "user_id": world.alice}
        await world.slack.socket.deliver("slash_commands", {**payload, "team_id": TEAM_ID})
        await bot.idle()
    headers = [m.text for m in world.slack.bot_messages(world.general) if m.thread_ts is None]
    assert [header.splitlines()[-1] for header in headers] == ["> first question", "> second question"]
    assert len(model_server.requests) == 2


async def test_the_shortcut_outside_the_allowlist_is_refused_privately(
    start_bot: StartBot, world: World, model_server: FakeModelServer
):
    bot = await start_bot(slack_allowed_channels=world.general)
    ts = await world.slack.post(world.bob, world.random, "a thread to sum up")
    await world.slack.shortcut(world.alice, world.random, ts, SHORTCUT_ID)
    await bot.idle()
    assert private_texts(world.slack, world.alice) == [NOT_ENABLED]
    assert model_server.requests == []
    assert world.slack.bot_messages(world.random) == []
