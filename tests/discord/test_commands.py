"""Slash commands and the "Summarize" message menu, through real interactions and their webhooks."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from core.commands import NOTHING_TO_SUMMARIZE
from core.prompts import SUMMARY_INSTRUCTION
from tests.core.media.samples import write_video
from tests.discord.conftest import Bot, StartBot, World, last_user_text, request_parts
from tests.discord.test_attachments import png
from tests.discord.test_messages import wait_answer
from tests.fakes.discord import EPHEMERAL, FakeDiscord, Interaction
from tests.fakes.model_server import FakeModelServer, Script

STRING, INTEGER, ATTACHMENT = 3, 4, 11


def option(name: str, value: Any, kind: int = STRING) -> dict[str, Any]:
    return {"name": name, "type": kind, "value": value}


@pytest.fixture
async def bot_answered(world: World, start_bot: StartBot) -> Bot:
    """A running bot that has answered one mention from Alice in #general."""
    bot = await start_bot(discord_guild_ids=world.guild["id"])
    await world.api.user_message(world.general, world.alice, world.mention("hello there"))
    await wait_answer(world.api, world.general, "hello there")
    await bot.idle()
    return bot


async def response_text(api: FakeDiscord, interaction: Interaction, contains: str) -> dict[str, Any]:
    """The interaction's first response message, once it contains `contains`."""

    def ready() -> dict[str, Any] | None:
        responses = api.responses(interaction)
        return responses[0] if responses and contains in responses[0]["content"] else None

    return await api.wait_for(ready, what=f"a response with {contains!r}")


async def test_ask_defers_in_time_and_streams_into_the_original_response(
    world: World, start_bot: StartBot, model_server: FakeModelServer
) -> None:
    api = world.api
    model_server.enqueue(Script(reasoning="hmm " * 10, content="Forty-two, of course.", delay_s=0.01))
    await start_bot(discord_guild_ids=world.guild["id"])
    interaction = await api.invoke_command(
        world.general, world.alice, "ask", [option("prompt", "meaning of life?"), option("effort", "high")]
    )
    original = await response_text(api, interaction, "effort")
    assert interaction.acknowledged and not interaction.late
    assert interaction.response_type == 5  # deferred, "Seed is thinking..."
    assert "Forty-two, of course." in original["content"]
    assert not original["flags"] & EPHEMERAL
    assert model_server.requests[-1].body["reasoning_effort"] == "high"
    assert "meaning of life?" in last_user_text(model_server)
    assert [m["id"] for m in api.bot_messages(world.general)] == [original["id"]]


@pytest.mark.parametrize(
    ("kind", "filename", "mime", "part"),
    [("image", "cat.png", "image/png", "image_url"), ("video", "clip.mp4", "video/mp4", "video_url")],
)
async def test_ask_with_an_image_or_a_video(
    world: World,
    start_bot: StartBot,
    model_server: FakeModelServer,
    tmp_path: Path,
    kind: str,
    filename: str,
    mime: str,
    part: str,
) -> None:
    api = world.api
    if kind == "image":
        data = png()
    else:
        data = write_video(tmp_path / filename, seconds=1, width=64, height=48, fps=10).read_bytes()
    media = api.add_attachment(filename, data, mime)
    await start_bot(discord_guild_ids=world.guild["id"])
    interaction = await api.invoke_command(
        world.general,
        world.alice,
        "ask",
        [option("prompt", "what is this?"), option(kind, str(media.id), ATTACHMENT)],
        attachments=[media],
    )
    await response_text(api, interaction, "effort")
    assert api.attachment_downloads == [media.id]
    sent = request_parts(model_server, part)
    assert len(sent) == 1
    assert sent[0][part]["url"].startswith(f"data:{kind}/")


async def test_ask_answers_ping_nobody_but_the_asker_whatever_the_model_writes(
    world: World, start_bot: StartBot, model_server: FakeModelServer
) -> None:
    api = world.api
    content = f"Hey @everyone, @here, <@&{world.mods['id']}>, <@{world.bob['id']}> and <@{world.alice['id']}>"
    model_server.enqueue(Script(content=content))
    await start_bot(discord_guild_ids=world.guild["id"])
    interaction = await api.invoke_command(world.general, world.alice, "ask", [option("prompt", "ping")])
    original = await response_text(api, interaction, "effort")
    assert original["mention_everyone"] is False
    assert original["mention_roles"] == []
    assert [user["id"] for user in original["mentions"]] in ([], [world.alice["id"]])


