"""👍 / 👎 on Discord: two small buttons on the last message of a finished answer (a channel reply or a
/ask response), and a press, through discord.py against the fake Discord, stored against that message."""

from __future__ import annotations

from typing import Any

from tests.discord.conftest import StartBot, World
from tests.discord.test_commands import option, response_text
from tests.discord.test_messages import wait_answer
from tests.fakes.discord import EPHEMERAL, FakeDiscord, Interaction
from tests.fakes.model_server import FakeModelServer, Script


def feedback_ids(message: dict[str, Any]) -> tuple[str, str]:
    [row] = message["components"]
    up, down = (button["custom_id"] for button in row["components"])
    assert [button["emoji"]["name"] for button in row["components"]] == ["👍", "👎"]
    return up, down


async def thanked(api: FakeDiscord, pressed: Interaction) -> str:
    [told] = await api.wait_for(lambda: [m for m in api.responses(pressed) if m["content"]], what="thanks")
    assert told["flags"] & EPHEMERAL
    return told["content"]


async def test_a_channel_answer_gets_the_buttons_and_a_second_press_replaces_the_first(
    world: World, start_bot: StartBot, model_server: FakeModelServer
) -> None:
    api = world.api
    model_server.enqueue(Script(content="Paris is the capital.", usd=0.0042))
    bot = await start_bot()
    await api.user_message(world.general, world.alice, world.mention("capital of France?"))
    await wait_answer(api, world.general, "Paris is the capital.")
    await bot.idle()
    [answer] = api.bot_messages(world.general)
    up, down = feedback_ids(api.messages[int(answer["id"])])

    assert await thanked(api, await api.press(answer, world.bob, up)) == "Thanks for the 👍."
    await thanked(api, await api.press(answer, world.alice, up))
    assert "👎" in await thanked(api, await api.press(answer, world.alice, down))

    store = bot.service.store
    [disliked] = await store.disliked_answers()
    assert (disliked.platform, disliked.workspace, disliked.channel) == (
        "discord",
        str(world.guild["id"]),
        str(world.general["id"]),
    )
    assert (disliked.platform_message_id, disliked.user) == (str(answer["id"]), str(world.alice["id"]))
    assert (disliked.effort, disliked.tool_calls, str(disliked.usd)) == ("medium", 0, "0.0042")
    stored = await store.find_by_platform_message("discord", str(answer["id"]))
    assert stored is not None and disliked.reply_id == stored.id
    [rate] = await store.feedback_rates("effort")
    assert (rate.key, rate.up, rate.down) == ("medium", 1, 1)


async def test_an_ask_response_gets_the_buttons_through_the_interaction_webhook(
    world: World, start_bot: StartBot, model_server: FakeModelServer
) -> None:
    api = world.api
    model_server.enqueue(Script(content="Forty-two.", usd=0.001))
    bot = await start_bot(discord_guild_ids=world.guild["id"])
    asked = await api.invoke_command(
        world.general, world.alice, "ask", [option("prompt", "meaning?"), option("effort", "high")]
    )
    await response_text(api, asked, "effort")
    await bot.idle()
    original = api.responses(asked)[0]
    _, down = feedback_ids(original)
    await thanked(api, await api.press(original, world.alice, down))
    [disliked] = await bot.service.store.disliked_answers()
    assert (disliked.platform_message_id, disliked.effort) == (str(original["id"]), "high")
