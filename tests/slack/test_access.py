"""Allowlists (SLACK_ALLOWED_CHANNELS, SLACK_ALLOWED_USERS) and admins (SEEDBOT_ADMINS)."""

from __future__ import annotations

from core.admission import NOT_ENABLED
from tests.fakes.model_server import FakeModelServer
from tests.slack.conftest import StartBot, World


async def test_outside_the_allowed_channels_the_bot_says_so_once_and_privately(
    start_bot: StartBot, world: World, model_server: FakeModelServer
):
    bot = await start_bot(slack_allowed_channels=world.general)
    await world.slack.post(world.alice, world.random, world.mention("hello?"))
    await world.slack.post(world.alice, world.random, world.mention("hello again?"))
    await bot.idle()
    assert model_server.requests == []
    assert world.slack.bot_messages(world.random) == []
    notices = world.slack.ephemerals_for(world.alice)
    assert [(n.channel, n.text) for n in notices] == [(world.random, NOT_ENABLED)]

    await world.slack.post(world.bob, world.random, world.mention("me too?"))
    await world.slack.post(world.alice, world.general, world.mention("and here?"))
    await bot.idle()
    assert len(world.slack.ephemerals_for(world.bob)) == 1
    assert len(model_server.requests) == 1
    assert world.slack.bot_messages(world.general)


async def test_only_allowed_users_are_answered_and_admins_always_are(
    start_bot: StartBot, world: World, model_server: FakeModelServer
):
    bot = await start_bot(slack_allowed_users=world.alice)
    await world.slack.post(world.bob, world.general, world.mention("can I?"))
    await bot.idle()
    assert model_server.requests == []
    assert [n.text for n in world.slack.ephemerals_for(world.bob)] == [NOT_ENABLED]
    await world.slack.post(world.alice, world.general, world.mention("alice asks"))
    await world.slack.post(world.boss, world.general, world.mention("the admin asks"))
    await bot.idle()
    assert len(model_server.requests) == 2


async def test_with_a_channel_allowlist_dms_are_for_allowed_users_and_admins(
    start_bot: StartBot, world: World, model_server: FakeModelServer
):
    bot = await start_bot(slack_allowed_channels=world.general)
    await world.slack.post(world.alice, world.slack.open_dm(world.alice), "hello in private")
    await world.slack.post(world.boss, world.slack.open_dm(world.boss), "admin in private")
    await bot.idle()
    assert len(model_server.requests) == 1
    assert "admin in private" in str(model_server.requests[0].body["messages"])
    assert [n.text for n in world.slack.ephemerals_for(world.alice)] == [NOT_ENABLED]


async def test_a_user_allowlist_opens_dms_to_those_users(
    start_bot: StartBot, world: World, model_server: FakeModelServer
):
    bot = await start_bot(slack_allowed_channels=world.general, slack_allowed_users=world.alice)
    await world.slack.post(world.alice, world.slack.open_dm(world.alice), "hello in private")
    await bot.idle()
    assert len(model_server.requests) == 1