async def test_ask_continues_a_long_answer_in_follow_up_messages(
    world: World, start_bot: StartBot, model_server: FakeModelServer
) -> None:
    api = world.api
    code = "\n".join(f"x_{i:03d} = {i}" for i in range(300))
    model_server.enqueue(Script(content=f"```python\n{code}\n```\nDone.", chunk_chars=500))
    await start_bot(discord_guild_ids=world.guild["id"])
    interaction = await api.invoke_command(world.general, world.alice, "ask", [option("prompt", "long")])
    parts = await api.wait_for(
        lambda: (found := api.responses(interaction)) and "effort" in found[-1]["content"] and found,
        what="the last part with its footer",
    )
    assert len(parts) >= 2
    assert all(len(part["content"]) <= 2000 and part["content"].count("```") % 2 == 0 for part in parts)
    shown = "\n".join(part["content"] for part in parts)
    assert all(f"x_{i:03d} = {i}" in shown for i in range(300))
    assert api.rate_limited == []


@pytest.mark.parametrize("discord_api", [{"webhook_token_ttl_s": 0.5}], indirect=True)
async def test_ask_continues_in_channel_messages_when_the_interaction_token_expires(
    world: World, start_bot: StartBot, model_server: FakeModelServer
) -> None:
    api = world.api
    answer = "Still going after the token expired. " * 12
    model_server.enqueue(Script(content=answer, chunk_chars=12, delay_s=0.03))
    await start_bot(discord_guild_ids=world.guild["id"])
    interaction = await api.invoke_command(world.general, world.alice, "ask", [option("prompt", "talk")])

    def moved() -> list[dict[str, Any]]:
        plain = [m for m in api.bot_messages(world.general) if "webhook_id" not in m]
        return [m for m in plain if answer.strip() in m["content"] and "effort" in m["content"]]

    continued = (await api.wait_for(moved, what="the answer in a channel message"))[0]
    original = api.responses(interaction)[0]
    assert continued["message_reference"]["message_id"] == original["id"]
    assert continued["mentions"] == []  # continuing its own message pings nobody


async def test_an_interaction_delivered_again_after_a_resume_is_answered_once(
    world: World, start_bot: StartBot, model_server: FakeModelServer
) -> None:
    api = world.api
    answer = "One answer per interaction. " * 6
    model_server.enqueue(Script(content=answer, chunk_chars=8, delay_s=0.03))
    await start_bot(discord_guild_ids=world.guild["id"])
    interaction = await api.invoke_command(world.general, world.alice, "ask", [option("prompt", "once?")])
    await api.wait_for(lambda: interaction.acknowledged, what="the deferral")
    await api.gateway.drop(redeliver=("INTERACTION_CREATE",))
    await response_text(api, interaction, answer.strip())
    await api.wait_for(lambda: api.gateway.resumes == 1 and api.gateway.connected, what="the RESUME")
    callbacks = [r for r in api.requests if r.path.endswith("/callback")]
    assert [r.status for r in callbacks] == [200]  # the second delivery was not answered again
    assert len(model_server.requests) == 1
    assert len(api.responses(interaction)) == 1


async def private_reply(api: FakeDiscord, interaction: Interaction) -> str:
    """The text of the interaction's only response, which only the person who asked can see."""
    (message,) = await api.wait_for(
        lambda: [m for m in api.responses(interaction) if m["content"]], what="the reply"
    )
    assert message["flags"] & EPHEMERAL
    return message["content"]


async def command_reply(world: World, user: dict[str, Any], name: str, *options: dict[str, Any]) -> str:
    """The private reply to `user` running command `name` in #general."""
    return await private_reply(
        world.api, await world.api.invoke_command(world.general, user, name, list(options))
    )


async def effort_reply(api: FakeDiscord, world: World, user: dict[str, Any], *options: dict[str, Any]) -> str:
    return await command_reply(world, user, "effort", *options)


async def test_effort_shows_and_sets_levels_by_scope_with_admin_checks(
    world: World, start_bot: StartBot, model_server: FakeModelServer
) -> None:
    api = world.api
    await start_bot(discord_guild_ids=world.guild["id"])
    assert "**medium** (from the default)" in await effort_reply(api, world, world.alice)
    assert "now **high**" in await effort_reply(api, world, world.alice, option("level", "high"))
    assert "**high** (from your own setting)" in await effort_reply(api, world, world.alice)
    refused = await effort_reply(api, world, world.bob, option("level", "low"), option("scope", "channel"))
    assert "Only admins" in refused
    await effort_reply(api, world, world.boss, option("level", "low"), option("scope", "channel"))
    assert "**low** (from this channel's setting)" in await effort_reply(api, world, world.bob)
    assert "**high**" in await effort_reply(api, world, world.alice)  # her own setting wins
    await effort_reply(api, world, world.alice, option("level", "default"))
    assert "**low** (from this channel's setting)" in await effort_reply(api, world, world.alice)


async def test_admins_set_the_servers_budgets_and_others_only_see_them(
    world: World, start_bot: StartBot, model_server: FakeModelServer
) -> None:
    api = world.api
    await start_bot(discord_guild_ids=world.guild["id"])

    assert "Only admins" in await command_reply(
        world, world.alice, "budget", option("limit", "daily"), option("amount", "5")
    )
    assert "US dollars" in await command_reply(
        world, world.boss, "budget", option("limit", "monthly"), option("amount", "lots")
    )
    shown = await command_reply(
        world, world.boss, "budget", option("limit", "daily"), option("amount", "0.0001")
    )
    assert shown.startswith("Spending limits here: $0.0001 per person per day")
    assert "$0.0001 per person per day" in await command_reply(world, world.alice, "budget")
    await api.user_message(world.general, world.alice, world.mention("expensive question"))
    [refusal] = await api.wait_for(
        lambda: [
            m for m in api.bot_messages(world.general) if "daily budget of $0.0001 reached" in m["content"]
        ],
        what="the budget refusal",
    )
    assert "resets at 00:00 UTC" in refusal["content"]
    assert model_server.requests == []
    assert "unlimited per person" in await command_reply(
        world, world.boss, "budget", option("limit", "daily"), option("amount", "default")
    )


async def test_admins_give_a_channel_its_own_instructions(
    world: World, start_bot: StartBot, model_server: FakeModelServer
) -> None:
    api = world.api
    await start_bot(discord_guild_ids=world.guild["id"])

    assert "Only admins" in await command_reply(world, world.alice, "prompt", option("text", "Be terse."))
    assert "This channel's instructions" in await command_reply(
        world, world.boss, "prompt", option("text", "Answer in French.")
    )
    await api.user_message(world.general, world.bob, world.mention("hello"))
    await wait_answer(api, world.general, "Echo")
    assert model_server.requests[-1].body["messages"][0]["content"] == "Answer in French."
    assert "(the default)" in await command_reply(world, world.boss, "prompt", option("text", "default"))


async def test_server_scope_in_a_dm_says_there_is_no_server(world: World, start_bot: StartBot) -> None:
    api = world.api
    await start_bot(admins=world.alice["id"])  # global commands, so they work in DMs
    dm = api.dm_channel(world.alice)
    for name, options in [
        ("effort", [option("level", "high"), option("scope", "server")]),
        ("cost", [option("scope", "server")]),
    ]:
        assert "no server here" in await private_reply(
            api, await api.invoke_command(dm, world.alice, name, options)
        )


async def test_commands_outside_the_allowlist_are_refused_privately(
    world: World, start_bot: StartBot, model_server: FakeModelServer
) -> None:
    api = world.api
    await start_bot(discord_guild_ids=world.guild["id"], discord_allowed_channels=world.random["id"])
    interaction = await api.invoke_command(world.general, world.alice, "ask", [option("prompt", "hi")])
    assert "isn't enabled here" in await private_reply(api, interaction)
    assert model_server.requests == []


async def test_cost_is_a_private_report_with_budget_left_and_top_spenders_for_admins(
    world: World, start_bot: StartBot
) -> None:
    api = world.api
    bot = await start_bot(discord_guild_ids=world.guild["id"], user_daily_budget_usd="5")
    await api.user_message(world.general, world.alice, world.mention("hello there"))
    await wait_answer(api, world.general, "hello there")
    await bot.idle()  # the answer's cost is booked after its last edit

    async def cost(user: dict[str, Any], scope: str, period: str) -> str:
        options = [option("scope", scope), option("period", period)]
        return await private_reply(api, await api.invoke_command(world.general, user, "cost", options))

    mine = await cost(world.alice, "me", "today")
    assert mine.startswith("Spend for you · today")
    assert "1 request ·" in mine and "reasoning," in mine and "cached)" in mine
    assert "left of $5.00" in mine
    assert "Top spenders" not in await cost(world.alice, "channel", "7d")
    server = await cost(world.boss, "server", "30d")  # Manage Server: an admin
    assert server.startswith("Spend for this workspace · last 30 days")
    assert f"Top spenders:\n1. <@{world.alice['id']}>" in server
    assert f"Top channels:\n1. <#{world.general['id']}>" in server


async def test_cost_comes_with_a_chart_of_the_last_30_days_attached_privately(
    world: World, start_bot: StartBot
) -> None:
    api = world.api
    await start_bot(discord_guild_ids=world.guild["id"])
    asked = await api.invoke_command(world.general, world.alice, "cost", [option("scope", "channel")])
    assert (await private_reply(api, asked)).startswith("Spend for this channel · today")
    [response] = api.responses(asked)
    [attached] = response["attachments"]
    assert attached["filename"] == "spend.png"
    assert api.attachments[int(attached["id"])].data.startswith(b"\x89PNG\r\n\x1a\n")


async def test_cost_is_text_only_when_discord_refuses_the_chart(world: World, start_bot: StartBot) -> None:
    api = world.api
    api.upload_limit = 100  # bytes: far less than any chart
    await start_bot(discord_guild_ids=world.guild["id"])
    asked = await api.invoke_command(world.general, world.alice, "cost", [])
    assert (await private_reply(api, asked)).startswith("Spend for you · today")
    [response] = api.responses(asked)
    assert response["attachments"] == []
    assert [r.status for r in api.requests if "/webhooks/" in r.path and r.method == "PATCH"] == [413, 200]


async def test_summarize_reads_recent_channel_messages(
    world: World, start_bot: StartBot, model_server: FakeModelServer
) -> None:
    api = world.api
    await start_bot(discord_guild_ids=world.guild["id"])
    for author, text in [(world.alice, "We ship on Friday."), (world.bob, "QA needs one more day.")]:
        await api.user_message(world.general, author, text)
    interaction = await api.invoke_command(
        world.general, world.boss, "summarize", [option("count", 5, INTEGER)]
    )
    await response_text(api, interaction, "effort")
    context = last_user_text(model_server)
    assert "We ship on Friday." in context and "QA needs one more day." in context
    assert SUMMARY_INSTRUCTION in context


@pytest.mark.parametrize("discord_api", [{"global_rate": (10, 1.0)}], indirect=True)
async def test_summaries_asked_in_many_channels_at_once_read_history_within_the_bots_global_limit(
    world: World, start_bot: StartBot
) -> None:
    # A global limit of 10 a second and the bot told so: a dozen history reads at once would exceed it.
    api = world.api
    channels = [api.add_channel(world.guild, f"team-{n}") for n in range(12)]
    await start_bot(discord_guild_ids=world.guild["id"], discord_global_rate_limit=10)
    for channel in channels:
        await api.user_message(channel, world.alice, "We ship on Friday.")
    await asyncio.sleep(1.1)  # the start-up calls' second is over
    asked = [await api.invoke_command(channel, world.boss, "summarize") for channel in channels]
    for interaction in asked:
        await response_text(api, interaction, "effort")
    assert api.rate_limited == []


async def test_summarizing_the_media_of_a_channel_without_any_says_so_without_asking_the_model(
    world: World, start_bot: StartBot, model_server: FakeModelServer
) -> None:
    api = world.api
    await start_bot(discord_guild_ids=world.guild["id"])
    await api.user_message(world.general, world.alice, "Only words here, no files.")
    interaction = await api.invoke_command(world.general, world.boss, "summarize", [option("what", "media")])
    await response_text(api, interaction, NOTHING_TO_SUMMARIZE)
    assert model_server.requests == []


async def test_summarize_message_menu_reads_that_message(
    world: World, start_bot: StartBot, model_server: FakeModelServer
) -> None:
    api = world.api
    await start_bot(discord_guild_ids=world.guild["id"])
    target = await api.user_message(world.general, world.bob, "A very long design proposal about caching.")
    await api.user_message(world.general, world.alice, "Something else entirely.")
    interaction = await api.invoke_command(world.general, world.alice, "Summarize", target_message=target)
    await response_text(api, interaction, "effort")
    context = last_user_text(model_server)
    assert "design proposal about caching" in context
    assert "Something else entirely." not in context


async def test_forget_deletes_my_stored_messages(world: World, bot_answered: Bot) -> None:
    api = world.api
    prompt = next(m for m in api.channel_messages(world.general) if m["author"]["id"] == world.alice["id"])
    admission = bot_answered.runner.client.seed.admission
    assert await admission.conversation_of("discord", prompt["id"]) is not None
    interaction = await api.invoke_command(world.general, world.alice, "forget")
    done = await api.wait_for(
        lambda: [m for m in api.responses(interaction) if "deleted" in m["content"]], what="/forget"
    )
    assert done[0]["flags"] & EPHEMERAL
    assert await admission.conversation_of("discord", prompt["id"]) is None
